"""The call pipeline: every request the client sends, SageMaker's and S3's alike.

One call, in order::

    admission       refused once the client shuts down (ClientClosedError, nothing sent); the
                    call's task registers with the client's lifecycle
    retry loop      attempts, backoff, retry quota, the call's deadline (timeout.total, or a
                    caller's own deadline such as a wait's), decided by pure functions (_retry)
                    from the target's rules: an inference is never sent again once it may have
                    run; an idempotent S3 request may be
      slot          at most max_connections attempts in flight; later ones wait in FIFO order
                    (a started response stream keeps its slot until its connection is released)
      middlewares   user code, once per attempt, first in the list outermost
      sign          SigV4 with the credentials of this moment, for the target's signing name and
                    host: a signature made before a long queue wait could expire (5 minutes)
                    before it is sent. Credentials are awaited no longer than the call's deadline
      send          _transport, which maps aiohttp's failures to our errors and bounds bodies

Shutdown (``_lifecycle``) stops admission, lets calls in flight finish within a grace period, then
cancels the rest; each of those raises ClientClosedError in its caller.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

import aiohttp
from yarl import URL

from ._constants import SIGNING_NAME
from ._credentials import CredentialSource
from ._endpoints import host_header
from ._errors import (
    ClientClosedError,
    DeadlineExceededError,
    PoolTimeoutError,
    SageMakerRuntimeError,
    ServiceError,
    parse_error_response,
)
from ._lifecycle import Lifecycle
from ._observe import Observe
from ._protocol import UNSIGNED_DEFAULT_HEADERS, WireRequest
from ._retry import (
    RetryPolicy,
    RetryQuota,
    delay,
    parse_retry_after,
    retry_cost,
    should_retry,
)
from ._signing import sign, sign_headers
from ._slots import Slots
from ._transport import (
    DIRECT,
    HttpRequest,
    HttpResponse,
    exchange,
    on_connection_released,
    redacted,
    send,
)
from ._useragent import add_unsigned
from ._watchdog import ReadWatchdog

logger = logging.getLogger("sagemaker_rt_aio")

CallNext = Callable[[HttpRequest], Awaitable[HttpResponse]]
Middleware = Callable[[HttpRequest, CallNext], Awaitable[HttpResponse]]
T = TypeVar("T")
ParseError = Callable[[int, Mapping[str, str], bytes, int], ServiceError]

_URL_CACHE_SIZE = 512


def _parse_sagemaker_error(
    status: int, headers: Mapping[str, str], body: bytes, retries: int
) -> ServiceError:
    return parse_error_response(status, headers, body, retry_attempts=retries)


class Target:
    """Where requests go and the rules that differ per service, as data, never changed once made.
    (A slotted class rather than a frozen dataclass, which costs 0.6 ms to create on import;
    attribute reads cost the same.)"""

    __slots__ = (
        "authorize", "double_encode_path", "host", "idempotent", "name", "parse_error", "region",
        "retry_statuses", "signing_name",
    )  # fmt: skip

    def __init__(
        self,
        name: str,
        signing_name: str,
        region: str,
        # The Host header that is signed; None: from each request's URL (S3's virtual-hosted
        # buckets).
        host: str | None,
        double_encode_path: bool = True,
        # Idempotent requests (S3's GET, HEAD, PUT) may be sent again after they may have reached
        # the server, and answers with these statuses are retried whatever their code.
        idempotent: bool = False,
        retry_statuses: frozenset[int] = frozenset(),
        parse_error: ParseError = _parse_sagemaker_error,
        # Authorizes each attempt instead of SigV4 (the OpenAI route's bearer token); None: SigV4.
        authorize: Callable[[HttpRequest], Awaitable[None]] | None = None,
    ) -> None:
        self.name = name
        self.signing_name = signing_name
        self.region = region
        self.host = host
        self.double_encode_path = double_encode_path
        self.idempotent = idempotent
        self.retry_statuses = retry_statuses
        self.parse_error = parse_error
        self.authorize = authorize

    def __repr__(self) -> str:
        return f"<Target {self.name} {self.signing_name} {self.region} host={self.host!r}>"


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
        lifecycle: Lifecycle,
        max_response_bytes: int | None = None,
        route: Mapping[str, Any] = DIRECT,
        unsigned_headers: Mapping[str, str] = UNSIGNED_DEFAULT_HEADERS,
        route_for: Callable[[URL], Mapping[str, Any]] | None = None,
        own_session: bool = False,
    ) -> None:
        self._base_url = base_url
        self._base_path = base_url.raw_path.rstrip("/")
        self.sagemaker = Target("sagemaker", SIGNING_NAME, region, host)
        self._credentials = credentials
        self._get_session = get_session
        self._route = route  # proxy and TLS settings for the endpoint's host (_network)
        # ... and for another target's hosts (S3's), decided per host.
        self._route_for = route_for
        self._unsigned_headers = unsigned_headers
        # Only a middleware can have set one of these headers; without any, a plain update.
        self._add_unsigned: Callable[[dict[str, str], Mapping[str, str]], None] = (
            add_unsigned if middlewares else dict.update
        )
        self.timeout = timeout
        self.retry_policy = retry_policy
        self.max_response_bytes = max_response_bytes
        self.lifecycle = lifecycle
        self._quota = RetryQuota(retry_policy.quota_capacity)
        self._slots = Slots(max_connections)
        # sock_read of started streams and, when the session is the client's own (its connector
        # reports connections to it), of the other calls (see _watchdog); shared with derived views.
        self._watchdog = ReadWatchdog()
        self._own_session = own_session
        self._pooled = self._queues_in_pool(timeout)
        lifecycle.on_close(self._close_watchdog)
        self._middlewares = tuple(middlewares)
        # No middleware: SageMaker calls take call()'s flat path (streams without a deadline).
        self._direct = not self._middlewares
        self._urls: dict[str, URL] = {}
        self._rand = random.Random()
        self.observe: Observe | None = None  # telemetry (_observe.py): None when nothing records
        self._build_chains()

    def _build_chains(self) -> None:
        self._chains: dict[tuple[Target, bool], CallNext] = {}
        self._send = self._chain(self.sagemaker, stream=False)
        self._send_stream = self._chain(self.sagemaker, stream=True)

    def derive(
        self, *, timeout: aiohttp.ClientTimeout | None, retry_policy: RetryPolicy | None
    ) -> Pipeline:
        """A pipeline with other options, sharing connections, slots, credentials, retry quota
        and lifecycle with this one (``client.with_options``)."""
        view = copy.copy(self)
        if timeout is not None:
            view.timeout = timeout
            view._pooled = view._queues_in_pool(timeout)
        if retry_policy is not None:
            view.retry_policy = retry_policy
        view._rand = random.Random()
        view._build_chains()
        return view

    def _queues_in_pool(self, timeout: aiohttp.ClientTimeout) -> bool:
        """Whether this pipeline's flat calls without a deadline may wait for their connection in
        the client's own pool, on a slot taken on credit (see ``Slots.take_on_credit``): with the
        client's session, whose connector knows each call by its watch (a read timeout), and no
        ``connect`` timeout, which would bound that wait as aiohttp's own."""
        return self._own_session and bool(timeout.sock_read) and timeout.connect is None

    async def admit_queued(self, request: aiohttp.ClientRequest, wire: WireRequest) -> None:
        """A call that waited in the client's own pool has its connection (``WatchedConnector``
        calls this before anything is written): refused if the client began shutting down,
        otherwise signed again, its signature made before a long wait (``SIGN_AGAIN_AFTER``)."""
        if self.lifecycle.closing:
            raise ClientClosedError()
        target = self.sagemaker
        headers = wire.headers.copy()
        sign(
            method=wire.method,
            host=target.host,  # type: ignore[arg-type]  # SageMaker's is set
            path=request.url.raw_path,
            headers=headers,
            payload_hash=wire.payload_hash,
            credentials=self._credentials.current() or await self._credentials.get(None),
            region=target.region,
            service=target.signing_name,
            double_encode_path=target.double_encode_path,
        )
        for name in ("X-Amz-Date", "X-Amz-Security-Token", "Authorization"):
            value = headers.get(name)
            if value is None:
                request.headers.popall(name, None)
            else:
                request.headers[name] = value

    @property
    def watchdog(self) -> ReadWatchdog:
        return self._watchdog

    @property
    def closing(self) -> bool:
        return self.lifecycle.closing

    # -- one call ---------------------------------------------------------------------------

    async def call(
        self,
        wire: WireRequest,
        parse: Callable[[HttpResponse, int], T],
        *,
        stream: bool = False,
        target: Target | None = None,
        deadline: float | None = None,
    ) -> T:
        """Run ``wire`` to a parsed result or a typed error, retrying what is safe to retry.

        ``deadline`` (``time.monotonic()``) bounds the call besides ``timeout.total``. One
        coroutine for the whole retry loop: this is every call's hot path.
        """
        lifecycle = self.lifecycle
        # lifecycle.enter(), inlined: this is every call's path.
        if lifecycle.closing:
            raise ClientClosedError()
        # lifecycle.running_task(), inlined: asyncio.current_task() without the loop would make
        # a system call per call on Python 3.10-3.11.
        loop = lifecycle.loop
        task = asyncio.current_task(loop) if loop is not None else None
        if task is None:
            task = lifecycle.running_task()
        inflight = lifecycle.inflight
        if task is None or task in inflight:
            task = None  # registered by an outer entry point (a wait, invoke-and-wait)
        else:
            inflight.add(task)
        policy = self.retry_policy
        if target is None:
            target = self.sagemaker
            send = self._send_stream if stream else self._send
            url = self._urls.get(wire.path) or self._url(wire.path)
        else:
            send = self._chain(target, stream=stream)
            url = wire.url if wire.url is not None else self._url(wire.path)
        slots = self._slots
        total = self.timeout.total
        started = lifecycle.clock()  # tests drive it; time.monotonic otherwise
        if total:
            deadline = started + total if deadline is None else min(deadline, started + total)
        # A stream takes the flat path too unless a deadline bounds its start (_sign_and_send).
        direct = self._direct and target is self.sagemaker and (not stream or deadline is None)
        # Without a deadline, a flat call may wait for its connection in the client's own pool,
        # signed and built, rather than in the slots before it is signed (Slots.take_on_credit).
        pooled = direct and deadline is None and self._pooled
        attempt = 1
        last_cost = 0
        observe = self.observe
        obs = None if observe is None else observe(wire.operation.name, wire.endpoint_name, stream)
        error: SageMakerRuntimeError | None = None
        closed = None
        try:
            while True:
                retry_after = None
                try:
                    if direct:
                        # The flat path: _attempt and _sign_and_send inlined, no HttpRequest.
                        if deadline is not None and deadline <= time.monotonic():
                            raise DeadlineExceededError(
                                "the call's deadline passed before it completed"
                            )
                        if not (slots.take_on_credit() if pooled else slots.try_take()):
                            await self._wait_for_slot(deadline)
                        try:
                            if lifecycle.closing:
                                raise ClientClosedError()
                            session = self._get_session()
                            credentials = self._credentials.current() or (
                                await self._credentials.get(deadline)
                            )
                            headers = wire.headers.copy()
                            sign_headers(
                                wire.method,
                                target.host,  # type: ignore[arg-type]  # SageMaker's is set
                                url.raw_path,
                                headers,
                                wire.payload_hash,
                                credentials,
                                target.region,
                                target.signing_name,
                                "",
                                None,
                                target.double_encode_path,
                            )
                            unsigned = self._unsigned_headers
                            if unsigned:  # none with the client's own session: its defaults
                                headers.update(unsigned)
                            if logger.isEnabledFor(logging.DEBUG):
                                _log_attempt(wire.method, url, attempt, headers)
                            response = await exchange(
                                session,
                                wire.method,
                                url,
                                wire.body,
                                headers,
                                self.timeout if deadline is None else self._timeout_for(deadline),
                                stream,
                                self.max_response_bytes,
                                self._route,
                                self._watchdog,
                                self._own_session,
                                task,
                                wire if pooled else None,
                            )
                        except BaseException:
                            slots.give_back()
                            raise
                        # A started stream keeps its slot until its connection is released (read
                        # to its end or closed), as in _attempt.
                        if not (
                            stream
                            and response.stream is not None
                            and on_connection_released(response.stream, slots.give_back)
                        ):
                            slots.give_back()
                    else:
                        request = HttpRequest(
                            wire.operation.name,
                            wire.endpoint_name,
                            wire.method,
                            url,
                            wire.headers.copy(),
                            wire.body,
                            attempt,
                            (wire.body, wire.payload_hash),
                        )
                        response = await self._attempt(request, send, deadline, stream)
                except ClientClosedError:
                    raise
                except SageMakerRuntimeError as exc:
                    error = exc
                else:
                    if 200 <= response.status < 300:
                        # botocore's standard mode: a success earns a token back, or returns what
                        # its last charged retry took.
                        quota = self._quota
                        if quota.available < quota.capacity:  # a full quota stays full
                            quota.release(last_cost or 1)
                        result = parse(response, attempt - 1)
                        if obs is not None:
                            obs.succeeded(response, result)
                        return result
                    error = target.parse_error(
                        response.status, response.headers, response.body, attempt - 1
                    )
                    retry_after = parse_retry_after(response.headers.get("Retry-After"))
                if obs is not None:
                    obs.attempt_failed(error)
                elapsed = lifecycle.clock() - started
                if not should_retry(
                    policy,
                    error,
                    attempt=attempt,
                    elapsed=elapsed,
                    idempotent=target.idempotent,
                    retry_statuses=target.retry_statuses,
                ):
                    raise error
                wait = delay(
                    policy, error, attempt=attempt, retry_after=retry_after, rand=self._rand
                )
                if deadline is not None and lifecycle.clock() + wait >= deadline:
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
                if obs is not None:
                    obs.retrying(error, wait)
                if await lifecycle.sleep_unless_closing(wait):
                    raise ClientClosedError("the client shut down while the call waited to retry")
                attempt += 1
        except asyncio.CancelledError as exc:
            closed = lifecycle.closed_error()
            if obs is not None:
                obs.failed(exc if closed is None else closed)
            if closed is None:
                raise
            # We cancelled it in shutdown; the caller did not, so it gets an error instead.
            raise closed from None
        except BaseException as exc:
            if obs is not None:
                obs.failed(exc)
            raise
        finally:
            if task is not None:
                inflight.discard(task)
                if lifecycle.aborted:
                    lifecycle.aborted.discard(task)
                if not inflight and lifecycle.closing:
                    lifecycle.idle.set()  # kept only while shutdown may wait for it
            # The error's traceback holds this frame: without these, the frame would hold the
            # error, and the task that ends with it, in cycles only the garbage collector frees.
            error = closed = task = None

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
                raise PoolTimeoutError("no free connection within the call's deadline") from None
        held = True
        try:
            if self.lifecycle.closing:
                raise ClientClosedError()
            response = await send(request)
            if stream and response.stream is not None:
                # A started stream keeps its connection, so it keeps its slot until that
                # connection is released (stream read to its end or closed).
                held = not on_connection_released(response.stream, slots.give_back)
            return response
        finally:
            if held:
                slots.give_back()

    async def _wait_for_slot(self, deadline: float | None) -> None:
        """Queue for a slot (none is free), no longer than the call's deadline."""
        if deadline is None:
            await self._slots.take()
            return
        try:
            await asyncio.wait_for(self._slots.take(), deadline - time.monotonic())
        except asyncio.TimeoutError:
            raise PoolTimeoutError("no free connection within the call's deadline") from None

    def _timeout_for(self, deadline: float | None) -> aiohttp.ClientTimeout:
        """aiohttp's timeout for an attempt that is not a stream: the total is what is left of
        the call's deadline."""
        timeout = self.timeout
        if deadline is None:
            return timeout
        return aiohttp.ClientTimeout(
            total=max(deadline - time.monotonic(), 0.001),
            sock_connect=timeout.sock_connect,
            sock_read=timeout.sock_read,
        )

    async def _close_watchdog(self) -> None:
        self._watchdog.close()

    @property
    def gauges(self) -> tuple[int, int]:
        """(attempts queued for a slot or, on credit, for a connection; retry-quota tokens left),
        for telemetry's gauges."""
        return self._slots.queued, self._quota.available

    async def sleep_unless_closing(self, seconds: float) -> bool:
        return await self.lifecycle.sleep_unless_closing(seconds)

    # -- one attempt ------------------------------------------------------------------------

    def _chain(self, target: Target, *, stream: bool) -> CallNext:
        key = (target, stream)
        call = self._chains.get(key)
        if call is None:
            call = functools.partial(self._sign_and_send, target=target, stream=stream)
            for middleware in reversed(self._middlewares):
                call = _bind(middleware, call)
            self._chains[key] = call
        return call

    async def _sign_and_send(
        self, request: HttpRequest, *, target: Target, stream: bool
    ) -> HttpResponse:
        """The innermost layer: sign this attempt now, then send it."""
        session = self._get_session()
        headers = request.headers
        url = request.url
        if target.authorize is not None:
            await target.authorize(request)  # the OpenAI route's bearer token instead of SigV4
        else:
            credentials = self._credentials.current() or await self._credentials.get(
                request.deadline
            )
            sign(
                method=request.method,
                host=target.host if target.host is not None else host_header(url),
                path=url.raw_path,
                headers=headers,
                payload_hash=request.payload_hash(),
                credentials=credentials,
                region=target.region,
                service=target.signing_name,
                double_encode_path=target.double_encode_path,
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
        route_for = self._route_for
        route = self._route if target is self.sagemaker or not route_for else route_for(url)
        timeout = self.timeout
        deadline = request.deadline
        if deadline is not None:
            # A call's total is what is left of its deadline. A stream's deadline covers getting
            # its first response (wait_for below), not reading it to the end.
            timeout = (
                aiohttp.ClientTimeout(
                    total=None, sock_connect=timeout.sock_connect, sock_read=timeout.sock_read
                )
                if stream
                else self._timeout_for(deadline)
            )
        attempt = send(
            session,
            request,
            timeout,
            stream=stream,
            max_body=self.max_response_bytes,
            route=route,
            watchdog=self._watchdog,
            own_session=self._own_session,
        )
        if deadline is None or not stream:
            return await attempt
        try:
            return await asyncio.wait_for(attempt, max(deadline - time.monotonic(), 0.001))
        except SageMakerRuntimeError:
            raise  # our own errors are TimeoutErrors too (ReadTimeoutError): not the deadline
        except asyncio.TimeoutError:
            pass
        raise DeadlineExceededError("the call's deadline passed before the stream started")

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


def _log_attempt(method: str, url: URL, attempt: int, headers: dict[str, str]) -> None:
    logger.debug("%s %s attempt=%d headers=%s", method, url, attempt, redacted(headers))


def _error_name(error: SageMakerRuntimeError) -> str:
    return error.code if isinstance(error, ServiceError) else type(error).__name__
