"""The AWS event-stream codec (``application/vnd.amazon.eventstream``), without any I/O.

The AWS event-stream encoding (as botocore's ``eventstream.py`` reads it). A message is::

    total_length:u32  headers_length:u32  prelude_crc:u32  headers  payload  message_crc:u32

with both CRCs CRC-32 (zlib's function; ``_crc32`` picks the code that computes it) and all
integers big-endian. ``EventStreamDecoder`` turns bytes, in chunks of any size, into ``Message``
objects; ``encode_message`` does the reverse. What the messages of a SageMaker response stream
mean is not here: see ``_stream_events``.

Header values map to Python types as follows (decoding gives the same types back):

=====  ==========  =================================================================
type   wire        Python
=====  ==========  =================================================================
0, 1   bool        ``bool``
2      int8        ``Int8`` (an ``int`` subclass)
3      int16       ``Int16``
4      int32       ``int`` (``Int32`` to force the width when encoding)
5      int64       ``Int64``; a plain ``int`` outside the int32 range also encodes as 5
6      bytes       ``bytes``
7      string      ``str``
8      timestamp   ``datetime`` (aware, UTC, millisecond precision; naive means UTC)
9      uuid        ``uuid.UUID``
=====  ==========  =================================================================
"""

from __future__ import annotations

import logging
import struct
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from types import MemberDescriptorType
from typing import Any, ClassVar, TypeAlias

from ._constants import EVENTSTREAM_MAX_HEADERS_LENGTH, EVENTSTREAM_MAX_PAYLOAD_LENGTH
from ._crc32 import crc32  # zlib-ng's where installed (see _crc32)
from ._errors import (
    EventStreamError,
)

__all__ = [
    "EventStreamDecoder",
    "HeaderValue",
    "Int8",
    "Int16",
    "Int32",
    "Int64",
    "Message",
    "encode_headers",
    "encode_message",
    "frame",
    "split_first",
]

logger = logging.getLogger("sagemaker_rt_aio")

HeaderValue: TypeAlias = bool | int | bytes | str | datetime | uuid.UUID

_PRELUDE_LENGTH = 12
_MIN_MESSAGE_LENGTH = 16  # prelude + message CRC
_PRELUDE = struct.Struct(">III")
_LENGTHS = struct.Struct(">II")
_TAIL = struct.Struct(">III")  # a message's CRC, then the next message's two lengths
_U32 = struct.Struct(">I")
_U16 = struct.Struct(">H")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_ONE_MS = timedelta(milliseconds=1)


class _FixedWidthInt(int):
    """An ``int`` that encodes with a given header type instead of the smallest of int32/int64."""

    type_id: ClassVar[int]
    wire: ClassVar[struct.Struct]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({int(self)})"


class Int8(_FixedWidthInt):
    type_id = 2
    wire = struct.Struct(">b")


class Int16(_FixedWidthInt):
    type_id = 3
    wire = struct.Struct(">h")


class Int32(_FixedWidthInt):
    type_id = 4
    wire = struct.Struct(">i")


class Int64(_FixedWidthInt):
    type_id = 5
    wire = struct.Struct(">q")


@dataclass(frozen=True, slots=True)
class Message:
    """One decoded event-stream message."""

    headers: dict[str, HeaderValue]
    payload: bytes


# --------------------------------------------------------------------------------------- encoding


def _encode_header(name: str, value: HeaderValue) -> bytes:
    raw_name = name.encode()
    if not 0 < len(raw_name) <= 255:
        raise ValueError(f"header name {name!r} must be 1 to 255 UTF-8 bytes")
    head = bytes((len(raw_name),)) + raw_name
    # bool before int (bool is an int), and the fixed-width ints before plain int.
    if isinstance(value, bool):
        return head + (b"\x00" if value else b"\x01")
    if isinstance(value, _FixedWidthInt):
        try:
            return head + bytes((value.type_id,)) + value.wire.pack(value)
        except struct.error:
            raise ValueError(f"header {name!r}: {value!r} is out of range") from None
    if isinstance(value, int):
        if -(2**31) <= value < 2**31:
            return head + b"\x04" + Int32.wire.pack(value)
        if -(2**63) <= value < 2**63:
            return head + b"\x05" + Int64.wire.pack(value)
        raise ValueError(f"header {name!r}: {value} does not fit in 64 bits")
    if isinstance(value, str):
        return head + b"\x07" + _encode_blob(name, value.encode())
    if isinstance(value, bytes | bytearray):
        return head + b"\x06" + _encode_blob(name, bytes(value))
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return head + b"\x08" + Int64.wire.pack((value - _EPOCH) // _ONE_MS)
    if isinstance(value, uuid.UUID):
        return head + b"\x09" + value.bytes
    raise TypeError(f"header {name!r}: unsupported value type {type(value).__name__}")


def _encode_blob(name: str, raw: bytes) -> bytes:
    if len(raw) > 0xFFFF:
        raise ValueError(f"header {name!r}: value longer than 65535 bytes")
    return _U16.pack(len(raw)) + raw


def _frame(header_block: bytes, payload: bytes) -> bytes:
    if len(header_block) > EVENTSTREAM_MAX_HEADERS_LENGTH:
        raise ValueError(f"headers take {len(header_block)} bytes, over the event-stream limit")
    if len(payload) > EVENTSTREAM_MAX_PAYLOAD_LENGTH:
        raise ValueError(f"payload of {len(payload)} bytes is over the event-stream limit")
    total = _MIN_MESSAGE_LENGTH + len(header_block) + len(payload)
    lengths = _LENGTHS.pack(total, len(header_block))
    prelude = lengths + _U32.pack(crc32(lengths))
    body = b"".join((prelude, header_block, payload))
    return body + _U32.pack(crc32(body))


def encode_message(headers: Mapping[str, HeaderValue], payload: bytes) -> bytes:
    """One complete message, headers in the mapping's order."""
    return _frame(encode_headers(headers), bytes(payload))


def encode_headers(headers: Mapping[str, HeaderValue]) -> bytes:
    """A header block, to frame many messages with the same headers (``frame``)."""
    return b"".join(_encode_header(n, v) for n, v in headers.items())


def frame(header_block: bytes, payload: bytes) -> bytes:
    """One complete message from an encoded header block and a payload."""
    return _frame(header_block, payload)


# --------------------------------------------------------------------------------------- decoding

# Fixed-size header types: type -> (size, decoder of the value bytes).
_FIXED: dict[int, tuple[int, struct.Struct]] = {
    2: (1, Int8.wire),
    3: (2, Int16.wire),
    4: (4, Int32.wire),
    5: (8, Int64.wire),
    8: (8, Int64.wire),
}


def _check_prelude(data: bytes | bytearray, pos: int) -> int:
    """Validate the prelude at ``pos`` and return the message's total length."""
    total, headers_length, prelude_crc = _PRELUDE.unpack_from(data, pos)
    if crc32(data[pos : pos + 8]) != prelude_crc:
        raise EventStreamError("event stream prelude CRC mismatch (corrupt stream)")
    if total < _MIN_MESSAGE_LENGTH:
        raise EventStreamError(f"event stream message length {total} is below the minimum of 16")
    if headers_length > EVENTSTREAM_MAX_HEADERS_LENGTH:
        raise EventStreamError(f"event stream headers length {headers_length} is over the limit")
    payload_length = total - headers_length - _MIN_MESSAGE_LENGTH
    if payload_length < 0:
        raise EventStreamError(
            f"event stream headers length {headers_length} exceeds message length {total}"
        )
    if payload_length > EVENTSTREAM_MAX_PAYLOAD_LENGTH:
        raise EventStreamError(f"event stream payload length {payload_length} is over the limit")
    return int(total)


def _decode_headers(data: bytes) -> dict[str, HeaderValue]:
    """Parse a header block, which must be consumed exactly."""
    headers: dict[str, HeaderValue] = {}
    value: HeaderValue
    pos, end = 0, len(data)
    try:
        while pos < end:
            name_end = pos + 1 + data[pos]
            if name_end >= end:  # the type byte must lie inside the block too
                raise EventStreamError("event stream header runs past the header block")
            name = data[pos + 1 : name_end].decode()
            kind = data[name_end]
            pos = name_end + 1
            if kind == 7 or kind == 6:  # string first: nearly every header is one
                if pos + 2 > end:
                    raise EventStreamError("event stream header runs past the header block")
                value_end = pos + 2 + (data[pos] << 8 | data[pos + 1])
                if value_end > end:
                    raise EventStreamError("event stream header runs past the header block")
                raw = data[pos + 2 : value_end]
                value = raw.decode() if kind == 7 else raw
            elif kind == 0 or kind == 1:
                value, value_end = kind == 0, pos
            elif kind == 9:
                value_end = pos + 16
                if value_end > end:
                    raise EventStreamError("event stream header runs past the header block")
                value = uuid.UUID(bytes=data[pos:value_end])
            elif kind in _FIXED:
                size, wire = _FIXED[kind]
                value_end = pos + size
                if value_end > end:
                    raise EventStreamError("event stream header runs past the header block")
                number = wire.unpack_from(data, pos)[0]
                value = _from_fixed(kind, number)
            else:
                raise EventStreamError(f"event stream header {name!r} has unknown type {kind}")
            if name in headers:
                raise EventStreamError(f"event stream header {name!r} appears twice")
            headers[name] = value
            pos = value_end
    except UnicodeDecodeError as exc:
        raise EventStreamError(f"event stream header is not valid UTF-8: {exc}") from None
    return headers


def _from_fixed(kind: int, number: int) -> HeaderValue:
    if kind == 4:
        return number
    if kind == 8:
        try:
            return _EPOCH + timedelta(milliseconds=number)
        except OverflowError:  # datetime stops at year 9999; int64 milliseconds do not
            raise EventStreamError(f"event stream timestamp {number} ms is out of range") from None
    return _WIDTH_CLASSES[kind](number)


_WIDTH_CLASSES: dict[int, type[_FixedWidthInt]] = {2: Int8, 3: Int16, 5: Int64}


# Every stream repeats the same few header blocks (every event of one type has the same one), so
# their parsed forms are remembered across streams: parsing costs ten times a lookup, and a
# stream's first event then costs no more than its others. Each entry is (headers, the
# ``:event-type`` if the block is an event's, else None). Bounded: when full it starts over, so a
# stream of ever-different blocks costs re-parsing, never memory.
_new = object.__new__
_set = object.__setattr__  # the event class may be a frozen dataclass
# (``:event-type``, class, field) of the events a decoder hands out as objects of their own.
EventForm: TypeAlias = tuple[str, type, str]
_HEADER_CACHE_SIZE = 16
_HEADER_CACHE_MAX_BLOCK = 512
_HeaderEntry: TypeAlias = tuple[dict[str, HeaderValue], "HeaderValue | None"]
_header_cache: dict[bytes, _HeaderEntry] = {}


def _parse_block(block: bytes) -> _HeaderEntry:
    headers = _decode_headers(block)
    entry = (
        headers,
        headers.get(":event-type") if headers.get(":message-type") == "event" else None,
    )
    if len(block) <= _HEADER_CACHE_MAX_BLOCK:
        if len(_header_cache) >= _HEADER_CACHE_SIZE:
            _header_cache.clear()
        _header_cache[block] = (headers.copy(), entry[1])
    return entry


# The header block of the last event of each wanted ``:event-type`` decoded (every PayloadPart
# of every stream carries the same one), with its length and the message lengths it allows:
# messages with it skip the header slice, hash and cache lookup. Shared by every decoder, so
# that a stream's first part is as cheap; one entry per event type a decoder is built for (the
# client's code chooses those, never the data).
_event_blocks: dict[str, tuple[bytes, int, int, int]] = {}
_NO_BLOCK = (b"", -1, 0, -1)  # no header block is -1 bytes long
_FAST_CHUNK_MAX = 1024 * 1024  # the longest chunk _decode_messages's fast path takes

# An EventForm as _decode_messages uses it: (type, class, class is bytes, the field's setter),
# worked out once per form rather than per decoder (a stream builds one per call) or per chunk.
# One entry per form the client's code uses, never one the data chooses.
_Plan: TypeAlias = tuple[str, type, bool, Callable[[Any, Any], object]]
_plans: dict[EventForm, _Plan] = {}


def _plan(event: EventForm) -> _Plan:
    event_type, event_class, event_field = event
    slot = event_class.__dict__.get(event_field)
    if type(slot) is MemberDescriptorType:
        # A slotted class (PayloadPart): its slot's own setter, which a frozen dataclass's
        # __setattr__ does not guard; half the cost of object.__setattr__ or of a __dict__.
        setter: Callable[[Any, Any], object] = slot.__set__
    else:

        def setter(part: Any, value: Any) -> None:
            _set(part, event_field, value)

    plan = _plans[event] = (event_type, event_class, event_class is bytes, setter)
    # An entry from the start, so that the every-chunk path reads it by subscript, not .get().
    _event_blocks.setdefault(event_type, _NO_BLOCK)
    return plan


def _unplanned(part: Any, value: Any) -> None:  # pragma: no cover - see its one use
    raise AssertionError("a decoder without an EventForm makes no event objects")


def _decode_messages(data: bytes, pos: int, out: list[Any], plan: _Plan | None = None) -> int:
    """Append every complete message of ``data[pos:]`` to ``out``; return where the rest starts.

    With ``plan`` (from an EventForm (type, class, field)), an event of that ``:event-type`` is
    appended as an instance of ``class`` with its payload in ``field`` rather than as a
    ``Message`` (a stream's every-event path: one object per event, not three); with ``class``
    ``bytes``, as its payload alone.

    This is the hot loop: it reads straight from ``data`` by offset and copies each message but
    its CRC once (for the CRC), then its header block (to compare or parse) and its payload. A
    token stream's chunk holds one event, so what is done once per call counts as much as the
    loop.
    """
    if plan is None:
        event_type: str | None = None
        event_class: type = object
        as_bytes = False
        setter: Callable[[Any, Any], object] = _unplanned  # no event_type: never called
        known, known_length, lowest, highest = _NO_BLOCK
    else:
        event_type, event_class, as_bytes, setter = plan
        known, known_length, lowest, highest = _event_blocks[event_type]  # set with the plan
    end = len(data)
    last = end - _PRELUDE_LENGTH  # the last position a prelude can start at
    payload_skip = lowest - 4  # a known event's payload starts this far into it
    if end > highest or end > _FAST_CHUNK_MAX:
        # The fast path bounds a message's length by the chunk's (message_end <= end), which
        # bounds it by the longest the block allows only while the chunk is no longer than that
        # (24 MiB). And it slices a message's payload from the message's copy, both held at
        # once: a chunk of over 1 MiB (a long message, as the buffer hands it over) takes the
        # general path, which slices the payload from the chunk once its CRC's copy is freed.
        # Both check each message.
        known_length = -1
    # A message's CRC and the next one's lengths lie side by side: read in one unpack, while the
    # chunk holds all twelve bytes (about 7 % less per event decoded than an unpack for each).
    tail_last = end - _TAIL.size  # the last position a tail can start at
    if pos <= last:
        total, headers_length = _LENGTHS.unpack_from(data, pos)
    while pos <= last:
        # Each offset computed once: past 256, every sum is an int object made and freed.
        message_end = pos + total
        crc_at = message_end - 4
        if (
            headers_length == known_length
            and lowest <= total
            and message_end <= end  # and so total <= end <= highest (above)
        ):
            if crc_at <= tail_last:
                crc, next_total, next_headers_length = _TAIL.unpack_from(data, crc_at)
            else:  # the chunk's last message: the loop ends with it
                crc = _U32.unpack_from(data, crc_at)[0]
                next_total = next_headers_length = 0
            # The message but its CRC, copied once for it: its block and payload are sliced from
            # the copy, at offsets that for the usual block are under 256 (ints Python keeps, where
            # each offset into the chunk would be one made and freed).
            message = data[pos:crc_at]
            if crc32(message) == crc and message[12:payload_skip] == known:  # 12: the prelude
                # The known event, whole and sound (its CRC covers the prelude and its CRC too).
                # Anything else, a bad CRC included, is left to the general path below.
                if as_bytes:
                    out.append(message[payload_skip:])
                else:
                    part: Any = _new(event_class)  # without a Python-level __init__ frame
                    setter(part, message[payload_skip:])
                    out.append(part)
                pos = message_end
                total, headers_length = next_total, next_headers_length
                continue
        prelude_crc = _U32.unpack_from(data, pos + 8)[0]
        if (
            total < _MIN_MESSAGE_LENGTH
            or headers_length > EVENTSTREAM_MAX_HEADERS_LENGTH
            or headers_length > total - _MIN_MESSAGE_LENGTH
            or total - headers_length - _MIN_MESSAGE_LENGTH > EVENTSTREAM_MAX_PAYLOAD_LENGTH
        ):
            _check_prelude(data, pos)  # raises the precise error (a bad prelude CRC first)
        if message_end > end:
            # Incomplete: the prelude's own CRC vouches for the length we are going to wait for.
            if crc32(data[pos : pos + 8]) != prelude_crc:
                _check_prelude(data, pos)
            break
        # The message CRC covers the prelude and its CRC too, so when it matches, the prelude is
        # good (checked apart only to name the error). A slice rather than a memoryview: for the
        # small messages of a token stream, copying a few hundred bytes costs less than a view.
        if crc32(data[pos:crc_at]) != _U32.unpack_from(data, crc_at)[0]:
            _check_prelude(data, pos)  # a corrupt prelude is reported as such
            raise EventStreamError("event stream message CRC mismatch (corrupt stream)")
        headers_end = pos + _PRELUDE_LENGTH + headers_length
        block = data[pos + _PRELUDE_LENGTH : headers_end]
        entry = _header_cache.get(block) or _parse_block(block)
        if event_type is not None and entry[1] == event_type:
            if as_bytes:
                out.append(data[headers_end:crc_at])
            else:
                part = _new(event_class)
                setter(part, data[headers_end:crc_at])
                out.append(part)
            if block != known and len(block) <= _HEADER_CACHE_MAX_BLOCK:
                # The next messages with this block take the fast path above.
                known, known_length = block, headers_length
                lowest = _MIN_MESSAGE_LENGTH + headers_length
                highest = lowest + EVENTSTREAM_MAX_PAYLOAD_LENGTH
                payload_skip = lowest - 4
                _event_blocks[event_type] = (known, known_length, lowest, highest)
                if end > highest or end > _FAST_CHUNK_MAX:
                    known_length = -1  # as above
        else:
            out.append(Message(entry[0].copy(), data[headers_end:crc_at]))
        pos = message_end
        if pos <= last:
            total, headers_length = _LENGTHS.unpack_from(data, pos)
    return pos


def split_first(data: bytes) -> tuple[bytes, bytes]:
    """``data`` cut after its first message, if it holds that whole and more; else ``(data, b"")``.

    For a stream's first chunk: it holds every event that came with or right after the
    response headers, hundreds at times, and decoding them all before handing out the first
    would put the first part that much later than a raw read's first bytes. The cut follows the
    prelude's length unchecked: the decoder checks each piece as it would the whole, and
    reports the same errors in the same order.
    """
    if len(data) > _PRELUDE_LENGTH:
        total = _U32.unpack_from(data)[0]
        if _MIN_MESSAGE_LENGTH <= total < len(data):
            return data[:total], data[total:]
    return data, b""


def unraised(error: EventStreamError) -> EventStreamError:
    """What a decoder keeps of an error, and what is raised of one it kept: the same error, a
    different object. A raised error's traceback holds the frames it passed through, the
    decoder's among them: kept by the decoder, it would close a cycle (decoder, error,
    traceback, frame, decoder) that only the garbage collector frees, and the stream, its
    response and its task with it."""
    return EventStreamError(*error.args)


class EventStreamDecoder:
    """Incremental decoder: ``feed`` chunks as they arrive, then ``close`` at the end of the body.

    Messages that arrive whole inside a chunk are decoded from the chunk itself; only the
    incomplete message at a chunk's end is kept in a buffer, so every byte is copied about once
    however the stream is cut. After an ``EventStreamError`` the decoder refuses further input.
    """

    __slots__ = ("_buffer", "_error", "_event", "_need")

    def __init__(self, *, event: EventForm | None = None) -> None:
        """``event`` = (``:event-type``, class, field): :meth:`feed_events` hands out events of
        that type as instances of the class, the payload in the field (set as on a frozen
        dataclass, without calling ``__init__``); with the class ``bytes``, as the payload."""
        self._event = None if event is None else (_plans.get(event) or _plan(event))
        # The start of one incomplete message, never a whole one.
        self._buffer = bytearray()
        # How many bytes _buffer must hold before we can make progress: the prelude length while
        # the prelude is incomplete, then (once the prelude is checked) the message's total length.
        self._need = _PRELUDE_LENGTH
        self._error: EventStreamError | None = None

    @property
    def _header_cache(self) -> dict[bytes, _HeaderEntry]:
        return _header_cache  # shared by every decoder

    @property
    def pending(self) -> int:
        """Bytes received that do not yet form a complete message."""
        return len(self._buffer)

    def feed(self, data: bytes | bytearray | memoryview) -> list[Message]:
        """Add ``data`` and return the messages it completes (possibly none).

        When ``data`` holds good messages and then a bad one, the good ones are returned and the
        error is kept in :attr:`error` (raised by every later call): whether they arrive depends on
        how the network split the bytes, so they are never thrown away with the bad one.
        """
        messages: list[Message] = []
        self._feed_checked(data, messages, None)
        return messages

    def feed_events(self, data: bytes | bytearray | memoryview) -> list[Any]:
        """Like :meth:`feed`, but each event of the type given to the constructor comes as an
        instance of its class; other messages come as ``Message``."""
        out: list[Any]
        if self._buffer or self._error is not None or type(data) is not bytes:
            out = []
            self._feed_checked(data, out, self._event)
            return out
        plan = self._event
        if plan is not None:
            # A token stream's chunk: nearly always one event, whole, with the known header
            # block. It is checked as _decode_messages's fast path checks each event (lengths,
            # block, CRC), without that function's call, set-up and loop: a sixth less per
            # event. Anything else, a chunk of several events included, goes on below.
            known, known_length, lowest, highest = _event_blocks[plan[0]]  # set with the plan
            if lowest <= len(data) <= highest:  # never without a known block (highest -1)
                total, headers_length = _LENGTHS.unpack_from(data)
                if (
                    total == len(data)
                    and headers_length == known_length
                    and data[_PRELUDE_LENGTH : lowest - 4] == known
                    and crc32(data[:-4]) == _U32.unpack_from(data, total - 4)[0]
                ):
                    payload = data[lowest - 4 : -4]
                    if plan[2]:
                        return [payload]
                    part: Any = _new(plan[1])
                    plan[3](part, payload)
                    return [part]
        # The every-event path: nothing buffered, so decode straight from the chunk.
        out = []
        try:
            pos = _decode_messages(data, 0, out, plan)
            if pos < len(data):
                self._keep(data[pos:])
        except EventStreamError as exc:
            self._error = unraised(exc)
            if not out:
                raise
        return out

    def _feed_checked(
        self, data: bytes | bytearray | memoryview, out: list[Any], event: _Plan | None
    ) -> None:
        if self._error is not None:
            raise EventStreamError(f"event stream decoder already failed: {self._error}")
        try:
            self._feed(data if type(data) is bytes else bytes(data), out, event)
        except EventStreamError as exc:
            self._error = unraised(exc)
            if not out:
                raise

    @property
    def error(self) -> EventStreamError | None:
        """The error that stopped the decoder, if any."""
        return self._error

    def close(self) -> None:
        """Declare the end of the stream; raise if it stopped inside a message."""
        if self._error is not None:
            raise EventStreamError(f"event stream decoder already failed: {self._error}")
        if self._buffer:
            self._error = EventStreamError(
                f"event stream truncated: {len(self._buffer)} bytes of an incomplete message"
            )
            raise unraised(self._error)

    def _feed(self, data: bytes, messages: list[Any], event: _Plan | None) -> None:
        start = 0
        buffer = self._buffer
        if buffer:
            # Finish the buffered message with just the bytes it lacks from the head of data.
            while True:
                missing = self._need - len(buffer)
                if len(data) - start < missing:
                    buffer += data[start:]
                    return
                buffer += data[start : start + missing]
                start += missing
                if len(buffer) == _PRELUDE_LENGTH:
                    self._need = _check_prelude(buffer, 0)
                    continue
                break
            _decode_messages(bytes(buffer), 0, messages, event)
            buffer.clear()
            self._need = _PRELUDE_LENGTH
        pos = _decode_messages(data, start, messages, event)
        if pos < len(data):
            self._keep(data[pos:])

    def _keep(self, rest: bytes) -> None:
        """Buffer the start of an incomplete message (the buffer is empty before)."""
        buffer = self._buffer
        buffer += rest
        if len(buffer) >= _PRELUDE_LENGTH:
            self._need = _check_prelude(buffer, 0)


def __getattr__(name: str) -> object:
    # The SageMaker message kinds moved to _stream_events; old imports keep working.
    if name in _MOVED:
        from . import _stream_events

        return getattr(_stream_events, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_MOVED = frozenset({"encode_payload_part", "encode_exception", "encode_error", "message_to_part"})
