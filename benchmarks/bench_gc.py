"""The cyclic garbage collector's share of each client's CPU per call.

Run: ``python benchmarks/bench_gc.py [--concurrency 64,512] [--rounds R] [--calls N] [--loop L]
[--max-connections P]``.

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

``--max-connections P`` gives every client a pool of P connections whatever the concurrency (by
default each has one per task, as in bench_client): with more tasks than connections, calls wait
for one, where each client makes them wait. aiohttp's pool (raw, the expert) holds a call once
its request is built, and so does this client's since 2026-12-04 (a slot taken on credit; signed
again if it waited over a minute). It adds "ours in slots", this client with its calls waiting
in its slots before they are signed and built, as until then (an ablation, set on the client's
internals): a call woken from that queue builds its request then, and the calls woken in one
loop iteration allocate together what the calls that ended in the last one freed together. A
free cannot take the young generation's count below zero, so the count climbs by all of it:
young collections run several times as often as the expert's.
"""

from __future__ import annotations

import contextlib
import gc
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

from bench_client import bench_calls, call_table_main, cpu_per_call, paired  # noqa: E402
from floor import (  # noqa: E402
    CALL_CLIENTS,
    make_expert,
    make_ours,
    make_ours_queued_in_slots,
    make_raw,
    ours_client,
)

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


def pooled(pool: int) -> dict[str, Callable[[str, int], Awaitable[Any]]]:
    """The clients, each with ``pool`` connections whatever the concurrency."""
    return {
        "raw": lambda url, concurrency: make_raw(url, pool),
        "expert": lambda url, concurrency: make_expert(url, pool),
        "ours": lambda url, concurrency: make_ours(url, concurrency, ours_client(url, pool)),
        "ours in slots": lambda url, concurrency: make_ours_queued_in_slots(url, pool),
    }


def bench(
    url: str,
    loop_name: str,
    concurrency: int,
    calls: int,
    rounds: int,
    max_connections: int | None = None,
) -> list[str]:
    clients = CLIENTS if max_connections is None else pooled(max_connections)
    clock = CollectorClock()
    in_gc: dict[str, list[float]] = {name: [] for name in clients}
    collections: dict[str, list[int]] = {name: [0, 0, 0] for name in clients}

    def measure(name: str, run: Callable[[int], None], calls: int) -> float:
        clock.reset()  # after the full collection that starts each round
        cpu = cpu_per_call(name, run, calls)
        in_gc[name].append(clock.seconds / calls * 1e6)
        collections[name] = [a + b for a, b in zip(collections[name], clock.runs, strict=True)]
        return cpu

    gc.callbacks.append(clock)
    try:
        cpu = bench_calls(url, loop_name, concurrency, calls, rounds, clients, measure)
    finally:
        gc.callbacks.remove(clock)
    to_expert = paired(cpu, "expert")
    without = {
        name: [c - g for c, g in zip(cpu[name], in_gc[name], strict=True)] for name in clients
    }
    without_to_expert = paired(without, "expert")
    return [
        f"| {loop_name} | {concurrency} | {name} | {to_expert[name][0]:.1f} | "
        f"{statistics.median(in_gc[name]):.1f} | "
        + "/".join(f"{n / rounds:.0f}" for n in collections[name])
        + f" | {to_expert[name][1]:.3f}x | {without_to_expert[name][1]:.3f}x |"
        for name in clients
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
        options={
            "--max-connections": {
                "type": int,
                "help": "every client's pool (default: the concurrency, as in bench_client)",
            }
        },
    )


if __name__ == "__main__":
    main()
