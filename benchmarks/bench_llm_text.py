"""CPU cost per event of the LLM stream decoders, for each container format.

Run: ``python benchmarks/bench_llm_text.py [--tokens N] [--rounds R] [--part-bytes B]``.

Each format's canned stream (``sagemaker_rt_aio.local.demo_models.render``) of N tokens is cut into
parts of about B bytes, as a response stream delivers them (``--part-bytes 0``: each event a part
of its own, as a token stream's network reads bring them one by one, so that what is paid per part
counts per event); then, best of R rounds of ``time.process_time()``:

  (a) ``TextDecoder.feed`` over the parts: the pure decoder (SSE or JSON lines, JSON, text delta);
  (b) ``stream.iter_text()``: the same through the stream mixin's async generator;
  (c) the floor: the C JSON scanner alone over each event's JSON text.

Per event, in microseconds. The goal for (b) on the OpenAI chat format is 2.5 us on an idle core.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from collections.abc import AsyncIterator

from sagemaker_rt_aio import TextDecoder
from sagemaker_rt_aio._stream_text import TextStreamMixin
from sagemaker_rt_aio._types import PayloadPart
from sagemaker_rt_aio.local.demo_models import CONTENT_TYPES, FORMATS, render, split_anywhere

TEXT = "The quick brown fox jumps over the lazy dog. "


class _Stream(TextStreamMixin):
    def __init__(self, parts: list[bytes], content_type: str) -> None:
        self._parts = parts
        self.content_type = content_type

    def __aiter__(self) -> AsyncIterator[PayloadPart]:
        return self._gen()

    async def _gen(self) -> AsyncIterator[PayloadPart]:
        for part in self._parts:
            yield PayloadPart(part)


def best_of(rounds: int, run: object) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        run()  # type: ignore[operator]
        best = min(best, time.process_time() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tokens", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument(
        "--part-bytes",
        type=int,
        default=2048,
        help="mean part size; 0: each event its own part, as a token stream's reads bring them",
    )
    args = parser.parse_args()
    tokens = [(" " + word) for word in (TEXT * (args.tokens // 9 + 1)).split()][: args.tokens]
    scan = json.JSONDecoder().scan_once  # type: ignore[attr-defined]
    print(f"{'format':20s} {'decoder':>9s} {'iter_text':>10s} {'json floor':>11s}  (us/event)")
    for fmt in FORMATS:
        events = render(fmt, tokens)
        parts = (
            split_anywhere(b"".join(events), random.Random(1), mean=args.part_bytes)
            if args.part_bytes
            else events
        )
        content_type = CONTENT_TYPES[fmt]
        count = len(events)

        def decode(parts: list[bytes] = parts, content_type: str = content_type) -> None:
            decoder = TextDecoder(content_type)
            for part in parts:
                decoder.feed(part)
            decoder.close()

        def iterate(parts: list[bytes] = parts, content_type: str = content_type) -> None:
            async def consume() -> None:
                async for _ in _Stream(parts, content_type).iter_text():
                    pass

            asyncio.run(consume())

        texts = [e.split(b":", 1)[1].strip().decode() if e.startswith(b"data") else e.decode()
                 for e in events]  # fmt: skip
        texts = [t for t in texts if t != "[DONE]"]

        def floor(texts: list[str] = texts) -> None:
            for text in texts:
                scan(text, 0)

        row = [best_of(args.rounds, f) / count * 1e6 for f in (decode, iterate, floor)]
        print(f"{fmt:20s} {row[0]:9.2f} {row[1]:10.2f} {row[2]:11.2f}")


if __name__ == "__main__":
    main()
