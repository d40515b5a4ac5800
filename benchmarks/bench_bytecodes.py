"""Python bytecodes per call, by file: raw aiohttp, the expert and this client, on asyncio and uvloop.

Run: ``python benchmarks/bench_bytecodes.py [--calls N] [--loops asyncio,uvloop] [--top K]``.

Instruction counts (``bench_instructions.py``) weigh C and Python alike; a bytecode costs several
times more cycles than an instruction of a C loop such as SHA-256's, so two clients level in
instructions can differ in CPU. This script counts the bytecodes each client's call executes,
with a tracer that sees every one (``f_trace_opcodes``), after a warm-up, at concurrency 1: in
total, and by file, this client against the expert. The counts are exact and the same on every
run, give or take the event loop's iterations. Under uvloop the loop's own work (timers, handles,
its selector) is C, so what the clients run in Python is most of what differs between them.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from collections import Counter
from collections.abc import Callable, Coroutine
from pathlib import Path
from types import FrameType
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

from floor import (  # noqa: E402
    make_expert,
    make_ours,
    make_raw,
    quiet_environment,
    start_server,
    steady_allocator,
    stop_server,
)

CLIENTS = {"raw": make_raw, "expert": make_expert, "ours": make_ours}
WARMUP = 20
Tracer = Callable[[FrameType, str, Any], Any]
ROOT = f"{BENCH_DIR.parent}/"
_STDLIB = re.compile(r"^.*/lib/python3\.\d+/")


def _where(frame: FrameType) -> str:
    """The frame's file, from the package or the checkout (``aiohttp/client.py``, ``asyncio/...``)."""
    path = frame.f_code.co_filename
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1]
    if path.startswith(ROOT):
        return path[len(ROOT) :]
    return _STDLIB.sub("", path)


async def count(url: str, calls: int) -> dict[str, Counter[str]]:
    """Per client: bytecodes executed over ``calls`` calls, by file."""
    results: dict[str, Counter[str]] = {}
    for name, factory in CLIENTS.items():
        call, close = await factory(url, 1)
        for _ in range(WARMUP):
            await call()
        counts: Counter[str] = Counter()

        def opcode(frame: FrameType, event: str, arg: Any, counts: Counter[str] = counts) -> Tracer:
            if event == "opcode":
                counts[_where(frame)] += 1
            return opcode

        def enter(frame: FrameType, event: str, arg: Any) -> Tracer:
            frame.f_trace_opcodes = True
            frame.f_trace_lines = False
            return opcode

        sys.settrace(enter)
        try:
            for _ in range(calls):
                await call()
        finally:
            sys.settrace(None)
        await close()
        results[name] = counts
    return results


def report(loop_name: str, results: dict[str, Counter[str]], calls: int, top: int) -> list[str]:
    totals = {name: sum(counts.values()) / calls for name, counts in results.items()}
    lines = [
        f"\n{loop_name}: bytecodes per call: "
        + ", ".join(f"{name} {total:,.0f}" for name, total in totals.items())
        + f" (this client {totals['ours'] / totals['expert']:.2f}x the expert's)\n",
        "| file | this client minus the expert, per call |",
        "|---|---:|",
    ]
    difference = Counter(results["ours"])
    difference.subtract(results["expert"])
    ranked = sorted(difference.items(), key=lambda item: -abs(item[1]))
    lines += [f"| `{path}` | {value / calls:+,.0f} |" for path, value in ranked[:top] if value]
    return lines


def run_on(loop_name: str, main: Coroutine[Any, Any, dict[str, Counter[str]]]) -> Any:
    if loop_name == "uvloop":
        import uvloop

        return uvloop.run(main)
    return asyncio.run(main)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--loops", default="asyncio,uvloop")
    parser.add_argument("--top", type=int, default=14, help="files listed (default 14)")
    args = parser.parse_args()
    quiet_environment()
    steady_allocator()
    process, url = start_server()
    try:
        for loop_name in args.loops.split(","):
            try:
                results = run_on(loop_name, count(url, args.calls))
            except ImportError:
                print(f"\n{loop_name}: not installed")
                continue
            print("\n".join(report(loop_name, results, args.calls, args.top)))
    finally:
        stop_server(process)


if __name__ == "__main__":
    main()
