"""Canned LLM output in each container family's streaming format, cut into parts anywhere.

For testing stream parsers (ours and yours) without a GPU: ``render(format, tokens)`` is the exact
byte stream a container of that family sends; ``split_anywhere`` cuts it at seeded random places,
so parts carry several events, half an event, or half a UTF-8 character. ``CannedLLM`` is a
local-runtime handler serving it.

Formats (``FORMATS``):

- ``openai-chat``: vLLM/SGLang/TGI Messages API, SSE ``chat.completion.chunk`` events with
  ``choices[0].delta.content``, a last chunk with ``finish_reason`` and ``usage``, then
  ``data: [DONE]``;
- ``openai-completions``: SSE ``text_completion`` chunks with ``choices[0].text``;
- ``tgi``: TGI's native SSE ``{"token": {"id", "text", "logprob", "special"}}`` events; the last
  one is a special end-of-sequence token with ``generated_text`` and ``details``;
- ``lmi``: LMI JSON lines ``{"token": {"id", "text", "log_prob"}}``, the last with
  ``generated_text`` and ``details``;
- ``lmi-outputs``: LMI's older JSON lines ``{"outputs": ["..."]}``.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
from collections.abc import AsyncIterator, Sequence
from typing import Any

from ._invocation import Invocation, InvocationResponse

OPENAI_CHAT = "openai-chat"
OPENAI_COMPLETIONS = "openai-completions"
TGI = "tgi"
LMI = "lmi"
LMI_OUTPUTS = "lmi-outputs"
FORMATS = (OPENAI_CHAT, OPENAI_COMPLETIONS, TGI, LMI, LMI_OUTPUTS)

CONTENT_TYPES = {
    OPENAI_CHAT: "text/event-stream",
    OPENAI_COMPLETIONS: "text/event-stream",
    TGI: "text/event-stream",
    LMI: "application/jsonlines",
    LMI_OUTPUTS: "application/jsonlines",
}

LLM_TEXT = (
    "Streaming tokens, café-style: naïve parsers split «UTF-8» characters 🚀 and lose the last "
    'line.\nThis one\r\nkeeps every token, even "quoted" ones, tabs\tand data: lookalikes.'
)
_TOKEN = re.compile(r"\s*\S+|\s+")
_MODEL = "canned-llm"
_CREATED = 1767225600


def tokenize(text: str) -> list[str]:
    """Word-ish tokens that join back to ``text``."""
    return _TOKEN.findall(text)


def _sse(doc: Any) -> bytes:
    return b"data: " + json.dumps(doc, ensure_ascii=False).encode() + b"\n\n"


def _line(doc: Any) -> bytes:
    return json.dumps(doc, ensure_ascii=False).encode() + b"\n"


def render(
    fmt: str, tokens: Sequence[str], *, finish_reason: str = "stop", prompt_tokens: int = 7
) -> list[bytes]:
    """The events of one answer in format ``fmt``, each as its bytes on the wire."""
    n = len(tokens)
    text = "".join(tokens)
    usage = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": n,
        "total_tokens": n + prompt_tokens,
    }
    if fmt == OPENAI_CHAT:
        head = {
            "id": "chatcmpl-canned",
            "object": "chat.completion.chunk",
            "created": _CREATED,
            "model": _MODEL,
        }
        events = [
            _sse(
                {
                    **head,
                    "choices": [
                        {
                            "index": 0,
                            "delta": {"role": "assistant", "content": ""},
                            "finish_reason": None,
                        }
                    ],
                }
            )
        ]
        events += [
            _sse(
                {
                    **head,
                    "choices": [
                        {
                            "index": 0,
                            "delta": {"content": token},
                            "logprobs": None,
                            "finish_reason": None,
                        }
                    ],
                }
            )
            for token in tokens
        ]
        events.append(
            _sse(
                {
                    **head,
                    "choices": [{"index": 0, "delta": {}, "finish_reason": finish_reason}],
                    "usage": usage,
                }
            )
        )
        return [*events, b"data: [DONE]\n\n"]
    if fmt == OPENAI_COMPLETIONS:
        head = {
            "id": "cmpl-canned",
            "object": "text_completion",
            "created": _CREATED,
            "model": _MODEL,
        }
        events = [
            _sse(
                {
                    **head,
                    "choices": [
                        {"index": 0, "text": token, "logprobs": None, "finish_reason": None}
                    ],
                }
            )
            for token in tokens
        ]
        events.append(
            _sse(
                {
                    **head,
                    "choices": [{"index": 0, "text": "", "finish_reason": finish_reason}],
                    "usage": usage,
                }
            )
        )
        return [*events, b"data: [DONE]\n\n"]
    if fmt == TGI:
        events = [
            _sse(
                {
                    "index": i,
                    "token": {"id": 1000 + i, "text": token, "logprob": -0.25, "special": False},
                    "generated_text": None,
                    "details": None,
                }
            )
            for i, token in enumerate(tokens)
        ]
        events.append(
            _sse(
                {
                    "index": n,
                    "token": {"id": 2, "text": "</s>", "logprob": 0.0, "special": True},
                    "generated_text": text,
                    "details": {
                        "finish_reason": "eos_token" if finish_reason == "stop" else finish_reason,
                        "generated_tokens": n + 1,
                        "seed": None,
                    },
                }
            )
        )
        return events
    if fmt == LMI:
        lines = [
            _line({"token": {"id": [1000 + i], "text": token, "log_prob": -0.25}})
            for i, token in enumerate(tokens[:-1])
        ]
        if tokens:
            lines.append(
                _line(
                    {
                        "token": {"id": [1000 + n - 1], "text": tokens[-1], "log_prob": -0.25},
                        "generated_text": text,
                        "details": {
                            "finish_reason": finish_reason,
                            "generated_tokens": n,
                            "inputs": "canned prompt",
                        },
                    }
                )
            )
        return lines
    if fmt == LMI_OUTPUTS:
        return [_line({"outputs": [token]}) for token in tokens]
    raise ValueError(f"unknown LLM stream format {fmt!r}; known: {', '.join(FORMATS)}")


def split_anywhere(data: bytes, rng: random.Random, *, mean: int = 96) -> list[bytes]:
    """``data`` cut at random places: parts of 1 to ``2 * mean`` bytes, none empty."""
    parts = []
    start = 0
    while start < len(data):
        size = rng.randint(1, 2 * mean)
        parts.append(data[start : start + size])
        start += size
    return parts


class CannedLLM:
    """A local-runtime handler that streams ``text`` in container format ``fmt``.

    Each call cuts the stream differently (a ``random.Random(seed)`` advanced per call), with
    ``delay`` seconds between parts. On the OpenAI route, a request whose JSON body does not ask
    for ``"stream": true`` gets the whole ``chat.completion`` instead, as vLLM answers.
    """

    def __init__(
        self,
        fmt: str = OPENAI_CHAT,
        text: str = LLM_TEXT,
        *,
        seed: int = 0,
        mean_part_bytes: int = 96,
        delay: float = 0.0,
        finish_reason: str = "stop",
    ) -> None:
        if fmt not in FORMATS:
            raise ValueError(f"unknown LLM stream format {fmt!r}; known: {', '.join(FORMATS)}")
        self.format = fmt
        self.text = text
        self.tokens = tokenize(text)
        self.finish_reason = finish_reason
        self.content_type = CONTENT_TYPES[fmt]
        self._rng = random.Random(seed)
        self._mean = mean_part_bytes
        self._delay = delay

    def __repr__(self) -> str:
        return f"CannedLLM({self.format!r}, {len(self.tokens)} tokens)"

    def stream_bytes(self) -> bytes:
        return b"".join(render(self.format, self.tokens, finish_reason=self.finish_reason))

    def parts(self) -> list[bytes]:
        """The next call's parts."""
        return split_anywhere(self.stream_bytes(), self._rng, mean=self._mean)

    async def __call__(self, invocation: Invocation) -> InvocationResponse:
        if invocation.path != "/invocations" and not _wants_stream(invocation.body):
            return InvocationResponse(
                body=json.dumps(self.completion(), ensure_ascii=False),
                content_type="application/json",
            )
        return InvocationResponse(body=self._stream(self.parts()), content_type=self.content_type)

    def completion(self) -> dict[str, Any]:
        """The whole answer as an OpenAI ``chat.completion`` (the route without streaming)."""
        n = len(self.tokens)
        return {
            "id": "chatcmpl-canned",
            "object": "chat.completion",
            "created": _CREATED,
            "model": _MODEL,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": self.text},
                    "finish_reason": self.finish_reason,
                }
            ],
            "usage": {"prompt_tokens": 7, "completion_tokens": n, "total_tokens": n + 7},
        }

    async def _stream(self, parts: list[bytes]) -> AsyncIterator[bytes]:
        for part in parts:
            if self._delay:
                await asyncio.sleep(self._delay)
            yield part


def _wants_stream(body: bytes) -> bool:
    try:
        doc = json.loads(body) if body.strip() else {}
    except ValueError:
        return False
    return isinstance(doc, dict) and doc.get("stream") is True
