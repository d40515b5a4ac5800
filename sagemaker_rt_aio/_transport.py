"""The aiohttp layer: moves a signed request's bytes and maps transport failures to our errors.

This is the only place that knows aiohttp's exception classes: ``translate_error`` turns each into a
:class:`TransportError` subclass that says whether the request can have reached the server, which is
what the retry layer needs to know.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import aiohttp
from multidict import CIMultiDictProxy
from yarl import URL

from ._errors import (
    CertificateVerificationError,
    ConnectionClosedError,
    ConnectTimeoutError,
    DeadlineExceededError,
    EndpointConnectionError,
    ReadTimeoutError,
    ResponseTooLargeError,
    SanitizedCause,
    SSLError,
    TransportError,
)
from ._lifecycle import Lifecycle
from ._protocol import WireRequest
from ._signing import payload_sha256
from ._watchdog import ReadWatchdog, Watch

# aiohttp must not add headers botocore would not send: the model container sees what boto3 sends.
SKIP_AUTO_HEADERS = frozenset({"Accept", "Content-Type", "Accept-Encoding", "User-Agent"})

# Extra keyword arguments for ``ClientSession.request`` (proxy, proxy_headers, ssl), decided once per
# host by ``_network``; none means the session's own settings.
DIRECT: Mapping[str, Any] = MappingProxyType({})


@dataclass(slots=True)
class HttpRequest:
    """One attempt of a call, as middlewares see it. Headers added here are signed."""

    operation: str
    endpoint_name: str
    method: str
    url: URL
    headers: dict[str, str]
    body: bytes
    attempt: int
    # (body, its SHA-256): hashed once per call; a middleware that replaces the body is re-hashed.
    _hashed: tuple[bytes, str] | None = field(default=None, repr=False)
    # time.monotonic() by which the call must end (timeout.total), or None.
    deadline: float | None = field(default=None, repr=False)

    def payload_hash(self) -> str:
        if self._hashed is None or self._hashed[0] is not self.body:
            self._hashed = (self.body, payload_sha256(self.body))
        return self._hashed[1]

    def __repr__(self) -> str:
        return (
            f"HttpRequest({self.operation}, {self.method} {self.url}, attempt={self.attempt}, "
            f"body=<{len(self.body)} bytes>)"
        )


@dataclass
class HttpResponse:
    """What came back. ``body`` is read, except for a successful stream (``stream`` is set then)."""

    status: int
    headers: CIMultiDictProxy[str]
    body: bytes
    stream: aiohttp.ClientResponse | None = field(default=None, repr=False)
    # A started stream's read watch (see _watchdog), for the ResponseStream to end with it.
    watch: Watch | None = field(default=None, repr=False, compare=False)


def translate_error(exc: BaseException) -> TransportError:
    """The :class:`TransportError` for an exception raised while sending or receiving.

    aiohttp's exception is chained only if nothing in it holds the request: some carry it
    (``request_info``, with the ``Authorization`` and ``X-Amz-Security-Token`` headers), and nothing
    reachable from an error we raise may show a secret. Those are replaced by a
    :class:`TransportCause` holding just their type and text. Raise the result outside the
    ``except`` block that caught ``exc`` (``__context__`` would link it otherwise).
    """
    error: TransportError
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        # Checked before ClientConnectorError, its base: an untrusted certificate is not a
        # connection problem, and trying again cannot fix it.
        reason = getattr(exc.certificate_error, "verify_message", None) or exc.certificate_error
        error = CertificateVerificationError(
            f"certificate verification failed for {exc.host}:{exc.port}: {reason} "
            "(trust the server's CA with verify='/path/to/ca.pem', ca_bundle= or AWS_CA_BUNDLE)"
        )
    elif isinstance(exc, (aiohttp.ClientSSLError, aiohttp.ServerFingerprintMismatch)):
        error = SSLError(f"TLS handshake failed: {exc}")
    elif isinstance(exc, aiohttp.ClientResponseError) and exc.request_info.method == "CONNECT":
        # The proxy refused the tunnel (ClientHttpProxyError) or answered the CONNECT with
        # something that is not HTTP. Either way the request was not sent. aiohttp's exception
        # holds the CONNECT request, Proxy-Authorization included, so it is not kept as the cause.
        error = EndpointConnectionError(
            f"the proxy did not open a tunnel to the endpoint: {exc.status} {exc.message[:200]}"
        )
        error.retryable = exc.status != 407  # wrong proxy credentials stay wrong
        return error
    elif isinstance(exc, aiohttp.ConnectionTimeoutError):
        error = ConnectTimeoutError(f"timed out connecting to the endpoint: {exc}")
    elif isinstance(exc, aiohttp.ClientConnectorError):
        error = EndpointConnectionError(f"could not connect to the endpoint: {exc}")
    elif isinstance(exc, aiohttp.ServerTimeoutError):
        error = ReadTimeoutError(f"read timed out: {exc}")
    elif isinstance(exc, (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError)):
        error = ConnectionClosedError(f"connection closed by the server: {exc}")
    elif isinstance(exc, asyncio.TimeoutError) and not isinstance(exc, aiohttp.ClientError):
        # aiohttp's total timeout, which the pipeline sets to what is left of the call's deadline.
        # Tested before OSError: since Python 3.11, asyncio.TimeoutError is the builtin
        # TimeoutError, an OSError.
        error = DeadlineExceededError("the call's deadline passed before it completed")
    elif isinstance(exc, (aiohttp.ClientOSError, aiohttp.ClientConnectionError, OSError)):
        error = ConnectionClosedError(f"connection failed: {exc}")
    else:
        error = TransportError(f"HTTP request failed: {type(exc).__name__}: {exc}")
    error.__cause__ = exc if _shows_no_request(exc) else _stand_in(exc)
    error.__suppress_context__ = True
    return error


def _shows_no_request(exc: BaseException) -> bool:
    """True for an exception (and its chain) that holds no request: connection errors, timeouts."""
    seen = 0
    while exc is not None and seen < 8:
        if (
            hasattr(exc, "request_info")
            or isinstance(exc, aiohttp.ClientResponseError)
            or _holds_proxy_credentials(exc)
        ):
            return False
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
        seen += 1
    return exc is None


def _holds_proxy_credentials(exc: BaseException) -> bool:
    """A connection error's key (in its args) names the proxy, with its credentials if any."""
    values = [*exc.args, *getattr(exc, "__dict__", {}).values()]
    for value in values:
        if getattr(value, "proxy_auth", None) is not None:
            return True
        proxy = getattr(value, "proxy", None)
        if proxy is not None and getattr(proxy, "password", None):
            return True
    return False


def _stand_in(exc: BaseException) -> TransportCause:
    return TransportCause(f"{type(exc).__name__}: {_safe_text(exc)}")  # the subclass, for callers


class TransportCause(SanitizedCause):
    """Stands in for aiohttp's exception under a :class:`TransportError`: its type and text only."""


def _safe_text(exc: BaseException) -> str:
    # ClientResponseError's text is its status, message and URL: no headers. Others show their
    # OS error or host. Neither includes a request's headers.
    try:
        return str(exc)
    except Exception:
        return "<unprintable>"


def _is_transport_failure(exc: BaseException) -> bool:
    return isinstance(exc, (aiohttp.ClientError, asyncio.TimeoutError, OSError))


async def send(
    session: aiohttp.ClientSession,
    request: HttpRequest,
    timeout: aiohttp.ClientTimeout,
    *,
    stream: bool = False,
    max_body: int | None = None,
    route: Mapping[str, Any] = DIRECT,
    watchdog: ReadWatchdog | None = None,
    own_session: bool = False,
) -> HttpResponse:
    """Send one attempt and read its answer (all of it, unless ``stream`` and the status is 2xx).
    See :func:`exchange`."""
    return await exchange(
        session,
        request.method,
        request.url,
        request.body,
        request.headers,
        timeout,
        stream=stream,
        max_body=max_body,
        route=route,
        watchdog=watchdog,
        own_session=own_session,
    )


async def exchange(
    session: aiohttp.ClientSession,
    method: str,
    url: URL,
    body: bytes,
    headers: dict[str, str],
    timeout: aiohttp.ClientTimeout,
    # Positional too: the pipeline's flat path passes all of them positionally (keywords cost a
    # call more than the rest of this function's bookkeeping).
    stream: bool = False,
    max_body: int | None = None,
    route: Mapping[str, Any] = DIRECT,
    watchdog: ReadWatchdog | None = None,
    own_session: bool = False,
    task: asyncio.Task[Any] | None = None,
    queued: WireRequest | None = None,
) -> HttpResponse:
    """``send`` without the ``HttpRequest``: the pipeline's flat path takes this one directly.

    ``route`` adds the proxy and TLS settings ``_network`` chose for the request's host. With a
    ``watchdog``, ``sock_read`` is kept by it rather than by aiohttp's timer re-armed on every read
    (see ``_watchdog``): with ``own_session`` (the client made ``session``: its connector is a
    :class:`WatchedConnector` of the same watchdog, and it skips aiohttp's automatic headers
    itself) for every call from the start (``task``: the running task, if the caller has it at
    hand), a started stream's watch carrying on from its headers; without, for a started stream
    from its headers on, aiohttp's own timer applying until then and to other calls. ``queued``:
    the call's ``WireRequest`` if it may wait for its connection in that session's pool (a slot
    taken on credit), to be signed again there after a long wait (see :class:`WatchedConnector`).

    A body read whole is bounded by ``max_body``: a larger Content-Length is refused before reading,
    a chunked body is cut off at the bound (``ResponseTooLargeError``), and the connection is
    closed rather than reused. On cancellation or failure the connection goes back to the pool only
    if its response was read to the end; aiohttp closes it otherwise.
    """
    if route and url.scheme == "http" and "proxy_headers" in route:
        # aiohttp sends proxy_headers only on a CONNECT; a plain-http request through the proxy
        # carries them itself (as urllib3 does for botocore). Added after signing: never signed.
        headers = {**headers, **route["proxy_headers"]}
    watch = None
    if own_session and timeout.sock_read and watchdog is not None:
        # aiohttp's timer would be armed once the request is written and re-armed on every read:
        # the watch starts now and counts idle time only once the connector has told it the
        # connection and the request has left its buffer.
        watch = watchdog.watch(timeout.sock_read, True, task)
        if queued is not None:
            watch.wire = queued
        cached = _stripped  # read once: another thread's client may replace it meanwhile
        timeout = cached[1] if cached[0] is timeout else _without_sock_read(timeout)
    try:
        response = await session.request(
            method,
            url,
            data=body,
            headers=headers,
            # The client's own session skips them for every request: no set to build per call.
            skip_auto_headers=None if own_session else SKIP_AUTO_HEADERS,
            timeout=timeout,
            auto_decompress=False,
            allow_redirects=False,
            **route,
        )
        try:
            if stream and 200 <= response.status < 300:
                if watch is not None:
                    if watch.expired:  # as for a call below
                        raise aiohttp.ServerTimeoutError("Timeout on reading data from socket")
                    # The call's watch keeps sock_read for the stream from its headers on: no
                    # aiohttp timer was armed for it (two, armed and cancelled, otherwise).
                    kept, watch = watch, None  # not unwatched below
                    kept.owner.hand_over(kept, response.content, _read_timed_out, response)
                    return HttpResponse(response.status, response.headers, b"", response, kept)
                if watchdog is not None and timeout.sock_read and _stop_read_timer(response):
                    # From the first byte on, the client's watchdog keeps sock_read for the
                    # stream: aiohttp's timer would be re-armed on every read, that is per event.
                    kept = watchdog.watch(timeout.sock_read, False, task)
                    watchdog.hand_over(kept, response.content, _read_timed_out, response)
                    return HttpResponse(response.status, response.headers, b"", response, kept)
                return HttpResponse(response.status, response.headers, b"", response)
            if watch is not None:
                if watch.expired:  # it expired as the headers came in: aiohttp's timer's error
                    raise aiohttp.ServerTimeoutError("Timeout on reading data from socket")
                # From the headers on, body bytes are the progress, and an expiry ends the body.
                watch.reader = response.content
                watch.on_expire = _read_timed_out
                watch.subject = response
            length = response.content_length
            if max_body is None or method == "HEAD":
                answer = await response.read()
            elif length is not None:
                if length > max_body:
                    raise ResponseTooLargeError(max_body, length)
                answer = await response.read()
            else:
                answer = await _read_bounded(response, max_body)
        except BaseException:
            response.close()
            raise
        response.release()
        return HttpResponse(response.status, response.headers, answer)
    except Exception as exc:
        if not _is_transport_failure(exc) or isinstance(exc, ResponseTooLargeError):
            raise
        error = translate_error(exc)
    finally:
        if watch is not None:
            watchdog.unwatch(watch)  # type: ignore[union-attr]  # set with the watch
        # A traceback through this frame must not hold the task that may end with its error:
        # that would be a cycle only the garbage collector frees.
        task = None
    # Raised outside the handler so that only the __cause__ translate_error chose is reachable.
    try:
        raise error
    finally:
        del error  # the error's traceback holds this frame: no cycle through it


# (a timeout, it without sock_read); an object no client passes, to start with.
_stripped: tuple[aiohttp.ClientTimeout, aiohttp.ClientTimeout] = (
    aiohttp.ClientTimeout(),
    aiohttp.ClientTimeout(),
)


def _without_sock_read(timeout: aiohttp.ClientTimeout) -> aiohttp.ClientTimeout:
    """``timeout`` for aiohttp when the watchdog keeps ``sock_read``; the last one is remembered
    (a client passes the same object on every call)."""
    global _stripped
    cached = _stripped  # read once: another thread's client may replace it meanwhile
    if cached[0] is timeout:
        return cached[1]
    stripped = aiohttp.ClientTimeout(
        total=timeout.total,
        connect=timeout.connect,
        sock_connect=timeout.sock_connect,
        ceil_threshold=timeout.ceil_threshold,
    )
    _stripped = (timeout, stripped)
    return stripped


class WatchedConnector(aiohttp.TCPConnector):
    """The connector of a session the client owns: tells the client's read watchdog which
    connection a call's request goes out on (see ``_watchdog``), and admits the calls that waited
    for it in its pool.

    Those are the pipeline's calls without a deadline, on a slot taken on credit
    (``Slots.take_on_credit``): signed and built, as an expert's own aiohttp call waits. Once one
    has its connection, ``admit(request, wire)`` refuses it if the client is shutting down
    (nothing is sent, as for a call queued in the slots), or signs it again if the watchdog found
    it waiting longer than ``SIGN_AGAIN_AFTER`` (``watch.late``).
    """

    def __init__(
        self,
        *,
        watchdog: ReadWatchdog,
        lifecycle: Lifecycle,
        admit: Callable[[aiohttp.ClientRequest, WireRequest], Awaitable[None]],
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.watchdog = watchdog
        self._lifecycle = lifecycle
        self._admit = admit

    async def connect(self, req: Any, traces: Any, timeout: aiohttp.ClientTimeout) -> Any:
        connection = await _connect(self, req, traces, timeout)  # super(), without making one
        protocol = connection.protocol
        if protocol is not None and protocol.transport is not None:
            watch = self.watchdog.connected(protocol.transport, _answer_timed_out, protocol)
            # A call that may have waited here is admitted before anything is sent.
            if (
                watch is not None
                and (watch.late or self._lifecycle.closing)
                and watch.wire is not None
            ):
                try:
                    await self._admit(req, watch.wire)
                except BaseException:
                    connection.release()  # nothing was written on it
                    raise
        return connection


_connect = aiohttp.TCPConnector.connect


def _answer_timed_out(protocol: Any) -> None:
    """The watchdog found a call that waited ``sock_read`` for its response headers: what
    aiohttp's own timer does then (the response handler's ``set_exception``), so the call raises
    aiohttp's error (translated to ``ReadTimeoutError``)."""
    protocol.set_exception(aiohttp.ServerTimeoutError("Timeout on reading data from socket"))


def _stop_read_timer(response: aiohttp.ClientResponse) -> bool:
    """Stop aiohttp's sock_read timer for the rest of a response; False if it cannot be done.

    ``read_timeout`` and ``start_timeout()`` are public on aiohttp's response handler (the
    protocol of the connection): with no timeout, restarting it cancels the armed timer and arms
    none, and no later read re-arms one.
    """
    connection = response.connection
    protocol = connection.protocol if connection is not None else None
    if protocol is None or not hasattr(protocol, "start_timeout"):
        return False
    protocol.read_timeout = None
    protocol.start_timeout()
    return True


def _read_timed_out(response: aiohttp.ClientResponse) -> None:
    """The watchdog found a stream idle for its ``sock_read``: its reader gets what aiohttp's own
    timer would have raised (translated to ``ReadTimeoutError`` where it is read)."""
    abort_response(response, aiohttp.ServerTimeoutError("Timeout on reading data from socket"))


def transport_failure(exc: Exception) -> Exception:
    """What to raise for ``exc``, raised while reading a body: our error for a transport failure,
    ``exc`` itself otherwise. For read loops that await aiohttp directly (``read_chunk`` would cost
    them a coroutine per chunk); raise the result outside the ``except`` block, so that only the
    ``__cause__`` ``translate_error`` chose is reachable."""
    return translate_error(exc) if _is_transport_failure(exc) else exc


async def _read_bounded(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """A body without Content-Length, read until its end or until it passes ``limit``."""
    buffer = bytearray()
    content = response.content
    while True:
        chunk = await content.readany()
        if not chunk:
            return bytes(buffer)
        if len(buffer) + len(chunk) > limit:
            raise ResponseTooLargeError(limit, None)
        buffer += chunk


async def read_chunk(response: aiohttp.ClientResponse) -> bytes:
    """The next bytes of a streamed body as they arrive (``b""`` at its end)."""
    try:
        return await response.content.readany()
    except Exception as exc:
        if not _is_transport_failure(exc):
            raise
        error = translate_error(exc)
    try:
        raise error
    finally:
        del error  # the error's traceback holds this frame: no cycle through it


# aiohttp has no documented way for either of the two things below; they are kept here, and
# tests/test_transport_pins.py pins the behaviour we rely on, so an aiohttp upgrade that changes it
# fails there rather than in production.


def on_connection_released(response: aiohttp.ClientResponse, callback: Callable[[], None]) -> bool:
    """Call ``callback`` once ``response``'s connection is released (body read to its end, or the
    response closed); False if there is no connection (the body was already read)."""
    connection = response.connection
    if connection is None:
        return False
    connection.add_callback(callback)
    return True


def abort_response(response: aiohttp.ClientResponse, error: BaseException) -> None:
    """End a body being read: a read in progress, and every later one, raises ``error``.

    Closing the response alone is not enough: aiohttp detaches the body from a connection it
    closes itself, so a pending read would wait forever (no ``sock_read`` timeout fires either).
    """
    response.content.set_exception(error)
    response.close()


# The session token, and the custom attributes the service model marks sensitive.
_SENSITIVE_HEADERS = frozenset({"x-amz-security-token", "x-amzn-sagemaker-custom-attributes"})


def redacted(headers: Mapping[str, str]) -> dict[str, str]:
    """Headers fit for a log line: the signature, session token and custom attributes are never
    shown."""
    out = {}
    for name, value in headers.items():
        lname = name.lower()
        if lname == "authorization":
            if value[:7].lower() == "bearer ":
                out[name] = value[:7] + "<redacted>"
            else:
                out[name] = value.split(" Signature=")[0] + " Signature=<redacted>"
        elif lname in _SENSITIVE_HEADERS:
            out[name] = "<redacted>"
        else:
            out[name] = value
    return out
