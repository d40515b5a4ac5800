"""The aiohttp layer: moves a signed request's bytes and maps transport failures to our errors.

This is the only place that knows aiohttp's exception classes: ``translate_error`` turns each into a
:class:`TransportError` subclass that says whether the request can have reached the server, which is
what the retry layer needs to know.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

import aiohttp
from multidict import CIMultiDictProxy
from yarl import URL

from ._errors import (
    ConnectionClosedError,
    ConnectTimeoutError,
    DeadlineExceededError,
    EndpointConnectionError,
    ReadTimeoutError,
    TransportError,
)
from ._signing import payload_sha256

# aiohttp must not add headers botocore would not send: the model container sees what boto3 sends.
SKIP_AUTO_HEADERS = frozenset({"Accept", "Content-Type", "Accept-Encoding", "User-Agent"})


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
    # Authorizes the attempt instead of SigV4 (the OpenAI route's bearer token), or None.
    auth: Callable[[HttpRequest], Awaitable[None]] | None = field(default=None, repr=False)

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


def translate_error(exc: BaseException) -> TransportError:
    """The :class:`TransportError` for an exception raised while sending or receiving."""
    error: TransportError
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
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
    error.__cause__ = exc
    return error


def _is_transport_failure(exc: BaseException) -> bool:
    return isinstance(exc, (aiohttp.ClientError, asyncio.TimeoutError, OSError))


async def send(
    session: aiohttp.ClientSession,
    request: HttpRequest,
    timeout: aiohttp.ClientTimeout,
    *,
    stream: bool = False,
) -> HttpResponse:
    """Send one attempt and read its answer (all of it, unless ``stream`` and the status is 2xx).

    On cancellation or failure the connection goes back to the pool only if its response was read
    to the end; aiohttp closes it otherwise.
    """
    try:
        response = await session.request(
            request.method,
            request.url,
            data=request.body,
            headers=request.headers,
            skip_auto_headers=SKIP_AUTO_HEADERS,
            timeout=timeout,
            auto_decompress=False,
            allow_redirects=False,
        )
        try:
            if stream and 200 <= response.status < 300:
                return HttpResponse(response.status, response.headers, b"", response)
            body = await response.read()
        except BaseException:
            response.close()
            raise
        response.release()
        return HttpResponse(response.status, response.headers, body)
    except Exception as exc:
        if _is_transport_failure(exc):
            raise translate_error(exc) from exc
        raise


async def read_chunk(response: aiohttp.ClientResponse) -> bytes:
    """The next bytes of a streamed body as they arrive (``b""`` at its end)."""
    try:
        return await response.content.readany()
    except Exception as exc:
        if _is_transport_failure(exc):
            raise translate_error(exc) from exc
        raise


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
