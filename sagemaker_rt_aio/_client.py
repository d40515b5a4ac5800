"""``SageMakerRuntimeClient``: one aiohttp session, the operations as coroutines, and shutdown.

A call goes: validate and serialize (``_protocol``) → retry loop (``_retry``) → middlewares →
sign (``_signing``) → send (``_transport``) → parse a result or an error (``_protocol``,
``_errors``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from types import TracebackType
from typing import Any, TypeVar

import aiohttp
import botocore.credentials
import botocore.session
from cachetools import TTLCache
from yarl import URL

from . import _model as m
from ._constants import (
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_METADATA_CACHE_SIZE,
    DEFAULT_METADATA_CACHE_TTL,
    SIGNING_NAME,
    default_timeout,
)
from ._credentials import CredentialSource, resolve_region
from ._endpoints import check_custom_url, service_url, split_fips_region
from ._errors import (
    ClientClosedError,
    ParamValidationError,
    SageMakerRuntimeError,
    ServiceError,
    parse_error_response,
)
from ._protocol import (
    UNSIGNED_DEFAULT_HEADERS,
    WireRequest,
    coerce_request,
    parse_invoke_endpoint,
    parse_invoke_endpoint_async,
    serialize,
)
from ._retry import RetryPolicy, RetryQuota, delay, parse_retry_after, should_retry
from ._signing import sign
from ._transport import HttpRequest, HttpResponse, redacted, send
from ._types import (
    Body,
    InvokeEndpointAsyncRequest,
    InvokeEndpointAsyncResult,
    InvokeEndpointRequest,
    InvokeEndpointResult,
    ResponseMetadata,
)

logger = logging.getLogger("sagemaker_rt_aio")

CallNext = Callable[[HttpRequest], Awaitable[HttpResponse]]
Middleware = Callable[[HttpRequest, CallNext], Awaitable[HttpResponse]]
T = TypeVar("T")

_URL_CACHE_SIZE = 512


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() == "true"


def _host_header(url: URL) -> str:
    """The Host header aiohttp sends for ``url``, which is also what SigV4 signs."""
    host = (url.raw_host or "").lower()
    if ":" in host:
        host = f"[{host}]"
    port = url.explicit_port
    if port is not None and port != {"http": 80, "https": 443}.get(url.scheme):
        host = f"{host}:{port}"
    return host


class SageMakerRuntimeClient:
    """An asyncio client for SageMaker Runtime. Use it as an async context manager, or call
    :meth:`shutdown` when done. One client serves any number of concurrent calls."""

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
    ) -> None:
        if max_connections < 1:
            raise ParamValidationError("max_connections", "must be at least 1")
        if profile_name is not None and botocore_session is None:
            botocore_session = botocore.session.Session(profile=profile_name)
        if (
            botocore_session is None
            and not region_name
            and not (os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"))
        ):
            botocore_session = botocore.session.Session()
        region = resolve_region(region_name, botocore_session)
        region, fips_region = split_fips_region(region)
        fips = fips_region or bool(use_fips_endpoint) or _env_flag("AWS_USE_FIPS_ENDPOINT")
        dual_stack = bool(use_dualstack_endpoint) or _env_flag("AWS_USE_DUALSTACK_ENDPOINT")
        custom = (
            endpoint_url
            or os.environ.get("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME")
            or os.environ.get("AWS_ENDPOINT_URL")
        )
        if custom:
            if use_fips_endpoint or use_dualstack_endpoint or fips_region:
                raise ParamValidationError(
                    "endpoint_url", "FIPS and dual-stack endpoints cannot be used with a custom URL"
                )
            base = check_custom_url(custom, field="endpoint_url", allow_http=allow_http)
        else:
            base = URL(service_url(region, fips=fips, dual_stack=dual_stack))
        self._region = region
        self._base_url = base
        self._base_path = base.raw_path.rstrip("/")
        self._host = _host_header(base)
        self._s3_endpoint_url = (
            check_custom_url(s3_endpoint_url, field="s3_endpoint_url", allow_http=allow_http)
            if s3_endpoint_url
            else None
        )
        self._allow_http = allow_http
        self._credentials = CredentialSource.from_arguments(
            aws_access_key_id=aws_access_key_id,
            aws_secret_access_key=aws_secret_access_key,
            aws_session_token=aws_session_token,
            credentials=credentials,
            botocore_session=botocore_session,
        )
        self._timeout = timeout if timeout is not None else default_timeout()
        self._retry_policy = retry_policy if retry_policy is not None else RetryPolicy()
        self._quota = RetryQuota(self._retry_policy.quota_capacity)
        self._max_connections = max_connections
        self._max_body_bytes = max_body_bytes
        self._session = http_session
        self._owns_session = http_session is None
        self._slots = asyncio.Semaphore(max_connections)
        self._metadata: TTLCache[Any, ResponseMetadata] = TTLCache(
            maxsize=metadata_cache_size, ttl=metadata_cache_ttl
        )
        self._urls: dict[str, URL] = {}
        self._closed = False
        self._middlewares = tuple(middlewares)
        self._send_chain: CallNext = self._build_chain(self._middlewares, stream=False)
        self._rand = random.Random()

    # -- properties -------------------------------------------------------------------------

    @property
    def region_name(self) -> str:
        return self._region

    @property
    def endpoint_url(self) -> str:
        return str(self._base_url)

    @property
    def timeout(self) -> aiohttp.ClientTimeout:
        return self._timeout

    @property
    def retry_policy(self) -> RetryPolicy:
        return self._retry_policy

    @property
    def closed(self) -> bool:
        return self._closed

    def __repr__(self) -> str:
        return (
            f"<SageMakerRuntimeClient region={self._region!r} endpoint_url={self.endpoint_url!r}"
            f"{' closed' if self._closed else ''}>"
        )

    # -- lifecycle --------------------------------------------------------------------------

    async def __aenter__(self) -> SageMakerRuntimeClient:
        if self._closed:
            raise ClientClosedError()
        self._get_session()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.shutdown()

    async def shutdown(self) -> None:
        """Release everything the client owns. Idempotent; later calls raise ClientClosedError."""
        if self._closed:
            return
        self._closed = True
        session, self._session = self._session, None
        if session is not None and self._owns_session:
            await session.close()

    close = shutdown

    def _get_session(self) -> aiohttp.ClientSession:
        session = self._session
        if session is None:
            if self._closed:
                raise ClientClosedError()
            connector = aiohttp.TCPConnector(limit=self._max_connections, ttl_dns_cache=60)
            session = aiohttp.ClientSession(
                connector=connector,
                skip_auto_headers=tuple(),
                auto_decompress=False,
                timeout=self._timeout,
            )
            self._session = session
        return session

    # -- response metadata ------------------------------------------------------------------

    def get_cached_response_metadata(self, request: object) -> ResponseMetadata | None:
        """The metadata of the last successful call made with this request object, if still kept."""
        return self._metadata.get(request)

    # -- operations -------------------------------------------------------------------------

    async def invoke_endpoint(
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
    ) -> InvokeEndpointResult:
        """Run the model behind ``endpoint_name`` on ``body`` and return its answer."""
        if request is None:
            request = InvokeEndpointRequest(
                endpoint_name=endpoint_name,  # type: ignore[arg-type]  # checked in serialize
                body=body,  # type: ignore[arg-type]
                content_type=content_type,
                accept=accept,
                custom_attributes=custom_attributes,
                target_model=target_model,
                target_variant=target_variant,
                target_container_hostname=target_container_hostname,
                inference_id=inference_id,
                enable_explanations=enable_explanations,
                inference_component_name=inference_component_name,
                session_id=session_id,
            )
            cache_key = None
        else:
            coerce_request(InvokeEndpointRequest, request, {})
            cache_key = request
        wire = serialize(m.INVOKE_ENDPOINT, request, max_body_bytes=self._max_body_bytes)
        result = await self._call(wire, parse_invoke_endpoint)
        if cache_key is not None:
            self._metadata[cache_key] = result.response_metadata
        return result

    async def invoke_endpoint_async(
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
        if request is None:
            request = InvokeEndpointAsyncRequest(
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
            coerce_request(InvokeEndpointAsyncRequest, request, {})
            cache_key = request
        wire = serialize(m.INVOKE_ENDPOINT_ASYNC, request, max_body_bytes=self._max_body_bytes)
        result = await self._call(wire, parse_invoke_endpoint_async)
        if cache_key is not None:
            self._metadata[cache_key] = result.response_metadata
        return result

    # -- the call path ----------------------------------------------------------------------

    def _url(self, path: str) -> URL:
        url = self._urls.get(path)
        if url is None:
            if len(self._urls) >= _URL_CACHE_SIZE:
                self._urls.clear()
            url = self._base_url.with_path(self._base_path + path, encoded=True)
            self._urls[path] = url
        return url

    def _build_chain(self, middlewares: tuple[Middleware, ...], *, stream: bool) -> CallNext:
        call: CallNext = partial(self._sign_and_send, stream=stream)
        for middleware in reversed(middlewares):
            call = _bind(middleware, call)
        return call

    async def _sign_and_send(self, request: HttpRequest, *, stream: bool) -> HttpResponse:
        """The innermost layer: sign this attempt now (a queued signature could expire), send."""
        session = self._get_session()
        credentials = await self._credentials.get()
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
        headers.update(UNSIGNED_DEFAULT_HEADERS)
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "%s %s attempt=%d headers=%s",
                request.method,
                request.url,
                request.attempt,
                redacted(headers),
            )
        return await send(session, request, self._timeout, stream=stream)

    async def _call(self, wire: WireRequest, parse: Callable[[int, Any, bytes, int], T]) -> T:
        if self._closed:
            raise ClientClosedError()
        policy = self._retry_policy
        attempt = 1
        started = time.monotonic()
        while True:
            request = HttpRequest(
                operation=wire.operation.name,
                endpoint_name=wire.endpoint_name,
                method="POST",
                url=self._url(wire.path),
                headers=dict(wire.headers),
                body=wire.body,
                attempt=attempt,
                _hashed=(wire.body, wire.payload_hash),
            )
            error: SageMakerRuntimeError
            try:
                async with self._slots:
                    if self._closed:
                        raise ClientClosedError()
                    response = await self._send_chain(request)
            except SageMakerRuntimeError as exc:
                if isinstance(exc, ClientClosedError) or self._closed:
                    raise ClientClosedError() from exc
                error = exc
                retry_after = None
            else:
                if response.status == wire.operation.success_status or 200 <= response.status < 300:
                    if attempt == 1:
                        self._quota.release(1)
                    else:
                        self._quota.release(policy.retry_cost)
                    return parse(response.status, response.headers, response.body, attempt - 1)
                error = parse_error_response(
                    response.status, response.headers, response.body, retry_attempts=attempt - 1
                )
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
            elapsed = time.monotonic() - started
            if not should_retry(policy, error, attempt=attempt, elapsed=elapsed) or (
                not self._quota.acquire(policy.retry_cost)
            ):
                raise error
            wait = delay(policy, error, attempt=attempt, retry_after=retry_after, rand=self._rand)
            logger.debug(
                "retrying %s on %s after %s (attempt %d, waiting %.3f s)",
                wire.operation.name,
                wire.endpoint_name,
                _error_name(error),
                attempt,
                wait,
            )
            await asyncio.sleep(wait)
            attempt += 1


def _bind(middleware: Middleware, call_next: CallNext) -> CallNext:
    async def call(request: HttpRequest) -> HttpResponse:
        return await middleware(request, call_next)

    return call


def _error_name(error: SageMakerRuntimeError) -> str:
    return error.code if isinstance(error, ServiceError) else type(error).__name__


__all__ = ["CallNext", "Middleware", "SageMakerRuntimeClient"]
