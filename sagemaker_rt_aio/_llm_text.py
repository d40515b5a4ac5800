"""JSON values and generated text from an LLM container's stream, as I/O-free decoders.

Two framings carry JSON in the wild, told apart by the first bytes (``{``/``[`` or an SSE
field), or by the content type when the first bytes do not tell:

- server-sent events (``text/event-stream``; the body starts with ``data:``, ``event:``, ``id:``,
  ``retry:`` or a ``:`` comment): each event's data is one JSON value, ``[DONE]`` is skipped
  (OpenAI-style servers: vLLM, SGLang, TGI's Messages API, and TGI's native token events);
- JSON lines (``application/jsonlines``, ``application/x-ndjson``...; the body starts with ``{``
  or ``[``): one value per line, blank lines skipped (LMI);
- neither (``text/plain``, or a body that starts like no JSON value and no SSE field): plain
  text, which ``iter_text()`` passes through as it comes and ``iter_json()`` refuses.

Text deltas come from whichever shape each value has:

- OpenAI chat chunks ``choices[].delta.content``, completion chunks ``choices[].text``, and
  whole answers ``choices[].message.content`` (choice 0 only: others are other completions);
- TGI native ``{"token": {"text", "special"}, "details": ...}``, special tokens skipped;
- LMI JSON lines ``{"token": {"text": ...}}`` and ``{"outputs": ["..."]}``.

What the formats report at the end is kept: ``finish_reason`` and ``usage`` (a
:class:`TokenUsage`), from OpenAI's ``finish_reason``/``usage`` or TGI/LMI's ``details``. An error
event in the stream (``{"error": ...}``) raises ``LLMStreamError``.
"""

from __future__ import annotations

import codecs
import json
from dataclasses import dataclass
from typing import Any

from ._constants import DEFAULT_MAX_EVENT_BYTES, DEFAULT_MAX_LINE_BYTES
from ._errors import LineTooLongError, LLMStreamError, StreamDecodeError
from ._llm_shapes import EventShape, ShapeLearner
from ._sse import SSEDecoder

SSE = "sse"
JSON_LINES = "jsonl"
PLAIN = "plain"  # neither: text as it is (iter_text passes it through, iter_json refuses it)

_SSE_STARTS = (b"data", b"event", b"id", b"retry", b":")
_JSON_LINES_TYPES = ("jsonl", "ndjson", "json-seq", "jsonlines", "x-json-stream")
_WHITESPACE = b" \t\r\n"
_BOM = b"\xef\xbb\xbf"
_LESSONS = 4  # times a text decoder learns its token events' shape (see TextDecoder.feed)
_SPLITS = 8  # events of a chunk decoded one at a time while the shape is learned (_feed_learning)


@dataclass(frozen=True, slots=True)
class TokenUsage:
    """Token counts as the stream reported them (``None`` where a format does not say)."""

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None


def framing_from_content_type(content_type: str | None) -> str | None:
    """``"sse"``, ``"jsonl"``, or ``None`` when the content type does not tell."""
    if not content_type:
        return None
    media = content_type.split(";", 1)[0].strip().lower()
    if media == "text/event-stream":
        return SSE
    if media == "text/plain":
        return PLAIN
    if any(kind in media for kind in _JSON_LINES_TYPES):
        return JSON_LINES
    return None


def sniff_framing(head: bytes, declared: str | None = None) -> str | None:
    """The framing from the body's first bytes; ``None`` until a non-blank byte has arrived.

    The bytes win over the content type when they are telling (``{``, ``[`` or ``data:``...):
    containers mislabel their streams. ``declared`` (from the content type) settles the rest.
    """
    if head.startswith(_BOM):
        head = head[3:]
    elif _BOM.startswith(head):
        return None  # empty, or a byte order mark begun
    head = head.lstrip(_WHITESPACE)
    if not head:
        return None
    if head[:1] in (b"{", b"[", b'"') or head[:1].isdigit():
        return JSON_LINES
    if head.startswith(_SSE_STARTS) or any(start.startswith(head) for start in _SSE_STARTS):
        return SSE  # (an SSE field, or the start of one; the first test alone is the usual)
    return declared or PLAIN  # neither: text, unless the content type says otherwise


class JsonDecoder:
    """Bytes in, JSON values out, in either framing (given, or detected on the first bytes)."""

    __slots__ = ("_declared", "_framing", "_head", "_lines", "_max_line", "_sse")

    def __init__(
        self,
        content_type: str | None = None,
        *,
        framing: str | None = None,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
    ) -> None:
        self._framing = framing  # given: no detection
        self._declared = framing_from_content_type(content_type)
        self._head = b""  # a byte order mark held until the framing is known
        self._lines: bytes | bytearray = b""  # JSON lines: the unfinished last line
        self._max_line = max_line_bytes
        self._sse = SSEDecoder(max_line_bytes=max_line_bytes, max_event_bytes=max_event_bytes)

    @property
    def framing(self) -> str | None:
        return self._framing

    def feed(self, chunk: bytes) -> list[Any]:
        return [value for text in self.raw(chunk) if (value := parse(text)) is not SKIP]

    def close(self) -> list[Any]:
        """End of stream: a last line without a line ending, or a last event without its blank
        line, still counts (see ``_sse``)."""
        return [value for text in self.raw_close() if (value := parse(text)) is not SKIP]

    def detect(self, chunk: bytes) -> bytes | None:
        """Before the framing is known: the bytes to decode once it is (None: not yet)."""
        head = self._head + chunk
        framing = self._framing = sniff_framing(head, self._declared)
        if framing is None:
            # Only white space so far, which carries nothing in either framing: keep no more
            # than a byte order mark, whole or begun.
            self._head = _BOM if head.startswith(_BOM) else head if _BOM.startswith(head) else b""
            return None
        self._head = b""
        if framing != SSE and head.startswith(_BOM):
            head = head[3:]
        return head

    def raw(self, chunk: bytes) -> list[str]:
        """The JSON texts ``chunk`` completes, not parsed yet (see :func:`parse`)."""
        framing = self._framing
        if framing is None:
            detected = self.detect(chunk)
            if detected is None:
                return []
            chunk, framing = detected, self._framing
        if framing == SSE:
            return self._sse.feed_data(chunk)
        if framing == JSON_LINES:
            return self._feed_lines(chunk)
        raise StreamDecodeError(
            "the stream is plain text, neither server-sent events nor JSON lines"
        )

    def raw_close(self) -> list[str]:
        if self._framing is None or self._framing == PLAIN:
            return []  # nothing but white space came
        if self._framing == SSE:
            return self._sse.close_data(dispatch_incomplete=True)
        rest, self._lines = self._lines, b""
        return [bytes(rest).decode("utf-8", "replace")]

    def _feed_lines(self, chunk: bytes) -> list[str]:
        held = self._lines
        if held:
            if chunk.find(b"\n") < 0:  # not "in", which first tries b"\n" as an int (see _sse)
                # Still no line end: grow the unfinished line in place, not copied per chunk.
                if len(held) + len(chunk) > self._max_line:
                    raise LineTooLongError(self._max_line)
                if type(held) is bytes:
                    held = self._lines = bytearray(held)
                held += chunk
                return []
            chunk = bytes(held) + chunk
        cut = chunk.rfind(b"\n")
        if cut < 0:
            if len(chunk) > self._max_line:
                raise LineTooLongError(self._max_line)
            self._lines = chunk
            return []
        self._lines = chunk[cut + 1 :]
        if len(self._lines) > self._max_line:
            raise LineTooLongError(self._max_line)
        max_line = self._max_line
        # A line break never falls inside a UTF-8 sequence: the complete lines decode at once.
        lines = chunk[:cut].decode("utf-8", "replace").split("\n")
        if cut > max_line and any(len(line.encode()) > max_line for line in lines):
            raise LineTooLongError(max_line)
        return lines


# The C scanner under json.loads, called directly: json.loads adds two regex matches and three
# Python calls per value, which is most of the cost of a small token event.
_scan_once: Any = json.JSONDecoder().scan_once  # type: ignore[attr-defined]

#: What :func:`parse` returns for a text that carries no value: blank, or ``[DONE]``.
SKIP: Any = object()


def parse(text: str) -> Any:
    """The JSON value of one SSE event's data or one JSON line; ``SKIP`` for a blank one or the
    OpenAI ``[DONE]`` marker; ``StreamDecodeError`` if it is not JSON."""
    try:
        value, end = _scan_once(text, 0)
        if end == len(text) or text[end:].isspace():
            return value
    except (StopIteration, ValueError):
        pass
    stripped = text.strip()
    if not stripped or stripped == "[DONE]":
        return SKIP
    try:
        return json.loads(text)  # leading white space; else it raises with the reason
    except ValueError:
        shown = stripped[:60] + ("..." if len(stripped) > 60 else "")
        raise StreamDecodeError(f"a stream value is not JSON: {shown!r}") from None


class TextDecoder:
    """Bytes in, generated text deltas out; ``finish_reason`` and ``usage`` once reported.

    Once the token events' shape is learned from the first ones (``_llm_shapes``), or recalled
    from a recent stream's, the events of that shape are matched whole instead of parsed, with
    the same result.
    """

    __slots__ = (
        "_idle",
        "_json",
        "_learner",
        "_plain",
        "_shape",
        "_shape_limit",
        "_sse",
        "finish_reason",
        "usage",
    )

    def __init__(
        self,
        content_type: str | None = None,
        *,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
        learn_shapes: bool = True,
    ) -> None:
        self._json = JsonDecoder(
            content_type, max_line_bytes=max_line_bytes, max_event_bytes=max_event_bytes
        )
        self.finish_reason: str | None = None
        self.usage: TokenUsage | None = None
        self._plain: codecs.IncrementalDecoder | None = None
        # The SSE decoder once the bytes are known to be server-sent events: what every chunk
        # of a token stream goes to, without the framing's dispatch (JsonDecoder.raw).
        self._sse: SSEDecoder | None = None
        # The token events' shape once learned (_llm_shapes), and how many more times a chunk
        # of token events may be learned from: a stream whose events keep changing shape goes
        # back to the general path for good.
        self._shape: EventShape | None = None
        self._learner = ShapeLearner(_LESSONS if learn_shapes else 0)
        # True while the last chunk was whole events of the shape, taken with nothing held
        # before it: the general decoders have not been fed since, so nothing is held still.
        self._idle = False
        # Longer chunks take the general path, which raises on an over-long line or event.
        self._shape_limit = min(max_line_bytes, max_event_bytes - 1)

    def feed(self, chunk: bytes) -> list[str]:
        shape = self._shape
        if shape is not None and len(chunk) <= self._shape_limit:
            if self._idle:  # a token stream's every chunk, once learned: one event, whole
                taken = shape.take(chunk)
                if taken is not None:
                    found, rest = taken
                    if not rest:
                        return found
                    self._idle = False
                    return found + self._texts(self._values(rest))
                # Not the shape's at its head (rare): _feed_shaped tries it once more, then parses.
            return self._feed_shaped(chunk, shape)
        self._idle = False
        if self._sse is None:
            json_decoder = self._json
            if json_decoder._framing is None:
                detected = json_decoder.detect(chunk)
                if detected is None:
                    return []
                chunk = detected
                if json_decoder._framing == PLAIN:
                    self._plain = codecs.getincrementaldecoder("utf-8-sig")("replace")
                elif json_decoder._framing == SSE:
                    self._sse = json_decoder._sse
            if self._plain is not None:  # text as it is, characters split between chunks whole
                text = self._plain.decode(chunk)
                return [text] if text else []
        if shape is None and self._learner.lessons:
            if self._learner.recalls:
                recalled = self._recall(chunk)
                if recalled is not None:
                    return recalled
            return self._feed_learning(chunk)
        return self._texts(self._values(chunk))

    def _recall(self, chunk: bytes) -> list[str] | None:
        """``chunk``, if it starts with events of a shape a recent stream confirmed: taken as
        once the shape is learned (``feed``), and the shape kept. ``None``: left to learning."""
        sse = self._sse
        if not (self._between_values() or (sse is not None and sse.unfed())):
            return None  # an event begun in an earlier chunk: not at the chunk's head
        framing = self._json._framing
        assert framing is not None  # known before any chunk gets here
        recalled = self._learner.recall(chunk, framing)
        if recalled is None:
            return None
        shape, found, rest = recalled
        self._shape = shape
        if sse is not None:
            sse.start_taken()  # (between events already, if not the stream's start)
        if not rest:
            self._idle = True  # nothing held before, and nothing now
            return found
        return found + self._texts(self._values(rest))

    def _feed_learning(self, chunk: bytes) -> list[str]:
        """``chunk`` while the shape may still be learned: its first events one at a time, so
        that once one of them teaches the shape, the events after it in the same chunk are
        matched, not parsed. A read can bring a model's whole answer (a container that buffers
        its output; a client slower than its server): parsed whole, none of it would be."""
        if self._sse is not None:
            end_mark, mark_length = b"\n\n", 2
        else:
            end_mark, mark_length = b"\n", 1
        texts: list[str] = []
        # Bounded: events without text (a role, a comment) teach nothing and cost a lesson
        # nothing, so a chunk of them ends the splitting here rather than an event at a time.
        for _ in range(_SPLITS):
            end = chunk.find(end_mark) + mark_length
            if end < mark_length or end == len(chunk):
                break  # one event, or the start of one: the chunk goes whole, below
            raws = self._values(chunk[:end])
            chunk = chunk[end:]
            more = self._texts(raws)
            if more:
                texts += more
                self._learn(raws)
                shape = self._shape
                if shape is not None:
                    if len(chunk) <= self._shape_limit:
                        return texts + self._feed_shaped(chunk, shape)
                    return texts + self._texts(self._values(chunk))  # see feed: the limits
                if not self._learner.lessons:
                    break
        raws = self._values(chunk)
        more = self._texts(raws)
        if more and self._learner.lessons:
            self._learn(raws)
        return texts + more if texts else more

    def _feed_shaped(self, chunk: bytes, shape: EventShape) -> list[str]:
        """``chunk`` once the token events' shape is known: the whole events of that shape at
        its head in one match, the rest by the general path."""
        self._idle = False
        texts: list[str] = []
        between = self._between_values()
        if not between:
            # An event begun in an earlier chunk: the general path takes the chunk up to its
            # first blank line (line end, for JSON lines), after which nothing is held, and the
            # events after it may be the shape's again.
            end_mark = b"\n\n" if self._sse is not None else b"\n"
            end = chunk.find(end_mark)
            if end < 0:
                return self._texts(self._values(chunk))
            end += len(end_mark)
            texts = self._texts(self._values(chunk[:end]))
            chunk = chunk[end:]
            if not chunk:
                return texts
        taken = shape.take(chunk)
        if taken is not None:
            found, rest = taken
            if not rest:
                self._idle = between  # nothing held before, and nothing now
                return texts + found if texts else found
            return texts + found + self._texts(self._values(rest))
        raws = self._values(chunk)
        more = self._texts(raws)
        if more:  # token events of another shape
            if self._learner.lessons:
                self._learn(raws)
            else:
                self._shape = None
        return texts + more if texts else more

    def _between_values(self) -> bool:
        sse = self._sse
        return sse.between_events() if sse is not None else not self._json._lines

    def _values(self, chunk: bytes) -> list[str]:
        """The JSON texts of ``chunk`` by the general path, once the framing is known."""
        sse = self._sse
        return sse.feed_data(chunk) if sse is not None else self._json._feed_lines(chunk)

    def _learn(self, raws: list[str]) -> None:
        """Learn the token events' shape from the last two of ``raws`` (the very last may be
        the stream's end; two alike confirm a shape at once)."""
        learner = self._learner
        learner.lessons -= 1
        framing = self._json._framing
        if framing is None:
            return
        for raw in raws[:-3:-1]:
            # Parsed before, so this cannot raise; JSON lines may end with CR (CRLF endings).
            shape = learner.learn(parse(raw), raw.rstrip("\r"), framing)
            if shape is not None:
                self._shape = shape
                return

    def close(self) -> list[str]:
        if self._plain is not None:
            text = self._plain.decode(b"", final=True)
            return [text] if text else []
        return self._texts(self._json.raw_close())

    def _texts(self, raws: list[str]) -> list[str]:
        out = []
        delta = self.delta
        for raw in raws:
            # parse() inlined for its common case: one JSON value, nothing around it.
            try:
                doc, end = _scan_once(raw, 0)
                if end != len(raw) and not raw[end:].isspace():
                    doc = parse(raw)
            except (StopIteration, ValueError):
                doc = parse(raw)
            if doc is SKIP:
                continue
            text = delta(doc)
            if text:
                out.append(text)
        return out

    def delta(self, doc: Any) -> str:
        """The text one JSON value adds (``""`` for none); notes finish reason and usage."""
        if type(doc) is not dict:
            if type(doc) is list:  # a batch: TGI's whole answer is [{"generated_text": ...}]
                return "".join(self.delta(item) for item in doc[:1])
            return ""
        choices = doc.get("choices")
        if choices is not None:
            # The most common event of all, an OpenAI chat chunk with one choice, inline.
            if type(choices) is list and len(choices) == 1 and "usage" not in doc:
                choice = choices[0]
                if type(choice) is dict and not choice.get("index"):
                    delta = choice.get("delta")
                    if type(delta) is dict and not choice.get("finish_reason"):
                        content = delta.get("content")
                        return content if type(content) is str else ""
            return self._openai(doc, choices)
        token = doc.get("token")
        if token is not None:
            details = doc.get("details")
            if details:
                self._details(details)
            if type(token) is not dict or token.get("special"):
                return ""
            text = token.get("text")
            return text if type(text) is str else ""
        outputs = doc.get("outputs")
        if outputs is not None:
            return self._outputs(doc, outputs)
        if doc.get("error") or doc.get("object") == "error":
            raise LLMStreamError(_error_text(doc), doc)
        details = doc.get("details")
        if details:
            self._details(details)
        generated = doc.get("generated_text")
        return generated if type(generated) is str else ""

    def _openai(self, doc: dict[str, Any], choices: Any) -> str:
        text = ""
        if type(choices) is list:
            for choice in choices:
                if type(choice) is not dict or choice.get("index", 0) != 0:
                    continue
                delta = choice.get("delta")
                if delta is not None:
                    value = delta.get("content") if type(delta) is dict else None
                else:
                    value = choice.get("text")
                    if value is None:
                        message = choice.get("message")
                        value = message.get("content") if type(message) is dict else None
                if type(value) is str:
                    text = value
                reason = choice.get("finish_reason")
                if reason:
                    self.finish_reason = str(reason)
        usage = doc.get("usage")
        if type(usage) is dict:
            self.usage = TokenUsage(
                _int(usage.get("prompt_tokens")),
                _int(usage.get("completion_tokens")),
                _int(usage.get("total_tokens")),
            )
        return text

    def _outputs(self, doc: dict[str, Any], outputs: Any) -> str:
        for key in ("finish_reason", "finish_reasons"):
            reason = doc.get(key)
            if type(reason) is list:
                reason = reason[0] if reason else None
            if reason:
                self.finish_reason = str(reason)
        details = doc.get("details")
        if details:
            self._details(details)
        if type(outputs) is not list or not outputs:
            return outputs if type(outputs) is str else ""
        first = outputs[0]
        if type(first) is dict:
            first = first.get("text", first.get("generated_text"))
        return first if type(first) is str else ""

    def _details(self, details: Any) -> None:
        if type(details) is not dict:
            return
        reason = details.get("finish_reason")
        if reason:
            self.finish_reason = str(reason)
        generated = _int(details.get("generated_tokens"))
        prompt = _int(details.get("input_tokens", details.get("prompt_tokens")))
        if generated is not None or prompt is not None:
            total = generated + prompt if generated is not None and prompt is not None else None
            self.usage = TokenUsage(prompt, generated, total)


def _error_text(doc: dict[str, Any]) -> str:
    error = doc.get("error")
    if isinstance(error, dict):
        error = error.get("message", error)
    if error is None:
        error = doc.get("message", doc)
    kind = doc.get("error_type") or doc.get("type")
    return f"the model's stream reported an error{f' ({kind})' if kind else ''}: {error}"


def _int(value: Any) -> int | None:
    return value if type(value) is int else None
