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
