"""What the ``speedups`` extra's CRC-32 (zlib-ng) saves a response stream, against zlib's.

Run: ``python benchmarks/bench_crc32.py [--rounds R] [--streams N]`` (needs ``zlib-ng``:
``pip install -e '.[speedups]'``; the ``test`` extra has it too).

Every event-stream message carries a CRC-32 of itself, so a token stream computes one per token.
Two measurements:

- **One CRC**: each implementation on a token event of ``floor.py``'s streams (``timeit``).
- **Whole streams**: this client reading 200-event streams from the loopback server of
  ``floor.py``, written in one write and event by event, by ``async for part`` and
  ``iter_text()``; the codec's CRC-32 swapped between rounds (its module's ``crc32``), the order
  alternating, in one process. CPU per event, and the paired median of the ratio within a round.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
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

from bench_client import STREAM_WRITES  # noqa: E402
from floor import (  # noqa: E402
    BURST_ENDPOINT,
    ENDPOINT,
    STREAM_EVENTS,
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


async def streams(
    url: str, crcs: dict[str, Callable[..., int]], rounds: int, per_round: int
) -> list[str]:
    lines = [
        f"\nStreams of {STREAM_EVENTS} events: CPU per event (median µs over {rounds} rounds), "
        "and zlib-ng's against zlib's (paired median):\n",
        "| written | read by | zlib | zlib-ng | zlib-ng / zlib |",
        "|---|---|---:|---:|---:|",
    ]
    for endpoint in (BURST_ENDPOINT, ENDPOINT):
        for how, make in (
            ("async for part", make_stream_ours),
            ("iter_text()", make_stream_ours_text),
        ):
            made = await make(url, 1, endpoint)
            assert made is not None
            read, close = made
            for _ in range(WARMUP):
                await read()
            samples: dict[str, list[float]] = {name: [] for name in crcs}
            for index in range(rounds):
                order = list(crcs) if index % 2 == 0 else list(reversed(crcs))
                for name in order:
                    _eventstream.crc32 = crcs[name]  # type: ignore[attr-defined]
                    started = time.process_time()
                    for _ in range(per_round):
                        await read()
                    cpu = time.process_time() - started
                    samples[name].append(cpu / (per_round * STREAM_EVENTS) * 1e6)
            await close()
            ratio = statistics.median(
                a / b for a, b in zip(samples["zlib-ng"], samples["zlib"], strict=True)
            )
            zlib_us, ng_us = (statistics.median(samples[name]) for name in ("zlib", "zlib-ng"))
            lines.append(
                f"| {STREAM_WRITES[endpoint]} | `{how}` | {zlib_us:.2f} | {ng_us:.2f} | {ratio:.3f} |"
            )
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
        print("\n".join(asyncio.run(streams(url, crcs, args.rounds, args.streams))))
    finally:
        _eventstream.crc32 = chosen  # type: ignore[attr-defined]
        stop_server(process)


if __name__ == "__main__":
    main()
