"""Streams after a full collection, or after the caches are emptied: CPU per event, stream by stream.

Run: ``python benchmarks/bench_cold.py [--rounds R] [--streams N] [--evict KIND]
[--written burst|event]``, or ``--cache-sim`` for the deterministic companion.

``bench_client.py`` starts every round with a full garbage collection and reads five streams a
round at one stream, and every client's first stream after the collection costs several times
its later ones. This script shows where that comes from and what it adds. Raw aiohttp, the
expert's (the same read, signed by hand), this client's ``async for part`` and its
``iter_text()`` take turns round by round (the order rotating); each round first runs what
``--evict`` names (``collect``: a full collection, as bench_client does; ``collect-twice``: two in
a row, the second freeing nothing; ``objects``: ``gc.get_objects()``, a walk over every tracked
object without a collection; ``young``: ``gc.collect(1)``; ``write``: a 64 MiB buffer written
4 KiB at a time, which touches no Python object), then reads ``--streams`` 200-event streams one
after the other, each timed on its own (``time.process_time()``). Then the same rounds without
emptying anything.
Printed: per client and position, the median CPU per event; the mean of the first five (what
bench_client's rounds at one stream average); and the steady state.

``--cache-sim``: each client in a child process under valgrind's callgrind with its cache
simulator, set to the same caches on every machine (32 KiB L1s, a 4 MiB last level): after a
warm-up, streams each preceded by a 16 MiB write that empties the simulated caches; the
difference between runs of 2 and 6 such streams, divided by 4, is what one stream from cold
caches costs: its instructions, its L1 misses, and the lines it had to bring from memory
(instruction fetches, data reads, data writes), with a child's that only evicts taken out. Those
lines are what a stream touches that was not in cache: the code and data of every layer it goes
through. (The simulator has no TLB, and empties its caches by the write, not by a collection.
Repeat runs move by a few per cent: how many reads bring a stream depends on timing.)
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

from callgrind import NOT_AVAILABLE, child_events  # noqa: E402
from floor import (  # noqa: E402
    BURST_ENDPOINT,
    ENDPOINT,
    STREAM_EVENTS,
    Close,
    StreamRead,
    make_stream_expert,
    make_stream_ours,
    make_stream_ours_text,
    make_stream_raw,
    quiet_environment,
    start_server,
    steady_allocator,
    stop_server,
)

CLIENTS = {
    "raw": make_stream_raw,
    "expert": make_stream_expert,
    "ours": make_stream_ours,
    "ours iter_text": make_stream_ours_text,
}
WRITTEN = {"burst": BURST_ENDPOINT, "event": ENDPOINT}
BENCH_CLIENT_STREAMS = 5  # streams per round at one stream in bench_client.py
EVICT_BYTES = 64 << 20
EVICT_CHUNK = 4096  # written a block at a time: see Evictor
# The simulated caches (valgrind's --I1, --D1, --LL: size, associativity, line size) and the
# write that empties them: four times the last level.
SIM_CACHES = ("--I1=32768,8,64", "--D1=32768,8,64", "--LL=4194304,16,64")
SIM_EVICT_BYTES = 16 << 20
EVICTION_ONLY = "eviction"  # a child that only evicts: what every client's counts include
SIM_EVENTS = ("Ir", "I1mr", "D1mr", "D1mw", "ILmr", "DLmr", "DLmw")


def _collect_twice() -> None:
    gc.collect()
    gc.collect()  # frees nothing: only the walk over the heap


def _collect_young() -> None:
    gc.collect(1)


# --evict: what runs before each client's streams in a round (and "write": an Evictor).
EVICTIONS: dict[str, Callable[[], object]] = {
    "collect": gc.collect,
    "collect-twice": _collect_twice,
    "objects": gc.get_objects,
    "young": _collect_young,
}


class Evictor:
    """Empties the caches by writing a buffer allocated once: an eviction allocates nothing, and
    only the first faults its pages in (before any stream is timed).

    It writes 4 KiB at a time, with ordinary stores. One ``memset`` of the whole buffer, as it
    did before 2026-12-03, emptied much less: raw aiohttp's first stream after it cost 1.27-1.71
    µs per event here, after the 4 KiB writes 2.27-2.81, as after a full collection (10 rounds,
    two alternating runs each). glibc 2.36 writes a block that large with ``rep stosb``, which a
    CPU may carry out without filling its caches.
    """

    def __init__(self, size: int) -> None:
        self.buffer = bytearray(size)
        self.view = memoryview(self.buffer)
        self.fill = 0

    def __call__(self) -> None:
        self.fill = (self.fill + 1) % 251  # a new value each time: every line written again
        block = bytes((self.fill,)) * EVICT_CHUNK
        view = self.view
        for offset in range(0, len(view), EVICT_CHUNK):
            view[offset : offset + EVICT_CHUNK] = block


async def _made(url: str, endpoint: str) -> dict[str, tuple[StreamRead, Close]]:
    made = {}
    for name, factory in CLIENTS.items():
        client = await factory(url, 1, endpoint)
        if client is not None:
            made[name] = client
    return made


async def positions(
    url: str, endpoint: str, rounds: int, streams: int, evict: str
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Per client: the median µs per event of each stream position after eviction, and without."""
    made = await _made(url, endpoint)
    for read, _ in made.values():
        for _ in range(3):
            await read()  # warm-up: connections open, the header cache and shapes learned
    empty = EVICTIONS[evict] if evict in EVICTIONS else Evictor(EVICT_BYTES)
    names = list(made)
    results = []
    for emptied in (True, False):
        samples: dict[str, list[list[float]]] = {
            name: [[] for _ in range(streams)] for name in made
        }
        for r in range(rounds):
            for name in names[r % len(names) :] + names[: r % len(names)]:
                read = made[name][0]
                if emptied:
                    empty()
                for position in range(streams):
                    cpu = time.process_time()
                    await read()
                    cpu = time.process_time() - cpu
                    samples[name][position].append(cpu / STREAM_EVENTS * 1e6)
        results.append(
            {
                name: [statistics.median(p) for p in by_position]
                for name, by_position in samples.items()
            }
        )
    for _, close in made.values():
        await close()
    return results[0], results[1]


def position_table(cold: dict[str, list[float]], warm: dict[str, list[float]]) -> list[str]:
    streams = len(next(iter(cold.values())))
    head = " | ".join(f"stream {i + 1}" for i in range(streams))
    first = min(BENCH_CLIENT_STREAMS, streams)
    lines = [
        f"| client | {head} | mean of the first {first} | without emptying |",
        "|---|" + "---:|" * (streams + 2),
    ]
    for name, values in cold.items():
        cells = " | ".join(f"{v:.2f}" for v in values)
        steady = statistics.median(warm[name])
        lines.append(f"| {name} | {cells} | {statistics.mean(values[:first]):.2f} | {steady:.2f} |")
    return lines


# -- the cache simulator ---------------------------------------------------------------------------


def child(name: str, url: str, endpoint: str, count: int) -> None:
    """In the simulated process: warm up, then ``count`` streams, each after an eviction."""
    quiet_environment()
    steady_allocator()
    evictor = Evictor(SIM_EVICT_BYTES)

    async def run() -> None:
        if name == EVICTION_ONLY:
            for _ in range(count):
                evictor()
            return
        factory = CLIENTS[name]
        made = await factory(url, 1, endpoint)
        if made is None:
            sys.exit(NOT_AVAILABLE)
        read, close = made
        for _ in range(3):
            await read()
        for _ in range(count):
            evictor()
            await read()
        await close()

    asyncio.run(run())


def simulated(name: str, url: str, endpoint: str, count: int) -> dict[str, int] | None:
    options = ("--cache-sim=yes", *SIM_CACHES)
    return child_events(__file__, [name, url, endpoint, str(count)], options)


def per_stream(name: str, url: str, endpoint: str) -> dict[str, float] | None:
    short, long = simulated(name, url, endpoint, 2), simulated(name, url, endpoint, 6)
    if short is None or long is None:
        return None
    return {event: (long[event] - short[event]) / 4 for event in SIM_EVENTS}


def cache_table(url: str, endpoint: str) -> list[str]:
    lines = [
        "| client | instructions | L1 misses | last-level misses: code | data read | data written |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    eviction = per_stream(EVICTION_ONLY, url, endpoint)  # taken out of every client's counts
    assert eviction is not None
    for name in CLIENTS:
        per = per_stream(name, url, endpoint)
        if per is None:
            continue
        net = {event: per[event] - eviction[event] for event in SIM_EVENTS}
        l1 = net["I1mr"] + net["D1mr"] + net["D1mw"]
        lines.append(
            f"| {name} | {net['Ir'] / 1e3:,.0f}k | {l1:,.0f} | {net['ILmr']:,.0f} "
            f"| {net['DLmr']:,.0f} | {net['DLmw']:,.0f} |"
        )
        print(f"{name} done", file=sys.stderr)
    return lines


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _, _, name, url, endpoint, count = sys.argv
        child(name, url, endpoint, int(count))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--streams", type=int, default=8, help="streams per round (default 8)")
    parser.add_argument("--evict", choices=(*EVICTIONS, "write"), default="collect")
    parser.add_argument("--written", choices=tuple(WRITTEN), default="burst")
    parser.add_argument("--cache-sim", action="store_true", help="count cache misses instead")
    args = parser.parse_args()
    quiet_environment()
    steady_allocator()
    endpoint = WRITTEN[args.written]
    process, url = start_server()
    try:
        if args.cache_sim:
            print(f"\nOne 200-event stream from cold caches ({args.written}), per stream:\n")
            print("\n".join(cache_table(url, endpoint)))
            return
        cold, warm = asyncio.run(positions(url, endpoint, args.rounds, args.streams, args.evict))
    finally:
        stop_server(process)
    print(
        f"\nClient CPU per event (median µs) of each {STREAM_EVENTS}-event stream after emptying "
        f"the caches ({args.evict}), written {args.written}, {args.rounds} rounds:\n"
    )
    print("\n".join(position_table(cold, warm)))


if __name__ == "__main__":
    main()
