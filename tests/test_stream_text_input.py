"""The LLM helpers over an event-stream response read each chunk's payloads at once
(``ResponseStream._text_input``): the same text, errors in the same order, parts still counted."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sagemaker_rt_aio._errors import EventStreamError, ModelStreamError
from sagemaker_rt_aio._eventstream import encode_message
from sagemaker_rt_aio._stream import ResponseStream
from sagemaker_rt_aio._stream_events import encode_exception, encode_payload_part
from sagemaker_rt_aio._types import PayloadPart, ResponseMetadata

SSE = "text/event-stream"


def token(text: str) -> bytes:
    return b'data: {"token": {"text": "%s", "special": false}}\n\n' % text.encode()


class _Content:
    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks: Iterator[bytes] = iter(chunks)

    async def readany(self) -> bytes:
        return next(self._chunks, b"")


class _Response:
    def __init__(self, chunks: list[bytes]) -> None:
        self.content = _Content(chunks)
        self.headers = {"X-Amzn-SageMaker-Content-Type": SSE}
        self.closed = self.released = False

    def release(self) -> None:
        self.released = True

    def close(self) -> None:
        self.closed = True


class _Observer:
    def __init__(self) -> None:
        self.parts = 0

    def part(self) -> None:
        self.parts += 1

    def genai(self, **_: object) -> None:
        pass


def stream_of(*chunks: bytes) -> ResponseStream:
    metadata = ResponseMetadata.from_http(200, {"x-amzn-requestid": "rid"}, 0)
    return ResponseStream(_Response(list(chunks)), metadata)  # type: ignore[arg-type]


async def texts(stream: ResponseStream) -> list[str]:
    return [text async for text in stream.iter_text()]


@pytest.mark.parametrize("cut", [1, 7, 50, 10_000])
async def test_text_is_the_same_however_the_chunks_hold_the_parts(cut: int) -> None:
    body = b"".join(encode_payload_part(token(f"t{i} ")) for i in range(20))
    stream = stream_of(*(body[i : i + cut] for i in range(0, len(body), cut)))
    observer = stream._observer = _Observer()  # type: ignore[assignment]
    assert "".join(await texts(stream)) == "".join(f"t{i} " for i in range(20))
    assert observer.parts == 20
    assert stream._finished


async def test_text_before_an_error_message_in_the_same_chunk_comes_first() -> None:
    chunk = encode_payload_part(token("Hello")) + encode_payload_part(token(" world"))
    chunk += encode_exception("ModelStreamError", "boom", error_code="E1")
    chunk += encode_payload_part(token(" never"))
    stream = stream_of(chunk)
    received: list[str] = []
    with pytest.raises(ModelStreamError) as caught:
        async for text in stream.iter_text():
            received.append(text)
    assert received == ["Hello", " world"]
    assert caught.value.partial_text == "Hello world"
    assert caught.value.request_id == "rid"


async def test_other_events_are_skipped_and_odd_payload_parts_kept() -> None:
    other = encode_message({":message-type": "event", ":event-type": "Other"}, token("no"))
    odd = encode_message(
        {":message-type": "event", ":event-type": "PayloadPart", "extra": 1}, token(" b")
    )
    stream = stream_of(encode_payload_part(token("a")) + other + odd + encode_payload_part(b""))
    observer = stream._observer = _Observer()  # type: ignore[assignment]
    assert "".join(await texts(stream)) == "a b"
    assert observer.parts == 3  # the PayloadParts, the empty one included; not the other event


async def test_text_before_a_corrupt_message_comes_first_then_the_error() -> None:
    bad = bytearray(encode_payload_part(token(" lost")))
    bad[-1] ^= 1
    stream = stream_of(encode_payload_part(token("kept")) + bytes(bad))
    received: list[str] = []
    with pytest.raises(EventStreamError, match="CRC mismatch"):
        async for text in stream.iter_text():
            received.append(text)
    assert received == ["kept"]


async def test_a_body_ending_inside_a_message_raises() -> None:
    whole = encode_payload_part(token("a"))
    stream = stream_of(whole + whole[:20])
    with pytest.raises(EventStreamError, match="truncated"):
        await texts(stream)


async def test_text_helpers_and_parts_share_the_one_iteration() -> None:
    stream = stream_of(encode_payload_part(token("a")))
    assert [part async for part in stream] == [PayloadPart(token("a"))]
    with pytest.raises(RuntimeError, match="only once"):
        await texts(stream)
    stream = stream_of(encode_payload_part(token("a")))
    assert await texts(stream) == ["a"]
    with pytest.raises(RuntimeError, match="only once"):
        [part async for part in stream]


# -- a stream's first chunk: its first part before the others are decoded -------------------------


def test_split_first_cuts_after_a_whole_first_message_only() -> None:
    from sagemaker_rt_aio._eventstream import split_first

    one, two = encode_payload_part(b"one"), encode_payload_part(b"two")
    assert split_first(one + two + two[:5]) == (one, two + two[:5])
    for whole in (one, one[:-1], one[:12], b"", b"\x00" * 40):  # one, incomplete, bad length
        assert split_first(whole) == (whole, b"")


def _fed(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The sizes of the chunks the stream's event decoder is given."""
    from sagemaker_rt_aio._eventstream import EventStreamDecoder

    sizes: list[int] = []
    feed = EventStreamDecoder.feed_events

    def spy(self: EventStreamDecoder, data: bytes) -> list[object]:
        sizes.append(len(data))
        return feed(self, data)

    monkeypatch.setattr(EventStreamDecoder, "feed_events", spy)
    return sizes


@pytest.mark.parametrize("helper", ["parts", "iter_text"])
async def test_the_first_chunks_first_part_is_decoded_alone(
    monkeypatch: pytest.MonkeyPatch, helper: str
) -> None:
    frames = [encode_payload_part(token(f"t{i} ")) for i in range(30)]
    stream = stream_of(b"".join(frames[:25]), b"".join(frames[25:]))
    sizes = _fed(monkeypatch)
    if helper == "parts":
        got = [part.bytes async for part in stream]
        assert got == [token(f"t{i} ") for i in range(30)]
    else:
        assert "".join(await texts(stream)) == "".join(f"t{i} " for i in range(30))
    first = len(frames[0])
    assert sizes == [first, sum(map(len, frames[:25])) - first, sum(map(len, frames[25:]))]


def _corrupt(frame: bytes, at: int) -> bytes:
    bad = bytearray(frame)
    bad[at] ^= 1
    return bytes(bad)


_GOOD = encode_payload_part(token("kept"))
_NEXT = encode_payload_part(token(" lost"))


@pytest.mark.parametrize(
    ("first_chunk", "kept", "error"),
    [
        (_GOOD + _corrupt(_NEXT, -1), ["kept"], "message CRC mismatch"),
        (_GOOD + _corrupt(_NEXT, 2), ["kept"], "prelude CRC mismatch"),
        (_corrupt(_GOOD, 3) + _NEXT, [], "prelude CRC mismatch"),  # a wrong length to cut at
        (_corrupt(_GOOD, 40) + _NEXT, [], "message CRC mismatch"),
        (_GOOD + _NEXT[:30], ["kept"], "truncated"),
        (_GOOD + encode_exception("ModelStreamError", "boom") + _NEXT, ["kept"], "boom"),
    ],
    ids=["second-bad-crc", "second-bad-prelude", "bad-length", "first-bad-crc", "cut", "error"],
)
@pytest.mark.parametrize("helper", ["parts", "iter_text"])
async def test_a_first_chunk_fails_as_it_did_whole(
    first_chunk: bytes, kept: list[str], error: str, helper: str
) -> None:
    stream = stream_of(first_chunk)
    received: list[str] = []
    with pytest.raises((EventStreamError, ModelStreamError), match=error):
        if helper == "parts":
            async for part in stream:
                received.append(part.bytes.decode())
        else:
            async for text in stream.iter_text():
                received.append(text)
    assert received == (kept if helper == "iter_text" else [token(t).decode() for t in kept])
