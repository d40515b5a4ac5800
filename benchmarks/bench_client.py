"""Client CPU per call and per streamed event, every client alternating in one run.

Run: ``python benchmarks/bench_client.py [--quick] [--rounds R] [--svg PATH] [--json PATH]``
(``--profile`` runs cProfile over this client instead).

One loopback server in its own process (``floor.py``; its CPU is never counted). In this process,
for each event loop (asyncio, and uvloop when installed) and each concurrency (1, 64, 512), every
client gets its own connection pool sized to the concurrency, is warmed up, and then the clients
take turns round by round (the order rotating each round) making the same number of calls with that
many tasks in flight. Each round's ``time.process_time()`` per call is one sample; the result is the
median over rounds of each client's *paired* ratio to the raw floor of the same round, so that a slow
spell of this shared machine hits both sides of every ratio alike.

Clients (see ``floor.py``): raw aiohttp unsigned, the expert's hand-signed aiohttp call, this client
(``invoke_endpoint`` with keyword arguments), aiobotocore.

Streams: 200 PayloadPart events per stream (TGI token lines, each written on its own, and then all
in one write), read at 1 and 256 concurrent streams by raw aiohttp (the same bytes), the expert
(the same read, its request signed by hand), this client's ``async for part``, its ``iter_text()``
(when present) and aiobotocore: client CPU per event, and at 1 stream the time from the call to
its first event against raw aiohttp's first chunk, and how much of the difference was already
there when the response headers came in (the request's side: signing, the call's bookkeeping)
rather than after (the stream's), beside the expert's own difference. Each round starts with a
full garbage collection, which walks the whole heap and leaves every client's next few streams
slower (several hundred µs on the first after it here), more so the signed ones and this
client's (``bench_cold.py`` shows it stream by stream); the expert's column shows how much of
this client's difference any signed stream pays. Then, alternating the
same way, the time to the first part of one-event streams, as a model's first token comes
(alone, the server idle after it), raw aiohttp and the expert against ``async for part``.

The script prints markdown tables and writes the chart the README shows (``--svg``, default
``benchmarks/results.svg``). ``bench_instructions.py`` counts instructions for the same clients
under callgrind, for decisions on a noisy machine.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import functools
import gc
import io
import json
import platform
import pstats
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

from chart import bar_panel, svg  # noqa: E402
from floor import (  # noqa: E402  (re-exported: bench_peers imports these from here)
    ACCESS_KEY,
    BURST_ENDPOINT,
    CALL_CLIENTS,
    ENDPOINT,
    FIRST_ENDPOINT,
    FIRST_PART_CLIENTS,
    REGION,
    REQUEST_BODY,
    RESPONSE_BODY,
    SECRET_KEY,
    STREAM_CLIENTS,
    STREAM_EVENTS,
    StreamRead,
    check_expert_matches_ours,
    make_ours,
    quiet_environment,
    start_server,
    steady_allocator,
    stop_server,
)

__all__ = [
    "ACCESS_KEY",
    "ENDPOINT",
    "GOAL",
    "REGION",
    "REQUEST_BODY",
    "RESPONSE_BODY",
    "SECRET_KEY",
    "start_server",
    "stop_server",
]

GOAL = 1.0  # this client's CPU per call at most the expert's (issue 15)
CONCURRENCIES = (1, 64, 512)
STREAM_CONCURRENCIES = (1, 256)
# How the server writes a stream: event by event, as a model generates tokens (how many events a
# read brings then depends on the machine), or all in one write (many events a read, anywhere).
STREAM_WRITES = {ENDPOINT: "event by event", BURST_ENDPOINT: "in one write"}
StreamSetting = tuple[str, int, str]  # (loop, concurrent streams, endpoint)
EVENT_GOAL_US = 2.5
BYTE_COUNTING = frozenset({"raw", "expert"})  # aiohttp's own reads: they count bytes, not events
FIRST_EVENT_GOAL_US = 50.0


def new_loop(name: str) -> asyncio.AbstractEventLoop:
    if name == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def available_loops() -> list[str]:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        print("uvloop not installed (pip install '.[bench]'): asyncio only")
        return ["asyncio"]
    return ["asyncio", "uvloop"]


def round_runner(
    loop: asyncio.AbstractEventLoop, call: Callable[[], Awaitable[Any]], concurrency: int
) -> Callable[[int], None]:
    """``run(n)``: n calls, ``concurrency`` tasks in flight."""

    async def worker(count: int) -> None:
        for _ in range(count):
            await call()

    async def many(n: int) -> None:
        if concurrency == 1:
            await worker(n)
            return
        per, extra = divmod(n, concurrency)
        await asyncio.gather(*(worker(per + (i < extra)) for i in range(concurrency)))

    return lambda n: loop.run_until_complete(many(n))


def alternate(
    runs: dict[str, Callable[[], float]], rounds: int
) -> dict[str, list[float]]:
    """Each run returns its own measure (CPU per unit); they take turns, the order rotating."""
    samples: dict[str, list[float]] = {name: [] for name in runs}
    names = list(runs)
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            gc.collect()
            samples[name].append(runs[name]())
    return samples


def paired(samples: dict[str, list[float]], base: str) -> dict[str, tuple[float, float]]:
    """Per client: (median of its samples, median of its round-by-round ratio to ``base``)."""
    out = {}
    for name, values in samples.items():
        ratios = [v / b for v, b in zip(values, samples[base], strict=True)]
        out[name] = (statistics.median(values), statistics.median(ratios))
    return out


# -- calls ----------------------------------------------------------------------------------------


def cpu_per_call(name: str, run: Callable[[int], None], calls: int) -> float:
    """One round's sample: ``run(calls)``'s CPU in µs per call."""
    cpu = time.process_time()
    run(calls)
    return (time.process_time() - cpu) / calls * 1e6


def bench_calls(
    url: str,
    loop_name: str,
    concurrency: int,
    calls: int,
    rounds: int,
    clients: Mapping[str, Callable[[str, int], Awaitable[Any]]] = CALL_CLIENTS,
    measure: Callable[[str, Callable[[int], None], int], float] = cpu_per_call,
) -> dict[str, list[float]]:
    """CPU µs per call samples, a round each, per client (one not installed is left out).
    ``measure(client, run, calls)`` takes each round's sample (``bench_gc`` also times the
    collector in it)."""
    loop = new_loop(loop_name)
    closers = []
    runs: dict[str, Callable[[], float]] = {}
    try:
        for name, factory in clients.items():
            made = loop.run_until_complete(factory(url, concurrency))
            if made is None:
                continue
            call, close = made
            closers.append(close)
            run = round_runner(loop, call, concurrency)
            run(max(calls, 2 * concurrency))  # warm-up: every connection of the pool opened
            runs[name] = functools.partial(measure, name, run, calls)
        return alternate(runs, rounds)
    finally:
        for close in closers:
            loop.run_until_complete(close())
        loop.close()


def call_table_main(
    doc: str,
    header: tuple[str, str],
    bench: Callable[..., list[str]],
    *,
    concurrency: str,
    rounds: int,
    calls: int,
    prepare: Callable[[], None] | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
) -> None:
    """The ``main`` of a script that prints one table of call rounds (``bench_gc``,
    ``bench_read_timeout``): its options, the server, and ``bench(url, loop, concurrency,
    calls, rounds)``'s rows under ``header`` for each concurrency. ``prepare`` runs before the
    server starts. ``options``: the script's own, ``{"--name": add_argument's keywords}``, each
    passed to ``bench`` as a keyword (``name``)."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--concurrency", default=concurrency)
    parser.add_argument("--rounds", type=int, default=rounds)
    parser.add_argument("--calls", type=int, default=calls, help="calls per round")
    parser.add_argument("--loop", default="asyncio", help="asyncio or uvloop")
    names = [
        parser.add_argument(flag, **keywords).dest for flag, keywords in (options or {}).items()
    ]
    args = parser.parse_args()
    extra = {name: getattr(args, name) for name in names}
    quiet_environment()
    steady_allocator()
    if prepare is not None:
        prepare()
    process, url = start_server()
    try:
        print("\n".join(header))
        for level in (int(c) for c in args.concurrency.split(",")):
            for line in bench(url, args.loop, level, args.calls, args.rounds, **extra):
                print(line, flush=True)
    finally:
        stop_server(process)


# -- streams --------------------------------------------------------------------------------------


def bench_streams(
    url: str, loop_name: str, concurrency: int, streams: int, rounds: int, endpoint: str = ENDPOINT
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """(CPU µs per event samples, time-to-first-event µs samples) per client; the samples of
    time to the response headers under "<client> headers"."""
    loop = new_loop(loop_name)
    closers = []
    runs: dict[str, Callable[[], float]] = {}
    firsts: dict[str, list[float]] = {}
    try:
        for name, factory in STREAM_CLIENTS.items():
            made = loop.run_until_complete(factory(url, concurrency, endpoint))
            if made is None:
                continue
            read, close = made
            closers.append(close)
            firsts[name] = []
            firsts[f"{name} headers"] = []

            async def many(
                n: int, read: Callable[[], Awaitable[tuple[int, float, float]]] = read
            ) -> list[tuple[int, float, float]]:
                if concurrency == 1:
                    return [await read() for _ in range(n)]
                return list(await asyncio.gather(*(read() for _ in range(n))))

            loop.run_until_complete(many(max(streams, 2)))  # warm-up

            def measure(
                many: Callable[[int], Awaitable[list[tuple[int, float, float]]]] = many,
                name: str = name,
            ) -> float:
                cpu = time.process_time()
                results = loop.run_until_complete(many(streams))
                cpu = time.process_time() - cpu
                miscounted = any(count != STREAM_EVENTS for count, _, _ in results)
                if name not in BYTE_COUNTING and miscounted:
                    raise AssertionError(f"{name}: wrong event count {results[0][0]}")
                firsts[name].append(statistics.median(first for _, first, _ in results) * 1e6)
                firsts[f"{name} headers"].append(
                    statistics.median(headers for _, _, headers in results) * 1e6
                )
                return cpu / (streams * STREAM_EVENTS) * 1e6

            runs[name] = measure
        return alternate(runs, rounds), firsts
    finally:
        for close in closers:
            loop.run_until_complete(close())
        loop.close()


FIRST_PART_STREAMS = 20  # one-event streams per client per round
# Rounds of one-event streams per round of the rest: one costs about 25 ms, and their paired
# differences (tens of µs on a few hundred) need more rounds than CPU per call to settle: at 31,
# three runs in a row read the asyncio difference at +43, +72 and +65 µs.
FIRST_PART_ROUND_FACTOR = 4


def bench_first_part(url: str, loop_name: str, rounds: int) -> dict[str, list[tuple[float, float]]]:
    """Time to the first part of a one-event stream, as a model's first token comes: alone, the
    server idle after it (the 200-event streams' first event shares its read, and the client's
    loop, with the events written right behind it). Raw aiohttp, the same read signed by hand
    (the expert floor: what any signed stream pays) and ``async for part`` take turns round by
    round; per round and client, the medians of (time to the first part, time to the response
    headers), in µs."""
    loop = new_loop(loop_name)
    closers = []
    samples: dict[str, list[tuple[float, float]]] = {}
    try:
        reads = {}
        for name in ("raw", "expert", "ours"):
            made = loop.run_until_complete(FIRST_PART_CLIENTS[name](url, 1, FIRST_ENDPOINT))
            assert made is not None
            reads[name], close = made
            closers.append(close)
            samples[name] = []

        async def many(read: StreamRead) -> list[tuple[int, float, float]]:
            return [await read() for _ in range(FIRST_PART_STREAMS)]

        def measure(name: str) -> float:
            """One round of ``name``'s streams: its times kept, its CPU per stream returned."""
            cpu = time.process_time()
            results = loop.run_until_complete(many(reads[name]))
            cpu = time.process_time() - cpu
            samples[name].append(
                (
                    statistics.median(first for _, first, _ in results) * 1e6,
                    statistics.median(headers for _, _, headers in results) * 1e6,
                )
            )
            return cpu / FIRST_PART_STREAMS * 1e6

        for read in reads.values():
            loop.run_until_complete(many(read))  # warm-up
        alternate({name: functools.partial(measure, name) for name in reads}, rounds)
        return samples
    finally:
        for close in closers:
            loop.run_until_complete(close())
        loop.close()


def first_part_table(results: dict[str, dict[str, list[tuple[float, float]]]]) -> list[str]:
    lines = [
        "| loop | raw aiohttp | expert | this client | difference (goal: "
        f"{FIRST_EVENT_GOAL_US:.0f} µs) | of it, before the headers | expert's difference |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]

    def behind(client: list[tuple[float, float]], raw: list[tuple[float, float]], at: int) -> float:
        return statistics.median(c[at] - r[at] for c, r in zip(client, raw, strict=True))

    for loop_name, samples in results.items():
        raw, expert, ours = samples["raw"], samples["expert"], samples["ours"]
        lines.append(
            f"| {loop_name} | {statistics.median(r[0] for r in raw):.0f} µs "
            f"| {statistics.median(e[0] for e in expert):.0f} µs "
            f"| {statistics.median(o[0] for o in ours):.0f} µs | {behind(ours, raw, 0):+.0f} µs "
            f"| {behind(ours, raw, 1):+.0f} µs | {behind(expert, raw, 0):+.0f} µs |"
        )
    return lines


# -- reporting ------------------------------------------------------------------------------------


def call_table(results: dict[tuple[str, int], dict[str, list[float]]]) -> list[str]:
    lines = [
        "| loop | concurrency | raw aiohttp | expert (hand-signed) | this client "
        "| aiobotocore |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for (loop_name, concurrency), samples in results.items():
        vs_raw = paired(samples, "raw")
        vs_expert = paired(samples, "expert")
        cells = []
        for name in ("raw", "expert", "ours", "aiobotocore"):
            if name not in samples:
                cells.append("-")
                continue
            us, ratio = vs_raw[name]
            cell = f"{us:.0f} µs, {ratio:.2f}x"
            if name in ("ours", "aiobotocore"):
                cell += f" ({vs_expert[name][1]:.2f}x of expert)"
            cells.append(cell)
        lines.append(f"| {loop_name} | {concurrency} | " + " | ".join(cells) + " |")
    return lines


def stream_table(
    results: dict[StreamSetting, tuple[dict[str, list[float]], dict[str, list[float]]]],
) -> list[str]:
    names = list(STREAM_CLIENTS)
    lines = [
        "| loop | streams | written | " + " | ".join(f"{n} µs/event" for n in names)
        + " | first event, this client vs raw (of the difference, before the headers)"
        + " | the expert's difference (before the headers) |",
        "|---|---:|---|" + "---:|" * len(names) + "---:|---:|",
    ]
    for (loop_name, concurrency, endpoint), (cpu, firsts) in results.items():
        cells = []
        for name in names:
            cells.append(f"{statistics.median(cpu[name]):.2f}" if name in cpu else "-")
        if concurrency == 1:
            first = (
                f"{statistics.median(firsts['ours']):.0f} µs vs "
                f"{statistics.median(firsts['raw']):.0f} µs ({_behind(firsts, 'ours'):+.0f}; "
                f"{_behind(firsts, 'ours', ' headers'):+.0f} before the headers)"
            )
            first += (
                f" | {_behind(firsts, 'expert'):+.0f} ({_behind(firsts, 'expert', ' headers'):+.0f})"
                if "expert" in firsts
                else " | -"
            )
        else:
            first = "- | -"
        written = STREAM_WRITES[endpoint]
        lines.append(
            f"| {loop_name} | {concurrency} | {written} | " + " | ".join(cells) + f" | {first} |"
        )
    return lines


def _behind(firsts: dict[str, list[float]], client: str, what: str = "") -> float:
    """The median paired difference of ``client``'s samples (``what``: "" for the first event,
    " headers" for the response headers) from raw aiohttp's of the same rounds."""
    pairs = zip(firsts[client + what], firsts["raw" + what], strict=True)
    return statistics.median(a - b for a, b in pairs)


def write_chart(
    path: Path,
    calls: dict[tuple[str, int], dict[str, list[float]]],
    streams: dict[StreamSetting, tuple[dict[str, list[float]], dict[str, list[float]]]],
    caption: str,
) -> None:
    groups = [f"{loop} c={c}" for loop, c in calls]
    call_series: dict[str, list[float | None]] = {}
    labels = {"raw": "raw aiohttp", "expert": "expert (hand-signed)", "ours": "sagemaker_rt_aio"}
    for name in CALL_CLIENTS:
        label = labels.get(name, name)
        call_series[label] = [
            paired(samples, "raw")[name][1] if name in samples else None
            for samples in calls.values()
        ]
    panels = [
        bar_panel(
            "CPU per invoke_endpoint, relative to raw aiohttp (lower is better)",
            groups,
            call_series,
            "x raw aiohttp",
            x=0,
            y=0,
            width=900,
            height=330,
            reference=1.0,
        )
    ]
    y = 340
    for endpoint, written in STREAM_WRITES.items():
        settings = {key: value for key, value in streams.items() if key[2] == endpoint}
        if not settings:
            continue
        stream_series: dict[str, list[float | None]] = {}
        for name in STREAM_CLIENTS:
            stream_series[labels.get(name, name)] = [
                statistics.median(cpu[name]) if name in cpu else None
                for cpu, _ in settings.values()
            ]
        panels.append(
            bar_panel(
                f"Client CPU per streamed event, the stream written {written} (lower is better)",
                [f"{loop} {c} stream{'s' if c > 1 else ''}" for loop, c, _ in settings],
                stream_series,
                "µs per event",
                x=0,
                y=y,
                width=900,
                height=330,
                reference=EVENT_GOAL_US,
            )
        )
        y += 340
    path.write_text(svg(panels, width=900, height=y + 10, caption=caption))


def profile_ours(url: str, calls: int) -> None:
    loop = asyncio.new_event_loop()
    call, close = loop.run_until_complete(make_ours(url, 1))
    run = round_runner(loop, call, 1)
    run(200)
    profiler = cProfile.Profile()
    profiler.enable()
    run(calls)
    profiler.disable()
    loop.run_until_complete(close())
    loop.close()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(25)
    print(out.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=31, help="rounds per setting (default 31)")
    parser.add_argument("--calls", type=int, default=200, help="calls per round at c=1 and c=64")
    parser.add_argument("--quick", action="store_true", help="9 rounds, fewer calls: a smoke run")
    parser.add_argument("--no-streams", action="store_true")
    parser.add_argument("--no-calls", action="store_true")
    parser.add_argument("--loops", default=None, help="comma-separated: asyncio,uvloop")
    parser.add_argument(
        "--svg",
        type=lambda value: Path(value) if value else None,
        default=BENCH_DIR / "results.svg",
        help="chart to write ('' for none)",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the raw samples")
    parser.add_argument("--profile", action="store_true", help="cProfile this client instead")
    args = parser.parse_args()
    rounds = 9 if args.quick else args.rounds
    calls = 100 if args.quick else args.calls
    loops = args.loops.split(",") if args.loops else available_loops()

    quiet_environment()
    steady_allocator()
    process, url = start_server()
    try:
        if args.profile:
            profile_ours(url, calls * 10)
            return
        check_expert_matches_ours(url)
        call_results: dict[tuple[str, int], dict[str, list[float]]] = {}
        stream_results: dict[
            StreamSetting, tuple[dict[str, list[float]], dict[str, list[float]]]
        ] = {}
        first_results: dict[str, dict[str, list[tuple[float, float]]]] = {}
        for loop_name in loops:
            if not args.no_calls:
                for concurrency in CONCURRENCIES:
                    n = max(calls, 2 * concurrency)
                    call_results[(loop_name, concurrency)] = bench_calls(
                        url, loop_name, concurrency, n, rounds
                    )
                    print(f"calls: {loop_name} c={concurrency} done", file=sys.stderr)
            if not args.no_streams:
                for endpoint in STREAM_WRITES:
                    for concurrency in STREAM_CONCURRENCIES:
                        streams = 5 if concurrency == 1 else concurrency
                        stream_rounds = rounds if concurrency == 1 else max(5, rounds // 3)
                        stream_results[(loop_name, concurrency, endpoint)] = bench_streams(
                            url, loop_name, concurrency, streams, stream_rounds, endpoint
                        )
                        print(
                            f"streams: {loop_name} {concurrency} {STREAM_WRITES[endpoint]} done",
                            file=sys.stderr,
                        )
                first_results[loop_name] = bench_first_part(
                    url, loop_name, rounds * FIRST_PART_ROUND_FACTOR
                )
                print(f"first parts: {loop_name} done", file=sys.stderr)
    finally:
        stop_server(process)

    import aiohttp

    from sagemaker_rt_aio._crc32 import SOURCE as CRC32_SOURCE

    caption = (
        f"python benchmarks/bench_client.py: {rounds} rounds, paired medians; Python "
        f"{sys.version.split()[0]}, aiohttp {aiohttp.__version__}, {platform.machine()}, "
        f"event-stream CRC-32 by {CRC32_SOURCE}, {time.strftime('%Y-%m-%d')}"
    )
    print(caption)
    if call_results:
        print("\nCPU per invoke_endpoint: median µs, and the median of paired per-round ratios\n")
        print("\n".join(call_table(call_results)))
    if stream_results:
        print(f"\nStreams of {STREAM_EVENTS} events: client CPU per event (median µs)\n")
        print("\n".join(stream_table(stream_results)))
    if first_results:
        print(
            "\nTime to the first part of a one-event stream (median µs; paired differences; "
            f"{rounds * FIRST_PART_ROUND_FACTOR} rounds of {FIRST_PART_STREAMS} streams each)\n"
        )
        print("\n".join(first_part_table(first_results)))
    if call_results and args.svg is not None:
        write_chart(args.svg, call_results, stream_results, caption)
        print(f"\nchart written to {args.svg}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "calls": {f"{k[0]} {k[1]}": v for k, v in call_results.items()},
                    "streams": {" ".join(map(str, k)): v for k, v in stream_results.items()},
                    "first_parts": first_results,
                },
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
