"""``SageMakerRuntimeClient``: configuration, one aiohttp session, the operations, and shutdown.

Each operation validates and serializes its request (``_protocol``), hands it to the call pipeline
(``_pipeline``: retries, middlewares, signing, sending) and parses what comes back.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import functools
import ssl
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from itertools import repeat
from operator import is_not
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, overload

import aiohttp

from . import _model as m
from . import _types
from ._botocore_session import lazy_session
from ._config import check_profile, resolve_endpoint, resolve_region
from ._constants import (
    BEARER_TOKEN_MAX_EXPIRES,
    DEFAULT_BIDI_PING_INTERVAL,
    DEFAULT_BIDI_PING_TIMEOUT,
    DEFAULT_BIDI_RECEIVE_WINDOW,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_METADATA_CACHE_SIZE,
    DEFAULT_METADATA_CACHE_TTL,
    DEFAULT_POLL_INTERVAL,
    DEFAULT_SHUTDOWN_GRACE,
    MAX_ASYNC_INLINE_BODY_BYTES,
    ROUTE_TOKEN_EXPIRES,
    SIGNING_NAME,
    USER_AGENT,
)
from ._credentials import CredentialSource
from ._endpoints import check_region, host_header
from ._errors import (
    AsyncInferenceTimeout,
    ClientClosedError,
    DeadlineExceededError,
    ParamValidationError,
)
from ._lifecycle import Lifecycle, OpenBidiStreams
from ._logging import configure_logging_from_env
from ._metadata_cache import MetadataCache
from ._network import ClientCert, Network, StrPath
from ._observe import load_telemetry
from ._options import check_client_arguments, effective_timeout
from ._pipeline import Middleware, Pipeline, Target
from ._protocol import (
    coerce_request,
    parse_invoke_endpoint,
    parse_invoke_endpoint_async,
    parse_invoke_endpoint_with_metadata,
    serialize,
    serialize_fields,
)
from ._retry import RetryPolicy
from ._settings import resolve_client_settings
from ._transport import SKIP_AUTO_HEADERS, HttpRequest, HttpResponse
from ._types import (
    Body,
    InvokeEndpointRequest,
    InvokeEndpointResult,
    ResponseMetadata,
)
from ._validation import body_bytes

if TYPE_CHECKING:  # botocore is imported only when its config or credential chain is needed
    import botocore.credentials
    import botocore.session
    from opentelemetry.metrics import MeterProvider  # the otel extra: only to type two arguments
    from opentelemetry.trace import TracerProvider
    from yarl import URL

    from ._async_results import AsyncResultWaiter
    from ._bearer import BearerTokens
    from ._bidi import BidirectionalCall
    from ._bidi_network import BidiNetwork
    from ._openai_route import ChatCompletionsResult
    from ._stream import ResponseStream, StreamCall
    from ._types import (
        InvokeEndpointAsyncRequest,
        InvokeEndpointAsyncResult,
        InvokeEndpointWithResponseStreamRequest,
    )


def _check_request(cls: type, request: object, *fields: object) -> None:
    """A request object must be of the operation's type and come without keyword fields."""
    if type(request) is not cls:  # a subclass passes, anything else is refused
        coerce_request(cls, request, {})
    if any(map(is_not, fields, repeat(None))):  # (a C loop: identity, never a value's __eq__)
        raise ParamValidationError(
            "request", "give either a request object or keyword fields, not both"
        )


def _parse_result(response: HttpResponse, retries: int) -> InvokeEndpointResult:
    return parse_invoke_endpoint(response.status, response.headers, response.body, retries)


def _parse_result_keeping_metadata(response: HttpResponse, retries: int) -> InvokeEndpointResult:
    """For a call made with a request object, whose metadata the client keeps."""
    return parse_invoke_endpoint_with_metadata(
        response.status, response.headers, response.body, retries
    )


def _parse_async_result(response: HttpResponse, retries: int) -> InvokeEndpointAsyncResult:
    return parse_invoke_endpoint_async(response.status, response.headers, response.body, retries)


def _resolve_bidi(
    session: botocore.session.Session,
    network: Network,
    *,
    region: str,
    base_url: URL,
    bidirectional_endpoint_url: str | None,
    use_fips: bool | None,
    use_dual_stack: bool | None,
    allow_http: bool,
    ssl_context: ssl.SSLContext | None,
    verify: bool | StrPath | None,
    ca_bundle: StrPath | None,
    client_cert: ClientCert | None,
) -> tuple[URL, BidiNetwork]:
    """A client's HTTP/2 endpoint and how its streams connect."""
    from ._bidi_endpoints import resolve_bidirectional_url
    from ._bidi_network import BidiNetwork

    url = resolve_bidirectional_url(
        session,
        region=region,
        base_url=base_url,
        bidirectional_endpoint_url=bidirectional_endpoint_url,
        use_fips=use_fips,
        use_dual_stack=use_dual_stack,
        allow_http=allow_http,
    )
    bidi_network = BidiNetwork(
        session,
        network,
        ssl_context=ssl_context,
        verify=verify,
        ca_bundle=ca_bundle,
        client_cert=client_cert,
    )
    return url, bidi_network


# Response streams (the event-stream decoder and the text decoders) are imported with the first
# stream, not with the package, and then kept here: an import statement run on every stream costs
# microseconds (a relative one resolves its package each time).
_stream_api: tuple[type[StreamCall], Callable[[HttpResponse, int], ResponseStream]] | None = None


def _load_streams() -> tuple[type[StreamCall], Callable[[HttpResponse, int], ResponseStream]]:
    global _stream_api
    from ._stream import StreamCall, open_stream

    _stream_api = (StreamCall, open_stream)
    return _stream_api


class SageMakerRuntimeClient:
    """An asyncio client for SageMaker Runtime. Use it as an async context manager, or call
    :meth:`shutdown` when done. One client serves any number of concurrent calls.

    Constructing it reads configuration (environment, ``~/.aws/config``) but opens nothing; the
    aiohttp session is created on first use, inside the event loop. Every setting below that
    boto3 also reads from the environment or the profile is read the same way here when its
    argument is not given; an argument always wins.

    Where and as whom:

    - ``region_name``: else ``AWS_DEFAULT_REGION``, else ``region`` in the profile (exactly as
      botocore resolves it; ``AWS_REGION`` is not read by botocore 1.43). A FIPS pseudo-region
      (``us-east-1-fips``) turns FIPS on.
    - ``endpoint_url``: a custom SageMaker Runtime URL (an emulator, a VPC interface endpoint);
      else ``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME``, ``AWS_ENDPOINT_URL`` or the profile's
      ``services`` section; else the region's URL.
    - ``allow_http``: ``True`` permits plain ``http://`` endpoint URLs for hosts other than
      loopback (payloads and signatures then travel in clear).
    - ``use_fips_endpoint`` / ``use_dualstack_endpoint``: else ``AWS_USE_FIPS_ENDPOINT`` /
      ``AWS_USE_DUALSTACK_ENDPOINT`` or the profile; they apply to the S3 endpoint too.
    - ``profile_name``: the profile of ``~/.aws/config`` to use (else ``AWS_PROFILE``).
    - ``aws_access_key_id``, ``aws_secret_access_key``, ``aws_session_token``, or
      ``credentials`` (a botocore ``Credentials``): else botocore's credential chain.
    - ``botocore_session``: a botocore session to read configuration and credentials from.

    Network (as boto3 takes them):

    - ``verify``: ``False`` turns certificate verification off; a path trusts that CA bundle.
    - ``ca_bundle``: a CA bundle to trust (else ``AWS_CA_BUNDLE`` or ``ca_bundle`` in the
      profile, read only when ``verify`` is not given, as botocore does); else the system's CAs.
    - ``client_cert``: a client certificate for mutual TLS: a path (certificate and key in one
      file) or ``(cert_path, key_path)``.
    - ``proxies``: ``{"https": "http://user:pass@proxy:3128", "http": ...}``, used for every
      host. Without it, ``HTTPS_PROXY``/``HTTP_PROXY`` apply unless ``NO_PROXY`` exempts the
      host, as in boto3. Credentials in a proxy URL are sent as ``Proxy-Authorization``.
    - ``tcp_keepalive``: TCP keep-alive on the sockets of the client's own session (else
      ``BOTOCORE_TCP_KEEPALIVE`` or ``tcp_keepalive`` in the profile).
    - ``s3_endpoint_url``: where the async-result helpers send S3 requests (an emulator, a VPC
      endpoint); else ``AWS_ENDPOINT_URL_S3``, ``AWS_ENDPOINT_URL`` or the profile's ``services``
      section; else the regional S3 endpoint (with ``s3.addressing_style`` from the profile).
    - ``http_session``: an ``aiohttp.ClientSession`` of yours, used and never closed (the escape
      hatch for anything not covered here: your own connector, resolver, trace configs). The
      proxy and TLS settings above are still applied to each request when configured; its default
      headers are kept (a ``User-Agent`` among them replaces the client's).
    - ``max_connections``: connections (and attempts in flight) at most, per client.

    Bidirectional streams (HTTP/2, the ``bidi`` extra):

    - ``bidirectional_endpoint_url``: where InvokeEndpointWithBidirectionalStream goes; else the
      ``endpoint_url`` when one is set (custom or configured), else the region's HTTP/2 endpoint
      (``https://runtime.sagemaker.{region}.{dnsSuffix}:8443``, FIPS and dual-stack alike).
    - ``bidirectional_ssl_context``: the TLS context of those streams (its ALPN is set to ``h2``);
      else one built from ``verify``/``ca_bundle``/``client_cert`` as above. ``proxies`` apply
      too (HTTP CONNECT through an ``http://`` proxy).

    Calls:

    - ``timeout``: an ``aiohttp.ClientTimeout``; fields left ``None`` keep their defaults
      (``sock_read`` 70 s, ``sock_connect`` 10 s, no total deadline).
    - ``retry_policy``: a :class:`RetryPolicy`. Without it, ``retry_mode`` (``legacy``,
      ``standard``, ``adaptive``; else ``AWS_RETRY_MODE``/``retry_mode``) and ``max_attempts``
      (attempts in all; else ``AWS_MAX_ATTEMPTS``/``max_attempts``) shape the default policy.
      ``adaptive`` adds botocore's client-side rate limiter, which slows sends after throttling.
    - ``middlewares``: ``async def mw(request, call_next)`` callables run around each attempt,
      first in the list outermost.
    - ``max_body_bytes``: the largest request body accepted (6 MiB, the service's).
    - ``max_response_bytes``: the largest non-stream answer body read (6 MiB + 64 KiB); a larger
      one raises ``ResponseTooLargeError`` without being read whole, and is never retried.
      ``None``: no bound.
    - ``metadata_cache_size`` / ``metadata_cache_ttl``: how many request objects'
      response metadata :meth:`get_cached_response_metadata` keeps, and for how long.
    - ``user_agent_extra``: appended to the User-Agent. ``sdk_ua_app_id`` (else
      ``AWS_SDK_UA_APP_ID`` or ``sdk_ua_app_id`` in the profile) adds ``app/<id>``.

    Observability (README "Observability"):

    - ``tracer_provider`` / ``meter_provider``: OpenTelemetry providers for the client's spans and
      metrics (the ``otel`` extra); else the global ones, even when set after the client was built.
      ``SAGEMAKER_RT_AIO_LOG=debug`` turns the library's own debug log on, to stderr.
    """

    def __init__(
        self,
        region_name: str | None = None,
        *,
        endpoint_url: str | None = None,
        profile_name: str | None = None,
        aws_access_key_id: str | None = None,
        aws_secret_access_key: str | None = None,
        aws_session_token: str | None = None,
        credentials: botocore.credentials.Credentials | None = None,
        botocore_session: botocore.session.Session | None = None,
        http_session: aiohttp.ClientSession | None = None,
        timeout: aiohttp.ClientTimeout | None = None,
        retry_policy: RetryPolicy | None = None,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        middlewares: Sequence[Middleware] = (),
        use_fips_endpoint: bool | None = None,
        use_dualstack_endpoint: bool | None = None,
        allow_http: bool = False,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        metadata_cache_size: int = DEFAULT_METADATA_CACHE_SIZE,
        metadata_cache_ttl: float = DEFAULT_METADATA_CACHE_TTL,
        s3_endpoint_url: str | None = None,
        verify: bool | StrPath | None = None,
        ca_bundle: StrPath | None = None,
        client_cert: ClientCert | None = None,
        proxies: Mapping[str, str] | None = None,
        tcp_keepalive: bool | None = None,
        user_agent_extra: str | None = None,
        sdk_ua_app_id: str | None = None,
        retry_mode: str | None = None,
        max_attempts: int | None = None,
        max_response_bytes: int | None = DEFAULT_MAX_RESPONSE_BYTES,
        bidirectional_endpoint_url: str | None = None,
        bidirectional_ssl_context: ssl.SSLContext | None = None,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
    ) -> None:
        configure_logging_from_env()
        check_client_arguments(
            region_name=region_name,
            endpoint_url=endpoint_url,
            profile_name=profile_name,
            aws_access_key_id=aws_access_key_id,
            aws_secret_access_key=aws_secret_access_key,
            aws_session_token=aws_session_token,
            credentials=credentials,
            botocore_session=botocore_session,
            http_session=http_session,
            timeout=timeout,
            retry_policy=retry_policy,
            max_connections=max_connections,
            middlewares=middlewares,
            use_fips_endpoint=use_fips_endpoint,
            use_dualstack_endpoint=use_dualstack_endpoint,
            allow_http=allow_http,
            max_body_bytes=max_body_bytes,
            metadata_cache_size=metadata_cache_size,
            metadata_cache_ttl=metadata_cache_ttl,
            s3_endpoint_url=s3_endpoint_url,
            max_response_bytes=max_response_bytes,
        )
        if botocore_session is None:
            # The shared config and botocore's credential chain live in a session, made on first use.
            botocore_session = lazy_session(profile_name)
            if profile_name is not None:
                check_profile(botocore_session)
        region_arg = resolve_region(region_name, botocore_session)
        region, self._base_url = resolve_endpoint(
            botocore_session,
            region=region_arg,
            endpoint_url=endpoint_url,
            use_fips=use_fips_endpoint,
            use_dual_stack=use_dualstack_endpoint,
            allow_http=allow_http,
        )
        self._region = region
        settings = resolve_client_settings(
            botocore_session,
            region=region_arg,
            allow_http=allow_http,
            use_fips=use_fips_endpoint,
            use_dual_stack=use_dualstack_endpoint,
            s3_endpoint_url=s3_endpoint_url,
            verify=verify,
            ca_bundle=ca_bundle,
            proxies=proxies,
            client_cert=client_cert,
            tcp_keepalive=tcp_keepalive,
            retry_policy=retry_policy,
            retry_mode=retry_mode,
            max_attempts=max_attempts,
            sdk_ua_app_id=sdk_ua_app_id,
            user_agent_extra=user_agent_extra,
            session_headers=http_session.headers if http_session is not None else None,
        )
        self._network = settings.network
        # The HTTP/2 endpoint and its TLS and proxy settings are resolved (and their modules
        # imported) on the first bidirectional stream or ``bidirectional_endpoint_url`` read: most
        # clients never open one. Those given as arguments are checked and applied now.
        self._bidi: tuple[URL, BidiNetwork] | None = None
        self._resolve_bidi = functools.partial(
            _resolve_bidi,
            botocore_session,
            self._network,
            region=region_arg,
            base_url=self._base_url,
            bidirectional_endpoint_url=bidirectional_endpoint_url,
            use_fips=use_fips_endpoint,
            use_dual_stack=use_dualstack_endpoint,
            allow_http=allow_http,
            ssl_context=bidirectional_ssl_context,
            verify=verify,
            ca_bundle=ca_bundle,
            client_cert=client_cert,
        )
        if bidirectional_endpoint_url is not None or bidirectional_ssl_context is not None:
            self._bidi = self._resolve_bidi()
        else:
            check_region(region)  # as resolving the HTTP/2 endpoint would
        self._bidi_user_agent = settings.unsigned_headers.get("User-Agent", USER_AGENT)
        # Sent by the client's own session with every request (unsigned: added after signing).
        self._session_headers = settings.unsigned_headers
        self._bidi_ping_interval: float | None = DEFAULT_BIDI_PING_INTERVAL
        self._bidi_ping_timeout = DEFAULT_BIDI_PING_TIMEOUT
        self.rate_limiter = settings.rate_limiter
        if self.rate_limiter is not None:
            # Outermost, so that it paces every attempt and sees every answer.
            middlewares = (self.rate_limiter.middleware, *middlewares)
        self._credentials = CredentialSource.from_arguments(
            aws_access_key_id=aws_access_key_id,
            aws_secret_access_key=aws_secret_access_key,
            aws_session_token=aws_session_token,
            credentials=credentials,
            botocore_session=botocore_session,
        )
        self._max_connections = max_connections
        self._max_body_bytes = max_body_bytes
        self._session = http_session
        self._owns_session = http_session is None
        self._metadata = MetadataCache(maxsize=metadata_cache_size, ttl=metadata_cache_ttl)
        self._lifecycle = Lifecycle()
        self._bidi_streams = OpenBidiStreams()
        self._lifecycle.on_close(self._close_session)
        self._lifecycle.on_close(functools.partial(self._bidi_streams.close_all, 0.0))
        # The TLS setting is on the own session's connector; a session of yours gets it per request.
        route_for = self._network.own_route if http_session is None else self._network.route
        self._pipeline = Pipeline(
            base_url=self._base_url,
            host=host_header(self._base_url),
            region=region,
            credentials=self._credentials,
            get_session=self._get_session,
            timeout=effective_timeout(timeout),
            retry_policy=settings.retry_policy,
            max_connections=max_connections,
            middlewares=middlewares,
            lifecycle=self._lifecycle,
            max_response_bytes=max_response_bytes,
            route=route_for(self._base_url),
            # The client's own session sends them as its default headers: no per-request copy.
            unsigned_headers={} if http_session is None else settings.unsigned_headers,
            route_for=route_for,
            # Only a session the client owns has the connector that tells the watchdog connections,
            # and skips aiohttp's automatic headers itself.
            own_session=http_session is None,
        )
        # The async-inference waiter (and its S3 and XML modules) is loaded on first use.
        self._s3_endpoint = settings.s3_endpoint
        self._results_waiter: AsyncResultWaiter | None = None
        # The OpenAI-compatible route: the endpoint's host, a bearer token instead of SigV4. The
        # token cache is made on first use (``_bearer``), shared by the client and its views.
        self._bearer_tokens: BearerTokens | None = None
        self._openai_target = Target(
            "openai", SIGNING_NAME, region, self._pipeline.sagemaker.host,
            authorize=self._bearer_auth,
        )  # fmt: skip
        pipeline = self._pipeline
        self._telemetry = load_telemetry(
            tracer_provider,
            meter_provider,
            region=region,
            host=self._base_url.host or "",
            port=self._base_url.port,
            gauges=lambda: pipeline.gauges,
        )
        if self._telemetry is not None:
            pipeline.observe = self._telemetry.observe
        self._parent: SageMakerRuntimeClient | None = None

    def with_options(
        self,
        *,
        timeout: aiohttp.ClientTimeout | None = None,
        retry_policy: RetryPolicy | None = None,
    ) -> SageMakerRuntimeClient:
        """A view of this client with other options, sharing its connections, credentials and
        lifecycle: shutting the client down ends its views' calls too. A view owns nothing:
        leaving ``async with view`` leaves the client open, while ``view.shutdown()`` shuts the
        shared lifecycle (the client) down. Fields of ``timeout`` left ``None`` keep their
        defaults."""
        if timeout is not None and not isinstance(timeout, aiohttp.ClientTimeout):
            raise ParamValidationError(
                "timeout", f"must be an aiohttp.ClientTimeout, got {type(timeout).__name__}"
            )
        if retry_policy is not None and not isinstance(retry_policy, RetryPolicy):
            raise ParamValidationError(
                "retry_policy", f"must be a RetryPolicy, got {type(retry_policy).__name__}"
            )
        self._check_open()
        view = copy.copy(self)
        view._pipeline = self._pipeline.derive(
            timeout=effective_timeout(timeout) if timeout is not None else None,
            retry_policy=retry_policy,
        )
        view._results_waiter = None  # made for the view's pipeline when first needed
        view._parent = self._parent or self
        return view

    @property
    def _results(self) -> AsyncResultWaiter:
        waiter = self._results_waiter
        if waiter is None:
            from ._async_results import AsyncResultWaiter

            waiter = self._results_waiter = AsyncResultWaiter(
                pipeline=self._pipeline, region=self._region, s3_endpoint=self._s3_endpoint()
            )
        return waiter

    # -- properties -------------------------------------------------------------------------

    @property
    def region_name(self) -> str:
        return self._region

    @property
    def endpoint_url(self) -> str:
        return str(self._base_url)

    @property
    def bidirectional_endpoint_url(self) -> str:
        """Where InvokeEndpointWithBidirectionalStream goes (the service's HTTP/2 endpoint)."""
        return str(self._bidi_settings()[0])

    def _bidi_settings(self) -> tuple[URL, BidiNetwork]:
        owner = self._parent or self
        if owner._bidi is None:
            owner._bidi = owner._resolve_bidi()
        return owner._bidi

    @property
    def timeout(self) -> aiohttp.ClientTimeout:
        return self._pipeline.timeout

    @property
    def retry_policy(self) -> RetryPolicy:
        return self._pipeline.retry_policy

    @property
    def closed(self) -> bool:
        return self._lifecycle.closing

    @property
    def max_response_bytes(self) -> int | None:
        """The bound on a non-stream answer's body (``ResponseTooLargeError`` past it); None: no
        bound."""
        return self._pipeline.max_response_bytes

    def __repr__(self) -> str:
        return (
            f"<SageMakerRuntimeClient region={self._region!r} endpoint_url={self.endpoint_url!r}"
            f"{' closed' if self.closed else ''}>"
        )

    # -- lifecycle --------------------------------------------------------------------------

    async def __aenter__(self) -> SageMakerRuntimeClient:
        self._check_open()
        self._get_session()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._parent is None:  # a view owns nothing: leaving its block leaves the client open
            await self.shutdown()

    async def shutdown(self, grace: float = DEFAULT_SHUTDOWN_GRACE) -> None:
        """Release everything the client owns. Idempotent, and safe to call concurrently.

        New calls are refused at once (``ClientClosedError``, nothing sent). Calls, waits,
        downloads and open streams in flight get ``grace`` seconds to finish; calls waiting to
        retry stop waiting. Whatever is still running after that is cancelled and raises
        ``ClientClosedError`` in its caller. Then the owned session is closed; an injected one is
        left open for its owner. A second ``shutdown()`` waits for the same end. If this call is
        cancelled, the grace ends at once but the shutdown still completes (the session is
        closed); calling ``shutdown()`` again waits for that.
        """
        if not isinstance(grace, (int, float)) or isinstance(grace, bool) or grace < 0:
            raise ParamValidationError("grace", "must be a non-negative number of seconds")
        # Bidirectional streams: those still open for input are reset at once, the others get
        # the grace alongside the calls (a hook of the lifecycle resets whatever remains, even if
        # this call is cancelled).
        closing_streams = asyncio.ensure_future(self._bidi_streams.close_all(float(grace)))
        await self._lifecycle.shutdown(float(grace))
        await closing_streams

    close = shutdown

    async def _close_session(self) -> None:
        session, self._session = self._session, None
        if session is not None and self._owns_session:
            await session.close()

    def _get_session(self) -> aiohttp.ClientSession:
        owner = self._parent or self
        session = owner._session
        if session is None:
            if owner._lifecycle.closed:
                raise ClientClosedError()
            pipeline = owner._pipeline
            connector = owner._network.connector(
                limit=owner._max_connections,
                watchdog=pipeline.watchdog,
                lifecycle=owner._lifecycle,
                admit=pipeline.admit_queued,
            )
            session = aiohttp.ClientSession(
                connector=connector,
                auto_decompress=False,
                skip_auto_headers=SKIP_AUTO_HEADERS,
                headers=owner._session_headers,
                timeout=owner._pipeline.timeout,
                # No cookies kept or sent, as botocore keeps none: a server's Set-Cookie must not
                # follow later calls (to other endpoints of the host too), and one that sets a new
                # cookie per answer must not grow the jar and every request (aiohttp before 3.14
                # bounds neither).
                cookie_jar=aiohttp.DummyCookieJar(),
            )
            owner._session = session
        return session

    # -- response metadata ------------------------------------------------------------------

    def get_cached_response_metadata(self, request: object) -> ResponseMetadata | None:
        """The metadata of the last successful call made with this request object, if still kept
        (a weak reference: the cache never keeps a request alive)."""
        return self._metadata.get(request)

    # -- operations -------------------------------------------------------------------------

    @overload
    async def invoke_endpoint(self, request: InvokeEndpointRequest, /) -> InvokeEndpointResult: ...

    @overload
    async def invoke_endpoint(
        self,
        *,
        endpoint_name: str,
        body: Body,
        content_type: str | None = None,
        accept: str | None = None,
        custom_attributes: str | None = None,
        target_model: str | None = None,
        target_variant: str | None = None,
        target_container_hostname: str | None = None,
        inference_id: str | None = None,
        enable_explanations: str | None = None,
        inference_component_name: str | None = None,
        session_id: str | None = None,
        prefix_aware_id: str | None = None,
    ) -> InvokeEndpointResult: ...

    async def invoke_endpoint(  # type: ignore[misc]  # mypy: positional-only default
        self,
        request: InvokeEndpointRequest | None = None,
        /,
        *,
        endpoint_name: str | None = None,
        body: Body | None = None,
        content_type: str | None = None,
        accept: str | None = None,
        custom_attributes: str | None = None,
        target_model: str | None = None,
        target_variant: str | None = None,
        target_container_hostname: str | None = None,
        inference_id: str | None = None,
        enable_explanations: str | None = None,
        inference_component_name: str | None = None,
        session_id: str | None = None,
        prefix_aware_id: str | None = None,
    ) -> InvokeEndpointResult:
        """Run the model behind ``endpoint_name`` on ``body`` and return its answer."""
        if self._lifecycle.closing:  # _check_open(), inlined: every call's path
            raise ClientClosedError()
        if request is None:
            # The keyword path: no request object, the values in the model's member order
            # (tests/test_hot_path_budget.py checks that order against this signature).
            wire = serialize_fields(
                m.INVOKE_ENDPOINT,
                endpoint_name,
                body,
                (
                    content_type, accept, custom_attributes, target_model, target_variant,
                    target_container_hostname, inference_id, enable_explanations,
                    inference_component_name, session_id, prefix_aware_id,
                ),
                max_body_bytes=self._max_body_bytes,
            )  # fmt: skip
            return await self._pipeline.call(wire, _parse_result)
        else:
            _check_request(
                InvokeEndpointRequest, request, endpoint_name, body, content_type, accept,
                custom_attributes, target_model, target_variant, target_container_hostname,
                inference_id, enable_explanations, inference_component_name, session_id,
                prefix_aware_id,
            )  # fmt: skip
        wire = serialize(m.INVOKE_ENDPOINT, request, max_body_bytes=self._max_body_bytes)
        result = await self._pipeline.call(wire, _parse_result_keeping_metadata)
        self._metadata.put(request, result.response_metadata)
        return result

    @overload
    async def invoke_endpoint_async(
        self, request: InvokeEndpointAsyncRequest, /
    ) -> InvokeEndpointAsyncResult: ...

    @overload
    async def invoke_endpoint_async(
        self,
        *,
        endpoint_name: str,
        input_location: str | None = None,
        body: Body | None = None,
        content_type: str | None = None,
        accept: str | None = None,
        custom_attributes: str | None = None,
        inference_id: str | None = None,
        request_ttl_seconds: int | None = None,
        invocation_timeout_seconds: int | None = None,
        s3_output_path_extension: str | None = None,
        filename: str | None = None,
    ) -> InvokeEndpointAsyncResult: ...

    async def invoke_endpoint_async(  # type: ignore[misc]  # mypy: positional-only default
        self,
        request: InvokeEndpointAsyncRequest | None = None,
        /,
        *,
        endpoint_name: str | None = None,
        input_location: str | None = None,
        body: Body | None = None,
        content_type: str | None = None,
        accept: str | None = None,
        custom_attributes: str | None = None,
        inference_id: str | None = None,
        request_ttl_seconds: int | None = None,
        invocation_timeout_seconds: int | None = None,
        s3_output_path_extension: str | None = None,
        filename: str | None = None,
    ) -> InvokeEndpointAsyncResult:
        """Queue an asynchronous inference; its result appears later at ``output_location``."""
        self._check_open()
        if request is None:
            request = _types.InvokeEndpointAsyncRequest(
                endpoint_name=endpoint_name,  # type: ignore[arg-type]
                input_location=input_location,
                body=body,
                content_type=content_type,
                accept=accept,
                custom_attributes=custom_attributes,
                inference_id=inference_id,
                request_ttl_seconds=request_ttl_seconds,
                invocation_timeout_seconds=invocation_timeout_seconds,
                s3_output_path_extension=s3_output_path_extension,
                filename=filename,
            )
            cache_key = None
        else:
            _check_request(
                _types.InvokeEndpointAsyncRequest, request, endpoint_name, input_location, body,
                content_type, accept, custom_attributes, inference_id, request_ttl_seconds,
                invocation_timeout_seconds, s3_output_path_extension, filename,
            )  # fmt: skip
            cache_key = request
        wire = serialize(m.INVOKE_ENDPOINT_ASYNC, request, max_body_bytes=self._max_body_bytes)
        result = await self._pipeline.call(wire, _parse_async_result)
        if cache_key is not None:
            self._metadata.put(cache_key, result.response_metadata)
        return result

    # -- async inference results ------------------------------------------------------------

    async def wait_for_async_result(
        self,
        result: InvokeEndpointAsyncResult,
        *,
        timeout: float,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
    ) -> bytes:
        """Wait for an ``invoke_endpoint_async`` call's output and return its bytes.

        Polls the output and failure locations with signed S3 requests. Raises
        ``AsyncInferenceFailure`` when the failure object appears, ``AsyncInferenceTimeout`` when
        ``timeout`` seconds pass first, and ``S3Error`` when S3 refuses (403 and the like).
        """
        self._check_open()
        with self._waiting("WaitForAsyncResult", result):
            return await self._results.wait(result, timeout=timeout, poll_interval=poll_interval)

    async def download_async_result(
        self,
        result: InvokeEndpointAsyncResult,
        path: str | Path,
        *,
        timeout: float,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
    ) -> int:
        """Like :meth:`wait_for_async_result`, but stream the output into the file at ``path``
        (written whole or not at all) and return its size in bytes."""
        self._check_open()
        with self._waiting("DownloadAsyncResult", result):
            return await self._results.download(
                result, path, timeout=timeout, poll_interval=poll_interval
            )

    def iter_async_result(
        self,
        result: InvokeEndpointAsyncResult,
        *,
        timeout: float,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
    ) -> AsyncIterator[bytes]:
        """Like :meth:`wait_for_async_result`, but yield the output in chunks as they arrive."""
        self._check_open()
        chunks = self._results.iterate(result, timeout=timeout, poll_interval=poll_interval)
        if self._telemetry is None:
            return chunks
        location = getattr(result, "output_location", None)
        return self._telemetry.waiting_iter("IterAsyncResult", location, chunks)

    async def upload_async_input(
        self, data: Body, location: str, *, content_type: str | None = None
    ) -> str:
        """Upload an input for ``invoke_endpoint_async`` to S3 (``s3://bucket/key``); returns the
        location to pass as ``input_location``."""
        self._check_open()
        payload = body_bytes(data, "data", None)
        return await self._results.upload(payload, location, content_type=content_type)

    async def invoke_endpoint_async_and_wait(
        self,
        request: InvokeEndpointAsyncRequest | None = None,
        /,
        *,
        timeout: float,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        upload_location: str | None = None,
        endpoint_name: str | None = None,
        input_location: str | None = None,
        body: Body | None = None,
        content_type: str | None = None,
        accept: str | None = None,
        custom_attributes: str | None = None,
        inference_id: str | None = None,
        request_ttl_seconds: int | None = None,
        invocation_timeout_seconds: int | None = None,
        s3_output_path_extension: str | None = None,
        filename: str | None = None,
    ) -> bytes:
        """Invoke asynchronously, then wait for the result: the common case in one call.

        ``timeout`` covers the whole call (``AsyncInferenceTimeout`` past it). An inline ``body``
        over the service's 128,000-byte limit is uploaded to ``upload_location``
        (``s3://bucket/key``) first and sent as ``input_location``.
        """
        self._check_open()
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
            raise ParamValidationError("timeout", "must be a positive number of seconds")
        deadline = self._lifecycle.clock() + timeout
        if request is None:
            request = _types.InvokeEndpointAsyncRequest(
                endpoint_name=endpoint_name,  # type: ignore[arg-type]  # checked in serialize
                input_location=input_location,
                body=body,
                content_type=content_type,
                accept=accept,
                custom_attributes=custom_attributes,
                inference_id=inference_id,
                request_ttl_seconds=request_ttl_seconds,
                invocation_timeout_seconds=invocation_timeout_seconds,
                s3_output_path_extension=s3_output_path_extension,
                filename=filename,
            )
        else:
            _check_request(
                _types.InvokeEndpointAsyncRequest, request, endpoint_name, input_location, body,
                content_type, accept, custom_attributes, inference_id, request_ttl_seconds,
                invocation_timeout_seconds, s3_output_path_extension, filename,
            )  # fmt: skip
        with self._lifecycle.track():
            raw_body = request.body
            if raw_body is not None and upload_location is not None:
                data = body_bytes(raw_body, "body", None)
                if len(data) > MAX_ASYNC_INLINE_BODY_BYTES:
                    location = await self._results.upload(
                        data, upload_location, content_type=request.content_type, deadline=deadline
                    )
                    request = dataclasses.replace(request, body=None, input_location=location)
            wire = serialize(m.INVOKE_ENDPOINT_ASYNC, request, max_body_bytes=self._max_body_bytes)
            try:
                queued = await self._pipeline.call(wire, _parse_async_result, deadline=deadline)
            except DeadlineExceededError as exc:
                if self._lifecycle.clock() < deadline:
                    raise  # the client's own timeout.total, not this call's
                error = AsyncInferenceTimeout(timeout)
                error.__cause__ = exc
                raise error from exc
            remaining = deadline - self._lifecycle.clock()
            if remaining <= 0:
                raise AsyncInferenceTimeout(timeout, output_location=queued.output_location)
            with self._waiting("WaitForAsyncResult", queued):
                return await self._results.wait(
                    queued, timeout=remaining, poll_interval=poll_interval
                )

    def _waiting(
        self, operation: str, result: InvokeEndpointAsyncResult
    ) -> AbstractContextManager[object]:
        """A wait's telemetry span (its S3 requests nest in it), or nothing."""
        if self._telemetry is None:
            return contextlib.nullcontext()
        # Odd input is the waiter's to reject (ParamValidationError), inside the span.
        return self._telemetry.waiting(operation, getattr(result, "output_location", None))

    def _check_open(self) -> None:
        if self._lifecycle.closing:
            raise ClientClosedError()

    # -- response streams -------------------------------------------------------------------

    @overload
    def invoke_endpoint_with_response_stream(
        self, request: InvokeEndpointWithResponseStreamRequest, /
    ) -> StreamCall: ...

    @overload
    def invoke_endpoint_with_response_stream(
        self,
        *,
        endpoint_name: str,
        body: Body,
        content_type: str | None = None,
        accept: str | None = None,
        custom_attributes: str | None = None,
        target_variant: str | None = None,
        target_container_hostname: str | None = None,
        inference_id: str | None = None,
        inference_component_name: str | None = None,
        session_id: str | None = None,
        prefix_aware_id: str | None = None,
    ) -> StreamCall: ...

    def invoke_endpoint_with_response_stream(  # type: ignore[misc]  # mypy: positional-only default
        self,
        request: InvokeEndpointWithResponseStreamRequest | None = None,
        /,
        *,
        endpoint_name: str | None = None,
        body: Body | None = None,
        content_type: str | None = None,
        accept: str | None = None,
        custom_attributes: str | None = None,
        target_variant: str | None = None,
        target_container_hostname: str | None = None,
        inference_id: str | None = None,
        inference_component_name: str | None = None,
        session_id: str | None = None,
        prefix_aware_id: str | None = None,
    ) -> StreamCall:
        """Open a response stream: ``async with client.invoke_endpoint_with_response_stream(...)
        as stream: async for part in stream: ...``. Validation happens here, before anything is
        sent; the request goes out when the block is entered. Retries apply only until the stream
        starts."""
        stream_call, open_stream = _stream_api or _load_streams()
        self._check_open()
        if request is None:
            # The keyword path, as invoke_endpoint's: no request object.
            wire = serialize_fields(
                m.INVOKE_ENDPOINT_WITH_RESPONSE_STREAM,
                endpoint_name,
                body,
                (
                    content_type, accept, custom_attributes, target_variant,
                    target_container_hostname, inference_id, inference_component_name, session_id,
                    prefix_aware_id,
                ),
                max_body_bytes=self._max_body_bytes,
            )  # fmt: skip
            return stream_call(
                functools.partial(self._pipeline.call, wire, open_stream, stream=True),
                self._lifecycle,
            )
        else:
            _check_request(
                _types.InvokeEndpointWithResponseStreamRequest, request, endpoint_name, body,
                content_type, accept, custom_attributes, target_variant, target_container_hostname,
                inference_id, inference_component_name, session_id, prefix_aware_id,
            )  # fmt: skip
            cache_key = request
        wire = serialize(
            m.INVOKE_ENDPOINT_WITH_RESPONSE_STREAM, request, max_body_bytes=self._max_body_bytes
        )
        start = functools.partial(self._pipeline.call, wire, open_stream, stream=True)
        if cache_key is None:
            return stream_call(start, self._lifecycle)
        return stream_call(start, self._lifecycle, functools.partial(self._remember, cache_key))

    def _remember(self, request: object, stream: ResponseStream) -> None:
        self._metadata.put(request, stream.response_metadata)

    # -- the OpenAI-compatible route (_openai_route) ------------------------------------------

    def openai_base_url(self, endpoint_name: str) -> str:
        """``{endpoint_url}/endpoints/{name}/openai/v1``: the ``base_url`` for OpenAI clients."""
        from ._openai_route import base_url  # imported on first use, as in the methods below

        return base_url(self.endpoint_url, endpoint_name)

    async def generate_bearer_token(self, *, expires_in: int = BEARER_TOKEN_MAX_EXPIRES) -> str:
        """A ``sagemaker-api-key-...`` bearer token for this client's region, valid for
        ``expires_in`` seconds (at most 43,200), made as the SageMaker Python SDK makes it.

        A token minted moments ago for the same lifetime and credentials is handed out again
        (it keeps at least 90% of its lifetime). Treat it as a secret: it acts as the credentials.
        """
        from ._bearer import check_expires_in

        self._check_open()
        return await self._bearer().get(check_expires_in(expires_in))

    def _bearer(self) -> BearerTokens:
        owner = self._parent or self
        tokens = owner._bearer_tokens
        if tokens is None:
            from ._bearer import BearerTokens

            tokens = owner._bearer_tokens = BearerTokens(owner._region, owner._credentials.get)
        return tokens

    async def _bearer_auth(self, request: HttpRequest) -> None:
        token = await self._bearer().get(ROUTE_TOKEN_EXPIRES, deadline=request.deadline)
        request.headers["Authorization"] = f"Bearer {token}"

    async def chat_completions(
        self,
        *,
        endpoint_name: str,
        body: Mapping[str, Any] | Body,
        inference_component_name: str | None = None,
    ) -> ChatCompletionsResult:
        """POST ``body`` (a dict, sent as JSON, or bytes) to the endpoint's OpenAI-compatible
        ``chat/completions`` with a bearer token; the container's answer comes back as it is."""
        from ._openai_route import chat_request, parse_chat_result

        self._check_open()
        wire = chat_request(
            endpoint_name,
            body,
            stream=False,
            inference_component_name=inference_component_name,
            max_body_bytes=self._max_body_bytes,
        )
        return await self._pipeline.call(wire, parse_chat_result, target=self._openai_target)

    def chat_completions_stream(
        self,
        *,
        endpoint_name: str,
        body: Mapping[str, Any] | Body,
        inference_component_name: str | None = None,
    ) -> StreamCall:
        """``async with client.chat_completions_stream(...) as stream: async for text in
        stream.iter_text(): ...``. A dict body gets ``"stream": true``. The stream also has
        ``iter_events()``, ``iter_json()`` and ``iter_lines()``."""
        from ._openai_route import chat_request, open_chat_stream
        from ._stream import StreamCall

        self._check_open()
        wire = chat_request(
            endpoint_name,
            body,
            stream=True,
            inference_component_name=inference_component_name,
            max_body_bytes=self._max_body_bytes,
        )
        start = functools.partial(
            self._pipeline.call, wire, open_chat_stream, stream=True, target=self._openai_target
        )
        return StreamCall(start, self._lifecycle)

    # -- bidirectional streams (HTTP/2) -----------------------------------------------------

    def invoke_endpoint_with_bidirectional_stream(
        self,
        *,
        endpoint_name: str,
        model_invocation_path: str | None = None,
        model_query_string: str | None = None,
        target_variant: str | None = None,
    ) -> BidirectionalCall:
        """Open a bidirectional stream (HTTP/2; needs the ``bidi`` extra)::

            async with client.invoke_endpoint_with_bidirectional_stream(endpoint_name=...) as s:
                await s.send(b"..."); await s.end_input()
                async for part in s: ...

        Validation happens here; the connection is made when the block is entered.
        """
        # HTTP/2 and the event signer are imported on the first bidirectional call, not with the
        # package: most clients never make one.
        from ._bidi import BidirectionalCall, BidiSettings
        from ._bidi_request import BidiRequest

        self._check_open()
        request = BidiRequest(
            endpoint_name, model_invocation_path, model_query_string, target_variant
        )
        timeout = self._pipeline.timeout
        url, network = self._bidi_settings()
        settings = BidiSettings(
            url=url,
            region=self._region,
            credentials=self._credentials,
            retry_policy=self._pipeline.retry_policy,
            ssl_context=network.ssl_context,
            connect_timeout=timeout.sock_connect or timeout.connect,
            read_timeout=timeout.sock_read,
            receive_window=DEFAULT_BIDI_RECEIVE_WINDOW,
            user_agent=self._bidi_user_agent,
            sleep=self._pipeline.sleep_unless_closing,
            proxy_for=network.proxy_for,
            ping_interval=self._bidi_ping_interval,
            ping_timeout=self._bidi_ping_timeout,
            observe=self._pipeline.observe,
        )
        return BidirectionalCall(
            request, settings, self._bidi_streams, lambda: self._lifecycle.closing
        )


__all__ = ["SageMakerRuntimeClient"]
