"""``iter_events()``, ``iter_json()`` and ``iter_text()``: the LLM helpers of every response stream.

A mixin over a stream that gives the bytes to decode (``_text_input()``) and has a
``content_type``: the event stream of InvokeEndpointWithResponseStream (its payloads) and the raw
body of the OpenAI-compatible route (its chunks) alike. The decoding itself is in the I/O-free
``_sse`` and ``_llm_text``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from ._constants import DEFAULT_MAX_EVENT_BYTES, DEFAULT_MAX_LINE_BYTES, DEFAULT_MAX_PARTIAL_TEXT
from ._errors import LLMStreamError, SageMakerRuntimeError
from ._llm_text import JsonDecoder, TextDecoder, TokenUsage
from ._sse import ServerSentEvent, SSEDecoder

if TYPE_CHECKING:
    from ._observe import CallObserver

_MAX_REASON = 64  # characters of a finish reason kept on a span: the model chose the text


class TextStreamMixin:
    """Decoded views of a stream's bytes. Like the stream itself, use one of them, once."""

    content_type: str | None
    #: After ``iter_text()`` ended: why generation stopped (``"stop"``, ``"length"``...), if the
    #: stream said so.
    finish_reason: str | None = None
    #: After ``iter_text()`` ended: token counts, if the stream reported them.
    usage: TokenUsage | None = None
    _text_parts: list[str] | None = None
    # The call's telemetry observer, when one records (set on ResponseStream by the call).
    _observer: CallObserver | None = None

    def __aiter__(self) -> AsyncIterator[Any]:  # pragma: no cover - provided by the stream
        raise NotImplementedError

    def _text_input(self) -> AsyncIterator[bytes]:  # pragma: no cover - provided by the stream
        """The bytes the decoders below read, in pieces of any size, as they arrive."""
        raise NotImplementedError

    @property
    def text(self) -> str:
        """The text ``iter_text()`` has produced so far (up to ``DEFAULT_MAX_PARTIAL_TEXT``)."""
        return "".join(self._text_parts or ())

    async def iter_events(
        self,
        *,
        dispatch_incomplete: bool = False,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
    ) -> AsyncIterator[ServerSentEvent]:
        """The body as server-sent events (``.event``, ``.data``, ``.id``, ``.retry``).

        At the end, an event not followed by a blank line is discarded, as the spec says, unless
        ``dispatch_incomplete``.
        """
        decoder = SSEDecoder(max_line_bytes=max_line_bytes, max_event_bytes=max_event_bytes)
        async for chunk in self._text_input():
            for event in decoder.feed(chunk):
                yield event
        for event in decoder.close(dispatch_incomplete=dispatch_incomplete):
            yield event

    async def iter_json(
        self,
        *,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
    ) -> AsyncIterator[Any]:
        """The body as JSON values: SSE ``data`` payloads (``[DONE]`` skipped) or JSON lines,
        told apart by the content type, else by the first bytes. A bad value raises
        ``StreamDecodeError``."""
        decoder = JsonDecoder(
            self.content_type, max_line_bytes=max_line_bytes, max_event_bytes=max_event_bytes
        )
        # Telemetry only: a text decoder notes the finish reason and usage the values report.
        notes = TextDecoder() if self._observer is not None else None
        async for chunk in self._text_input():
            for value in decoder.feed(chunk):
                if notes is not None:
                    _note(notes, value)
                yield value
        for value in decoder.close():
            if notes is not None:
                _note(notes, value)
            yield value
        if notes is not None:
            self._report(notes.finish_reason, notes.usage)

    async def iter_text(
        self,
        *,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
    ) -> AsyncIterator[str]:
        """The generated text, as deltas, whatever the container's format (OpenAI chat and
        completion chunks, TGI tokens without special tokens, LMI JSON lines).

        Afterwards ``finish_reason`` and ``usage`` hold what the stream reported. An error that
        ends the stream midway carries the text decoded before it in ``partial_text``.
        """
        decoder = TextDecoder(
            self.content_type, max_line_bytes=max_line_bytes, max_event_bytes=max_event_bytes
        )
        parts = self._text_parts = []
        feed = decoder.feed
        received = 0  # bytes: the text kept for partial_text is never longer
        try:
            async for chunk in self._text_input():
                texts = feed(chunk)
                if texts:
                    if received < DEFAULT_MAX_PARTIAL_TEXT:
                        parts += texts
                    for text in texts:
                        yield text
                received += len(chunk)
            for text in decoder.close():
                parts.append(text)
                yield text
            if self._observer is not None:
                self._report(decoder.finish_reason, decoder.usage)
        except SageMakerRuntimeError as exc:
            exc.partial_text = "".join(parts)
            raise
        finally:
            self.finish_reason = decoder.finish_reason
            self.usage = decoder.usage

    def _report(self, finish_reason: str | None, usage: TokenUsage | None) -> None:
        """The GenAI attributes of the call's span, once the decoder saw the stream's end."""
        observer = self._observer
        if observer is None:
            return
        observer.genai(
            input_tokens=usage.prompt_tokens if usage is not None else None,
            output_tokens=usage.completion_tokens if usage is not None else None,
            finish_reasons=[finish_reason[:_MAX_REASON]] if finish_reason else None,
        )


def _note(notes: TextDecoder, value: Any) -> None:
    """Let ``notes`` see one JSON value for its finish reason and usage; its text is not needed,
    and an error event is the caller's to interpret (``iter_json`` yields it as it is)."""
    with contextlib.suppress(LLMStreamError):
        notes.delta(value)
