"""Container endpoints: the runtime in front of a model server speaking SageMaker's container contract.

The contract (SageMaker developer guide, "Custom Inference Code with Hosting Services"): the model
server answers ``GET /ping`` with 200 once it can serve, and ``POST /invocations`` with the
inference. The service forwards only the request headers the API defines, translated to what the
container sees: ``Content-Type``, ``Accept`` (from ``Accept`` or ``X-Amzn-SageMaker-Accept``),
``X-Amzn-SageMaker-Custom-Attributes``, ``X-Amzn-SageMaker-Target-Model``,
``X-Amzn-SageMaker-Inference-Id``, ``X-Amzn-SageMaker-Enable-Explanations`` and
``X-Amzn-SageMaker-Session-Id``; never the caller's ``Authorization`` or security token. For
InvokeEndpointWithResponseStream the container answers the same ``POST /invocations`` incrementally
(``Transfer-Encoding: chunked``) and each chunk read becomes a ``PayloadPart`` event.

A :class:`ContainerBackend` is a handler like any other (the runtime's timeouts, faults, sessions,
async jobs and call log apply unchanged): a container's 4xx/5xx becomes a :class:`ContainerError`,
hence the service's ``ModelError`` (424) with ``OriginalStatusCode``/``OriginalMessage``.

Readiness: an endpoint is ``Creating`` until its container first answers ``/ping`` with 200, then
``InService``. A background task pings every ``ping_interval`` seconds until then; a call that
arrives first makes one health check itself (so a container that is already up serves the very
first call), and gets a ``ValidationError`` if the container is not healthy.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Generator
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from ._invocation import ContainerError, Invocation, InvocationResponse

#: The service expects ``/ping`` to answer within 2 seconds.
PING_TIMEOUT = 2.0
#: How often a ``Creating`` endpoint's container is pinged in the background.
PING_INTERVAL = 0.5
#: The longest container error body kept as ``OriginalMessage``.
MAX_ERROR_MESSAGE_BYTES = 64 * 1024
INVOCATIONS_PATH = "/invocations"

NEW_SESSION_HEADER = "X-Amzn-SageMaker-New-Session-Id"

CREATING = "Creating"
IN_SERVICE = "InService"

Sleep = Callable[[float], Awaitable[None]]


def validate_container_url(url: str) -> str:
    """``url`` without a trailing slash; ``ValueError`` unless it is ``http(s)://host[:port]``."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"a container URL must be http(s)://host[:port], not {url!r}")
    if parts.query or parts.fragment:
        raise ValueError(f"a container URL must not have a query or fragment: {url!r}")
    return url.rstrip("/")


def container_headers(invocation: Invocation) -> dict[str, str]:
    """The request headers the service passes to the container for this invocation."""
    headers: dict[str, str] = {}
    for name, value in (
        ("Content-Type", invocation.content_type),
        ("Accept", invocation.accept),
        ("X-Amzn-SageMaker-Custom-Attributes", invocation.custom_attributes),
        ("X-Amzn-SageMaker-Target-Model", invocation.target_model),
        ("X-Amzn-SageMaker-Inference-Id", invocation.inference_id),
        ("X-Amzn-SageMaker-Enable-Explanations", invocation.enable_explanations),
        ("X-Amzn-SageMaker-Session-Id", invocation.session_id),
    ):
        if value is not None:
            headers[name] = value
    return headers


class ContainerBackend:
    """Forwards an endpoint's invocations to the model server at ``url``; tracks its health."""

    def __init__(
        self,
        name: str,
        url: str,
        *,
        ping_interval: float = PING_INTERVAL,
        ping_timeout: float = PING_TIMEOUT,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if ping_interval <= 0 or ping_timeout <= 0:
            raise ValueError("ping_interval and ping_timeout must be > 0")
        self.name = name
        self.url = validate_container_url(url)
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.status = CREATING
        #: What the last failed health check saw (for the ValidationError's text).
        self.last_ping_failure: str | None = None
        self._sleep = sleep
        self._session: aiohttp.ClientSession | None = None
        self._ping: asyncio.Task[bool] | None = None
        self._poller: asyncio.Task[None] | None = None
        #: Set by close() (the runtime stopping): no new client session until start_polling().
        self._closed = False

    @property
    def in_service(self) -> bool:
        return self.status == IN_SERVICE

    def _client(self) -> aiohttp.ClientSession:
        if self._closed:  # an OSError: a failed health check, or a failed call (ModelError)
            raise ConnectionError(f"the local runtime stopped serving {self.name}")
        if self._session is None:
            # No total timeout here: the runtime's model timeout bounds each call.
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=self.ping_timeout),
                # Only the headers the service sends: no compression is asked of the container.
                skip_auto_headers=("Accept-Encoding",),
                cookie_jar=aiohttp.DummyCookieJar(),  # as the client's: no cookies kept or sent
            )
        return self._session

    # Health ----------------------------------------------------------------------------------

    async def _check(self) -> bool:
        try:
            async with self._client().get(
                self.url + "/ping", timeout=aiohttp.ClientTimeout(total=self.ping_timeout)
            ) as response:
                await response.content.read(MAX_ERROR_MESSAGE_BYTES)  # bounded: a body is noise
                healthy = response.status == 200
                self.last_ping_failure = None if healthy else f"HTTP {response.status}"
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            healthy = False
            self.last_ping_failure = type(exc).__name__
        if healthy:
            self.status = IN_SERVICE
        return healthy

    async def ensure_in_service(self) -> bool:
        """True once the container answered ``/ping``; otherwise checks once (sharing a check in
        flight)."""
        if self.in_service:
            return True
        if self._ping is None or self._ping.done():
            self._ping = asyncio.ensure_future(self._check())
        return await asyncio.shield(self._ping)

    def start_polling(self) -> None:
        """Ping in the background until the container is healthy (needs a running loop)."""
        self._closed = False
        if self._poller is None and not self.in_service:
            self._poller = asyncio.get_running_loop().create_task(
                self._poll(), name=f"ping-{self.name}"
            )

    async def _poll(self) -> None:
        while not await self.ensure_in_service():
            await self._sleep(self.ping_interval)

    async def wait_in_service(self, timeout: float = 30.0) -> None:
        """Wait until the container answered ``/ping`` with 200 (``TimeoutError`` after
        ``timeout`` seconds)."""

        async def wait() -> None:
            while not await self.ensure_in_service():
                await self._sleep(self.ping_interval)

        try:
            await asyncio.wait_for(wait(), timeout)
        except asyncio.TimeoutError:
            raise TimeoutError(
                f"container endpoint {self.name} at {self.url} not in service after {timeout} s "
                f"(last health check: {self.last_ping_failure})"
            ) from None

    def stop_polling(self) -> None:
        if self._poller is not None:
            self._poller.cancel()  # awaited by close()

    async def close(self) -> None:
        """Stop health checks and close the client session (a later call opens a new one)."""
        self._closed = True
        tasks = [task for task in (self._poller, self._ping) if task is not None]
        self._poller = self._ping = None
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    # Invocations -----------------------------------------------------------------------------

    async def __call__(self, invocation: Invocation) -> InvocationResponse:
        # The OpenAI-compatible route reaches the container at its own path.
        path = getattr(invocation, "path", None) or INVOCATIONS_PATH
        response = await self._client().post(
            self.url + path,
            data=invocation.body,
            headers=container_headers(invocation),
            allow_redirects=False,  # the service does not follow a container's redirects
        )
        try:
            if response.status >= 400:
                raw = await response.content.read(MAX_ERROR_MESSAGE_BYTES)
                raise ContainerError(response.status, raw.decode("utf-8", errors="replace"))
        except BaseException:
            response.close()
            raise
        headers = response.headers
        return InvocationResponse(
            body=_relay(response),
            content_type=headers.get("Content-Type"),
            custom_attributes=headers.get("X-Amzn-SageMaker-Custom-Attributes"),
            close_session="X-Amzn-SageMaker-Closed-Session-Id" in headers,
            # A stateful container names the session it opened on NEW_SESSION; the runtime
            # adopts that id (without one, the runtime's own id is the session's).
            headers={NEW_SESSION_HEADER: headers[NEW_SESSION_HEADER]}
            if NEW_SESSION_HEADER in headers
            else {},
        )


async def _relay(response: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    """The container's answer, chunk by chunk as it arrives; the response is closed at the end."""
    try:
        async for chunk in response.content.iter_any():
            if chunk:
                yield chunk
    finally:
        response.release()  # back to the pool when read to the end, else the connection closes


class ContainerEndpoint:
    """What :meth:`LocalRuntime.add_container_endpoint` returns: the endpoint's container and its
    state. ``await`` it to wait until the endpoint is in service (at most 30 s)."""

    def __init__(self, backend: ContainerBackend) -> None:
        self._backend = backend

    @property
    def name(self) -> str:
        return self._backend.name

    @property
    def url(self) -> str:
        return self._backend.url

    @property
    def status(self) -> str:
        """``Creating`` until the container's first healthy ``/ping``, then ``InService``."""
        return self._backend.status

    async def wait_in_service(self, timeout: float = 30.0) -> ContainerEndpoint:
        await self._backend.wait_in_service(timeout)
        return self

    def __await__(self) -> Generator[Any, None, ContainerEndpoint]:
        return self.wait_in_service().__await__()

    def __repr__(self) -> str:
        return f"ContainerEndpoint(name={self.name!r}, url={self.url!r}, status={self.status!r})"
