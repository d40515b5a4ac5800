"""Decode throughput of ``EventStreamDecoder`` against botocore's ``EventStreamBuffer``.

Run: ``python benchmarks/bench_eventstream.py [--instructions]``. The stream imitates an LLM token
stream: 20,000 ``PayloadPart`` messages of 20 to 200 bytes each. Each decoder gets the stream (a) in
64 KiB chunks, as aiohttp hands out a busy response, and (b) one whole message per chunk, as a
slowly generating model produces it. "parts" is ``feed_events`` as ``async for part`` uses it
(each event straight into a ``PayloadPart``); "messages" is ``feed``. Best of several runs, timed
with ``time.perf_counter``.

``--instructions``: "parts" in instructions per message instead, under valgrind's callgrind
(deterministic where times move by 10-20 %): a child process decodes the first N messages, another
the first 2N, and the difference is divided by N. The parts are dropped chunk by chunk, as a
stream's reader drops them, so their freeing is counted too.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

from botocore.eventstream import EventStreamBuffer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from callgrind import child_instructions

from sagemaker_rt_aio._eventstream import EventStreamDecoder
from sagemaker_rt_aio._stream_events import encode_payload_part
from sagemaker_rt_aio._types import PayloadPart

MESSAGES = 20_000
CHUNK = 64 * 1024
RUNS = 7


def build_stream(seed: int = 1) -> list[bytes]:
    rng = random.Random(seed)
    return [encode_payload_part(rng.randbytes(rng.randint(20, 200))) for _ in range(MESSAGES)]


def decode_ours(chunks: list[bytes]) -> int:
    decoder = EventStreamDecoder()
    count = 0
    for chunk in chunks:
        count += len(decoder.feed(chunk))
    decoder.close()
    return count


def decode_parts(chunks: list[bytes]) -> int:
    decoder = EventStreamDecoder(event=("PayloadPart", PayloadPart, "bytes"))
    count = 0
    for chunk in chunks:
        count += len(decoder.feed_events(chunk))
    decoder.close()
    return count


def decode_botocore(chunks: list[bytes]) -> int:
    buffer = EventStreamBuffer()
    count = 0
    for chunk in chunks:
        buffer.add_data(chunk)
        for _message in buffer:
            count += 1
    return count


def best_time(decode: Callable[[list[bytes]], int], chunks: list[bytes]) -> float:
    best = float("inf")
    for _ in range(RUNS):
        start = time.perf_counter()
        count = decode(chunks)
        best = min(best, time.perf_counter() - start)
        if count != MESSAGES:
            raise AssertionError(f"{decode.__name__} decoded {count} messages, not {MESSAGES}")
    return best


FEEDINGS = ("64 KiB chunks", "one message per feed")


def feeds(messages: list[bytes]) -> dict[str, list[bytes]]:
    stream = b"".join(messages)
    chunked, one_by_one = FEEDINGS
    return {
        chunked: [stream[i : i + CHUNK] for i in range(0, len(stream), CHUNK)],
        one_by_one: messages,
    }


def child(feeding: str, count: int) -> None:
    """Run under callgrind: decode the first ``count`` messages as ``async for part`` does.
    (Not through decode_parts: its count of the parts would add about 340 instructions a feed.)"""
    decoder = EventStreamDecoder(event=("PayloadPart", PayloadPart, "bytes"))
    feed = decoder.feed_events
    for chunk in feeds(build_stream()[:count])[feeding]:
        feed(chunk)
    decoder.close()


def count_instructions(count: int) -> None:
    print(f"feed_events as async for part uses it, instructions per message ({count} and {2 * count})")
    for feeding in FEEDINGS:
        totals = [child_instructions(__file__, [feeding, str(n)]) for n in (count, 2 * count)]
        if totals[0] is None or totals[1] is None:
            raise RuntimeError("callgrind run failed")
        print(f"{feeding:<22} {(totals[1] - totals[0]) / count:>9,.0f}")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], int(sys.argv[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instructions", action="store_true", help="callgrind, not time")
    parser.add_argument("--messages", type=int, default=2000, help="N for --instructions")
    args = parser.parse_args()
    if args.instructions:
        count_instructions(args.messages)
        return
    messages = build_stream()
    stream = b"".join(messages)
    decoders = {
        "sagemaker_rt_aio parts": decode_parts,
        "sagemaker_rt_aio": decode_ours,
        "botocore": decode_botocore,
    }
    print(f"{MESSAGES} PayloadPart messages, {len(stream) / 1e6:.2f} MB, best of {RUNS} runs")
    print(f"{'feeding':<22} {'decoder':<24} {'MB/s':>9} {'messages/s':>12} {'vs botocore':>12}")
    for feed_name, chunks in feeds(messages).items():
        times = {name: best_time(decode, chunks) for name, decode in decoders.items()}
        for name, seconds in times.items():
            print(
                f"{feed_name:<22} {name:<24} {len(stream) / seconds / 1e6:>9.1f} "
                f"{MESSAGES / seconds:>12,.0f} {times['botocore'] / seconds:>11.1f}x"
            )


if __name__ == "__main__":
    main()
