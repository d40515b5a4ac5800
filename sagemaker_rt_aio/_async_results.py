"""Waiting for the result of an asynchronous inference, by polling its S3 locations.

``InvokeEndpointAsync`` only queues a request; the model's output later appears at the output
location, or an error text at the failure location. The waiter asks S3 for both (signed HEAD
requests, no second AWS client), backing off with jitter between polls:

- the output exists: fetch it (bytes, a file, or chunks);
- the failure object exists: raise ``AsyncInferenceFailure`` with its text;
- neither (404): poll again, unless ``timeout`` has passed: ``AsyncInferenceTimeout``;
- S3 500/503 (``SlowDown``), or a connection that failed: poll again (a GET or HEAD is idempotent);
  the GET of a found object and an upload's PUT are tried again the same way, as the client's
  retry policy allows (both are idempotent);
- anything else (403 ``AccessDenied`` above all): raise ``S3Error`` at once, since a missing
  permission must not look like "not ready yet".

Every S3 request is bounded by what remains of ``timeout``, so a wait never outlives it, and a
cancelled wait stops polling at once. A client that shuts down ends its waits with
``ClientClosedError``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from ._constants import (
    DEFAULT_POLL_MAX_INTERVAL,
    S3_SIGNING_NAME,
)
from ._credentials import CredentialSource
from ._endpoints import host_header
from ._errors import (
    AsyncInferenceFailure,
    AsyncInferenceTimeout,
    ClientClosedError,
    DeadlineExceededError,
    ParamValidationError,
    SageMakerRuntimeError,
    TransportError,
)
from ._network import Network
from ._protocol import UNSIGNED_DEFAULT_HEADERS
from ._retry import RetryPolicy, delay
from ._s3 import MISSING, TRANSIENT, parse_s3_error, parse_s3_uri
from ._s3_endpoint import S3Endpoint
from ._signing import payload_sha256, sign
from ._transport import HttpRequest, HttpResponse, read_chunk, send
from ._types import InvokeEndpointAsyncResult
from ._useragent import add_unsigned

logger = logging.getLogger("sagemaker_rt_aio")


@dataclass(frozen=True)
class _Found:
    """Which of the two objects appeared."""

    output: bool
    bucket: str
    key: str


class AsyncResultWaiter:
    """Polls S3 for async-inference results with the client's session and credentials."""

    def __init__(
        self,
        *,
        region: str,
        s3_endpoint: S3Endpoint,
        credentials: CredentialSource,
        get_session: Callable[[], aiohttp.ClientSession],
        timeout: aiohttp.ClientTimeout,
        is_closing: Callable[[], bool],
        sleep: Callable[[float], Awaitable[bool]],
        retry_policy: RetryPolicy | None = None,
        network: Network | None = None,
        unsigned_headers: Mapping[str, str] = UNSIGNED_DEFAULT_HEADERS,
    ) -> None:
        self._region = region
        self._s3_endpoint = s3_endpoint
        self._network = network if network is not None else Network()
        self._unsigned_headers = unsigned_headers
        self._credentials = credentials
        self._get_session = get_session
        self._timeout = timeout
        self._is_closing = is_closing
        self._sleep = sleep
        self._retry_policy = retry_policy if retry_policy is not None else RetryPolicy()
        self._rand = random.Random()

    # -- public operations ------------------------------------------------------------------

    async def wait(
        self, result: InvokeEndpointAsyncResult, *, timeout: float, poll_interval: float
    ) -> bytes:
        deadline = _deadline(timeout)
        found = await self._poll(result, timeout=timeout, poll_interval=poll_interval)
        chunks = [chunk async for chunk in self._get(found, deadline)]
        return b"".join(chunks)

    async def download(
        self,
        result: InvokeEndpointAsyncResult,
        path: str | Path,
        *,
        timeout: float,
        poll_interval: float,
    ) -> int:
        """Write the output to ``path`` as it arrives (never whole in memory); return its size."""
        deadline = _deadline(timeout)
        found = await self._poll(result, timeout=timeout, poll_interval=poll_interval)
        target = Path(path)
        partial = target.with_name(target.name + ".part")
        size = 0
        try:
            with partial.open("wb") as file:
                async for chunk in self._get(found, deadline):
                    await asyncio.to_thread(file.write, chunk)
                    size += len(chunk)
            partial.replace(target)  # a complete file or none: never a truncated one
        finally:
            with contextlib.suppress(FileNotFoundError):
                partial.unlink()
        return size

    async def iterate(
        self, result: InvokeEndpointAsyncResult, *, timeout: float, poll_interval: float
    ) -> AsyncIterator[bytes]:
        deadline = _deadline(timeout)
        found = await self._poll(result, timeout=timeout, poll_interval=poll_interval)
        async for chunk in self._get(found, deadline):
            yield chunk

    async def upload(
        self,
        data: bytes,
        location: str,
        *,
        content_type: str | None,
        deadline: float | None = None,
    ) -> str:
        """PUT ``data`` at ``location`` (``s3://bucket/key``) and return the location.

        ``deadline`` (``time.monotonic()``) bounds the upload, retries included, when it is part of
        a call with a timeout; past it the upload raises ``DeadlineExceededError``."""
        bucket, key = parse_s3_uri(location, "upload_location")
        headers = {"Content-Type": content_type} if content_type else {}
        response = await self._request_retrying("PUT", bucket, key, data, headers, deadline)
        if response.status >= 300:
            raise parse_s3_error(response.status, response.headers, response.body)
        return f"s3://{bucket}/{key}"

    # -- polling ----------------------------------------------------------------------------

    async def _poll(
        self, result: InvokeEndpointAsyncResult, *, timeout: float, poll_interval: float
    ) -> _Found:
        if timeout <= 0:
            raise ParamValidationError("timeout", "must be a positive number of seconds")
        if poll_interval <= 0:
            raise ParamValidationError("poll_interval", "must be a positive number of seconds")
        if not result.output_location:
            raise ParamValidationError("result", "has no output_location to wait for")
        deadline = time.monotonic() + timeout
        targets = [(True, *parse_s3_uri(result.output_location, "output_location"))]
        if result.failure_location:
            targets.append((False, *parse_s3_uri(result.failure_location, "failure_location")))
        interval = poll_interval
        polls = 0
        while True:
            if self._is_closing():
                raise ClientClosedError("the client shut down while waiting for an async result")
            polls += 1
            for is_output, bucket, key in targets:
                if await self._exists(bucket, key, deadline):
                    logger.debug(
                        "async result found after %d poll(s): s3://%s/%s", polls, bucket, key
                    )
                    return _Found(is_output, bucket, key)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AsyncInferenceTimeout(timeout, output_location=result.output_location)
            # Full jitter around a growing interval: many waiters do not poll in lockstep.
            wait = min(remaining, self._rand.uniform(interval / 2, interval))
            interval = min(interval * 1.5, max(poll_interval, DEFAULT_POLL_MAX_INTERVAL))
            if await self._sleep(wait):
                raise ClientClosedError("the client shut down while waiting for an async result")

    async def _exists(self, bucket: str, key: str, deadline: float) -> bool:
        try:
            response = await self._request("HEAD", bucket, key, b"", {}, deadline)
        except TransportError as exc:
            self._raise_if_closing(exc)
            # HEAD is idempotent: a failed poll is simply polled again (the deadline still holds).
            logger.debug("S3 poll failed (%s); polling again", type(exc).__name__)
            return False
        if 200 <= response.status < 300:
            return True
        if response.status in MISSING or response.status in TRANSIENT:
            return False
        raise parse_s3_error(response.status, response.headers, response.body)

    async def _get(self, found: _Found, deadline: float) -> AsyncIterator[bytes]:
        """The found object's bytes in chunks; a failure object raises instead.

        The GET must start before the deadline; its body then flows with ``sock_read`` between
        chunks, so a large output is not cut off halfway by the wait's timeout.
        """
        response = await self._request_retrying(
            "GET", found.bucket, found.key, b"", {}, deadline, stream=True
        )
        if response.stream is None:
            raise parse_s3_error(response.status, response.headers, response.body)
        stream = response.stream
        watcher = asyncio.get_running_loop().create_task(self._close_on_shutdown(stream))
        try:
            if not found.output:
                text = (await stream.read()).decode("utf-8", "replace")
                raise AsyncInferenceFailure(
                    text, failure_location=f"s3://{found.bucket}/{found.key}"
                )
            while True:
                try:
                    chunk = await read_chunk(stream)
                except TransportError as exc:
                    self._raise_if_closing(exc)
                    raise
                if not chunk:
                    break
                yield chunk
        finally:
            watcher.cancel()
            stream.close()

    async def _close_on_shutdown(self, response: aiohttp.ClientResponse) -> None:
        """Abort a body being read once the client shuts down. Closing the session does not
        interrupt a response that is already streaming: its reader would wait for ``sock_read``."""
        while not await self._sleep(3600.0):
            pass
        response.close()

    def _raise_if_closing(self, exc: BaseException) -> None:
        """A request that failed because the client shut down (its session closed under it) ends
        the wait with ``ClientClosedError``, as a call in flight does, not with a transport error."""
        if self._is_closing():
            raise ClientClosedError(
                "the client shut down while waiting for an async result"
            ) from exc

    async def _request_retrying(
        self,
        method: str,
        bucket: str,
        key: str,
        body: bytes,
        headers: dict[str, str],
        deadline: float | None,
        *,
        stream: bool = False,
    ) -> HttpResponse:
        """An idempotent request (GET, PUT) tried again on S3's 500/503 (``SlowDown``) and on failed
        connections, as the retry policy allows and the deadline leaves time for; any other answer
        is returned as it is."""
        policy = self._retry_policy
        attempt = 1
        while True:
            error: SageMakerRuntimeError
            try:
                response = await self._request(
                    method, bucket, key, body, dict(headers), deadline, stream
                )
            except TransportError as exc:
                self._raise_if_closing(exc)
                if not policy.retry_connection_errors or not exc.retryable:
                    raise
                error = exc
            else:
                if response.status not in TRANSIENT:
                    return response
                error = parse_s3_error(response.status, response.headers, response.body)
            if attempt >= policy.max_attempts:
                raise error
            wait = delay(policy, error, attempt=attempt, rand=self._rand)
            if deadline is not None and time.monotonic() + wait >= deadline:
                raise error
            logger.debug("S3 %s failed (%s); trying again in %.3f s", method, error, wait)
            if await self._sleep(wait):
                raise ClientClosedError("the client shut down while an S3 request waited to retry")
            attempt += 1

    # -- one S3 request ---------------------------------------------------------------------

    def _signed(
        self, method: str, bucket: str, key: str, body: bytes, headers: dict[str, str]
    ) -> HttpRequest:
        url = self._s3_endpoint.object_url(bucket, key)
        digest = payload_sha256(body)
        headers["x-amz-content-sha256"] = digest
        return HttpRequest(
            operation=f"S3 {method}",
            endpoint_name=bucket,
            method=method,
            url=url,
            headers=headers,
            body=body,
            attempt=1,
            _hashed=(body, digest),
        )

    async def _request(
        self,
        method: str,
        bucket: str,
        key: str,
        body: bytes,
        headers: dict[str, str],
        deadline: float | None,
        stream: bool = False,
    ) -> HttpResponse:
        request = self._signed(method, bucket, key, body, headers)
        credentials = await self._credentials.get()
        sign(
            method=method,
            host=host_header(request.url),
            path=request.url.raw_path,
            headers=request.headers,
            payload_hash=request.payload_hash(),
            credentials=credentials,
            region=self._region,
            service=S3_SIGNING_NAME,
            double_encode_path=False,
        )
        add_unsigned(request.headers, self._unsigned_headers)
        route = self._network.route(request.url)
        timeout = self._timeout
        if deadline is None:
            return await send(self._get_session(), request, timeout, stream=stream, route=route)
        remaining = max(deadline - time.monotonic(), 0.05)
        if not stream:
            timeout = aiohttp.ClientTimeout(
                total=remaining, sock_connect=timeout.sock_connect, sock_read=timeout.sock_read
            )
            return await send(self._get_session(), request, timeout, route=route)
        try:
            return await asyncio.wait_for(
                send(self._get_session(), request, timeout, stream=True, route=route), remaining
            )
        except SageMakerRuntimeError:
            raise
        except asyncio.TimeoutError:
            raise DeadlineExceededError(
                "the S3 GET did not start before the wait's timeout"
            ) from None


def _deadline(timeout: float) -> float:
    return time.monotonic() + timeout
