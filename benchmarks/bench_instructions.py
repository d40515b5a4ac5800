"""Instructions per call under valgrind's callgrind: the deterministic companion of bench_client.py.

Run: ``python benchmarks/bench_instructions.py [--clients raw,expert,ours,...] [--calls N]``.

Wall and CPU time move by 10-20 % on a shared machine; instruction counts move by well under 1 %,
so a change to the hot path can be judged with them. For each client, a child process runs under
``valgrind --tool=callgrind`` twice against the loopback server of ``floor.py`` (which runs natively
in its own process and is not counted): once with ``--calls`` calls after a warm-up, once with twice
as many. The difference of the two totals, divided by the extra calls, is the cost of one call with
start-up, imports and warm-up cancelled out. Asyncio, concurrency 1; ``--concurrency 512``: calls
made by that many tasks at once through a pool of as many connections, as in bench_client.py (the
garbage collector's young collections, which grow with the calls in flight, included; its full
collections, which bench_client.py's rounds never see either, left out: ``bench_gc.py`` counts
them). Streams: the same with whole 200-event streams, per event, written by the server as fast
as it can (a read brings several events, as from a busy container); ``paced ...``: the same
streams paced as a model generates tokens (3 ms apart), so that each event arrives in a read of
its own; ``burst ...``: the same streams written in one write, many events a read (not in the
default list); ``first ...``: whole one-event streams, per stream (``--calls`` of them), the
cost of a stream besides its events. ``ours request``: this client called with a request object
per call, as the Java SDK is. ``chat ...``, ``chat paced ...`` and ``chat burst ...``: streams of
the OpenAI-compatible route (200 chat chunks as server-sent events), written as fast as the server
can, paced and in one write (not in the default list).

Only user-space instructions of the client process are counted (callgrind's ``Ir``). Every child
first puts glibc's allocator in a long-running process's regime (``floor.steady_allocator``), so
that no client is counted with a 256 KiB ``mmap`` per socket read that another is spared.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import shutil
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

from callgrind import NOT_AVAILABLE, child_instructions  # noqa: E402
from floor import (  # noqa: E402
    BURST_ENDPOINT,
    CALL_CLIENTS,
    CHAT_CLIENTS,
    ENDPOINT,
    FIRST_ENDPOINT,
    FIRST_PART_CLIENTS,
    OTHER_CALL_CLIENTS,
    PACED_ENDPOINT,
    STREAM_CLIENTS,
    STREAM_EVENTS,
    quiet_environment,
    start_server,
    steady_allocator,
    stop_server,
)

CALLS = {**CALL_CLIENTS, **OTHER_CALL_CLIENTS}
CLIENTS = {
    **{name: ("call", name) for name in CALLS},
    **{f"stream {name}": ("stream", name) for name in STREAM_CLIENTS},
    **{f"paced {name}": ("paced", name) for name in STREAM_CLIENTS if name != "aiobotocore"},
    **{f"burst {name}": ("burst", name) for name in STREAM_CLIENTS},
    # One-event streams: what a stream costs besides its events (the call, the stream's set-up,
    # its first part and its end), to set against a call's; the expert's signs by hand.
    **{f"first {name}": ("first", name) for name in FIRST_PART_CLIENTS},
    # The OpenAI-compatible route's streams of 200 chat chunks (server-sent events, no event
    # stream): written as fast as the server can, paced, and in one write.
    **{f"chat {name}": ("chat", name) for name in CHAT_CLIENTS},
    **{f"chat paced {name}": ("chat paced", name) for name in CHAT_CLIENTS},
    **{f"chat burst {name}": ("chat burst", name) for name in CHAT_CLIENTS},
}
DEFAULT_CLIENTS = (
    "raw,expert,ours,aiobotocore,stream raw,stream ours,stream ours iter_text,"
    "paced raw,paced ours,paced ours iter_text"
)
WARMUP = 30
# Kinds measured per event of 200-event streams.
STREAMS = ("stream", "paced", "burst", "chat", "chat paced", "chat burst")
# The endpoint each kind of stream reads (floor.py's server answers each its own way).
STREAM_ENDPOINTS = {
    "stream": ENDPOINT,
    "paced": PACED_ENDPOINT,
    "burst": BURST_ENDPOINT,
    "chat": ENDPOINT,
    "chat paced": PACED_ENDPOINT,
    "chat burst": BURST_ENDPOINT,
}


def child(kind: str, name: str, url: str, count: int, concurrency: int = 1) -> None:
    """Run in the measured process: warm up, then ``count`` calls (or streams), ``concurrency``
    tasks making them (calls only)."""
    quiet_environment()
    steady_allocator()
    loop = asyncio.new_event_loop()
    if kind == "call":
        made = loop.run_until_complete(CALLS[name](url, concurrency))
    elif kind == "first":
        made = loop.run_until_complete(FIRST_PART_CLIENTS[name](url, 1, FIRST_ENDPOINT))
    else:
        clients = CHAT_CLIENTS if kind.startswith("chat") else STREAM_CLIENTS
        made = loop.run_until_complete(clients[name](url, 1, STREAM_ENDPOINTS[kind]))
    if made is None:
        sys.exit(NOT_AVAILABLE)
    call, close = made

    async def worker(n: int) -> None:
        for _ in range(n):
            await call()

    async def many(n: int) -> None:
        per, extra = divmod(n, concurrency)
        await asyncio.gather(*(worker(per + (i < extra)) for i in range(concurrency)))

    loop.run_until_complete(many(3 if kind in STREAMS else max(WARMUP, 4 * concurrency)))
    # As bench_client.py's rounds: after a full collection, and without one (bench_gc.py counts
    # them). At concurrency 512 the collector runs a full one every few thousand calls, costing
    # as much as a hundred calls: whether one fell in the short run or the long one moved a
    # call's count by up to 25k. Young collections, which every few dozen calls pay, stay in.
    gc.collect()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, 1 << 30)
    loop.run_until_complete(many(count))
    loop.run_until_complete(close())
    loop.close()


def instructions(kind: str, name: str, url: str, count: int, concurrency: int = 1) -> int | None:
    return child_instructions(__file__, [kind, name, url, str(count), str(concurrency)])


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _, _, kind, name, url, count, concurrency = sys.argv
        child(kind, name, url, int(count), int(concurrency))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", default=DEFAULT_CLIENTS, help=f"default: {DEFAULT_CLIENTS}")
    parser.add_argument("--calls", type=int, default=100, help="calls in the short run (default 100)")
    parser.add_argument("--streams", type=int, default=4, help="streams in the short run")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=1,
        help="tasks making the calls at once (calls only; default 1)",
    )
    parser.add_argument(
        "--svg",
        type=lambda value: Path(value) if value else None,
        default=BENCH_DIR / "instructions.svg",
        help="chart to write ('' for none)",
    )
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed")
    quiet_environment()
    os.environ["PYTHONHASHSEED"] = "0"  # the same dict layouts in every run
    process, url = start_server()
    rows = []
    try:
        for label in args.clients.split(","):
            kind, name = CLIENTS[label]
            count = args.streams if kind in STREAMS else args.calls
            concurrency = args.concurrency if kind == "call" else 1
            short = instructions(kind, name, url, count, concurrency)
            if short is None:
                print(f"{label}: not available, skipped", file=sys.stderr)
                continue
            long = instructions(kind, name, url, 2 * count, concurrency)
            assert long is not None
            per = (long - short) / count
            unit = {
                "call": "call",
                "stream": "event",
                "paced": "paced event",
                "burst": "event written in one write",
                "first": "one-event stream",
                "chat": "chat event",
                "chat paced": "paced chat event",
                "chat burst": "chat event written in one write",
            }[kind]
            if kind in STREAMS:
                per /= STREAM_EVENTS
            rows.append((label, per, unit))
            print(f"{label}: {per:,.0f} instructions per {unit}", file=sys.stderr)
    finally:
        stop_server(process)
    base = {
        unit: per
        for label, per, unit in rows
        if label == "raw" or label.endswith(" raw")  # each kind's raw aiohttp
    }
    print("| client | instructions | per | vs raw |")
    print("|---|---:|---|---:|")
    for label, per, unit in rows:
        ratio = f"{per / base[unit]:.2f}x" if unit in base else "-"
        print(f"| {label} | {per / 1000:,.1f}k | {unit} | {ratio} |")
    if args.svg and rows:
        write_chart(args.svg, rows, args.concurrency)
        print(f"chart written to {args.svg}")


def write_chart(path: Path, rows: list[tuple[str, float, str]], concurrency: int = 1) -> None:
    from chart import bar_panel, svg

    panels = []
    for unit in (
        "call",
        "event",
        "paced event",
        "event written in one write",
        "one-event stream",
        "chat event",
        "paced chat event",
        "chat event written in one write",
    ):
        chosen = [(label, per) for label, per, u in rows if u == unit]
        if not chosen:
            continue
        panels.append(
            bar_panel(
                f"Instructions per {unit} under callgrind (thousands; lower is better)",
                [""],
                {label: [per / 1000] for label, per in chosen},
                f"k instructions per {unit}",
                x=0,
                y=len(panels) * 340,
                width=900,
                height=330,
                cap=2.0 * chosen[0][1] / 1000,  # aiobotocore's bar would flatten the others
            )
        )
    height = 340 * len(panels) + 10
    caption = (
        f"python benchmarks/bench_instructions.py; Python {sys.version.split()[0]}, "
        f"asyncio, concurrency {concurrency} (calls), 1 (streams)"
    )
    path.write_text(svg(panels, width=900, height=height, caption=caption))


if __name__ == "__main__":
    main()
