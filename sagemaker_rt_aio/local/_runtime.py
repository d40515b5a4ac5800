"""``LocalRuntime``: the SageMaker Runtime front end, emulated on ``aiohttp.web``."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping
from types import TracebackType
from typing import Any

import botocore.credentials  # type: ignore[import-untyped,unused-ignore]
from aiohttp import web

from .._constants import DEFAULT_MAX_BODY_BYTES, MAX_ASYNC_INLINE_BODY_BYTES
from ._async_inference import invoke_endpoint_async
from ._bidi import BidiEndpoint, BidiHandler, BidiListener
from ._container import PING_INTERVAL, PING_TIMEOUT, ContainerBackend, ContainerEndpoint
from ._faults import (
    S3_TARGET,
    BreakStreamFault,
    Clock,
    ColdStartFault,
    ConnectionResetFault,
    Fault,
    FaultInjector,
    LatencyFault,
    S3ErrorFault,
    ServiceErrorCode,
    ServiceErrorFault,
    Sleep,
)
from ._frontend import STATE_KEY, add_routes, unknown_operation
from ._invocation import Handler, Invocation
from ._invoke import invoke_endpoint, invoke_endpoint_with_response_stream
from ._openai_route import ROUTE as OPENAI_ROUTE
from ._openai_route import chat_completions
from ._s3 import (
    DEFAULT_MAX_STORE_BYTES,
    ObjectStore,
    S3FrontEnd,
    parse_s3_location,
    s3_uri,
    validate_bucket,
)
from ._state import (
    Config,
    Endpoint,
    RuntimeState,
    call_log,
    parse_prefix,
    valid_endpoint_name,
)

DEFAULT_BUCKET = "sagemaker-rt-aio-local"
DEFAULT_ACCOUNT_ID = "123456789012"


class LocalRuntime:
    """An in-process SageMaker Runtime: InvokeEndpoint, InvokeEndpointAsync,
    InvokeEndpointWithResponseStream and a path-style S3 interface, over real HTTP.

    ::

        async with LocalRuntime() as runtime:
            runtime.add_endpoint("echo", echo)
            ... # point any client at runtime.url

    ``model_timeout`` is the service's 60 s by default (tests of slow models lower it).
    ``max_recorded_calls`` bounds :meth:`calls` (the oldest are dropped past it);
    ``max_object_bytes`` and ``max_store_bytes`` bound one stored object and all of them.
    ``clock`` (default ``time.monotonic``) and ``sleep`` are what faults measure and wait with
    (tests inject fakes so that latency, slow parts and delays take no real time).

    Given ``credentials``, every request must carry a valid SigV4 signature for them (service
    ``sagemaker`` on the runtime paths, ``s3`` on the S3 paths, region ``region``).
    ``model_timeout`` bounds a handler (and a whole response stream); ``max_body_bytes`` bounds
    request and response bodies. Async outputs and failures go to ``async_output_path`` and
    ``async_failure_path`` (``s3://bucket/prefix``) unless the endpoint names its own.
    Given ``ssl_context`` (a server ``ssl.SSLContext`` holding its certificate), it serves HTTPS
    only, and every URL it gives out is ``https://``.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        credentials: botocore.credentials.Credentials | None = None,
        region: str = "us-east-1",
        model_timeout: float = 60.0,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        account_id: str = DEFAULT_ACCOUNT_ID,
        async_output_path: str = f"s3://{DEFAULT_BUCKET}/async-inference/output",
        async_failure_path: str = f"s3://{DEFAULT_BUCKET}/async-inference/failures",
        async_delay: float = 0.0,
        max_recorded_calls: int = 10_000,
        max_store_bytes: int = DEFAULT_MAX_STORE_BYTES,
        clock: Clock | None = None,
        sleep: Sleep = asyncio.sleep,
        max_async_body_bytes: int = MAX_ASYNC_INLINE_BODY_BYTES,
        max_object_bytes: int = 64 * 1024 * 1024,
        session_ttl: float = 20 * 60.0,
        shutdown_timeout: float = 1.0,
        ssl_context: ssl.SSLContext | None = None,
        bidirectional_window: int = 1024 * 1024,
    ) -> None:
        for path in (async_output_path, async_failure_path):
            validate_bucket(parse_prefix(path)[0])
        if ssl_context is not None and not isinstance(ssl_context, ssl.SSLContext):
            raise TypeError("ssl_context must be an ssl.SSLContext")
        self._host = host
        self._port = port
        self._ssl_context = ssl_context
        self._shutdown_timeout = shutdown_timeout
        self._state = RuntimeState(
            config=Config(
                region=region,
                account_id=account_id,
                model_timeout=model_timeout,
                max_body_bytes=max_body_bytes,
                max_async_body_bytes=max_async_body_bytes,
                max_object_bytes=max_object_bytes,
                async_output_path=async_output_path,
                async_failure_path=async_failure_path,
                async_delay=async_delay,
                session_ttl=session_ttl,
            ),
            credentials=credentials,
            invocation_log=call_log(max_recorded_calls),
            store=ObjectStore(max_total_bytes=max_store_bytes),
            faults=FaultInjector(clock=clock, sleep=sleep),
        )
        self._containers: dict[str, ContainerBackend] = {}
        #: Removed or replaced containers whose client sessions are still to be closed.
        self._retired: list[ContainerBackend] = []
        self._runner: web.AppRunner | None = None
        self._bound_port: int | None = None
        self._bidi = BidiListener(self._state, bidirectional_window)

    # Lifecycle -----------------------------------------------------------------------------

    def _make_app(self) -> web.Application:
        config = self._state.config
        app = web.Application(client_max_size=max(config.max_body_bytes, config.max_object_bytes))
        app[STATE_KEY] = self._state
        add_routes(
            app.router,
            invoke=invoke_endpoint,
            invoke_async=invoke_endpoint_async,
            invoke_stream=invoke_endpoint_with_response_stream,
        )
        app.router.add_post(OPENAI_ROUTE, chat_completions)  # the OpenAI-compatible route
        S3FrontEnd(
            self._state.store, self._state.verifier, config.max_object_bytes, self._state.faults
        ).add_routes(app.router)
        app.router.add_route("*", "/{tail:.*}", unknown_operation)
        return app

    async def start(self) -> None:
        """Start serving (on a free port when ``port`` is 0). Idempotent."""
        if self._runner is not None:
            return
        runner = web.AppRunner(
            self._make_app(), access_log=None, shutdown_timeout=self._shutdown_timeout
        )
        await runner.setup()
        try:
            site = web.TCPSite(runner, self._host, self._port, ssl_context=self._ssl_context)
            await site.start()
            address = runner.addresses[0]
            self._bound_port = int(address[1])
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        try:
            await self._bidi.start(self._host, self._ssl_context)
        except BaseException:
            await self.stop()
            raise
        for backend in self._containers.values():
            backend.start_polling()

    async def stop(self) -> None:
        """Stop serving; cancel and await background async inferences. Idempotent."""
        runner, self._runner = self._runner, None
        tasks = list(self._state.tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        # Containers first: calls waiting on one end now instead of holding up the shutdown.
        backends = [*self._retired, *self._containers.values()]
        self._retired.clear()
        await asyncio.gather(*(backend.close() for backend in backends))
        await self._bidi.stop()
        if runner is not None:
            await runner.cleanup()
        self._bound_port = None

    async def __aenter__(self) -> LocalRuntime:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def started(self) -> bool:
        return self._runner is not None

    @property
    def port(self) -> int:
        if self._bound_port is None:
            raise RuntimeError("the local runtime is not started")
        return self._bound_port

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>`` (``https://`` with an ``ssl_context``): the endpoint URL
        for SageMaker and S3 clients alike."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"{self.scheme}://{host}:{self.port}"

    @property
    def scheme(self) -> str:
        return "https" if self._ssl_context is not None else "http"

    @property
    def region(self) -> str:
        return self._state.config.region

    @property
    def credentials(self) -> botocore.credentials.Credentials | None:
        return self._state.credentials

    # Endpoints -----------------------------------------------------------------------------

    def add_endpoint(
        self,
        name: str,
        handler: Handler,
        *,
        variant: str = "AllTraffic",
        content_type: str | None = None,
        output_path: str | None = None,
        failure_path: str | None = None,
    ) -> None:
        """Serve ``handler`` as endpoint ``name`` (replacing any endpoint of that name).

        ``variant`` is answered in ``x-Amzn-Invoked-Production-Variant``; ``content_type`` is the
        response content type when the handler does not set one; ``output_path`` and
        ``failure_path`` (``s3://bucket/prefix``) override the runtime's async locations.
        """
        self._register(
            Endpoint(
                name=name,
                handler=handler,
                variant=variant,
                content_type=content_type,
                output_path=output_path,
                failure_path=failure_path,
            )
        )

    def add_container_endpoint(
        self,
        name: str,
        url: str,
        *,
        variant: str = "AllTraffic",
        output_path: str | None = None,
        failure_path: str | None = None,
        ping_interval: float = PING_INTERVAL,
        ping_timeout: float = PING_TIMEOUT,
    ) -> ContainerEndpoint:
        """Serve endpoint ``name`` from the model server at ``url`` (SageMaker's container
        contract: ``GET /ping``, ``POST /invocations``), replacing any endpoint of that name.

        Requests are forwarded as the service forwards them (its headers, its errors, its model
        timeout, streamed answers relayed as ``PayloadPart`` events, async invocations). Until
        the container first answers ``/ping`` with 200 the endpoint is ``Creating`` and calls get
        ``ValidationError``; it is pinged every ``ping_interval`` seconds in the background, and
        once more by a call that finds it not yet in service. ``await`` the returned
        :class:`ContainerEndpoint` to wait until it is in service.
        """
        backend = ContainerBackend(
            name, url, ping_interval=ping_interval, ping_timeout=ping_timeout
        )
        self._register(
            Endpoint(
                name=name,
                handler=backend,
                variant=variant,
                output_path=output_path,
                failure_path=failure_path,
                in_service=backend.ensure_in_service,
            )
        )
        self._containers[name] = backend
        if self.started:
            backend.start_polling()
        return ContainerEndpoint(backend)

    def _register(self, endpoint: Endpoint) -> None:
        if not valid_endpoint_name(endpoint.name):
            raise ValueError(f"invalid endpoint name {endpoint.name!r}")
        for path in (endpoint.output_path, endpoint.failure_path):
            if path is not None:
                validate_bucket(parse_prefix(path)[0])
        self._retire(endpoint.name)
        self._state.endpoints[endpoint.name] = endpoint

    def _retire(self, name: str) -> None:
        backend = self._containers.pop(name, None)
        if backend is not None:
            backend.stop_polling()
            self._retired.append(backend)

    def add_bidirectional_endpoint(
        self, name: str, handler: BidiHandler, *, variant: str = "AllTraffic"
    ) -> None:
        """Serve ``handler`` for InvokeEndpointWithBidirectionalStream at :attr:`bidirectional_url`.

        ``async def handler(invocation, inbound)`` is an async generator: ``inbound`` yields the
        client's ``BidirectionalPart``s; it yields ``bytes``, ``str`` or ``BidirectionalPart``.
        """
        if not valid_endpoint_name(name):
            raise ValueError(f"invalid endpoint name {name!r}")
        self._bidi.front_end.endpoints[name] = BidiEndpoint(name, handler, variant)

    def fail_bidirectional_stream_next(
        self,
        name: str,
        n: int = 1,
        *,
        after_parts: int = 0,
        error: str = "InternalStreamFailure",
        message: str | None = None,
        error_code: str | None = None,
    ) -> None:
        """End the next ``n`` bidirectional streams of ``name`` with an exception event
        (``InternalStreamFailure`` or ``ModelStreamError``) after ``after_parts`` answer parts.

        A shortcut for ``add_fault(name, BreakStreamFault(...), times=n)``: like every stream
        fault, it is taken by the next ``n`` streams of ``name``, of either streaming operation."""
        text = message if message is not None else f"{error}: injected by the local runtime"
        fault = BreakStreamFault(
            after_parts=after_parts, error=error, message=text, error_code=error_code
        )
        self._state.faults.arm(name, fault, times=n)

    @property
    def bidirectional_url(self) -> str:
        """The HTTP/2 listener of the bidirectional operation (h2c, or TLS with ``ssl_context``)."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"{self.scheme}://{host}:{self._bidi.port}"

    def remove_endpoint(self, name: str) -> None:
        """Stop serving ``name``; later calls get ValidationError. Raises ``KeyError`` if unknown."""
        del self._state.endpoints[name]
        self._retire(name)

    @property
    def endpoints(self) -> list[str]:
        return sorted(self._state.endpoints)

    def invocations(self, name: str | None = None) -> list[Invocation]:
        """The invocations handlers received (all, or those of endpoint ``name``), oldest first.

        Only calls that reached the handler are here; see :meth:`call_count` for every request.
        """
        log = self._state.invocation_log
        return [inv for inv in log if name is None or inv.endpoint_name == name]

    def calls(self, name: str) -> list[Invocation]:
        """The invocations endpoint ``name`` received (what its model or container was sent),
        oldest first.

        Calls answered before the model (injected errors, resets, cold starts, bad signatures)
        are not here; :meth:`call_count` counts those too. The runtime keeps the last
        ``max_recorded_calls`` invocations (10,000 by default) across all endpoints.
        """
        return [inv for inv in self._state.invocation_log if inv.endpoint_name == name]

    def call_count(self, name: str) -> int:
        """Every request addressed to ``name`` that passed the signature check, faults included."""
        return self._state.call_counts[name]

    def clear_invocations(self) -> None:
        self._state.invocation_log.clear()
        self._state.call_counts.clear()

    # Faults ----------------------------------------------------------------------------------

    def add_fault(
        self,
        name: str,
        fault: Fault,
        *,
        times: int | None = None,
        seconds: float | None = None,
    ) -> None:
        """Arm ``fault`` for calls to endpoint ``name``: the next ``times`` calls, the next
        ``seconds`` (the runtime's clock), or until :meth:`clear_faults` when neither is given.

        A fault acts at its stage: before the model (:class:`ServiceErrorFault`,
        :class:`ConnectionResetFault`, :class:`ColdStartFault`, :class:`LatencyFault`), during
        a response or bidirectional stream (:class:`BreakStreamFault`, :class:`SlowFirstPartFault`,
        :class:`StallStreamFault`) or on an async job (:class:`AsyncFailureFault`,
        :class:`AsyncDelayFault`); ``times`` counts the calls of that stage only.
        """
        if isinstance(fault, S3ErrorFault):
            raise TypeError("S3 faults are armed with add_s3_fault()")
        self._state.faults.arm(name, fault, times=times, seconds=seconds)

    def add_s3_fault(
        self,
        fault: S3ErrorFault,
        *,
        bucket: str | None = None,
        key_prefix: str = "",
        times: int | None = None,
        seconds: float | None = None,
    ) -> None:
        """Answer matching requests to the S3 interface with ``fault``'s error (e.g.
        ``S3ErrorFault(code="NoSuchKey")`` with ``seconds=2`` for an output that appears late)."""
        if not isinstance(fault, S3ErrorFault):
            raise TypeError("add_s3_fault() takes an S3ErrorFault")
        self._state.faults.arm(
            S3_TARGET, fault, times=times, seconds=seconds, bucket=bucket, key_prefix=key_prefix
        )

    def fail_next(
        self,
        name: str,
        n: int = 1,
        *,
        error: ServiceErrorCode | str = "ServiceUnavailable",
        status: int | None = None,
        message: str | None = None,
        retry_after: float | None = None,
        fields: Mapping[str, Any] | None = None,
    ) -> None:
        """Answer the next ``n`` calls to ``name`` with this service error instead of the model
        (``status`` defaults to the code's: 503 for ServiceUnavailable, 500 InternalFailure...).

        ``retry_after`` (seconds) adds ``Retry-After`` and ``x-amz-retry-after`` headers; ``fields``
        adds members to the JSON body (e.g. ``OriginalStatusCode`` for a ModelError).
        """
        fault = ServiceErrorFault(
            code=error,
            status=status,
            message=message,
            retry_after=retry_after,
            fields=dict(fields or {}),
        )
        self._state.faults.arm(name, fault, times=n)

    def reset_connection_next(self, name: str, n: int = 1) -> None:
        """Close the connection without answering (after reading the request) for ``n`` calls."""
        self._state.faults.arm(name, ConnectionResetFault(), times=n)

    def set_latency(self, name: str, seconds: float) -> None:
        """Delay every answer of ``name`` by ``seconds`` (before the model runs; 0 turns it off)."""
        if seconds < 0:
            raise ValueError("seconds must be >= 0")
        self._state.faults.disarm(name, LatencyFault)
        if seconds:
            self._state.faults.arm(name, LatencyFault(seconds=seconds))

    def cold_start(self, name: str, seconds: float) -> None:
        """Answer 429 ``ModelNotReadyException`` to calls of ``name`` for the next ``seconds``."""
        self._state.faults.disarm(name, ColdStartFault)
        self._state.faults.arm(name, ColdStartFault(), seconds=seconds)

    def clear_faults(self, name: str | None = None) -> None:
        """Disarm the faults of endpoint ``name`` (None: every fault, S3's included)."""
        self._state.faults.clear(name)

    # Objects ---------------------------------------------------------------------------------

    def put_object(
        self, bucket: str, key: str, data: bytes | str, *, content_type: str | None = None
    ) -> str:
        """Store an object (e.g. an async ``InputLocation``) and return its ``s3://`` URI."""
        raw = data.encode() if isinstance(data, str) else bytes(data)
        self._state.store.put(bucket, key, raw, content_type=content_type)
        return s3_uri(bucket, key)

    def get_object(self, bucket: str, key: str) -> bytes | None:
        stored = self._state.store.get(bucket, key)
        return None if stored is None else stored.data

    def get_location(self, location: str) -> bytes | None:
        """The object at an ``s3://bucket/key`` URI (e.g. an async OutputLocation), if any."""
        return self.get_object(*parse_s3_location(location))

    def list_objects(self) -> list[str]:
        return [s3_uri(bucket, key) for bucket, key in self._state.store.list_keys()]

    async def wait_async_idle(self, timeout: float | None = None) -> None:
        """Wait until no async inference is running (``asyncio.TimeoutError`` after ``timeout``)."""

        async def idle() -> None:
            while self._state.tasks:
                await asyncio.gather(*list(self._state.tasks), return_exceptions=True)

        await asyncio.wait_for(idle(), timeout)
