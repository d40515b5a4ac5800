"""CPU cost per event of the LLM stream decoders, for each container format.

Run: ``python benchmarks/bench_llm_text.py [--tokens N] [--rounds R] [--part-bytes B] [--instructions]``.

Each format's canned stream (``sagemaker_rt_aio.local.demo_models.render``) of N tokens is cut into
parts of about B bytes, as a response stream delivers them (``--part-bytes 0``: each event a part
of its own, as a token stream's network reads bring them one by one, so that what is paid per part
counts per event); then, best of R rounds of ``time.process_time()``:

  (a) ``TextDecoder.feed`` over the parts: the pure decoder (SSE or JSON lines, JSON, text delta),
      which matches the token events whole once it has learned their shape (``_llm_shapes``);
  (b) the same decoder without learning (``learn_shapes=False``): every event parsed, the
      general path;
  (c) ``stream.iter_text()``: (a) through the stream mixin's async generator;
  (d) the C JSON scanner alone over each event's JSON text: what parsing every event costs.

Per event, in microseconds. The goal for (c) on the OpenAI chat format is 2.5 us on an idle core.

``--instructions``: (a), (b) and (d) in instructions per event instead, under valgrind's callgrind
(deterministic where times move by 10-20 %): for each format a child process decodes N tokens,
then 2N, and the same children without the decoding give the set-up to subtract.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

from sagemaker_rt_aio import TextDecoder
from sagemaker_rt_aio._stream_text import TextStreamMixin
from sagemaker_rt_aio.local.demo_models import CONTENT_TYPES, FORMATS, render, split_anywhere

sys.path.insert(0, str(Path(__file__).resolve().parent))
from callgrind import child_instructions

TEXT = "The quick brown fox jumps over the lazy dog. "


class _Stream(TextStreamMixin):
    def __init__(self, parts: list[bytes], content_type: str) -> None:
        self._parts = parts
        self.content_type = content_type

    async def _text_input(self) -> AsyncIterator[bytes]:
        # What iter_text() reads: a response stream's payloads, each network chunk's joined
        # (ResponseStream._read); here each part stands for a chunk.
        for part in self._parts:
            yield part


def best_of(rounds: int, run: object) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        run()  # type: ignore[operator]
        best = min(best, time.process_time() - started)
    return best


def stream_of(fmt: str, tokens: int, part_bytes: int) -> tuple[list[bytes], list[bytes], list[str]]:
    """A format's canned stream of ``tokens`` tokens: its events, the parts they arrive in, and
    each event's JSON text (what the floor scans)."""
    words = [(" " + word) for word in (TEXT * (tokens // 9 + 1)).split()][:tokens]
    events = render(fmt, words)
    parts = (
        split_anywhere(b"".join(events), random.Random(1), mean=part_bytes)
        if part_bytes
        else events
    )
    texts = [e.split(b":", 1)[1].strip().decode() if e.startswith(b"data") else e.decode()
             for e in events]  # fmt: skip
    return events, parts, [t for t in texts if t != "[DONE]"]


def child(fmt: str, tokens: int, part_bytes: int, mode: str) -> None:
    """Run under callgrind: build the stream, then decode it (``decoder``, or ``general``
    without learning), scan its JSON (``json``), or neither (``none``: the set-up alone)."""
    _, parts, texts = stream_of(fmt, tokens, part_bytes)
    if mode in ("decoder", "general"):
        decoder = TextDecoder(CONTENT_TYPES[fmt], learn_shapes=mode == "decoder")
        for part in parts:
            decoder.feed(part)
        decoder.close()
    elif mode == "json":
        scan = json.JSONDecoder().scan_once  # type: ignore[attr-defined]
        for text in texts:
            scan(text, 0)


def instructions(fmt: str, tokens: int, part_bytes: int, mode: str) -> int:
    total = child_instructions(__file__, [fmt, str(tokens), str(part_bytes), mode])
    assert total is not None  # the decoders need nothing optional
    return total


def count_instructions(formats: list[str], tokens: int, part_bytes: int) -> None:
    print(f"{'format':20s} {'decoder':>9s} {'general':>9s} {'json':>9s}  (instructions/event)")
    for fmt in formats:
        events = len(stream_of(fmt, 2 * tokens, part_bytes)[0])
        events -= len(stream_of(fmt, tokens, part_bytes)[0])
        cost = {
            mode: instructions(fmt, 2 * tokens, part_bytes, mode)
            - instructions(fmt, tokens, part_bytes, mode)
            for mode in ("none", "decoder", "general", "json")
        }
        row = [(cost[mode] - cost["none"]) / events for mode in ("decoder", "general", "json")]
        print(f"{fmt:20s} {row[0]:9,.0f} {row[1]:9,.0f} {row[2]:9,.0f}")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _, _, fmt, tokens, part_bytes, mode = sys.argv
        child(fmt, int(tokens), int(part_bytes), mode)
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tokens", type=int, default=None, help="default 4000 (1000 counted)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument(
        "--part-bytes",
        type=int,
        default=2048,
        help="mean part size; 0: each event its own part, as a token stream's reads bring them",
    )
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="instructions per event under callgrind instead of time (eight runs per format)",
    )
    parser.add_argument("--formats", default=",".join(FORMATS), help="comma-separated")
    args = parser.parse_args()
    formats = args.formats.split(",")
    if args.instructions:
        count_instructions(formats, args.tokens or 1000, args.part_bytes)
        return
    args.tokens = args.tokens or 4000
    scan = json.JSONDecoder().scan_once  # type: ignore[attr-defined]
    print(
        f"{'format':20s} {'decoder':>9s} {'general':>9s} {'iter_text':>10s} {'json':>9s}"
        "  (us/event)"
    )
    for fmt in formats:
        events, parts, texts = stream_of(fmt, args.tokens, args.part_bytes)
        content_type = CONTENT_TYPES[fmt]
        count = len(events)

        def decode(parts: list[bytes] = parts, content_type: str = content_type) -> None:
            decoder = TextDecoder(content_type)
            for part in parts:
                decoder.feed(part)
            decoder.close()

        def general(parts: list[bytes] = parts, content_type: str = content_type) -> None:
            decoder = TextDecoder(content_type, learn_shapes=False)
            for part in parts:
                decoder.feed(part)
            decoder.close()

        def iterate(parts: list[bytes] = parts, content_type: str = content_type) -> None:
            async def consume() -> None:
                async for _ in _Stream(parts, content_type).iter_text():
                    pass

            asyncio.run(consume())

        def floor(texts: list[str] = texts) -> None:
            for text in texts:
                scan(text, 0)

        runs = (decode, general, iterate, floor)
        row = [best_of(args.rounds, f) / count * 1e6 for f in runs]
        print(f"{fmt:20s} {row[0]:9.2f} {row[1]:9.2f} {row[2]:10.2f} {row[3]:9.2f}")


if __name__ == "__main__":
    main()
