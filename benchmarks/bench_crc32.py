"""What the ``speedups`` extra's CRC-32 (zlib-ng) saves a response stream, against zlib's.

Run: ``python benchmarks/bench_crc32.py [--rounds R] [--streams N]`` (needs ``zlib-ng``:
``pip install -e '.[speedups]'``; the ``test`` extra has it too).

Every event-stream message carries a CRC-32 of itself, so a token stream computes one per token.
Two measurements:

- **One CRC**: each implementation on a token event of ``floor.py``'s streams (``timeit``).
- **Whole streams**: this client reading 200-event streams from the loopback server of
  ``floor.py``, written in one write and event by event, by ``async for part`` and
  ``iter_text()``; the codec's CRC-32 swapped between runs (its module's ``crc32``), taking turns
  as ``bench_client.py``'s clients do (``alternate``), in one process. CPU per event, and the
  paired median of the ratio within a round.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import timeit
import zlib
from collections.abc import Callable
from functools import partial
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

from bench_client import STREAM_WRITES, alternate, paired  # noqa: E402
from floor import (  # noqa: E402
    BURST_ENDPOINT,
    ENDPOINT,
    STREAM_EVENTS,
    StreamRead,
    make_stream_ours,
    make_stream_ours_text,
    quiet_environment,
    start_server,
    steady_allocator,
    stop_server,
    token_line,
)

from sagemaker_rt_aio import _eventstream  # noqa: E402
from sagemaker_rt_aio._stream_events import encode_payload_part  # noqa: E402

WARMUP = 20


def implementations() -> dict[str, Callable[..., int]]:
    from zlib_ng import zlib_ng

    return {"zlib": zlib.crc32, "zlib-ng": zlib_ng.crc32}


def one_crc(crcs: dict[str, Callable[..., int]]) -> list[str]:
    message = encode_payload_part(token_line(7))[:-4]  # what a token event's CRC covers
    lines = [f"One CRC-32 of a {len(message)}-byte token event (ns, best of 7):"]
    for name, crc in crcs.items():
        best = min(timeit.repeat(partial(crc, message), number=100_000, repeat=7))
        lines.append(f"  {name}: {best / 100_000 * 1e9:.0f}")
    return lines


def streams(
    url: str, crcs: dict[str, Callable[..., int]], rounds: int, per_round: int
) -> list[str]:
    lines = [
        f"\nStreams of {STREAM_EVENTS} events: CPU per event (median µs over {rounds} rounds), "
        "and zlib-ng's against zlib's (paired median):\n",
        "| written | read by | zlib | zlib-ng | zlib-ng / zlib |",
        "|---|---|---:|---:|---:|",
    ]
    loop = asyncio.new_event_loop()
    try:
        for endpoint in (BURST_ENDPOINT, ENDPOINT):
            for how, make in (
                ("async for part", make_stream_ours),
                ("iter_text()", make_stream_ours_text),
            ):
                made = loop.run_until_complete(make(url, 1, endpoint))
                assert made is not None
                read, close = made

                async def many(read: StreamRead = read) -> None:
                    for _ in range(per_round):
                        await read()

                def measure(crc: Callable[..., int]) -> float:
                    _eventstream.crc32 = crc  # type: ignore[attr-defined]
                    started = time.process_time()
                    loop.run_until_complete(many())
                    cpu = time.process_time() - started
                    return cpu / (per_round * STREAM_EVENTS) * 1e6

                for _ in range(WARMUP // per_round + 1):
                    loop.run_until_complete(many())
                runs: dict[str, Callable[[], float]] = {
                    name: partial(measure, crc) for name, crc in crcs.items()
                }
                results = paired(alternate(runs, rounds), "zlib")
                loop.run_until_complete(close())
                (zlib_us, _), (ng_us, ratio) = results["zlib"], results["zlib-ng"]
                lines.append(
                    f"| {STREAM_WRITES[endpoint]} | `{how}` | {zlib_us:.2f} | {ng_us:.2f} "
                    f"| {ratio:.3f} |"
                )
    finally:
        loop.close()
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--streams", type=int, default=10, help="streams per round and side")
    args = parser.parse_args()
    try:
        crcs = implementations()
    except ImportError:
        sys.exit("zlib-ng is not installed: pip install -e '.[speedups]'")
    chosen = _eventstream.crc32  # type: ignore[attr-defined]
    quiet_environment()
    steady_allocator()
    print("\n".join(one_crc(crcs)))
    process, url = start_server()
    try:
        print("\n".join(streams(url, crcs, args.rounds, args.streams)))
    finally:
        _eventstream.crc32 = chosen  # type: ignore[attr-defined]
        stop_server(process)


if __name__ == "__main__":
    main()
