"""The call pipeline: admission, the retry loop, middlewares, signing and sending.

One call, in order::

    admission       refused once the client shuts down (ClientClosedError, nothing sent)
    retry loop      attempts, backoff, retry quota, the call's deadline (timeout.total)
      slot          at most max_connections attempts in flight; later ones wait in FIFO order
                    (a started response stream keeps its slot until its connection is released)
      middlewares   user code, once per attempt, first in the list outermost
      sign          SigV4 with the credentials of this moment: a signature made before a long
                    queue wait could expire (5 minutes) before it is sent
      send          _transport, which maps aiohttp's failures to our errors

Shutdown stops admission, lets calls in flight finish within a grace period, then cancels the rest;
each of those raises ClientClosedError in its caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

import aiohttp
from yarl import URL

from ._constants import SIGNING_NAME
from ._credentials import CredentialSource
from ._errors import (
    ClientClosedError,
    DeadlineExceededError,
    PoolTimeoutError,
    SageMakerRuntimeError,
    ServiceError,
    parse_error_response,
)
from ._protocol import UNSIGNED_DEFAULT_HEADERS, WireRequest
from ._retry import (
    RetryPolicy,
    RetryQuota,
    delay,
    parse_retry_after,
    retry_cost,
    should_retry,
)
from ._signing import sign
from ._slots import Slots
from ._transport import DIRECT, HttpRequest, HttpResponse, redacted, send
from ._useragent import add_unsigned

logger = logging.getLogger("sagemaker_rt_aio")

CallNext = Callable[[HttpRequest], Awaitable[HttpResponse]]
Middleware = Callable[[HttpRequest, CallNext], Awaitable[HttpResponse]]
T = TypeVar("T")

_URL_CACHE_SIZE = 512


class Pipeline:
    """Runs calls for one client. Holds everything a call needs that outlives it."""

    def __init__(
        self,
        *,
        base_url: URL,
        host: str,
        region: str,
        credentials: CredentialSource,
        get_session: Callable[[], aiohttp.ClientSession],
        timeout: aiohttp.ClientTimeout,
        retry_policy: RetryPolicy,
        max_connections: int,
        middlewares: Sequence[Middleware],
        route: Mapping[str, Any] = DIRECT,
        unsigned_headers: Mapping[str, str] = UNSIGNED_DEFAULT_HEADERS,
    ) -> None:
        self._base_url = base_url
        self._base_path = base_url.raw_path.rstrip("/")
        self._host = host
        self._region = region
        self._credentials = credentials
        self._get_session = get_session
        self._route = route  # proxy and TLS settings for the endpoint's host (_network)
        self._unsigned_headers = unsigned_headers
        # Only a middleware can have set one of these headers; without any, a plain update.
        self._add_unsigned: Callable[[dict[str, str], Mapping[str, str]], None] = (
            add_unsigned if middlewares else dict.update
        )
        self.timeout = timeout
        self.retry_policy = retry_policy
        self._quota = RetryQuota(retry_policy.quota_capacity)
        self._slots = Slots(max_connections)
        self._send = self._chain(tuple(middlewares), stream=False)
        self._send_stream = self._chain(tuple(middlewares), stream=True)
        self._urls: dict[str, URL] = {}
        self._rand = random.Random()
        self.closing = False
        self._closing_event = asyncio.Event()
        self._inflight: set[asyncio.Task[Any]] = set()
        self._aborted: set[asyncio.Task[Any]] = set()
        self._idle = asyncio.Event()
        self._idle.set()

    # -- shutdown ---------------------------------------------------------------------------

    async def drain(self, grace: float) -> None:
        """Stop admitting calls; wait up to ``grace`` seconds for those in flight, cancel the rest."""
        self.closing = True
        self._closing_event.set()  # wakes calls sleeping between attempts: they end now
        current = asyncio.current_task()
        if current in self._inflight:
            # shutdown() from inside a call (a middleware): waiting for that call would never end.
            self._inflight.discard(current)
            if not self._inflight:
                self._idle.set()
        if self._inflight and grace > 0:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._idle.wait(), grace)
        if self._inflight:
            for task in list(self._inflight):
                self._aborted.add(task)
                task.cancel()
            await self._idle.wait()

    # -- one call ---------------------------------------------------------------------------

    async def call(
        self,
        wire: WireRequest,
        parse: Callable[[HttpResponse, int], T],
        *,
        stream: bool = False,
    ) -> T:
        """Run ``wire`` to a parsed result or a typed error, retrying what is safe to retry.

        One coroutine for the whole retry loop: this is every call's hot path.
        """
        if self.closing:
            raise ClientClosedError()
        task = asyncio.current_task()
        assert task is not None
        inflight = self._inflight
        inflight.add(task)
        self._idle.clear()
        policy = self.retry_policy
        send = self._send_stream if stream else self._send
        total = self.timeout.total
        started = time.monotonic()
        deadline = started + total if total else None
        url = self._url(wire.path)
        attempt = 1
        last_cost = 0
        try:
            while True:
                request = HttpRequest(
                    wire.operation.name,
                    wire.endpoint_name,
                    "POST",
                    url,
                    dict(wire.headers),
                    wire.body,
                    attempt,
                    (wire.body, wire.payload_hash),
                )
                error: SageMakerRuntimeError
                retry_after = None
                try:
                    response = await self._attempt(request, send, deadline, stream)
                except ClientClosedError:
                    raise
                except SageMakerRuntimeError as exc:
                    error = exc
                else:
                    if 200 <= response.status < 300:
                        # botocore's standard mode: a success earns a token back, or returns what
                        # its last charged retry took.
                        self._quota.release(last_cost or 1)
                        return parse(response, attempt - 1)
                    error = parse_error_response(
                        response.status, response.headers, response.body, retry_attempts=attempt - 1
                    )
                    retry_after = parse_retry_after(response.headers.get("Retry-After"))
                elapsed = time.monotonic() - started
                if not should_retry(policy, error, attempt=attempt, elapsed=elapsed):
                    raise error
                wait = delay(
                    policy, error, attempt=attempt, retry_after=retry_after, rand=self._rand
                )
                if deadline is not None and time.monotonic() + wait >= deadline:
                    raise error  # the next attempt could not finish in time anyway
                cost = retry_cost(policy, error)
                if cost:
                    if not self._quota.acquire(cost):
                        logger.debug("retry quota exhausted; not retrying %s", _error_name(error))
                        raise error
                    last_cost = cost
                logger.debug(
                    "retrying %s on %s after %s (attempt %d, waiting %.3f s)",
                    wire.operation.name,
                    wire.endpoint_name,
                    _error_name(error),
                    attempt,
                    wait,
                )
                if await self.sleep_unless_closing(wait):
                    raise ClientClosedError("the client shut down while the call waited to retry")
                attempt += 1
        except asyncio.CancelledError:
            if task in self._aborted:
                # We cancelled it in drain(); the caller did not, so it gets an error instead.
                if sys.version_info >= (3, 11):
                    task.uncancel()
                raise ClientClosedError(
                    "the client shut down while the call was in flight"
                ) from None
            raise
        finally:
            inflight.discard(task)
            self._aborted.discard(task)
            if not inflight:
                self._idle.set()

    async def _attempt(
        self, request: HttpRequest, send: CallNext, deadline: float | None, stream: bool
    ) -> HttpResponse:
        slots = self._slots
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DeadlineExceededError("the call's deadline passed before it completed")
            request.deadline = deadline
        if slots.try_take():
            pass  # the hot path: a free slot, no coroutine, no timer
        elif deadline is None:
            await slots.take()
        else:
            try:
                await asyncio.wait_for(slots.take(), remaining)
            except asyncio.TimeoutError:
                raise PoolTimeoutError(
                    f"no free connection within the call's deadline ({self.timeout.total:g} s)"
                ) from None
        held = True
        try:
            if self.closing:
                raise ClientClosedError()
            response = await send(request)
            if stream:
                held = not self._hold_slot_for_stream(response)
            return response
        finally:
            if held:
                slots.give_back()

    def _hold_slot_for_stream(self, response: HttpResponse) -> bool:
        """A started stream keeps its connection, so it keeps its slot until that connection is
        released (stream read to its end or closed); True if the slot is now the stream's."""
        connection = response.stream.connection if response.stream is not None else None
        if connection is None:  # an error answer, or a body already read in full
            return False
        connection.add_callback(self._slots.give_back)
        return True

    async def sleep_unless_closing(self, seconds: float) -> bool:
        """Sleep between attempts; True if the client began shutting down meanwhile."""
        if seconds <= 0:
            return self.closing
        try:
            await asyncio.wait_for(self._closing_event.wait(), seconds)
        except asyncio.TimeoutError:
            return False
        return True

    # -- one attempt ------------------------------------------------------------------------

    def _chain(self, middlewares: tuple[Middleware, ...], *, stream: bool) -> CallNext:
        call: CallNext = functools.partial(self._sign_and_send, stream=stream)
        for middleware in reversed(middlewares):
            call = _bind(middleware, call)
        return call

    async def _sign_and_send(self, request: HttpRequest, *, stream: bool) -> HttpResponse:
        """The innermost layer: sign this attempt now, then send it."""
        session = self._get_session()
        credentials = self._credentials.current() or await self._credentials.get()
        headers = request.headers
        sign(
            method=request.method,
            host=self._host,
            path=request.url.raw_path,
            headers=headers,
            payload_hash=request.payload_hash(),
            credentials=credentials,
            region=self._region,
            service=SIGNING_NAME,
        )
        self._add_unsigned(headers, self._unsigned_headers)  # a middleware's User-Agent stays
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "%s %s attempt=%d headers=%s",
                request.method,
                request.url,
                request.attempt,
                redacted(headers),
            )
        timeout = self.timeout
        if request.deadline is None:
            return await send(session, request, timeout, stream=stream, route=self._route)
        remaining = max(request.deadline - time.monotonic(), 0.001)
        if not stream:
            timeout = aiohttp.ClientTimeout(
                total=remaining, sock_connect=timeout.sock_connect, sock_read=timeout.sock_read
            )
            return await send(session, request, timeout, stream=False, route=self._route)
        # A stream's deadline covers getting its first response, not reading it to the end.
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=timeout.sock_connect, sock_read=timeout.sock_read
        )
        try:
            return await asyncio.wait_for(
                send(session, request, timeout, stream=True, route=self._route), remaining
            )
        except SageMakerRuntimeError:
            raise  # our own errors are TimeoutErrors too (ReadTimeoutError): not the deadline
        except asyncio.TimeoutError:
            raise DeadlineExceededError(
                "the call's deadline passed before the stream started"
            ) from None

    def _url(self, path: str) -> URL:
        url = self._urls.get(path)
        if url is None:
            if len(self._urls) >= _URL_CACHE_SIZE:
                self._urls.clear()
            url = self._base_url.with_path(self._base_path + path, encoded=True)
            self._urls[path] = url
        return url


def _bind(middleware: Middleware, call_next: CallNext) -> CallNext:
    async def call(request: HttpRequest) -> HttpResponse:
        return await middleware(request, call_next)

    return call


def _error_name(error: SageMakerRuntimeError) -> str:
    return error.code if isinstance(error, ServiceError) else type(error).__name__
