"""Decode throughput of ``EventStreamDecoder`` against botocore's ``EventStreamBuffer``.

Run: ``python benchmarks/bench_eventstream.py``. The stream imitates an LLM token stream:
20,000 ``PayloadPart`` messages of 20 to 200 bytes each. Each decoder gets the stream (a) in 64 KiB
chunks, as aiohttp hands out a busy response, and (b) one whole message per chunk, as a slowly
generating model produces it. Best of several runs, timed with ``time.perf_counter``.
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

from botocore.eventstream import EventStreamBuffer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sagemaker_rt_aio._eventstream import EventStreamDecoder
from sagemaker_rt_aio._stream_events import encode_payload_part

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


def main() -> None:
    messages = build_stream()
    stream = b"".join(messages)
    feeds = {
        "64 KiB chunks": [stream[i : i + CHUNK] for i in range(0, len(stream), CHUNK)],
        "one message per feed": messages,
    }
    decoders = {"sagemaker_rt_aio": decode_ours, "botocore": decode_botocore}
    print(f"{MESSAGES} PayloadPart messages, {len(stream) / 1e6:.2f} MB, best of {RUNS} runs")
    print(f"{'feeding':<22} {'decoder':<18} {'MB/s':>9} {'messages/s':>12} {'vs botocore':>12}")
    for feed_name, chunks in feeds.items():
        times = {name: best_time(decode, chunks) for name, decode in decoders.items()}
        for name, seconds in times.items():
            print(
                f"{feed_name:<22} {name:<18} {len(stream) / seconds / 1e6:>9.1f} "
                f"{MESSAGES / seconds:>12,.0f} {times['botocore'] / seconds:>11.1f}x"
            )


if __name__ == "__main__":
    main()
