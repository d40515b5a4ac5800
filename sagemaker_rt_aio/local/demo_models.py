"""Small built-in models for the demo, the examples and tests: no weights, no downloads.

Each is a local-runtime handler (see ``LocalRuntime.add_endpoint``):

- ``sentiment``: JSON ``{"inputs": text}`` in, ``{"label": ..., "score": ...}`` out (a lexicon);
- ``generate``: streams ``STORY`` as JSON lines ``{"token": {"text": ...}}``, as LLM containers do;
- ``summarize``: a slow model for async inference, ``{"words": n, "summary": ...}`` out;
- ``CannedLLM(fmt)`` and ``llm_handlers()``: LLM containers' streaming formats (OpenAI chat and
  completion chunks, TGI tokens, LMI JSON lines in both shapes), several events per part and
  parts cut anywhere (seeded), for testing stream parsers; see ``_llm_formats``.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator

from ._invocation import Invocation
from ._llm_formats import (
    CONTENT_TYPES,
    FORMATS,
    LLM_TEXT,
    CannedLLM,
    render,
    split_anywhere,
    tokenize,
)

__all__ = [
    "CONTENT_TYPES",
    "FORMATS",
    "LLM_TEXT",
    "CannedLLM",
    "generate",
    "llm_handlers",
    "render",
    "sentiment",
    "split_anywhere",
    "summarize",
    "tokenize",
]

POSITIVE_WORDS = {"love", "great", "fast", "good", "excellent", "happy", "pleasant", "like", "best"}
NEGATIVE_WORDS = {"hate", "slow", "bad", "awful", "terrible", "sad", "broken", "worst", "leak"}
STORY = (
    "Once upon a time, an async web service called a model on every request. It wrapped boto3 in "
    "threads, and the threads piled up. Then it owned one aiohttp session, signed each call in "
    "microseconds, retried only what was safe, and streamed every token as it was born."
)


def sentiment(invocation: Invocation) -> str:
    """A lexicon "model": JSON ``{"inputs": text}`` in, a label and a score out."""
    text = str(invocation.json().get("inputs", ""))
    words = re.findall(r"[a-z']+", text.lower())
    score = sum(w in POSITIVE_WORDS for w in words) - sum(w in NEGATIVE_WORDS for w in words)
    label = "POSITIVE" if score > 0 else "NEGATIVE" if score < 0 else "NEUTRAL"
    confidence = round(min(0.99, 0.5 + 0.15 * abs(score)), 2)
    return json.dumps({"label": label, "score": confidence})


async def generate(invocation: Invocation) -> AsyncIterator[bytes]:
    """A "language model" streaming one JSON line per token, as LLM containers do."""
    for token in re.findall(r"\S+\s*", STORY):
        await asyncio.sleep(0.012)
        yield json.dumps({"token": {"text": token}}).encode() + b"\n"


async def summarize(invocation: Invocation) -> str:
    """A slow "model" for async inference."""
    await asyncio.sleep(0.3)
    text = str(invocation.json().get("inputs", ""))
    return json.dumps({"words": len(text.split()), "summary": text[:40] + "..."})


def llm_handlers(*, seed: int = 0, text: str = LLM_TEXT) -> dict[str, CannedLLM]:
    """One canned LLM per streaming format, keyed by format name (``"openai-chat"``, ``"tgi"``...):
    ``for name, handler in llm_handlers().items(): runtime.add_endpoint(name, handler)``."""
    return {fmt: CannedLLM(fmt, text, seed=seed + i) for i, fmt in enumerate(FORMATS)}
