"""The response stream of InvokeEndpointWithResponseStream: parts as they arrive, or whole lines.

The HTTP body is read chunk by chunk (the socket read timeout applies between chunks, not to the
whole stream), fed to the I/O-free event-stream decoder, and each message becomes a ``PayloadPart``
or raises the error it carries. A body that ends inside a message raises ``EventStreamError``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any

from multidict import CIMultiDictProxy

from ._constants import DEFAULT_MAX_LINE_BYTES
from ._errors import LineTooLongError, TextDecodeError
from ._eventstream import EventStreamDecoder, split_first, unraised
from ._model import (
    RESPONSE_CUSTOM_ATTRIBUTES,
    RESPONSE_INVOKED_VARIANT,
    RESPONSE_STREAM_CONTENT_TYPE,
)
from ._stream_events import message_to_part
from ._stream_text import TextStreamMixin
from ._transport import HttpResponse, abort_response, read_chunk, transport_failure
from ._types import PayloadPart, ResponseMetadata, lazy_metadata

if TYPE_CHECKING:
    import aiohttp

    from ._lifecycle import Lifecycle
    from ._observe import CallObserver
    from ._watchdog import Watch

_READ_CHUNK = read_chunk  # tests replace the module's read_chunk to watch reads
_PAYLOAD_PART = ("PayloadPart", PayloadPart, "bytes")  # decoded straight into PayloadPart
_PAYLOAD_BYTES = ("PayloadPart", bytes, "")  # decoded to the payload alone (joined)
# What a body that is not an event stream (the OpenAI route's) has instead of a decoder of its
# own: never fed, so one serves every such stream, and closing it at the end checks nothing.
_UNFED_DECODER = EventStreamDecoder()


def open_stream(response: HttpResponse, retries: int) -> ResponseStream:
    """The ``ResponseStream`` of a started stream (the pipeline's ``parse`` for streams)."""
    assert response.stream is not None
    return ResponseStream(response.stream, watch=response.watch, retries=retries)


class ResponseStream(TextStreamMixin):
    """An open response stream. Iterate it once, with ``async for``, :meth:`iter_lines`, or the
    LLM helpers ``iter_events()``, ``iter_json()``, ``iter_text()``.

    Use it inside ``async with client.invoke_endpoint_with_response_stream(...)``: leaving the
    block, early or through an exception, releases the connection.
    """

    # The call's telemetry observer (_observe.CallObserver), set by it when one records: its span
    # lasts until the stream is closed.
    _observer: CallObserver | None = None
    # Set on the instance only when they change (one store less each per stream).
    _started = False
    _finished = False
    # The body is an event stream to decode; the OpenAI route's is the container's bytes as they
    # are (its subclass), each chunk handed out as it comes.
    _event_stream = True

    def __init__(
        self,
        response: aiohttp.ClientResponse,
        metadata: ResponseMetadata | None = None,
        *,
        watch: Watch | None = None,
        retries: int = 0,
    ) -> None:
        self._response = response
        # The client's read watchdog keeps sock_read for this stream (see _watchdog).
        self._watch = watch
        # None: made from the response when first asked for (most callers never ask).
        self._metadata = metadata
        self._retries = retries

    @property
    def response_metadata(self) -> ResponseMetadata:
        """The response's metadata (request id, status, headers, retries)."""
        metadata = self._metadata
        if metadata is None:
            response = self._response
            headers = response.headers
            # aiohttp's headers (immutable): folded only if read, as parse_invoke_endpoint's.
            metadata = self._metadata = (
                lazy_metadata(response.status, headers, self._retries)
                if type(headers) is CIMultiDictProxy
                else ResponseMetadata.from_http(response.status, headers, self._retries)
            )
        return metadata

    # The three response fields are read from aiohttp's (immutable) headers when asked for: the
    # three case-insensitive lookups (about 0.5 us) would sit between the headers and the first
    # part, and most callers ask for none.

    @property
    def content_type(self) -> str | None:  # type: ignore[override]  # the mixin's, read-only here
        """The model's content type (``X-Amzn-SageMaker-Content-Type``)."""
        return self._response.headers.get(RESPONSE_STREAM_CONTENT_TYPE)

    @property
    def invoked_production_variant(self) -> str | None:
        """The production variant that answered (``X-Amzn-Invoked-Production-Variant``)."""
        return self._response.headers.get(RESPONSE_INVOKED_VARIANT)

    @property
    def custom_attributes(self) -> str | None:
        """The model's custom attributes (``X-Amzn-SageMaker-Custom-Attributes``)."""
        return self._response.headers.get(RESPONSE_CUSTOM_ATTRIBUTES)

    def __repr__(self) -> str:
        return (
            f"<ResponseStream content_type={self.content_type!r} "
            f"request_id={self.response_metadata.request_id!r}>"
        )

    def __aiter__(self) -> AsyncIterator[PayloadPart]:
        return self._read(joined=False)

    def _text_input(self) -> AsyncIterator[bytes]:
        """The payloads each chunk of the body completes, joined (without an event stream, each
        chunk): what the LLM helpers decode (their decoders take bytes cut anywhere), without a
        step or a PayloadPart per part.

        Parts before an error message, or before a corrupt message, come out before the error
        is raised, as through ``async for``.
        """
        return self._read(joined=True)

    async def _read(self, *, joined: bool) -> AsyncIterator[Any]:
        """The one reading loop of both ways through the body: each part as a ``PayloadPart``,
        or (``joined``) each chunk's payloads as one ``bytes``; without an event stream, each
        chunk as one part, or as it is. (One loop that tests a flag per chunk rather than two
        copies; a shared generator of chunks would cost a step per chunk, which for a token
        stream is one per event.)"""
        readany = self._begin()
        event_stream = self._event_stream
        decoder = (
            EventStreamDecoder(event=_PAYLOAD_BYTES if joined else _PAYLOAD_PART)
            if event_stream
            else _UNFED_DECODER
        )
        response = self._response
        watch = self._watch
        observer = self._observer
        payload_part = PayloadPart  # read per event: a local costs less than a global
        first = True
        rest = b""
        while True:
            if rest:
                chunk, rest = rest, b""
            else:
                failure = None
                try:
                    chunk = await readany() if readany is not None else await read_chunk(response)
                except Exception as exc:
                    failure = transport_failure(exc)
                    if failure is exc:
                        raise
                if failure is not None:
                    try:
                        raise failure  # outside the handler: only translate_error's __cause__ shows
                    finally:
                        del failure  # its traceback holds this frame: no cycle through it
                if not chunk:
                    self._end(decoder)
                    return
                if watch is not None:
                    watch.consumed += len(chunk)
                if not event_stream:  # nothing to decode: the chunk is the part
                    if observer is not None:
                        observer.part()
                    yield chunk if joined else payload_part(chunk)
                    continue
                if first:  # its first part before the others are decoded: see split_first
                    first = False
                    chunk, rest = split_first(chunk)
            items = decoder.feed_events(chunk)
            if joined:
                try:
                    payloads = b"".join(items)  # nearly always: payloads only
                except TypeError:  # an error message, or an event of another type, among them
                    held: list[bytes] = []
                    for item in items:
                        if item.__class__ is not bytes:
                            if held:  # the text before an error message comes out first
                                yield b"".join(held)
                                held = []
                            part = message_to_part(
                                item, request_id=self.response_metadata.request_id
                            )
                            if part is None:
                                continue
                            item = part.bytes
                        if observer is not None:
                            observer.part()
                        held.append(item)
                    payloads = b"".join(held)
                else:
                    if observer is not None:
                        for _ in items:
                            observer.part()
                if payloads:
                    yield payloads
            else:
                for part in items:
                    # Nearly every event is a PayloadPart already: one test, then straight out.
                    if part.__class__ is not payload_part:
                        part = message_to_part(part, request_id=self.response_metadata.request_id)
                        if part is None:
                            continue
                    if observer is not None:
                        observer.part()
                    yield part
            if decoder._error is not None:  # not the property: a call per chunk
                raise unraised(decoder._error)  # after the good messages that came before it

    async def iter_lines(
        self, *, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES, encoding: str = "utf-8"
    ) -> AsyncIterator[str]:
        """The model's output as text lines (without the line ending), however the parts split it.

        Handles ``\\n`` and ``\\r\\n``, a character split between parts, and a last line with no
        ending. A line longer than ``max_line_bytes`` (not counting its ending) raises
        ``LineTooLongError`` as soon as that is known, so the buffer stays bounded.
        """
        buffer = bytearray()  # the unfinished line
        async for part in self:
            scanned = len(buffer)  # the unfinished line holds no line break
            buffer += part.bytes
            start = 0
            while (newline := buffer.find(b"\n", max(start, scanned))) >= 0:
                yield _decode_line(buffer[start:newline], max_line_bytes, encoding)
                start = newline + 1
            del buffer[:start]
            # A CR at the end may be the first half of a CRLF ending: it does not count yet.
            if len(buffer) - buffer.endswith(b"\r") > max_line_bytes:
                raise LineTooLongError(max_line_bytes)
        if buffer:
            yield _decode_line(buffer, max_line_bytes, encoding)

    def _begin(self) -> Callable[[], Awaitable[bytes]] | None:
        """Start the one iteration a stream allows (``_read``). Returns aiohttp's own read, for
        the loop to await without a coroutine of ours around it (one less per chunk), unless a
        test has put another ``read_chunk`` in its place."""
        if self._started:
            raise RuntimeError("a response stream can be iterated only once")
        self._started = True
        return self._response.content.readany if read_chunk is _READ_CHUNK else None

    def _end(self, decoder: EventStreamDecoder) -> None:
        """The body ended: stop watching it, and check that it did not stop inside a message."""
        watch = self._watch
        if watch is not None:  # none with the caller's session when the body came whole
            self._watch = None
            watch.owner.unwatch(watch)  # _unwatch, inlined: every stream ends here
        decoder.close()  # raises if the body stopped inside a message
        self._finished = True

    def _unwatch(self) -> None:
        watch, self._watch = self._watch, None
        if watch is not None:
            watch.close()

    async def aclose(self, exc: BaseException | None = None) -> None:
        """Release the connection: back to the pool if the body was read to its end."""
        if self._watch is not None:  # nearly always already ended with the body
            self._unwatch()
        if self._observer is not None:
            self._observer.stream_closed(self._finished, exc)
        if self._finished:
            self._response.release()
        else:
            self._response.close()

    def _abort(self, error: BaseException) -> None:
        """End the stream now: a read in progress, and every later one, raises ``error``.

        For the client's shutdown. Closing the session alone is not enough: aiohttp detaches the
        body from a connection it closes itself, so a pending read would wait forever (no
        ``sock_read`` timeout fires either).
        """
        self._unwatch()
        if not self._finished:
            abort_response(self._response, error)
        else:
            self._response.close()
        if self._observer is not None:
            self._observer.stream_closed(self._finished, error)


def _decode_line(raw: bytearray, limit: int, encoding: str) -> str:
    line = raw[:-1] if raw.endswith(b"\r") else raw
    if len(line) > limit:
        raise LineTooLongError(limit)
    # A line break never falls inside a UTF-8 sequence, so a whole line decodes on its own.
    try:
        return line.decode(encoding)
    except UnicodeDecodeError as exc:
        error = TextDecodeError(encoding, f"{exc.reason} at byte {exc.start} of the line")
    except LookupError:
        error = TextDecodeError(encoding, "unknown encoding")
    raise error


class StreamCall:
    """A validated stream call: entering it sends the request and yields the ``ResponseStream``;
    leaving it releases the connection."""

    def __init__(
        self,
        start: Callable[[], Awaitable[ResponseStream]],
        lifecycle: Lifecycle,
        on_start: Callable[[ResponseStream], None] | None = None,
    ) -> None:
        self._start = start
        self._lifecycle = lifecycle
        self._on_start = on_start
        self._stream: ResponseStream | None = None

    async def __aenter__(self) -> ResponseStream:
        if self._stream is not None:
            raise RuntimeError("this stream call was already entered; make a new call")
        stream = self._stream = await self._start()
        self._lifecycle.add_resource(stream)
        if self._on_start is not None:
            self._on_start(stream)
        return stream

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        stream = self._stream
        if stream is not None:
            await stream.aclose(exc)
            self._lifecycle.discard_resource(stream)
