"""``EventStreamDecoder.feed_events``, the response stream's per-event path, and the header cache
shared across decoders: the same results as ``feed`` + ``message_to_part``, cut anywhere."""

from __future__ import annotations

import copy
import dataclasses
import pickle
import tracemalloc
import zlib
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sagemaker_rt_aio import _eventstream
from sagemaker_rt_aio._errors import EventStreamError, ModelStreamError
from sagemaker_rt_aio._eventstream import (
    _HEADER_CACHE_SIZE,
    EventForm,
    EventStreamDecoder,
    Message,
    encode_headers,
    encode_message,
    frame,
)
from sagemaker_rt_aio._stream_events import (
    _PAYLOAD_PART_HEADERS,
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
    for one in frames:
        total += len(one)
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


@dataclass(frozen=True)
class _DictPart:  # an event class with a __dict__: the field is set through object.__setattr__
    bytes: bytes


# The three ways a decoder hands out its events: as the stream's PayloadPart (its field a slot,
# set through the slot's own setter), as the payload alone (iter_text's input), and as a class
# whose field lives in its __dict__.
FORMS: list[EventForm] = [
    PART,
    ("PayloadPart", bytes, ""),
    ("PayloadPart", _DictPart, "bytes"),
]


def _outcome(form: EventForm | None, chunk: bytes) -> tuple[list[bytes], str | None]:
    """The payloads a chunk gives, and the error raised or kept, whatever form the parts take.
    ``form`` None: through ``feed`` and ``message_to_part``, which no fast path serves."""
    decoder = EventStreamDecoder(event=form)
    try:
        items: list[Any] = decoder.feed_events(chunk) if form else decoder.feed(chunk)
    except EventStreamError as exc:
        return [], str(exc)
    payloads: list[bytes] = []
    for item in items:
        part = message_to_part(item) if isinstance(item, Message) else item
        if part is not None:  # an event of another type: the stream skips it
            payloads.append(part if isinstance(part, bytes) else part.bytes)
    error = decoder.error
    if error is None:
        try:
            decoder.close()
        except EventStreamError as exc:
            error = exc
    return payloads, None if error is None else str(error)


# Another event type's header block, as long as a PayloadPart's.
_LOOKALIKE_BLOCK = encode_headers(
    {
        ":event-type": "PayloadPort",
        ":content-type": "application/octet-stream",
        ":message-type": "event",
    }
)
assert len(_LOOKALIKE_BLOCK) == len(_PAYLOAD_PART_HEADERS)


@pytest.mark.parametrize("form", FORMS, ids=["PayloadPart", "bytes", "dict"])
def test_a_one_event_chunk_decodes_as_the_general_path_however_it_is_damaged(
    form: EventForm,
) -> None:
    # A token stream's chunk is nearly always one PayloadPart, whole: feed_events takes it
    # without _decode_messages's loop. Any changed byte, a missing or an extra one, must come out
    # exactly as the general path gives it: the part, or the same error.
    payload = b'data: {"token": {"text": " tok"}}\n\n'
    sound = encode_payload_part(payload)
    chunks = [sound, sound[:-1], sound[:-4], sound + b"\x00", sound[:11], sound[:20]]
    chunks += [sound + encode_payload_part(b"next")]
    for index in range(len(sound)):
        for flip in (0x01, 0x80, 0xFF):
            damaged = bytearray(sound)
            damaged[index] ^= flip
            chunks.append(bytes(damaged))
    # Sound messages a hostile server could send that only look like the known event: the
    # known block and one more header; another block of the same length; and the known event
    # followed by bytes whose first four make the chunk's last CRC look like its first's.
    chunks.append(frame(_PAYLOAD_PART_HEADERS + encode_headers({"zz": 1}), payload))
    chunks.append(frame(_LOOKALIKE_BLOCK, payload))
    chunks.append(sound + _forge(sound, zlib.crc32(sound[:-4])) + b"tail")
    for chunk in chunks:
        # The known block again: a sound PayloadPart with another block replaces it.
        EventStreamDecoder(event=form).feed_events(encode_payload_part(b"warm"))
        assert _outcome(form, chunk) == _outcome(None, chunk), chunk


@pytest.mark.parametrize("form", FORMS, ids=["PayloadPart", "bytes", "dict"])
def test_a_run_of_known_events_decodes_as_the_general_path_however_one_is_damaged(
    form: EventForm,
) -> None:
    # In a chunk of many events, the decoding loop reads each message's CRC together with the
    # next message's lengths: a damaged byte anywhere in the middle message (its lengths, read
    # with the first message's CRC, included), or a chunk cut anywhere in it, must come out as
    # the general path gives it: the parts before it, then the same error. And a sound event of
    # another type with a block as long as the known one's, in its place, is not a part.
    first, middle, last = (encode_payload_part(b"token %d" % i) for i in range(3))
    chunks = [first + middle[:cut] for cut in range(len(middle) + 1)]
    chunks += [first + middle + last[:cut] for cut in range(len(last) + 1)]
    for index in range(len(middle)):
        for flip in (0x01, 0x80, 0xFF):
            damaged = bytearray(middle)
            damaged[index] ^= flip
            chunks.append(first + bytes(damaged) + last)
    chunks.append(first + frame(_LOOKALIKE_BLOCK, b"token 1") + last)  # sound, another type
    for chunk in chunks:
        EventStreamDecoder(event=form).feed_events(encode_payload_part(b"warm"))
        assert _outcome(form, chunk) == _outcome(None, chunk), chunk


def _forge(prefix: bytes, target: int) -> bytes:
    """Four bytes that bring ``crc32(prefix + them)`` to ``target``: CRC-32 is affine in them,
    so the 32 bits are solved for over GF(2)."""
    base = zlib.crc32(prefix + bytes(4))
    basis: dict[int, tuple[int, int]] = {}  # top bit -> (CRC difference, the input bits making it)
    for bit in range(32):
        vector = zlib.crc32(prefix + (1 << bit).to_bytes(4, "little")) ^ base
        combo = 1 << bit
        while vector:
            top = vector.bit_length() - 1
            if top not in basis:
                basis[top] = (vector, combo)
                break
            vector, combo = vector ^ basis[top][0], combo ^ basis[top][1]
    vector, combo = base ^ target, 0
    while vector:
        top = vector.bit_length() - 1
        vector, combo = vector ^ basis[top][0], combo ^ basis[top][1]
    forged = combo.to_bytes(4, "little")
    assert zlib.crc32(prefix + forged) == target
    return forged


@pytest.mark.parametrize("form", FORMS, ids=["PayloadPart", "bytes", "dict"])
def test_a_sound_one_event_chunk_takes_no_loop(
    form: EventForm, monkeypatch: pytest.MonkeyPatch
) -> None:
    EventStreamDecoder(event=form).feed_events(encode_payload_part(b"warm"))  # the block is known

    def no_loop(*args: Any) -> int:
        raise AssertionError("a one-event chunk went through _decode_messages")

    monkeypatch.setattr(_eventstream, "_decode_messages", no_loop)
    (item,) = EventStreamDecoder(event=form).feed_events(encode_payload_part(b"one"))
    assert item == (b"one" if form[1] is bytes else form[1](b"one"))
    assert type(item) is form[1]


def test_a_decoded_part_is_a_whole_frozen_payload_part() -> None:
    """A part the decoder made without ``__init__`` is the same value as one made by hand:
    equal, hashed alike, frozen, and it survives pickling, copying and ``replace``."""
    (part,) = EventStreamDecoder(event=PART).feed_events(encode_payload_part(b"token"))
    made = PayloadPart(bytes=b"token")
    assert type(part) is PayloadPart
    assert part == made and hash(part) == hash(made) and repr(part) == repr(made)
    assert not hasattr(part, "__dict__")  # slotted: nothing but its one field
    with pytest.raises(dataclasses.FrozenInstanceError):
        part.bytes = b"other"  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(part)) == made
    assert copy.copy(part) == made and copy.deepcopy(part) == made
    assert dataclasses.replace(part, bytes=b"other") == PayloadPart(b"other")
    assert dataclasses.asdict(part) == {"bytes": b"token"}


def test_a_held_part_costs_its_payload_and_one_small_object() -> None:
    """Parts a caller keeps (a whole answer collected) cost what they hold: the payload's bytes
    object, a slotted 40-byte part and a slot of the list. A ``__dict__`` made per part, as
    before ``PayloadPart`` was slotted, doubled that (191 bytes per 10-byte part, against 92)."""
    count, payload = 1000, b"0123456789"
    body = b"".join(encode_payload_part(payload) for _ in range(count))
    EventStreamDecoder(event=PART).feed_events(body)  # the header block known beforehand
    tracemalloc.start()
    try:
        parts = EventStreamDecoder(event=PART).feed_events(body)
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert len(parts) == count and parts[-1] == PayloadPart(payload)
    # 33 bytes of a bytes object's header, 40 of the part, 8 and a list's spare room.
    assert held / count <= len(payload) + 33 + 40 + 16


@pytest.mark.parametrize("form", FORMS[:2], ids=["PayloadPart", "bytes"])
def test_a_long_message_is_never_held_twice_besides_its_chunk(form: EventForm) -> None:
    """The loop's fast path slices a message's payload from the message's copy, both alive at
    once: a long message (here in a chunk after a short one, so that the loop decodes it)
    takes the general path instead, whose CRC copy is freed before the payload is sliced."""
    size = 4 * 1024 * 1024
    payload = bytes(range(256)) * (size // 256)
    chunk = encode_payload_part(b"short") + encode_payload_part(payload)
    EventStreamDecoder(event=form).feed_events(encode_payload_part(b"warm"))  # the block known
    decoder = EventStreamDecoder(event=form)
    tracemalloc.start()
    try:
        items = decoder.feed_events(chunk)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [item if form[1] is bytes else item.bytes for item in items] == [b"short", payload]
    assert peak < 1.5 * size  # the payload, and the CRC's copy before it; not both at once
