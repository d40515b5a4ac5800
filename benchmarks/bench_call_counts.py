"""System calls, cache misses and branch mispredictions per call: the counts besides instructions.

Run: ``python benchmarks/bench_call_counts.py [--clients raw,expert,ours] [--concurrency 1,64,512]
[--calls N]``.

``bench_instructions.py`` counts a call's user-space instructions; CPU time also pays for what
they miss and for the kernel. This script counts the rest, deterministically, for the same
clients and the same measured child (``bench_instructions.py --child``: asyncio, a warm-up, then
the calls, that many tasks at once, after a full collection and without one): each child runs
with ``--calls`` calls and with twice as many, and the difference divided by the extra calls is
one call's share.

- **System calls** (``strace -f``, every thread of the child): the kernel's side, which callgrind
  does not see.
- **Cache misses** (callgrind's cache simulator, caches set as this machine's are: 32 KiB L1
  instruction and 48 KiB L1 data caches, and its 1 MiB L2 as the last level, the largest
  callgrind simulates; the 32 MiB L3 is not modelled): L1 instruction, L1 data (read and
  write) and last-level misses.
- **Branch mispredictions** (callgrind's branch simulator, a model of a predictor, not this
  CPU's): conditional and indirect. The interpreter's dispatch is an indirect branch per
  bytecode.

A column that this machine cannot count (no strace, no valgrind) is left out.
"""

from __future__ import annotations

import argparse
import collections
import re
import shutil
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

from callgrind import child_events, child_output  # noqa: E402
from floor import CALL_CLIENTS, quiet_environment, start_server, stop_server  # noqa: E402

CHILD = BENCH_DIR / "bench_instructions.py"
SIMULATORS = (
    "--cache-sim=yes",
    "--I1=32768,8,64",
    "--D1=49152,12,64",
    "--LL=1048576,16,64",
    "--branch-sim=yes",
)
# (column, the callgrind events it sums)
COLUMNS = (
    ("instructions", ("Ir",)),
    ("L1i misses", ("I1mr",)),
    ("L1d misses", ("D1mr", "D1mw")),
    ("last-level misses", ("ILmr", "DLmr", "DLmw")),
    ("conditional mispredicted", ("Bcm",)),
    ("indirect mispredicted", ("Bim",)),
)
_SYSCALL = re.compile(r"^(?:\d+\s+)?(\w+)\(")


def _child_args(name: str, url: str, calls: int, concurrency: int) -> list[str]:
    return ["call", name, url, str(calls), str(concurrency)]


def syscalls(name: str, url: str, calls: int, concurrency: int) -> collections.Counter[str] | None:
    """The system calls of one child run, by name (an interrupted call is counted once), or None
    if the client is not installed."""
    text = child_output(
        lambda out: ["strace", "-f", "-qq", "-o", str(out)],
        CHILD,
        _child_args(name, url, calls, concurrency),
    )
    if text is None:
        return None
    counts: collections.Counter[str] = collections.Counter()
    for line in text.splitlines():
        match = _SYSCALL.match(line)
        if match is not None and "resumed>" not in line:
            counts[match.group(1)] += 1
    return counts


def per_call_syscalls(name: str, url: str, calls: int, concurrency: int) -> dict[str, float] | None:
    short = syscalls(name, url, calls, concurrency)
    long = syscalls(name, url, 2 * calls, concurrency)
    if short is None or long is None:
        return None
    long.subtract(short)
    return {syscall: count / calls for syscall, count in long.items() if count}


def per_call_events(name: str, url: str, calls: int, concurrency: int) -> dict[str, float] | None:
    short = child_events(CHILD, _child_args(name, url, calls, concurrency), SIMULATORS)
    long = child_events(CHILD, _child_args(name, url, 2 * calls, concurrency), SIMULATORS)
    if short is None or long is None:
        return None
    return {event: (long[event] - short[event]) / calls for event in long}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", default="raw,expert,ours")
    parser.add_argument("--concurrency", default="1,64,512")
    parser.add_argument(
        "--calls", type=int, default=1024, help="calls in the short run (default 1024)"
    )
    args = parser.parse_args()
    clients = args.clients.split(",")
    unknown = [name for name in clients if name not in CALL_CLIENTS]
    if unknown:
        sys.exit(f"unknown clients: {', '.join(unknown)} (known: {', '.join(CALL_CLIENTS)})")
    can_strace = shutil.which("strace") is not None
    can_simulate = shutil.which("valgrind") is not None
    if not (can_strace or can_simulate):
        sys.exit("neither strace nor valgrind is installed")
    quiet_environment()
    process, url = start_server()
    head = ["concurrency", "client"]
    head += ["system calls"] if can_strace else []
    head += [column for column, _ in COLUMNS] if can_simulate else []
    lines = ["| " + " | ".join(head) + " |", "|---|---|" + "---:|" * (len(head) - 2)]
    try:
        for concurrency in map(int, args.concurrency.split(",")):
            calls = max(args.calls, concurrency)  # every task makes at least one
            for name in clients:
                cells = [str(concurrency), name]
                by_name = per_call_syscalls(name, url, calls, concurrency) if can_strace else {}
                events = per_call_events(name, url, calls, concurrency) if can_simulate else {}
                if by_name is None or events is None:
                    print(f"{name}: not installed, skipped", file=sys.stderr)
                    continue
                if can_strace:
                    top = ", ".join(
                        f"{syscall} {count:.2f}"
                        for syscall, count in sorted(by_name.items(), key=lambda kv: -kv[1])[:3]
                    )
                    cells.append(f"{sum(by_name.values()):.2f} ({top})")
                if can_simulate:
                    cells += [f"{sum(events[e] for e in sums):,.0f}" for _, sums in COLUMNS]
                lines.append("| " + " | ".join(cells) + " |")
                print(f"c={concurrency} {name} done", file=sys.stderr)
    finally:
        stop_server(process)
    print(f"\nPer call (asyncio; differences of runs of {args.calls} and twice as many calls):\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
