"""InvokeEndpointWithBidirectionalStream: one HTTP/2 request whose body and answer are both event
streams, flowing at the same time (reference section 10).

``client.invoke_endpoint_with_bidirectional_stream(...)`` validates and returns a
``BidirectionalCall``; entering it connects, signs and sends the request headers, and yields the
``BidirectionalStream``: ``send()`` signs and sends one ``PayloadPart`` event (waiting on the
server's flow-control window), ``end_input()`` sends the final signed empty envelope and ends the
request, and iterating it yields the answer's ``BidirectionalPart``s.

Errors before the stream (an HTTP error answer) raise the usual ``ServiceError`` subclasses from
whichever of ``send()``, ``end_input()`` or the iteration notices first. Retries: only what
provably never reached the model, i.e. connection failures, streams the server refused before
processing them, and "not now" answers (503, throttling) that arrive before any input was sent.

The response headers are not awaited on entry: whether the service answers before the first
input event is not documented, and an emulated model that reads before it writes would deadlock.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import sys
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

from yarl import URL

from ._bidi_events import BidirectionalPart, EventSigner, encode_part, make_part, response_part
from ._bidi_request import BidiRequest
from ._constants import DEFAULT_BIDI_PING_INTERVAL, DEFAULT_BIDI_PING_TIMEOUT
from ._credentials import CredentialSource
from ._endpoints import host_header
from ._errors import (
    ClientClosedError,
    ConnectionClosedError,
    SageMakerRuntimeError,
    ServiceError,
    ServiceUnavailable,
    TransportError,
    parse_error_response,
)
from ._eventstream import EventStreamDecoder
from ._h2 import H2Exchange, StreamRefused
from ._lifecycle import OpenBidiStreams
from ._retry import RetryPolicy, delay, parse_retry_after, should_retry
from ._signing import STREAMING_EVENTS_PAYLOAD, request_signature, sign
from ._types import ResponseMetadata

if TYPE_CHECKING:
    from ._observe import CallObserver, Observe

SIGNING_NAME = "sagemaker"
OPERATION = "InvokeEndpointWithBidirectionalStream"
_MAX_ERROR_BODY = 64 * 1024


async def _sleep(seconds: float) -> bool:
    await asyncio.sleep(seconds)
    return False


@dataclass(frozen=True)
class BidiSettings:
    """What a client gives each of its bidirectional calls."""

    url: URL
    region: str
    credentials: CredentialSource
    retry_policy: RetryPolicy
    ssl_context: Callable[[], ssl.SSLContext]
    connect_timeout: float | None
    read_timeout: float | None
    receive_window: int
    user_agent: str
    #: Seconds of silence before a PING checks that the server is still there (None: never).
    ping_interval: float | None = DEFAULT_BIDI_PING_INTERVAL
    #: Seconds to wait for anything from the server after a PING before the stream fails.
    ping_timeout: float = DEFAULT_BIDI_PING_TIMEOUT
    #: The CONNECT proxy for a URL (bare URL, extra headers such as Proxy-Authorization), if any.
    proxy_for: Callable[[URL], tuple[URL, Mapping[str, str]] | None] = lambda url: None
    #: Sleeps between attempts; returns True if the client began shutting down meanwhile.
    sleep: Callable[[float], Awaitable[bool]] = _sleep
    #: Telemetry (``_observe``): None when nothing records.
    observe: Observe | None = None


class BidirectionalStream:
    """An open bidirectional stream: ``send()``/``end_input()`` and ``async for part in stream``.

    ``send()`` and the iteration may run in different tasks at the same time (full duplex).
    """

    def __init__(self, request: BidiRequest, settings: BidiSettings, streams: OpenBidiStreams):
        self._request = request
        self._settings = settings
        self._streams = streams
        self._exchange: H2Exchange | None = None
        self._signer: EventSigner | None = None
        self._decoder = EventStreamDecoder()
        self._send_lock = asyncio.Lock()
        self._sent_any = False
        self._input_ended = False
        self._attempts = 0
        self._first_attempt_at = 0.0
        self._closed_error: SageMakerRuntimeError | None = None
        self._failure: SageMakerRuntimeError | None = None
        self._done = asyncio.Event()
        self._iterating = False
        self._attempting: set[asyncio.Task[Any]] = set()
        self._answer_lock = asyncio.Lock()
        self._answers: weakref.WeakKeyDictionary[H2Exchange, ServiceError] = (
            weakref.WeakKeyDictionary()
        )
        self._aborted: set[asyncio.Task[Any]] = set()
        self.response_metadata: ResponseMetadata | None = None
        self.invoked_production_variant: str | None = None
        self._observer: CallObserver | None = None  # the call's span, until the stream closes
        self._completed = False  # the answer was read to its end

    def __repr__(self) -> str:
        return f"<BidirectionalStream endpoint={self._request.endpoint_name!r}>"

    @property
    def input_ended(self) -> bool:
        return self._input_ended

    # -- opening ----------------------------------------------------------------------------

    async def _open(self) -> None:
        """Connect, sign and send the request headers; retry connection failures."""
        self._first_attempt_at = time.monotonic()
        while True:
            self._attempts += 1
            try:
                await self._attempt_guarded()
                return
            except SageMakerRuntimeError as error:
                await self._before_retry(error)

    async def _before_retry(self, error: SageMakerRuntimeError) -> None:
        """Sleep before the next attempt, or raise ``error`` if it may not be retried."""
        policy = self._settings.retry_policy
        if self._observer is not None:
            self._observer.attempt_failed(error)
        retryable = should_retry(
            policy, error, attempt=self._attempts,
            elapsed=time.monotonic() - self._first_attempt_at,
        ) or (  # the HTTP/2 service's name for ServiceUnavailable
            isinstance(error, ServiceUnavailable)
            and "ServiceUnavailable" in policy.retry_on
            and self._attempts < policy.max_attempts
        )  # fmt: skip
        if not retryable or self._closed_error is not None:
            raise error
        retry_after = None
        if isinstance(error, ServiceError) and error.response_metadata is not None:
            headers = error.response_metadata.http_headers
            retry_after = parse_retry_after(headers.get("retry-after"))
        wait = delay(policy, error, attempt=self._attempts, retry_after=retry_after)
        if self._observer is not None:
            self._observer.retrying(error, wait)
        if await self._settings.sleep(wait):
            raise ClientClosedError("the client shut down while the call waited to retry")
        if self._closed_error is not None:
            raise self._closed_error

    async def _attempt_guarded(self) -> None:
        """``_attempt``, but a shutdown that interrupts it (a credential provider that hangs, a
        slow connect) raises ``ClientClosedError`` in the caller instead of a bare cancellation."""
        task = asyncio.current_task()
        assert task is not None
        self._attempting.add(task)
        try:
            await self._attempt()
        except asyncio.CancelledError:
            if task not in self._aborted:
                raise
            self._aborted.discard(task)
            if sys.version_info >= (3, 11):
                task.uncancel()
            raise ClientClosedError("the client shut down while the stream was opening") from None
        finally:
            self._attempting.discard(task)

    async def _attempt(self) -> None:
        settings = self._settings
        credentials = await settings.credentials.get()  # one snapshot for the whole stream
        url = settings.url
        headers = self._request.headers()
        path = url.raw_path.rstrip("/") + self._request.path()
        sign(
            method="POST",
            host=host_header(url),
            path=path,
            headers=headers,
            payload_hash=STREAMING_EVENTS_PAYLOAD,
            credentials=credentials,
            region=settings.region,
            service=SIGNING_NAME,
        )
        signature = request_signature(headers["Authorization"])
        exchange = await H2Exchange.open(
            url,
            ssl_context=settings.ssl_context() if url.scheme == "https" else None,
            connect_timeout=settings.connect_timeout,
            read_timeout=settings.read_timeout if self._input_ended else None,
            receive_window=settings.receive_window,
            proxy=settings.proxy_for(url),
            ping_interval=settings.ping_interval,
            ping_timeout=settings.ping_timeout,
        )
        if self._closed_error is not None:
            # Closed (by its owner, or a shutdown) while this connection was being made.
            await exchange.close(reset=True)
            raise self._closed_error
        self._exchange = exchange
        pseudo = [
            (":method", "POST"),
            (":scheme", url.scheme),
            (":authority", host_header(url)),
            (":path", path),
        ]
        fields = [(name.lower(), value) for name, value in headers.items()]
        fields.append(("user-agent", settings.user_agent))
        try:
            exchange.send_headers(pseudo + fields)
        except TransportError:
            await exchange.close(reset=True)
            raise
        self._signer = EventSigner(
            seed_signature=signature,
            credentials=credentials,
            region=settings.region,
            service=SIGNING_NAME,
        )

    async def _reopen_if_refused(self) -> None:
        """Before the first input: if the server already said "not now" (or refused the stream),
        try again on a new connection, since nothing reached the model."""
        while not self._sent_any:
            await self._check_usable()  # a failed reopen (by the other direction) raises here
            exchange = self._exchange
            assert exchange is not None
            error = await self._early_error(exchange)
            if error is None:
                return
            await exchange.close(reset=True)
            self._exchange = None
            try:
                await self._before_retry(error)  # raises when not retryable
                while True:
                    self._attempts += 1
                    try:
                        await self._attempt_guarded()
                        break
                    except SageMakerRuntimeError as again:
                        await self._before_retry(again)
            except SageMakerRuntimeError as final:
                # The stream is over: the sender and the reader both raise this from now on.
                self._failure = final
                raise

    async def _early_error(self, exchange: H2Exchange) -> SageMakerRuntimeError | None:
        """The error the server has already answered with, if any (does not wait for one)."""
        if exchange.status is None:
            try:
                exchange._check()
            except StreamRefused as refused:
                return refused
            return None
        if exchange.status == 200:
            return None
        return await self._error_answer(exchange)

    async def _error_answer(self, exchange: H2Exchange) -> ServiceError:
        """The error answer's typed error; read once (the sender and the reader may both ask)."""
        async with self._answer_lock:
            cached = self._answers.get(exchange)
            if cached is not None:
                return cached
            assert exchange.status is not None
            parts: list[bytes] = []
            size = 0
            exchange.read_timeout = self._settings.read_timeout  # an error answer owes its body
            with contextlib.suppress(TransportError):
                while size < _MAX_ERROR_BODY and (chunk := await exchange.read()) is not None:
                    parts.append(chunk)
                    size += len(chunk)
            error = parse_error_response(
                exchange.status, exchange.headers, b"".join(parts)[:_MAX_ERROR_BODY],
                retry_attempts=self._attempts - 1,
            )  # fmt: skip
            self._answers[exchange] = error
            return error

    # -- sending ----------------------------------------------------------------------------

    async def send(
        self,
        data: bytes | bytearray | memoryview | str,
        data_type: str | None = None,
        completion_state: str | None = None,
    ) -> None:
        """Send one ``PayloadPart`` event (a ``str`` goes as UTF-8 with ``DataType=UTF8``).

        Waits while the server's flow-control window is closed.
        """
        part = make_part(data, data_type, completion_state)
        async with self._send_lock:
            if self._input_ended:
                raise RuntimeError("the input of this stream has already ended")
            await self._check_usable()
            if not self._sent_any:
                await self._reopen_if_refused()
            assert self._signer is not None
            envelope = self._signer.wrap(encode_part(part))
            self._sent_any = True
            await self._send_bytes(envelope, end_stream=False)

    async def end_input(self) -> None:
        """Send the final signed empty envelope and end the request body. Idempotent."""
        async with self._send_lock:
            if self._input_ended:
                return
            await self._check_usable()
            if not self._sent_any:
                await self._reopen_if_refused()
            exchange = self._exchange
            assert exchange is not None and self._signer is not None
            envelope = self._signer.wrap(b"")
            self._sent_any = True
            self._input_ended = True
            try:
                await self._send_bytes(envelope, end_stream=True)
            except ConnectionClosedError:
                if not (exchange.status == 200 and exchange.remote_ended):
                    raise
                # The model already ended its answer (and stopped reading): nothing to end.
            # While the input is open, silence may be the model listening; after it, the model
            # owes an answer, so the read timeout applies from here on.
            if self._exchange is not None:
                self._exchange.read_timeout = self._settings.read_timeout

    async def _send_bytes(self, data: bytes, *, end_stream: bool) -> None:
        exchange = self._exchange
        assert exchange is not None
        try:
            await exchange.send(data, end_stream=end_stream)
        except TransportError as error:
            raise await self._explain(exchange, error) from None

    async def _explain(self, exchange: H2Exchange, error: TransportError) -> SageMakerRuntimeError:
        """A service error answer explains a failed send better than the closed stream does."""
        if self._closed_error is not None:
            return self._closed_error
        if exchange.status is not None and exchange.status != 200:
            return await self._error_answer(exchange)
        return error

    async def _check_usable(self) -> None:
        if self._closed_error is not None:
            raise self._closed_error
        if self._failure is not None:
            raise self._failure
        if self._exchange is None:
            raise RuntimeError("the stream is closed")

    # -- receiving --------------------------------------------------------------------------

    def __aiter__(self) -> AsyncIterator[BidirectionalPart]:
        return self._parts()

    async def _parts(self) -> AsyncIterator[BidirectionalPart]:
        if self._iterating:
            raise RuntimeError("a bidirectional stream can be iterated only once")
        self._iterating = True
        exchange = await self._response()
        request_id = self.response_metadata.request_id if self.response_metadata else None
        decoder = self._decoder
        observer = self._observer
        while True:
            try:
                chunk = await exchange.read()
            except TransportError as error:
                raise await self._explain(exchange, error) from None
            if chunk is None:
                decoder.close()  # raises if the body stopped inside a message
                self._completed = True
                self._done.set()
                return
            for message in decoder.feed(chunk):
                part = response_part(message, request_id=request_id)
                if part is not None:
                    if observer is not None:
                        observer.part()
                    yield part
            if decoder.error is not None:
                raise decoder.error

    async def _response(self) -> H2Exchange:
        """Wait for the response headers; an error answer raises (retried if nothing was sent)."""
        while True:
            await self._check_usable()
            exchange = self._exchange
            assert exchange is not None
            try:
                status, headers = await exchange.response()
            except StreamRefused:
                if self._sent_any:
                    raise
                async with self._send_lock:
                    await self._reopen_if_refused()
                continue
            except TransportError as error:
                raise await self._explain(exchange, error) from None
            if status == 200:
                self.response_metadata = ResponseMetadata.from_http(
                    status, headers, self._attempts - 1
                )
                self.invoked_production_variant = headers.get("x-amzn-invoked-production-variant")
                if self._observer is not None:
                    self._observer.stream_started(status, self.response_metadata.request_id)
                return exchange
            if self._sent_any:
                raise await self._error_answer(exchange)
            async with self._send_lock:
                await self._reopen_if_refused()

    # -- closing ----------------------------------------------------------------------------

    async def aclose(self, *, reset: bool = False, exc: BaseException | None = None) -> None:
        """Close the stream: reset it first unless both directions finished. Idempotent.

        ``exc``: what ended it (the block's exception, a shutdown), for telemetry."""
        self._streams.streams.discard(self)
        observer = self._observer
        if observer is not None:
            if isinstance(exc, ServiceError) and self.response_metadata is None:
                observer.failed(exc)  # an error answer instead of the stream: its status too
            else:
                observer.stream_closed(self._completed, exc)
        self._done.set()
        exchange, self._exchange = self._exchange, None
        if self._closed_error is None:
            self._closed_error = ClientClosedError("the bidirectional stream is closed")
        if exchange is not None:
            await exchange.close(reset=reset or not exchange.finished)

    async def _shutdown(self) -> None:
        self._closed_error = ClientClosedError("the client shut down while the stream was open")
        for task in self._attempting:
            self._aborted.add(task)
            task.cancel()
        exchange = self._exchange
        if exchange is not None:
            exchange._fail(self._closed_error)  # type: ignore[arg-type]
        await self.aclose(reset=True, exc=self._closed_error)


async def _finish(closing: Awaitable[None]) -> None:
    """Run ``closing`` to its end even if the caller is cancelled meanwhile, then re-raise."""
    task = asyncio.ensure_future(closing)
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        with contextlib.suppress(BaseException):
            await task
        raise


class BidirectionalCall:
    """A validated bidirectional call; entering it opens the stream, leaving it closes it."""

    def __init__(
        self,
        request: BidiRequest,
        settings: BidiSettings,
        streams: OpenBidiStreams,
        is_closed: Callable[[], bool],
    ) -> None:
        self._request = request
        self._settings = settings
        self._streams = streams
        self._is_closed = is_closed
        self._stream: BidirectionalStream | None = None

    async def __aenter__(self) -> BidirectionalStream:
        if self._is_closed():
            raise ClientClosedError()
        if self._stream is not None:
            raise RuntimeError("a bidirectional call can be entered only once")
        stream = BidirectionalStream(self._request, self._settings, self._streams)
        self._stream = stream
        self._streams.streams.add(stream)
        observe = self._settings.observe
        observer = (
            None if observe is None else observe(OPERATION, self._request.endpoint_name, True)
        )
        stream._observer = observer
        try:
            await stream._open()
        except BaseException as exc:
            if observer is not None:
                observer.failed(exc)  # the span ends here, with the opening's error
            await _finish(stream.aclose(reset=True))
            raise
        if observer is not None:
            observer.opened()  # the answer is awaited later, maybe in another task
        return stream

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        stream = self._stream
        if stream is not None:
            # Shielded: a cancelled caller must still reset the stream and close the socket.
            await _finish(stream.aclose(reset=exc is not None, exc=exc))


__all__ = ["BidirectionalCall", "BidirectionalPart", "BidirectionalStream"]
