"""The response stream of InvokeEndpointWithResponseStream: parts as they arrive, or whole lines.

The HTTP body is read chunk by chunk (the socket read timeout applies between chunks, not to the
whole stream), fed to the I/O-free event-stream decoder, and each message becomes a ``PayloadPart``
or raises the error it carries. A body that ends inside a message raises ``EventStreamError``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING

from ._constants import DEFAULT_MAX_LINE_BYTES
from ._errors import LineTooLongError
from ._eventstream import EventStreamDecoder, message_to_part
from ._model import (
    RESPONSE_CUSTOM_ATTRIBUTES,
    RESPONSE_INVOKED_VARIANT,
    RESPONSE_STREAM_CONTENT_TYPE,
)
from ._transport import read_chunk
from ._types import PayloadPart, ResponseMetadata

if TYPE_CHECKING:
    import aiohttp


class ResponseStream:
    """An open response stream. Iterate it once, with ``async for`` or :meth:`iter_lines`.

    Use it inside ``async with client.invoke_endpoint_with_response_stream(...)``: leaving the
    block, early or through an exception, releases the connection.
    """

    def __init__(self, response: aiohttp.ClientResponse, metadata: ResponseMetadata) -> None:
        self._response = response
        self.response_metadata = metadata
        headers: Mapping[str, str] = response.headers
        self.content_type = headers.get(RESPONSE_STREAM_CONTENT_TYPE)
        self.invoked_production_variant = headers.get(RESPONSE_INVOKED_VARIANT)
        self.custom_attributes = headers.get(RESPONSE_CUSTOM_ATTRIBUTES)
        self._decoder = EventStreamDecoder()
        self._started = False
        self._finished = False

    def __repr__(self) -> str:
        return (
            f"<ResponseStream content_type={self.content_type!r} "
            f"request_id={self.response_metadata.request_id!r}>"
        )

    def __aiter__(self) -> AsyncIterator[PayloadPart]:
        return self._parts()

    async def _parts(self) -> AsyncIterator[PayloadPart]:
        if self._started:
            raise RuntimeError("a response stream can be iterated only once")
        self._started = True
        request_id = self.response_metadata.request_id
        decoder = self._decoder
        while True:
            chunk = await read_chunk(self._response)
            if not chunk:
                decoder.close()  # raises if the body stopped inside a message
                self._finished = True
                return
            for message in decoder.feed(chunk):
                part = message_to_part(message, request_id=request_id)
                if part is not None:
                    yield part

    async def iter_lines(
        self, *, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES, encoding: str = "utf-8"
    ) -> AsyncIterator[str]:
        """The model's output as text lines (without the line ending), however the parts split it.

        Handles ``\\n`` and ``\\r\\n``, a character split between parts, and a last line with no
        ending. A line longer than ``max_line_bytes`` raises ``LineTooLongError``.
        """
        pending: list[bytes] = []
        pending_len = 0
        async for part in self:
            data = part.bytes
            start = 0
            while (newline := data.find(b"\n", start)) >= 0:
                if pending_len + newline - start > max_line_bytes:
                    raise LineTooLongError(max_line_bytes)
                pending.append(data[start:newline])
                line = b"".join(pending)
                pending.clear()
                pending_len = 0
                # A line break never falls inside a UTF-8 sequence, so a whole line decodes alone.
                yield (line[:-1] if line.endswith(b"\r") else line).decode(encoding)
                start = newline + 1
            if start < len(data):
                pending_len += len(data) - start
                if pending_len > max_line_bytes:
                    raise LineTooLongError(max_line_bytes)
                pending.append(data[start:])
        if pending_len:
            line = b"".join(pending)
            yield (line[:-1] if line.endswith(b"\r") else line).decode(encoding)

    async def aclose(self) -> None:
        """Release the connection: back to the pool if the body was read to its end."""
        if self._finished:
            self._response.release()
        else:
            self._response.close()
