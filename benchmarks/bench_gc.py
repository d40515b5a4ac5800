"""The cyclic garbage collector's share of each client's CPU per call.

Run: ``python benchmarks/bench_gc.py [--concurrency 64,512] [--rounds R] [--calls N] [--loop L]``.

At concurrency 512 the calls in flight keep tens of thousands of objects alive, and the young
collections that every few hundred allocations trigger walk the ones made since the last: a
fixed cost per call that every client pays and that is not in a call's path. This script asks
whether this client makes the collector work harder than the expert does (more objects per call
in flight, or costlier ones to walk), and whether the collector explains why its CPU reads a few
per cent behind the expert's at 64 and 512 where every count is level.

As in ``bench_client.py``: one loopback server in its own process, every client's pool warmed
up, the clients taking turns round by round (the order rotating), a full collection before each
round. Per round and client: CPU per call (``time.process_time()``), CPU per call spent in
collections (``gc.callbacks``, start to stop of each), and how many of each generation ran. It
prints the medians over rounds, each client's median paired ratio to the expert's, and the same
ratio with every collection's CPU taken out of both sides.
"""

from __future__ import annotations

import contextlib
import gc
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

from bench_client import bench_calls, call_table_main, cpu_per_call, paired  # noqa: E402
from floor import CALL_CLIENTS  # noqa: E402

CLIENTS = {name: CALL_CLIENTS[name] for name in ("raw", "expert", "ours")}


class CollectorClock:
    """CPU spent in collections, and how many of each generation ran, since ``reset``."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.runs = [0, 0, 0]
        self._started = 0.0

    def reset(self) -> None:
        self.seconds = 0.0
        self.runs = [0, 0, 0]

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.process_time()
        else:
            self.seconds += time.process_time() - self._started
            self.runs[info["generation"]] += 1


def bench(url: str, loop_name: str, concurrency: int, calls: int, rounds: int) -> list[str]:
    clock = CollectorClock()
    in_gc: dict[str, list[float]] = {name: [] for name in CLIENTS}
    collections: dict[str, list[int]] = {name: [0, 0, 0] for name in CLIENTS}

    def measure(name: str, run: Callable[[int], None], calls: int) -> float:
        clock.reset()  # after the full collection that starts each round
        cpu = cpu_per_call(name, run, calls)
        in_gc[name].append(clock.seconds / calls * 1e6)
        collections[name] = [a + b for a, b in zip(collections[name], clock.runs, strict=True)]
        return cpu

    gc.callbacks.append(clock)
    try:
        cpu = bench_calls(url, loop_name, concurrency, calls, rounds, CLIENTS, measure)
    finally:
        gc.callbacks.remove(clock)
    to_expert = paired(cpu, "expert")
    without = {
        name: [c - g for c, g in zip(cpu[name], in_gc[name], strict=True)] for name in CLIENTS
    }
    without_to_expert = paired(without, "expert")
    return [
        f"| {loop_name} | {concurrency} | {name} | {to_expert[name][0]:.1f} | "
        f"{statistics.median(in_gc[name]):.1f} | "
        + "/".join(f"{n / rounds:.0f}" for n in collections[name])
        + f" | {to_expert[name][1]:.3f}x | {without_to_expert[name][1]:.3f}x |"
        for name in CLIENTS
    ]


def import_aiobotocore() -> None:
    """The heap bench_client has: aiobotocore and botocore imported (a full collection walks
    them)."""
    with contextlib.suppress(ImportError):
        import aiobotocore.session  # noqa: F401


def main() -> None:
    call_table_main(
        __doc__,
        (
            "| loop | concurrency | client | CPU µs/call | of it in collections | "
            "collections a round (gen 0/1/2) | vs expert | vs expert, collections out |",
            "|---|---:|---|---:|---:|---|---:|---:|",
        ),
        bench,
        concurrency="64,512",
        rounds=15,
        calls=4096,
        prepare=import_aiobotocore,
    )


if __name__ == "__main__":
    main()
