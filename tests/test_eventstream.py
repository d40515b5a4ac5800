"""The event-stream codec: test vector, botocore differential, chunking, corruption, message kinds."""

from __future__ import annotations

import json
import logging
import struct
import uuid
import zlib
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from botocore.eventstream import DuplicateHeader, EventStreamBuffer
from hypothesis import given, settings
from hypothesis import strategies as st

from sagemaker_rt_aio._constants import (
    EVENTSTREAM_MAX_HEADERS_LENGTH,
    EVENTSTREAM_MAX_PAYLOAD_LENGTH,
)
from sagemaker_rt_aio._errors import (
    EventStreamError,
    InternalStreamFailure,
    ModelStreamError,
    ServiceError,
)
from sagemaker_rt_aio._eventstream import (
    EventStreamDecoder,
    HeaderValue,
    Int8,
    Int16,
    Int32,
    Int64,
    Message,
    encode_headers,
    encode_message,
)
from sagemaker_rt_aio._stream_events import (
    encode_error,
    encode_exception,
    encode_payload_part,
    message_to_part,
)
from sagemaker_rt_aio._types import PayloadPart

# The reference vector: a PayloadPart carrying b'{"x":1}'.
VECTOR = bytes.fromhex(
    "00000070000000598e47d6f60b3a6576656e742d7479706507000b5061796c6f616450617274"
    "0d3a636f6e74656e742d747970650700186170706c69636174696f6e2f6f637465742d73747265616d"
    "0d3a6d6573736167652d747970650700056576656e747b2278223a317d6ac2b1f0"
)
VECTOR_HEADERS: dict[str, HeaderValue] = {
    ":event-type": "PayloadPart",
    ":content-type": "application/octet-stream",
    ":message-type": "event",
}
UTC = timezone.utc
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MIN_MS = (datetime.min.replace(tzinfo=UTC) - EPOCH) // timedelta(milliseconds=1)
MAX_MS = (datetime.max.replace(tzinfo=UTC) - EPOCH) // timedelta(milliseconds=1)

SETTINGS = settings(max_examples=60, deadline=None)


# ------------------------------------------------------------------------------------- helpers


def raw_header(name: bytes, kind: int, value: bytes = b"") -> bytes:
    """An independent (struct-only) encoding of one header, for bytes our encoder would refuse."""
    return bytes((len(name),)) + name + bytes((kind,)) + value


def raw_message(
    header_block: bytes,
    payload: bytes = b"",
    *,
    total: int | None = None,
    headers_length: int | None = None,
) -> bytes:
    """A frame with correct CRCs around whatever lengths and header bytes we give it."""
    if total is None:
        total = 16 + len(header_block) + len(payload)
    if headers_length is None:
        headers_length = len(header_block)
    prelude = struct.pack(">II", total, headers_length)
    prelude += struct.pack(">I", zlib.crc32(prelude))
    body = prelude + header_block + payload
    return body + struct.pack(">I", zlib.crc32(body))


def decode_all(*chunks: bytes) -> list[Message]:
    decoder = EventStreamDecoder()
    messages = [m for chunk in chunks for m in decoder.feed(chunk)]
    decoder.close()
    return messages


def botocore_decode(stream: bytes) -> list[tuple[dict[str, Any], bytes]]:
    buffer = EventStreamBuffer()
    buffer.add_data(stream)
    return [(m.headers, m.payload) for m in buffer]


def normalized(headers: dict[str, Any]) -> dict[str, tuple[bool, Any]]:
    """Our header values in botocore's representation (timestamp as ms, UUID as 16 bytes).

    The bool flag keeps ``True`` from comparing equal to ``1``.
    """

    def plain(value: Any) -> Any:
        if isinstance(value, datetime):
            return (value - EPOCH) // timedelta(milliseconds=1)
        if isinstance(value, uuid.UUID):
            return value.bytes
        return value

    return {name: (isinstance(v, bool), plain(v)) for name, v in headers.items()}


def frame_boundaries(messages: list[bytes]) -> set[int]:
    ends, offset = {0}, 0
    for message in messages:
        offset += len(message)
        ends.add(offset)
    return ends


# ---------------------------------------------------------------------------------- strategies

header_names = st.text(min_size=1, max_size=24).filter(lambda s: len(s.encode()) <= 255)
timestamps = st.integers(MIN_MS, MAX_MS).map(lambda ms: EPOCH + timedelta(milliseconds=ms))
header_values: st.SearchStrategy[HeaderValue] = st.one_of(
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.binary(max_size=40),
    st.text(max_size=40),
    timestamps,
    st.uuids(),
    st.integers(-(2**7), 2**7 - 1).map(Int8),
    st.integers(-(2**15), 2**15 - 1).map(Int16),
    st.integers(-(2**31), 2**31 - 1).map(Int32),
    st.integers(-(2**63), 2**63 - 1).map(Int64),
)
header_sets = st.dictionaries(header_names, header_values, max_size=6)
payloads = st.binary(max_size=300)
frames = st.lists(st.tuples(header_sets, payloads), min_size=1, max_size=5)
part_streams = st.lists(payloads, min_size=1, max_size=6).map(
    lambda parts: [encode_payload_part(p) for p in parts]
)


@st.composite
def raw_header_sets(draw: st.DrawFn) -> tuple[bytes, dict[str, Any]]:
    """Header bytes of every wire type, built without our encoder, and what botocore should see."""
    block, expected = b"", {}
    for name in draw(st.lists(header_names, unique=True, max_size=6)):
        kind = draw(st.integers(0, 9))
        value: Any
        if kind in (0, 1):
            raw, value = b"", kind == 0
        elif kind in (2, 3, 4, 5, 8):
            fmt = {2: ">b", 3: ">h", 4: ">i", 5: ">q", 8: ">q"}[kind]
            bits = struct.calcsize(fmt) * 8
            low, high = (MIN_MS, MAX_MS) if kind == 8 else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
            value = draw(st.integers(low, high))
            raw = struct.pack(fmt, value)
        elif kind == 6:
            value = draw(st.binary(max_size=40))
            raw = struct.pack(">H", len(value)) + value
        elif kind == 7:
            value = draw(st.text(max_size=40))
            raw = struct.pack(">H", len(value.encode())) + value.encode()
        else:
            value = raw = draw(st.binary(min_size=16, max_size=16))
        block += raw_header(name.encode(), kind, raw)
        expected[name] = value
    return block, expected


# --------------------------------------------------------------------------------- test vector


def test_encoder_reproduces_the_reference_vector() -> None:
    assert encode_payload_part(b'{"x":1}') == VECTOR
    assert encode_message(VECTOR_HEADERS, b'{"x":1}') == VECTOR
    assert len(VECTOR) == 112


def test_decoder_decodes_the_reference_vector() -> None:
    (message,) = decode_all(VECTOR)
    assert message == Message(VECTOR_HEADERS, b'{"x":1}')
    assert list(message.headers) == list(VECTOR_HEADERS)  # order kept
    assert message_to_part(message) == PayloadPart(bytes=b'{"x":1}')
    assert botocore_decode(VECTOR) == [(VECTOR_HEADERS, b'{"x":1}')]


# ------------------------------------------------------------------------ botocore differential


@SETTINGS
@given(frames)
def test_botocore_decodes_what_we_encode(
    frames: list[tuple[dict[str, HeaderValue], bytes]],
) -> None:
    stream = b"".join(encode_message(h, p) for h, p in frames)
    decoded = botocore_decode(stream)
    assert [(normalized(h), p) for h, p in frames] == [
        ({k: (isinstance(v, bool), v) for k, v in h.items()}, p) for h, p in decoded
    ]


@SETTINGS
@given(frames)
def test_round_trip_keeps_values_types_and_bytes(
    frames: list[tuple[dict[str, HeaderValue], bytes]],
) -> None:
    encoded = [encode_message(h, p) for h, p in frames]
    decoded = decode_all(b"".join(encoded))
    assert [(m.headers, m.payload) for m in decoded] == frames
    # Re-encoding what we decoded gives the same bytes: every header kept its wire type and order.
    assert [encode_message(m.headers, m.payload) for m in decoded] == encoded
    assert all(type(m.payload) is bytes for m in decoded)


@SETTINGS
@given(st.lists(st.tuples(raw_header_sets(), payloads), min_size=1, max_size=4))
def test_we_decode_what_botocore_accepts(
    frames: list[tuple[tuple[bytes, dict[str, Any]], bytes]],
) -> None:
    stream = b"".join(raw_message(block, payload) for (block, _), payload in frames)
    expected = [({k: (isinstance(v, bool), v) for k, v in h.items()}, p) for (_, h), p in frames]
    assert [
        ({k: (isinstance(v, bool), v) for k, v in h.items()}, p) for h, p in botocore_decode(stream)
    ] == expected
    assert [(normalized(m.headers), m.payload) for m in decode_all(stream)] == expected


def test_duplicate_header_is_rejected_like_botocore() -> None:
    block = raw_header(b"a", 0) + raw_header(b"a", 1)
    stream = raw_message(block, b"x")
    with pytest.raises(DuplicateHeader):
        botocore_decode(stream)
    with pytest.raises(EventStreamError, match="twice"):
        decode_all(stream)


# ---------------------------------------------------------------------------------- chunking


@SETTINGS
@given(st.data(), frames)
def test_any_split_decodes_to_the_same_messages(
    data: st.DataObject, frames: list[tuple[dict[str, HeaderValue], bytes]]
) -> None:
    stream = b"".join(encode_message(h, p) for h, p in frames)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=12)))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    decoder = EventStreamDecoder()
    decoded = []
    for chunk in chunks:
        decoded += decoder.feed(chunk)
    assert decoder.pending == 0
    decoder.close()
    assert [(m.headers, m.payload) for m in decoded] == frames


def test_every_byte_split_of_a_small_stream() -> None:
    frames: list[tuple[dict[str, HeaderValue], bytes]] = [
        (VECTOR_HEADERS, b"first"),
        ({"n": 7, "flag": False, "id": uuid.UUID(int=5)}, b""),
        ({}, b"no headers at all"),
    ]
    stream = b"".join(encode_message(h, p) for h, p in frames)
    decoder = EventStreamDecoder()
    decoded, pending = [], []
    for i in range(len(stream)):
        decoded += decoder.feed(stream[i : i + 1])
        pending.append(decoder.pending)
    decoder.close()
    assert [(m.headers, m.payload) for m in decoded] == frames
    ends = frame_boundaries([encode_message(h, p) for h, p in frames])
    # pending counts the bytes of the incomplete message and drops to 0 at each boundary.
    assert [i + 1 for i, n in enumerate(pending) if n == 0] == sorted(ends - {0})


def test_accepts_bytearray_and_memoryview_and_returns_bytes() -> None:
    decoder = EventStreamDecoder()
    messages = decoder.feed(bytearray(VECTOR[:50])) + decoder.feed(memoryview(VECTOR)[50:])
    assert [type(m.payload) for m in messages] == [bytes]
    assert messages[0].payload == b'{"x":1}'


def test_mutating_returned_headers_does_not_leak_into_later_messages() -> None:
    decoder = EventStreamDecoder()
    first = decoder.feed(VECTOR * 3)
    for message in first:
        message.headers[":event-type"] = "Changed"
    (later,) = decoder.feed(VECTOR)
    assert later.headers == VECTOR_HEADERS
    assert [m.headers[":event-type"] for m in first] == ["Changed"] * 3


def test_good_messages_before_a_corrupt_one_are_returned_and_the_error_kept() -> None:
    good = encode_payload_part(b"first") + encode_payload_part(b"second")
    bad = bytearray(encode_payload_part(b"third"))
    bad[-1] ^= 0xFF  # break the message CRC
    decoder = EventStreamDecoder()
    decoded = decoder.feed(good + bytes(bad))
    assert [m.payload for m in decoded] == [b"first", b"second"]
    assert decoder.error is not None and "CRC mismatch" in str(decoder.error)
    with pytest.raises(EventStreamError, match="already failed"):
        decoder.feed(b"")
    with pytest.raises(EventStreamError, match="already failed"):
        decoder.close()


def test_many_distinct_header_blocks() -> None:
    frames: list[tuple[dict[str, HeaderValue], bytes]] = [
        ({":message-type": "event", "seq": i}, b"p%d" % i) for i in range(100)
    ]
    decoder = EventStreamDecoder()
    decoded = decoder.feed(b"".join(encode_message(h, p) for h, p in frames))
    assert [(m.headers, m.payload) for m in decoded] == frames
    assert len(decoder._header_cache) <= 16  # the cache of parsed header blocks stays bounded


# -------------------------------------------------------------------------------- corruption


@SETTINGS
@given(st.data(), part_streams)
def test_any_flipped_byte_raises(data: st.DataObject, messages: list[bytes]) -> None:
    stream = bytearray(b"".join(messages))
    index = data.draw(st.integers(0, len(stream) - 1))
    stream[index] ^= data.draw(st.integers(1, 255))
    cut = data.draw(st.integers(0, len(stream)))
    decoder = EventStreamDecoder()
    # Sound: CRC-32 catches every error within 32 bits, so the one changed byte breaks the prelude
    # CRC (lengths, prelude CRC) or the message CRC (anything else), all bytes being fed here.
    # Messages before the damaged one may be returned by the same feed (the error is then kept in
    # decoder.error); the damage itself must surface as a CRC mismatch, by raising or in .error.
    try:
        decoder.feed(bytes(stream[:cut]))
        decoder.feed(bytes(stream[cut:]))
    except EventStreamError as exc:
        assert "CRC mismatch" in str(exc)
    else:
        assert decoder.error is not None and "CRC mismatch" in str(decoder.error)
    # The decoder stays failed.
    with pytest.raises(EventStreamError, match="already failed"):
        decoder.feed(b"")
    with pytest.raises(EventStreamError, match="already failed"):
        decoder.close()


@SETTINGS
@given(st.data(), part_streams)
def test_truncation_raises_on_close(data: st.DataObject, messages: list[bytes]) -> None:
    stream = b"".join(messages)
    cut = data.draw(st.integers(1, len(stream) - 1))
    ends = frame_boundaries(messages)
    decoder = EventStreamDecoder()
    decoded = decoder.feed(stream[:cut])
    complete = sum(1 for end in ends if 0 < end <= cut)
    assert len(decoded) == complete
    assert decoder.pending == cut - max(end for end in ends if end <= cut)
    if cut in ends:
        decoder.close()  # a cut between messages is a valid, shorter stream
    else:
        with pytest.raises(EventStreamError, match="truncated"):
            decoder.close()
        with pytest.raises(EventStreamError, match="already failed"):
            decoder.close()


def test_clean_close_and_empty_stream() -> None:
    assert decode_all() == []
    assert decode_all(b"", b"") == []


@pytest.mark.parametrize(
    ("block", "match"),
    [
        (raw_header(b"x", 10), "unknown type 10"),
        (raw_header(b"x", 7, b"\x00\x05abc"), "past the header block"),
        (raw_header(b"x", 7, b"\x00"), "past the header block"),
        (raw_header(b"x", 4, b"\x00\x00"), "past the header block"),
        (raw_header(b"x", 9, b"\x00" * 15), "past the header block"),
        (b"\x05ab", "past the header block"),
        (b"\x01x", "past the header block"),  # the type byte is missing
        (raw_header(b"\xff\xfe", 0), "UTF-8"),
        (raw_header(b"x", 7, b"\x00\x02\xc3\x28"), "UTF-8"),
        (raw_header(b"t", 8, struct.pack(">q", 2**62)), "out of range"),
    ],
)
def test_bad_header_blocks_raise(block: bytes, match: str) -> None:
    with pytest.raises(EventStreamError, match=match):
        decode_all(raw_message(block, b"payload"))


# ------------------------------------------------------------------------------------ limits


def test_headers_length_limit() -> None:
    at_limit = EVENTSTREAM_MAX_HEADERS_LENGTH
    decoder = EventStreamDecoder()
    # A prelude within the limit is accepted and waits for the rest of the message.
    assert decoder.feed(raw_message(b"", total=at_limit + 16, headers_length=at_limit)[:12]) == []
    assert decoder.pending == 12
    over = raw_message(b"", total=at_limit + 17, headers_length=at_limit + 1)[:12]
    with pytest.raises(EventStreamError, match="headers length 131073 is over the limit"):
        EventStreamDecoder().feed(over)


def test_payload_length_limit() -> None:
    at_limit = EVENTSTREAM_MAX_PAYLOAD_LENGTH
    decoder = EventStreamDecoder()
    assert decoder.feed(raw_message(b"", total=at_limit + 16)[:12]) == []
    over = raw_message(b"", total=at_limit + 17)[:12]
    with pytest.raises(EventStreamError, match="payload length 25165825 is over the limit"):
        EventStreamDecoder().feed(over)


@pytest.mark.parametrize(
    ("total", "headers_length", "match"),
    [(15, 0, "below the minimum"), (0, 0, "below the minimum"), (20, 5, "exceeds message length")],
)
def test_inconsistent_lengths_raise(total: int, headers_length: int, match: str) -> None:
    frame = raw_message(b"", total=total, headers_length=headers_length)
    with pytest.raises(EventStreamError, match=match):
        EventStreamDecoder().feed(frame + b"\x00" * 16)


def test_encoder_refuses_what_cannot_be_framed() -> None:
    with pytest.raises(ValueError, match="payload"):
        encode_payload_part(b"\x00" * (EVENTSTREAM_MAX_PAYLOAD_LENGTH + 1))
    with pytest.raises(ValueError, match="header"):
        encode_message({"a": b"x" * 65536}, b"")
    with pytest.raises(ValueError, match="name"):
        encode_message({"n" * 256: True}, b"")
    with pytest.raises(ValueError, match="64 bits"):
        encode_message({"big": 2**63}, b"")
    with pytest.raises(ValueError, match="out of range"):
        encode_message({"small": Int8(128)}, b"")
    with pytest.raises(TypeError, match="float"):
        encode_message({"f": 1.5}, b"")  # type: ignore[dict-item]


def test_int_width_choice_and_naive_datetime() -> None:
    def wire_type(value: HeaderValue) -> int:
        return encode_message({"v": value}, b"")[12 + 2]

    values: list[HeaderValue] = [True, False, Int8(1), Int16(1), 2**31 - 1, 2**31, b"", ""]
    values += [EPOCH, uuid.UUID(int=0), -(2**31), -(2**31) - 1, Int32(1), Int64(1)]
    assert [wire_type(v) for v in values] == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 4, 5, 4, 5]
    naive = datetime(2024, 5, 1, 12, 0, 0, 123000)
    (message,) = decode_all(encode_message({"t": naive}, b""))
    assert message.headers["t"] == naive.replace(tzinfo=UTC)
    assert repr(Int16(3)) == "Int16(3)"


# -------------------------------------------------------------------------- message_to_part


def to_part(frame: bytes, **kwargs: Any) -> PayloadPart | None:
    (message,) = decode_all(frame)
    return message_to_part(message, **kwargs)


def test_payload_part() -> None:
    assert to_part(encode_payload_part(b"tok")) == PayloadPart(bytes=b"tok")
    assert to_part(encode_payload_part(b"")) == PayloadPart(bytes=b"")


def test_unknown_event_type_is_skipped_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    frame = encode_message({":message-type": "event", ":event-type": "FutureThing"}, b"{}")
    with caplog.at_level(logging.DEBUG, logger="sagemaker_rt_aio"):
        assert to_part(frame) is None
    assert [(r.name, r.levelno) for r in caplog.records if "FutureThing" in r.getMessage()] == [
        ("sagemaker_rt_aio", logging.DEBUG)
    ]


def test_model_stream_error_surfaces_error_code() -> None:
    frame = encode_exception(
        "ModelStreamError", "Model timed out", error_code="ModelInvocationTimeExceeded"
    )
    with pytest.raises(ModelStreamError) as caught:
        to_part(frame, request_id="req-1", status_code=200)
    error = caught.value
    assert (error.code, error.message, error.error_code) == (
        "ModelStreamError",
        "Model timed out",
        "ModelInvocationTimeExceeded",
    )
    assert (error.status_code, error.request_id) == (200, "req-1")
    assert "req-1" in str(error)


def test_model_stream_error_with_lowercase_message_and_no_error_code() -> None:
    headers = {
        ":exception-type": "ModelStreamError",
        ":content-type": "application/json",
        ":message-type": "exception",
    }
    frame = encode_message(headers, json.dumps({"message": "stream broke"}).encode())
    with pytest.raises(ModelStreamError) as caught:
        to_part(frame)
    assert (caught.value.message, caught.value.error_code) == ("stream broke", None)


def test_exception_payload_that_is_not_json_becomes_the_message() -> None:
    headers = {":exception-type": "ModelStreamError", ":message-type": "exception"}
    with pytest.raises(ModelStreamError) as caught:
        to_part(encode_message(headers, b"plain text"))
    assert caught.value.message == "plain text"


def test_internal_stream_failure() -> None:
    with pytest.raises(InternalStreamFailure) as caught:
        to_part(encode_exception("InternalStreamFailure", "oops"), status_code=200)
    assert (caught.value.code, caught.value.message) == ("InternalStreamFailure", "oops")
    assert not isinstance(caught.value, ModelStreamError)


def test_unknown_exception_type_is_a_plain_service_error() -> None:
    with pytest.raises(ServiceError) as caught:
        to_part(encode_exception("SomethingNew", "what", error_code="X"))
    assert type(caught.value) is ServiceError
    assert (caught.value.code, caught.value.message) == ("SomethingNew", "what")


def test_error_message() -> None:
    with pytest.raises(ServiceError) as caught:
        to_part(encode_error("InternalFailure", "broke down"), request_id="r")
    assert type(caught.value) is ServiceError
    assert (caught.value.code, caught.value.message, caught.value.request_id) == (
        "InternalFailure",
        "broke down",
        "r",
    )
    (message,) = decode_all(encode_error("C", "m"))
    assert message.payload == b""
    assert message.headers[":message-type"] == "error"


def test_non_string_exception_type_is_not_trusted() -> None:
    headers: dict[str, HeaderValue] = {
        ":exception-type": b"ModelStreamError",
        ":message-type": "exception",
    }
    with pytest.raises(ServiceError) as caught:
        to_part(encode_message(headers, b'{"Message": "m"}'))
    assert type(caught.value) is ServiceError
    assert (caught.value.code, caught.value.message) == ("UnknownException", "m")


@pytest.mark.parametrize("headers", [{":message-type": "weird"}, {}, {":message-type": b"event"}])
def test_unknown_message_type_raises(headers: dict[str, HeaderValue]) -> None:
    with pytest.raises(EventStreamError, match="message-type"):
        to_part(encode_message(headers, b""))


@pytest.mark.parametrize("learned_in_the_same_chunk", [False, True])
def test_a_known_event_over_the_payload_limit_is_refused(learned_in_the_same_chunk: bool) -> None:
    """The fast path for events with the known header block bounds their length by the chunk's;
    a chunk longer than any such event may be takes the general path, which refuses it."""
    # An event type of this test's own: its header block is learned from the first event below.
    event_type = f"OverLimit{learned_in_the_same_chunk}"
    block = encode_headers({":event-type": event_type, ":message-type": "event"})
    small = raw_message(block, b"ok")
    over = raw_message(block, b"\x00" * (EVENTSTREAM_MAX_PAYLOAD_LENGTH + 1))
    decoder = EventStreamDecoder(event=(event_type, bytes, ""))
    if learned_in_the_same_chunk:
        assert decoder.feed_events(small + over) == [b"ok"]  # the good event before the bad one
        assert decoder.error is not None
        assert "over the limit" in str(decoder.error)
    else:
        assert decoder.feed_events(small) == [b"ok"]
        with pytest.raises(EventStreamError, match="payload length 25165825 is over the limit"):
            decoder.feed_events(over)
