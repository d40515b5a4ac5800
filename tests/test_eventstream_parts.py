"""``EventStreamDecoder.feed_events``, the response stream's per-event path, and the header cache
shared across decoders: the same results as ``feed`` + ``message_to_part``, cut anywhere."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sagemaker_rt_aio._errors import EventStreamError, ModelStreamError
from sagemaker_rt_aio._eventstream import (
    _HEADER_CACHE_SIZE,
    EventStreamDecoder,
    Message,
    encode_message,
)
from sagemaker_rt_aio._stream_events import (
    encode_exception,
    encode_payload_part,
    message_to_part,
)
from sagemaker_rt_aio._types import PayloadPart

PART = ("PayloadPart", PayloadPart, "bytes")  # as the response stream configures its decoder

events = st.lists(
    st.one_of(
        st.binary(max_size=200).map(encode_payload_part),
        st.binary(max_size=50).map(
            lambda p: encode_message({":message-type": "event", ":event-type": "Other"}, p)
        ),
        st.binary(max_size=50).map(
            lambda p: encode_message(
                {":message-type": "event", ":event-type": "PayloadPart", "extra": 1}, p
            )
        ),
    ),
    min_size=1,
    max_size=8,
)


def _via_feed(chunks: list[bytes]) -> list[object]:
    decoder = EventStreamDecoder()
    return [message_to_part(m) for chunk in chunks for m in decoder.feed(chunk)]


def _via_feed_events(chunks: list[bytes]) -> list[object]:
    decoder = EventStreamDecoder(event=PART)
    out: list[object] = []
    for chunk in chunks:
        for item in decoder.feed_events(chunk):
            out.append(message_to_part(item) if isinstance(item, Message) else item)
    decoder.close()
    return out


@settings(max_examples=80, deadline=None)
@given(events, st.lists(st.integers(0, 2000), max_size=6))
def test_feed_events_equals_feed_and_message_to_part(frames: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(frames)
    points = sorted({min(c, len(stream)) for c in cuts})
    chunks = [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True)]
    assert _via_feed_events(chunks) == _via_feed(chunks)


def test_payload_parts_come_as_payload_parts_and_others_as_messages_in_order() -> None:
    stream = (
        encode_payload_part(b"one")
        + encode_exception("ModelStreamError", "boom", error_code="E1")
        + encode_payload_part(b"two")
    )
    items = EventStreamDecoder(event=PART).feed_events(stream)
    assert items[0] == PayloadPart(b"one") and items[2] == PayloadPart(b"two")
    assert isinstance(items[1], Message)
    with pytest.raises(ModelStreamError, match="boom"):
        message_to_part(items[1])


def test_parts_before_a_corrupt_message_are_returned_then_the_error_kept() -> None:
    bad = bytearray(encode_payload_part(b"three"))
    bad[-1] ^= 0xFF
    decoder = EventStreamDecoder(event=PART)
    items = decoder.feed_events(encode_payload_part(b"one") + encode_payload_part(b"two") + bad)
    assert items == [PayloadPart(b"one"), PayloadPart(b"two")]
    assert decoder.error is not None
    with pytest.raises(EventStreamError, match="already failed"):
        decoder.feed_events(b"")


def test_header_cache_is_shared_across_decoders_and_bounded() -> None:
    EventStreamDecoder(event=PART).feed_events(encode_payload_part(b"warm"))
    fresh = EventStreamDecoder(event=PART)
    block = encode_payload_part(b"x")[12:-5]  # the header block of every PayloadPart
    assert block in fresh._header_cache  # a new stream's first part needs no header parsing
    for i in range(3 * _HEADER_CACHE_SIZE):
        fresh.feed_events(encode_message({":message-type": "event", "seq": i}, b""))
        assert len(fresh._header_cache) <= _HEADER_CACHE_SIZE


def test_cached_headers_are_not_shared_with_callers() -> None:
    frame = encode_message({":message-type": "event", ":event-type": "Other"}, b"p")
    first = EventStreamDecoder().feed(frame)[0]
    first.headers["mutated"] = True
    second = EventStreamDecoder().feed(frame)[0]
    assert "mutated" not in second.headers


@settings(max_examples=150, deadline=None)
@given(st.data(), st.lists(st.binary(max_size=120), min_size=1, max_size=6))
def test_known_header_block_fast_path_catches_any_flipped_byte(
    data: st.DataObject, payloads: list[bytes]
) -> None:
    # Runs of PayloadParts with the usual header block skip the header parsing (_decode_known):
    # a changed byte anywhere, the header block included, must still be a CRC mismatch, and the
    # parts before it must still come out.
    EventStreamDecoder(event=PART).feed_events(encode_payload_part(b"warm"))  # the block is known
    frames = [encode_payload_part(p) for p in payloads]
    stream = bytearray(b"".join(frames))
    index = data.draw(st.integers(0, len(stream) - 1))
    stream[index] ^= data.draw(st.integers(1, 255))
    damaged = next(i for i, end in enumerate(_ends(frames)) if index < end)
    decoder = EventStreamDecoder(event=PART)
    try:
        items = decoder.feed_events(bytes(stream))
    except EventStreamError as exc:
        assert "CRC mismatch" in str(exc) and damaged == 0
    else:
        assert items == [PayloadPart(p) for p in payloads[:damaged]]
        assert decoder.error is not None and "CRC mismatch" in str(decoder.error)


def _ends(frames: list[bytes]) -> list[int]:
    ends, total = [], 0
    for frame in frames:
        total += len(frame)
        ends.append(total)
    return ends


def test_fast_path_and_general_path_agree_when_header_blocks_alternate() -> None:
    other = encode_message({":message-type": "event", ":event-type": "Other"}, b"x")
    extra = encode_message(
        {":message-type": "event", ":event-type": "PayloadPart", "extra": 1}, b"e"
    )
    stream = [encode_payload_part(b"a"), other, encode_payload_part(b"b"), extra]
    stream += [encode_payload_part(b"c"), encode_payload_part(b"d")]
    blob = b"".join(stream)
    for cut in range(len(blob) + 1):
        chunks = [blob[:cut], blob[cut:]]
        assert _via_feed_events(chunks) == _via_feed(chunks)
