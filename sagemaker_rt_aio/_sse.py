"""Server-sent events (WHATWG HTML, "9.2.6 Interpreting an event stream"), as an I/O-free decoder.

Feed it the body's bytes however they are split; it returns the events each chunk completes.

- Lines end with LF, CR or CRLF, including a CR at the end of one chunk and its LF at the start of
  the next (that pair is one line ending, not two).
- A UTF-8 byte order mark at the very start is dropped; bytes that are not UTF-8 become U+FFFD.
  Lines are split as bytes (a line break never falls inside a UTF-8 sequence) and only field
  values are decoded, so a character split between chunks decodes whole.
- ``:`` starts a comment; ``data`` lines are joined with LF; ``event`` sets the type (default
  ``message``); ``id`` sets the last event id, which persists across events, unless it contains
  NUL; ``retry`` is taken only if it is all ASCII digits. An event with no ``data`` line is not
  dispatched (the spec's rule), but its ``id`` and ``retry`` still count.
- End of stream: per the spec, an event not followed by a blank line is discarded. ``close()``
  does that by default; ``close(dispatch_incomplete=True)`` dispatches it instead, last line
  without a line ending included: LLM servers that end a stream abruptly would otherwise lose
  their last token. ``iter_events()`` follows the spec; ``iter_json()``/``iter_text()`` are lenient.
- Bounded: a line longer than ``max_line_bytes`` raises ``LineTooLongError``, an event whose data
  passes ``max_event_bytes`` raises ``EventTooLargeError``, as soon as that is known.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ._constants import DEFAULT_MAX_EVENT_BYTES, DEFAULT_MAX_LINE_BYTES
from ._errors import EventTooLargeError, LineTooLongError

_BOM = b"\xef\xbb\xbf"
_MANY_EVENTS = 1024  # bytes of whole events from which SSEDecoder splits them without its loop


@dataclass(frozen=True, slots=True)
class ServerSentEvent:
    """One dispatched event. ``id`` is the stream's last event id when it was dispatched (as a
    browser's ``MessageEvent.lastEventId``); ``retry`` is the reconnection time (ms) given in this
    event's lines, if any."""

    data: str
    event: str = "message"
    id: str = ""
    retry: int | None = None

    def json(self) -> Any:
        """The event's data decoded as JSON."""
        return json.loads(self.data)


class SSEDecoder:
    """Incremental server-sent-events decoder: ``feed(chunk)`` returns the events completed."""

    __slots__ = (
        "_bom_pending",
        "_data",
        "_event",
        "_last_id",
        "_max_event",
        "_max_line",
        "_pending",
        "_retry",
        "_size",
        "_skip_lf",
        "retry",
    )

    def __init__(
        self,
        *,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
    ) -> None:
        self._max_line = max_line_bytes
        self._max_event = max_event_bytes
        self._pending: bytes | bytearray = b""  # the unfinished last line
        self._skip_lf = False  # the last chunk ended with CR: a LF first in the next is its pair
        self._bom_pending = True
        self._data: list[str] = []
        self._size = 0
        self._event = ""
        self._last_id = ""
        self._retry: int | None = None  # given within the current event's lines
        #: The latest reconnection time the stream gave (milliseconds), if any.
        self.retry: int | None = None

    @property
    def last_event_id(self) -> str:
        return self._last_id

    def between_events(self) -> bool:
        """Nothing held of an event or a line: the next byte starts a new event's first line
        (and the byte order mark is no longer looked for)."""
        return not (
            self._pending
            or self._skip_lf
            or self._data
            or self._event
            or self._bom_pending
            or self._retry is not None
        )

    def unfed(self) -> bool:
        """Nothing fed yet: the next bytes are the stream's first."""
        return self._bom_pending and not self._pending

    def start_taken(self) -> None:
        """The stream's first bytes were whole events taken without this decoder (a learned
        shape's, which start with a field, not a byte order mark): from now on the next byte
        starts an event's first line, and no byte order mark is looked for."""
        self._bom_pending = False

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        out: list[ServerSentEvent] = []
        self._feed(chunk, out, False)
        return out

    def feed_data(self, chunk: bytes) -> list[str]:
        """Like :meth:`feed`, but only each event's ``data``: the JSON fast path."""
        # A token stream's usual chunk: one whole event of a single "data:" line, nothing held
        # from the chunks before. Its value is taken without the line loop, for a fraction of
        # its cost; anything else, bounds passed included, takes the loop. (Two lines, the
        # second empty as the chunk ends with LF LF: one data line and the blank line. A
        # chunk that starts with "data:" starts with no byte order mark either. A chunk of
        # _MANY_EVENTS bytes or more is left to the split below without this first split.)
        if (
            len(chunk) < _MANY_EVENTS
            and chunk.endswith(b"\n\n")
            and not (self._pending or self._skip_lf or self._data)
        ):
            lines = chunk.splitlines()  # the loop's own split, so the same lines
            if len(lines) == 2:
                line = lines[0]
                if line.startswith(b"data:") and len(line) <= self._max_line:
                    value = line[6:] if line[5:6] == b" " else line[5:]
                    if len(value) < self._max_event:  # its size counts its line feed
                        self._bom_pending = False
                        self._event = ""
                        self._retry = None
                        return [value.decode("utf-8", "replace")]
            if not self._bom_pending:  # the loop takes these lines: the chunk stays as it is
                out: list[str] = []
                self._feed(chunk, out, True, lines)  # type: ignore[arg-type]
                return out
        out = []
        self._feed(chunk, out, True)  # type: ignore[arg-type]
        return out

    def close(self, *, dispatch_incomplete: bool = False) -> list[ServerSentEvent]:
        """End of stream. The unterminated event is discarded (the spec), or dispatched."""
        out: list[ServerSentEvent] = []
        self._close(out, False, dispatch_incomplete)
        return out

    def close_data(self, *, dispatch_incomplete: bool = True) -> list[str]:
        out: list[str] = []
        self._close(out, True, dispatch_incomplete)  # type: ignore[arg-type]
        return out

    # -- internals ------------------------------------------------------------------------------

    def _close(self, out: list[ServerSentEvent], raw: bool, dispatch: bool) -> None:
        pending, self._pending = self._pending, b""
        if dispatch:
            if pending:
                self._line(bytes(pending), out, raw)
            self._dispatch(out, raw)
        self._reset_event()

    def _feed(
        self,
        chunk: bytes,
        out: list[ServerSentEvent],
        raw: bool,
        lines: list[bytes] | None = None,
    ) -> None:
        """``lines``: ``chunk.splitlines()``, given only when nothing below changes ``chunk``
        before it is split (nothing pending, no CR last before it, no byte order mark to look
        for, shorter than _MANY_EVENTS)."""
        # The hot path of every LLM stream: one pass over the chunk's lines, the common
        # "data:" line and the blank line that ends an event handled inline.
        if not chunk:
            return
        if self._skip_lf:
            self._skip_lf = False
            if chunk[0] == 10:  # the LF of a CRLF split between chunks
                chunk = chunk[1:]
                if not chunk:
                    return
        pending = self._pending
        if pending:
            # bytes.find, not "in": bytes.__contains__ first tries its operand as an int, and
            # builds and drops a TypeError doing so.
            if chunk.find(b"\n") < 0 and chunk.find(b"\r") < 0:
                # Still no line end: grow the unfinished line in place (a line trickled byte by
                # byte must not be copied whole for each byte).
                if len(pending) + len(chunk) > self._max_line:
                    raise LineTooLongError(self._max_line)
                if type(pending) is bytes:
                    pending = self._pending = bytearray(pending)
                pending += chunk
                return
            chunk = bytes(pending) + chunk
            self._pending = b""
        if self._bom_pending:
            if len(chunk) < 3 and _BOM.startswith(chunk):
                self._pending = chunk  # maybe the start of a BOM: wait for more
                return
            self._bom_pending = False
            if chunk.startswith(_BOM):
                chunk = chunk[3:]
                if not chunk:
                    return
        max_line = self._max_line
        if raw and len(chunk) >= _MANY_EVENTS and not self._data:
            # The common LLM stream, events of one "data:" line each: the whole events at the
            # chunk's head are split by C string methods, not line by line. Only for a chunk of
            # many events (a token's is 100-300 bytes): for a few, the loop costs less than the
            # dozen calls this takes.
            cut = chunk.rfind(b"\n\n") + 2
            if _MANY_EVENTS <= cut <= max_line and cut <= self._max_event:
                values = _data_only(chunk[:cut])
                if values is not None:
                    out += values  # type: ignore[arg-type]
                    self._event = ""
                    self._retry = None
                    chunk = chunk[cut:]
                    if not chunk:
                        return
        if lines is None:
            # bytes.splitlines splits on exactly SSE's line endings: LF, CR and CRLF.
            lines = chunk.splitlines()
        end = chunk[-1]
        if end == 13:
            self._skip_lf = True  # a LF first in the next chunk ends no other line
        elif end != 10:  # the last line has no ending yet
            last = lines.pop()
            if len(last) > max_line:
                raise LineTooLongError(max_line)
            self._pending = last
        check_length = len(chunk) > max_line  # no line can be longer than its chunk
        data = self._data
        size = self._size
        max_event = self._max_event
        for line in lines:
            if not line:  # a blank line: dispatch
                if data:
                    text = data[0] if len(data) == 1 else "\n".join(data)
                    if raw:
                        out.append(text)  # type: ignore[arg-type]
                    else:
                        out.append(
                            ServerSentEvent(
                                text, self._event or "message", self._last_id, self._retry
                            )
                        )
                    data.clear()
                    size = 0
                self._event = ""
                self._retry = None
                continue
            if check_length and len(line) > max_line:
                raise LineTooLongError(max_line)
            if line.startswith(b"data:"):
                value = line[6:] if len(line) > 5 and line[5] == 32 else line[5:]
            else:
                name, colon, value = line.partition(b":")
                if name != b"data":
                    self._field(name, colon, value)
                    continue
                if colon and value[:1] == b" ":
                    value = value[1:]
            size += len(value) + 1
            if size > max_event:
                raise EventTooLargeError(max_event)
            data.append(value.decode("utf-8", "replace"))
        self._size = size

    def _field(self, name: bytes, colon: bytes, value: bytes) -> None:
        """A line that is not ``data``: a comment (empty name), ``event``, ``id``, ``retry``."""
        if not name:
            return  # ":" starts a comment
        if colon and value[:1] == b" ":
            value = value[1:]
        if name == b"event":
            self._event = value.decode("utf-8", "replace")
        elif name == b"id":
            if b"\0" not in value:
                self._last_id = value.decode("utf-8", "replace")
        elif name == b"retry" and value.isdigit():  # bytes.isdigit: ASCII digits only
            self._retry = self.retry = int(value)
        # Any other field is ignored.

    def _line(self, line: bytes, out: list[ServerSentEvent], raw: bool) -> None:
        """One complete line outside the hot loop (the last, unterminated one at the end)."""
        self._feed(line + b"\n", out, raw)

    def _dispatch(self, out: list[ServerSentEvent], raw: bool) -> None:
        data = self._data
        if not data:
            self._event = ""
            self._retry = None
            return
        text = data[0] if len(data) == 1 else "\n".join(data)
        if raw:
            out.append(text)  # type: ignore[arg-type]
        else:
            out.append(ServerSentEvent(text, self._event or "message", self._last_id, self._retry))
        self._reset_event()

    def _reset_event(self) -> None:
        self._data.clear()
        self._size = 0
        self._event = ""
        self._retry = None


def _data_only(head: bytes) -> list[str] | None:
    """The data of each event in ``head`` if it is nothing but events of one ``data:`` line
    with LF endings, all with a space after the colon or none without (else None: the general
    loop decodes it). ``head`` ends with a blank line.

    Why the counts prove that shape: ``head`` starts with "data:" and ends with LF LF, has no
    CR, and has two LFs per "LF LF data:" separator plus the two at its end, so no LF lies
    outside those: the events are "data:" + a value without line breaks, each.
    """
    if head[:6] == b"data: ":
        separator, start = b"\n\ndata: ", 6
    elif head[:5] == b"data:" and head.find(b"\n\ndata: ") < 0:  # find: see _feed
        separator, start = b"\n\ndata:", 5
    else:
        return None
    if head.find(b"\r") >= 0 or head.count(b"\n") != 2 * head.count(separator) + 2:
        return None
    # A line break never falls inside a UTF-8 sequence: decoding all at once equals line by line.
    return head[start:-2].decode("utf-8", "replace").split(separator.decode())
