"""The shape of a token stream's events, learned from one and matched whole on the others.

An LLM container sends one JSON event per token, and every token event has the same shape: the
same keys in the same order, the same fixed values, only the text and a few counters differing.
Parsing each one whole (the C JSON scanner builds two or three dicts per token) costs more than
everything else ``iter_text()`` does. So ``TextDecoder`` parses the first token events as usual,
learns their shape here, and from then on takes the whole events at the head of each chunk with
one compiled pattern, framing included, the texts as the pattern's captures: one C call for a
chunk of one event (a token stream's usual chunk), two for a chunk of several. A shape once
confirmed is shared: a new stream's first token events are matched against the shapes recent
streams confirmed before anything of them is parsed (``ShapeLearner.recall``).

Why the result is the same: a shape is learned only from an event whose text ``delta()`` takes
without noting anything (no finish reason, no usage, no error), and its pattern fixes every value
but the text and the values of keys that ``delta()`` never reads (any key not in
``_READ_KEYS``, and the top-level ``index`` of TGI's tokens). An event the pattern matches is
therefore valid JSON (the pattern's strings, numbers and escapes are JSON's own grammar, the
scanner's limits included), and differs from the learned one only where ``delta()`` does not
look, or in its text; ``delta()`` gives its text and notes nothing. Anything else (another
shape, a fixed value changed, invalid UTF-8, an event split between chunks) is left to the
decoder's general path.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from typing import Any

# The keys delta() and its helpers read, at any depth. The values of all other keys (ids,
# timestamps, model names, log probabilities...) are never read: their numbers, strings and lists
# of numbers may differ from event to event, and from stream to stream.
_READ_KEYS = frozenset(
    {
        "choices", "usage", "index", "delta", "finish_reason", "finish_reasons", "content",
        "text", "message", "token", "special", "details", "outputs", "generated_text", "error",
        "object", "type", "error_type", "generated_tokens", "input_tokens", "prompt_tokens",
        "completion_tokens", "total_tokens",
    }
)  # fmt: skip
_FREE_TOP_KEYS = frozenset({"index"})  # TGI's token counter; an OpenAI choice's index is read

# JSON's grammar as the C scanner applies it. A string's characters exclude the control
# characters (strict mode) and the lone surrogates that surrogateescape makes of bytes that are
# not UTF-8 (those events are left to the general path, which decodes them as U+FFFD).
_CHARS = r'[^"\\\x00-\x1f\udc80-\udcff]*'
_ESCAPE = r'\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4})'
# A free string (an id, a model's name) rarely has an escape: tried first without one, its
# closing quote inside the alternative, so that a string with one fails it at once (the engine
# skips to where a quote could follow) and only then pays for the group's repeat (see _NUMBER).
# An OpenAI chat chunk's match, with its two: 6.7 % fewer instructions (5 % more when one of them
# has an escape).
_STRING = '"(?:' + _CHARS + '"|' + _CHARS + "(?:" + _ESCAPE + _CHARS + ')*")'
# The text, captured unquoted: as one group (the pieces of a split), and often with an escape (a
# line break), which the alternative above would make dearer.
_TEXT = '"(' + _CHARS + "(?:" + _ESCAPE + _CHARS + ")*" + ')"'
# At most 100 integer digits: the scanner refuses integers past Python's limit on digits. The
# optional parts are alternatives with the empty string rather than groups with "?": the same
# language and the same greedy preference, but Python's regex engine takes a group's "?" through
# its general repeat (a repeat context allocated each time) and an alternative through a branch.
# A TGI token event's match, with its two numbers: 18 % fewer instructions.
_NUMBER = r"-?(?:0|[1-9][0-9]{0,99})(?:\.[0-9]+|)(?:[eE][-+]?[0-9]+|)"

# How a value is framed: an SSE event's data line and its blank line, or a JSON line; as
# patterns, and as the text of one framed value.
_FRAMES = {
    "sse": ("data: ?", r"(?:\n\n|\r\n\r\n)"),
    "jsonl": ("", r"\r?\n"),
}
_FRAME_TEXTS = {"sse": ("data: ", "\n\n"), "jsonl": ("", "\n")}
# A token event is a few hundred characters, four levels deep; larger or deeper ones are not
# learned from.
_MAX_LEARNED = 4096
_MAX_DEPTH = 8
# The two ways servers write JSON: compact (vLLM, TGI, SGLang) and Python's json.dumps default
# (indexed by "spaced").
_SEPARATORS = ((",", ":"), (", ", ": "))

_scan_once: Any = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def text_path(doc: Any) -> tuple[str | int, ...] | None:
    """Where ``TextDecoder.delta`` finds the text of ``doc`` if ``doc`` is a plain token event
    (a text and nothing noted); ``None`` for any other value.

    Mirrors ``delta()``'s branches: an OpenAI chunk with one choice, index 0, no finish reason,
    no usage, its text in ``delta.content`` or ``text``; a TGI/LMI token, not special, without
    details.
    """
    if type(doc) is not dict:
        return None
    choices = doc.get("choices")
    if choices is not None:
        if type(choices) is not list or len(choices) != 1 or doc.get("usage") is not None:
            return None
        choice = choices[0]
        if type(choice) is not dict or choice.get("index", 0) != 0 or choice.get("finish_reason"):
            return None
        delta = choice.get("delta")
        if delta is not None:
            if type(delta) is dict and type(delta.get("content")) is str:
                return ("choices", 0, "delta", "content")
            return None
        if type(choice.get("text")) is str:
            return ("choices", 0, "text")
        return None
    token = doc.get("token")
    if token is None or doc.get("details"):
        return None
    if type(token) is dict and not token.get("special") and type(token.get("text")) is str:
        return ("token", "text")
    return None


class ShapeLearner:
    """One decoder's learning: ``lessons`` left, and the pattern the last lesson built. A shape is
    compiled (about a millisecond) only once two token events in a row give the same pattern, in
    one stream or in the last two lessons of any, so a stream whose events never repeat a shape
    costs no compiling, and a server whose every stream is one token event (a short answer)
    confirms its shape on its second stream rather than building it again on each (the pattern's
    building alone costs as much as the rest of such a stream's decoding, twice over)."""

    __slots__ = ("_candidate", "lessons", "recalls")

    def __init__(self, lessons: int) -> None:
        self.lessons = lessons
        # Chunks that may still be tried against the shapes recent streams confirmed, before
        # any is parsed (see recall); none for a decoder that does not learn.
        self.recalls = _RECALLS if lessons else 0
        self._candidate: str | None = None

    def recall(self, chunk: bytes, framing: str) -> tuple[EventShape, list[str], bytes] | None:
        """The shape a recent stream confirmed whose events ``chunk`` starts with (a chunk that
        starts where an event does), with what its ``take`` gives; ``None`` if none does.

        A server's streams all have the same token events: a new stream's first token event is
        matched rather than parsed and learned from, which is most of what decoding a short
        answer costs. The same guarantee as a shape learned on the stream itself: a match is an
        event ``delta()`` would give the same text for, noting nothing. Bounded: ``_RECALLS``
        chunks per decoder, each tried against at most ``_RECENT`` shapes."""
        self.recalls -= 1
        for shape in _recent:
            if shape.framing == framing:
                taken = shape.take(chunk)
                if taken is not None:
                    return shape, taken[0], taken[1]
        return None

    def learn(self, doc: Any, raw: str, framing: str) -> EventShape | None:
        """The shape of the token events like ``doc`` (parsed from ``raw``, framed by
        ``framing``), if ``doc`` is a plain token event (see :func:`text_path`) no larger or
        deeper than a token event is (so the pattern's size and the work of building it stay
        bounded whatever a server sends), and the shape is known or confirmed."""
        path = text_path(doc)
        if path is None or len(raw) > _MAX_LEARNED:
            return None
        head, end = _FRAME_TEXTS[framing]
        framed = head + raw + end
        for shape in _recent:  # a server's every stream has the same token events
            if shape.framing == framing and shape.whole(framed):
                return shape
        # The separators this server writes, from the first key: one pattern to build.
        first = next(iter(doc))
        spaced = raw.startswith("{" + json.dumps(first, ensure_ascii=False) + ": ")
        try:
            source = _pattern(doc, path, _ENCODERS[_SEPARATORS[spaced]], 0)
        except ValueError:  # too deep, an object where delta() does not read, NaN or infinity
            return None
        global _last_candidate
        if source != self._candidate and source != _last_candidate:
            # Confirmed, or not, by this stream's next lesson or any stream's.
            self._candidate = _last_candidate = source
            return None
        shape = EventShape(source, framing)
        if not shape.whole(framed):
            return None
        _recent.insert(0, shape)
        del _recent[_RECENT:]
        return shape


# The shapes learned last, most recent first, shared by every decoder: a new stream finds its
# server's shape here for the cost of a match rather than of building and compiling a pattern.
_RECENT = 8
_recent: list[EventShape] = []
# Chunks a decoder tries against those before it learns by parsing: the first ones only, as a
# stream whose events match none of them stays unmatched (a role or a comment first, then tokens:
# two or three).
_RECALLS = 4
# The pattern the last lesson of any decoder built and did not confirm (one string, at most the
# size a token event's pattern has: see _MAX_LEARNED).
_last_candidate: str | None = None


class _Encoder:
    """JSON written one way (compact or spaced), with the separators' patterns."""

    def __init__(self, separators: tuple[str, str]) -> None:
        self.encode = json.JSONEncoder(
            ensure_ascii=False, separators=separators, allow_nan=False
        ).encode
        self.item = re.escape(separators[0])
        self.colon = re.escape(separators[1])


_ENCODERS = {separators: _Encoder(separators) for separators in _SEPARATORS}


def _pattern(value: Any, path: tuple[str | int, ...] | None, encoder: _Encoder, depth: int) -> str:
    if path == ():
        return _TEXT
    if depth > _MAX_DEPTH and type(value) in (dict, list):
        raise ValueError("deeper than a token event")
    if type(value) is dict:
        members = []
        for key, member in value.items():
            if path and path[0] == key:
                sub = _pattern(member, path[1:], encoder, depth + 1)
            elif key not in _READ_KEYS or (depth == 0 and key in _FREE_TOP_KEYS):
                sub = _free(member, encoder)
            else:
                sub = _pattern(member, None, encoder, depth + 1)
            members.append(re.escape(encoder.encode(key)) + encoder.colon + sub)
        return r"\{" + encoder.item.join(members) + r"\}"
    if type(value) is list:
        items = [
            _pattern(v, path[1:] if path and path[0] == i else None, encoder, depth + 1)
            for i, v in enumerate(value)
        ]
        return r"\[" + encoder.item.join(items) + r"\]"
    return re.escape(encoder.encode(value))


def _free(value: Any, encoder: _Encoder) -> str:
    """The pattern of any value of ``value``'s kind, for a key delta() never reads: any number,
    string or list of numbers; ``null`` and booleans as they are. An object or another list
    there (log probabilities asked for, say) changes from token to token: not learned from."""
    kind = type(value)
    if kind is int or kind is float:
        return _NUMBER
    if kind is str:
        return _STRING
    if kind is list and all(type(v) is int or type(v) is float for v in value):
        return r"\[(?:" + _NUMBER + "(?:" + encoder.item + _NUMBER + r")*|)\]"  # as in _NUMBER
    if value is None or kind is bool:
        return re.escape(encoder.encode(value))
    raise ValueError("an object where delta() does not read")


class EventShape:
    """A learned shape, framed: ``take(chunk)`` gives the texts of the whole events of this
    shape at the chunk's head, and the bytes after them (for the general path). Immutable:
    decoders share it."""

    __slots__ = ("_match", "_split", "framing")

    def __init__(self, source: str, framing: str) -> None:
        self.framing = framing
        self._match, self._split = _compile(source, framing)

    def whole(self, text: str) -> bool:
        """Whether ``text`` is one whole event of this shape."""
        match = self._match(text)
        return match is not None and match.end() == len(text)

    def take(self, chunk: bytes) -> tuple[list[str], bytes] | None:
        """``None`` if the chunk does not start with an event of this shape."""
        # surrogateescape: lossless, so the bytes after the events are given back exactly.
        text = chunk.decode("utf-8", "surrogateescape")
        match = self._match(text)
        if match is None:
            return None
        found = match[1]
        if "\\" in found:
            found = _unescape(found)
        texts = [found] if found else []
        end = match.end()
        if end == len(text):  # the usual chunk at a token's pace: one whole event
            return texts, b""
        rest = text[end:]
        pieces = self._split(rest)  # [before, text, between, text, ..., after]
        if any(pieces[0:-1:2]):  # not only events of this shape up to the last one
            return texts, rest.encode("utf-8", "surrogateescape")
        texts += [t if "\\" not in t else _unescape(t) for t in pieces[1::2] if t]
        return texts, pieces[-1].encode("utf-8", "surrogateescape")


def _unescape(inner: str) -> str:
    value: str = _scan_once('"' + inner + '"', 0)[0]
    return value


@functools.lru_cache(maxsize=32)
def _compile(
    source: str, framing: str
) -> tuple[Callable[[str], re.Match[str] | None], Callable[[str], list[str]]]:
    # Shared by every stream: a server's token events give the same source on every stream, and
    # compiling costs a hundred times a match.
    head, end = _FRAMES[framing]
    pattern = re.compile(head + source + end)
    return pattern.match, pattern.split
