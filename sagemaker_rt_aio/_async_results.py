"""Waiting for the result of an asynchronous inference, by polling its S3 locations.

``InvokeEndpointAsync`` only queues a request; the model's output later appears at the output
location, or an error text at the failure location. The waiter asks S3 for both (signed HEAD
requests, no second AWS client), backing off with jitter between polls:

- the output exists: fetch it (bytes, a file, or chunks);
- the failure object exists: raise ``AsyncInferenceFailure`` with its text;
- neither (404): poll again, unless ``timeout`` has passed: ``AsyncInferenceTimeout``;
- S3 500/503 (``SlowDown``), or a connection that failed: the request is tried again by the
  client's pipeline (S3's requests are idempotent, so its rules for the S3 target allow what an
  inference may not); a poll that still fails counts as failed, and ``_MAX_FAILED_POLLS`` failed
  polls in a row raise the last error, so an unreachable or misconfigured S3 endpoint surfaces
  soon, as what it is, not as a timeout; a timeout after a failed poll is chained to its error;
- anything else (403 ``AccessDenied`` above all): raise ``S3Error`` at once, since a missing
  permission must not look like "not ready yet".

Every S3 request goes through the same pipeline as the SageMaker calls (slots, middlewares,
signing, retries, lifecycle), bounded by what remains of ``timeout``, so a wait never outlives it,
and a cancelled wait stops polling at once. A client that shuts down ends its waits with
``ClientClosedError``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import tempfile
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from . import _model as m
from ._constants import DEFAULT_POLL_MAX_INTERVAL, S3_SIGNING_NAME
from ._errors import (
    AsyncInferenceFailure,
    AsyncInferenceTimeout,
    ClientClosedError,
    DeadlineExceededError,
    ParamValidationError,
    S3Error,
    SageMakerRuntimeError,
    ServiceError,
    TransportError,
)
from ._pipeline import Pipeline, Target
from ._protocol import WireRequest
from ._s3 import MISSING, TRANSIENT, parse_s3_error, parse_s3_uri
from ._s3_endpoint import S3Endpoint
from ._signing import payload_sha256
from ._transport import HttpResponse, abort_response, read_chunk
from ._types import InvokeEndpointAsyncResult

logger = logging.getLogger("sagemaker_rt_aio")

# Polls in a row whose request failed (after the pipeline's own retries) before the wait gives up
# with that failure rather than polling on until its timeout.
_MAX_FAILED_POLLS = 3
# The text of a failure object is read up to this many bytes.
_MAX_FAILURE_TEXT = 64 * 1024

_S3_OPERATIONS = {
    method: m.Operation(f"S3 {method}", "", (), 200, False, None)
    for method in ("HEAD", "GET", "PUT")
}


def _parse_s3(status: int, headers: Mapping[str, str], body: bytes, retries: int) -> ServiceError:
    return parse_s3_error(status, headers, body)


def s3_target(region: str) -> Target:
    return Target(
        "s3",
        S3_SIGNING_NAME,
        region,
        None,
        double_encode_path=False,
        idempotent=True,
        retry_statuses=TRANSIENT,
        parse_error=_parse_s3,
    )


def _response(response: HttpResponse, retries: int) -> HttpResponse:
    return response


@dataclass(frozen=True)
class _Found:
    """Which of the two objects appeared."""

    output: bool
    bucket: str
    key: str


class _Body:
    """An S3 body being read, registered with the lifecycle so that shutdown can end it."""

    __slots__ = ("response",)

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response

    def _abort(self, error: BaseException) -> None:
        abort_response(self.response, error)


class AsyncResultWaiter:
    """Polls S3 for async-inference results through the client's pipeline."""

    def __init__(self, *, pipeline: Pipeline, region: str, s3_endpoint: S3Endpoint) -> None:
        self._pipeline = pipeline
        self._region = region
        self._s3_endpoint = s3_endpoint
        self._target = s3_target(region)
        self._rand = random.Random()

    def with_pipeline(self, pipeline: Pipeline) -> AsyncResultWaiter:
        return AsyncResultWaiter(
            pipeline=pipeline, region=self._region, s3_endpoint=self._s3_endpoint
        )

    # -- public operations ------------------------------------------------------------------

    async def wait(
        self, result: InvokeEndpointAsyncResult, *, timeout: float, poll_interval: float
    ) -> bytes:
        with self._pipeline.lifecycle.track(immediate=True):
            deadline = _deadline(timeout, self._pipeline.lifecycle.clock)
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
        """Write the output to ``path`` as it arrives (never whole in memory); return its size.

        Each download writes its own temporary file beside ``path`` and renames it over ``path``
        when complete (``os.replace``, atomic): concurrent downloads to one path each leave a whole
        file, the last one's, and a failed or cancelled one leaves no temporary file behind.
        """
        with self._pipeline.lifecycle.track(immediate=True):
            deadline = _deadline(timeout, self._pipeline.lifecycle.clock)
            found = await self._poll(result, timeout=timeout, poll_interval=poll_interval)
            target = Path(path)
            try:
                fd, partial = tempfile.mkstemp(
                    dir=target.parent, prefix=f".{target.name}.", suffix=".part"
                )
            except OSError as exc:
                raise ParamValidationError("path", f"cannot write beside {path}: {exc}") from None
            size = 0
            try:
                with os.fdopen(fd, "wb") as file:
                    async for chunk in self._get(found, deadline):
                        file.write(chunk)  # a chunk is at most a socket read: no thread needed
                        size += len(chunk)
                os.replace(partial, target)  # a complete file or none: never a truncated one
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(partial)
            return size

    async def iterate(
        self, result: InvokeEndpointAsyncResult, *, timeout: float, poll_interval: float
    ) -> AsyncIterator[bytes]:
        with self._pipeline.lifecycle.track(immediate=True):
            deadline = _deadline(timeout, self._pipeline.lifecycle.clock)
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
        with self._pipeline.lifecycle.track(immediate=True):
            await self._request("PUT", bucket, key, data, headers, deadline)
        return f"s3://{bucket}/{key}"

    # -- polling ----------------------------------------------------------------------------

    async def _poll(
        self, result: InvokeEndpointAsyncResult, *, timeout: float, poll_interval: float
    ) -> _Found:
        for name, value in (("timeout", timeout), ("poll_interval", poll_interval)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ParamValidationError(name, "must be a positive number of seconds")
        if not isinstance(result, InvokeEndpointAsyncResult):
            raise ParamValidationError(
                "result", f"must be an InvokeEndpointAsyncResult, got {type(result).__name__}"
            )
        if not result.output_location:
            raise ParamValidationError("result", "has no output_location to wait for")
        lifecycle = self._pipeline.lifecycle
        deadline = lifecycle.clock() + timeout
        targets = [(True, *parse_s3_uri(result.output_location, "output_location"))]
        if result.failure_location:
            targets.append((False, *parse_s3_uri(result.failure_location, "failure_location")))
        interval = poll_interval
        polls = failed = 0
        last_error: SageMakerRuntimeError | None = None
        while True:
            if lifecycle.closing:
                raise ClientClosedError("the client shut down while waiting for an async result")
            polls += 1
            poll_error: SageMakerRuntimeError | None = None
            for is_output, bucket, key in targets:
                try:
                    exists = await self._exists(bucket, key, deadline)
                except DeadlineExceededError as exc:
                    timed_out = AsyncInferenceTimeout(
                        timeout, output_location=result.output_location
                    )
                    raise timed_out from (last_error or exc)
                except (TransportError, S3Error) as exc:
                    if isinstance(exc, S3Error) and exc.status_code not in TRANSIENT:
                        raise  # 403 and the like: at once, not as "not ready yet"
                    if isinstance(exc, TransportError) and not exc.retryable:
                        raise  # an untrusted certificate, a refused proxy: polling cannot help
                    # Failed even after the pipeline's retries (a 5xx, SlowDown, no connection).
                    logger.debug("S3 poll failed (%s)", type(exc).__name__)
                    poll_error = exc
                    continue
                if exists:
                    logger.debug(
                        "async result found after %d poll(s): s3://%s/%s", polls, bucket, key
                    )
                    return _Found(is_output, bucket, key)
            if poll_error is not None:
                failed += 1
                last_error = poll_error
                if failed >= _MAX_FAILED_POLLS:
                    raise poll_error
            else:
                failed = 0
                last_error = None
            remaining = deadline - lifecycle.clock()
            if remaining <= 0:
                timed_out = AsyncInferenceTimeout(timeout, output_location=result.output_location)
                if last_error is not None:
                    raise timed_out from last_error
                raise timed_out
            # Full jitter around a growing interval: many waiters do not poll in lockstep.
            wait = min(remaining, self._rand.uniform(interval / 2, interval))
            interval = min(interval * 1.5, max(poll_interval, DEFAULT_POLL_MAX_INTERVAL))
            if await lifecycle.sleep_unless_closing(wait):
                raise ClientClosedError("the client shut down while waiting for an async result")

    async def _exists(self, bucket: str, key: str, deadline: float) -> bool:
        try:
            await self._request("HEAD", bucket, key, b"", {}, deadline)
        except S3Error as exc:
            if exc.status_code in MISSING:
                return False
            raise
        return True

    async def _get(self, found: _Found, deadline: float) -> AsyncIterator[bytes]:
        """The found object's bytes in chunks; a failure object raises instead.

        The GET must start before the deadline; its body then flows with ``sock_read`` between
        chunks, so a large output is not cut off halfway by the wait's timeout.
        """
        response = await self._request(
            "GET", found.bucket, found.key, b"", {}, deadline, stream=True
        )
        stream = response.stream
        assert stream is not None
        # The client's read watchdog keeps sock_read for the body (see _watchdog): what is read
        # counts as consumed, and the watch ends with the body.
        watch = response.watch
        lifecycle = self._pipeline.lifecycle
        body = _Body(stream)
        lifecycle.add_resource(body, immediate=True)
        try:
            if not found.output:
                text = bytearray()
                while len(text) < _MAX_FAILURE_TEXT and (chunk := await read_chunk(stream)):
                    if watch is not None:
                        watch.consumed += len(chunk)
                    text += chunk
                raise AsyncInferenceFailure(
                    text[:_MAX_FAILURE_TEXT].decode("utf-8", "replace"),
                    failure_location=f"s3://{found.bucket}/{found.key}",
                )
            while True:
                try:
                    chunk = await read_chunk(stream)
                except TransportError as exc:
                    if lifecycle.closing:
                        raise ClientClosedError(
                            "the client shut down while reading an async result"
                        ) from exc
                    raise
                if not chunk:
                    break
                if watch is not None:
                    watch.consumed += len(chunk)
                yield chunk
        finally:
            if watch is not None:
                watch.close()
            lifecycle.discard_resource(body)
            stream.close()

    # -- one S3 request ---------------------------------------------------------------------

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
        """One S3 request through the pipeline: retried there as the S3 target's rules allow;
        a non-2xx answer raises ``S3Error``."""
        url = self._s3_endpoint.object_url(bucket, key)
        digest = payload_sha256(body)
        headers["x-amz-content-sha256"] = digest
        wire = WireRequest(
            operation=_S3_OPERATIONS[method],
            endpoint_name=bucket,
            path="",
            headers=headers,
            body=body,
            payload_hash=digest,
            method=method,
            url=url,
        )
        return await self._pipeline.call(
            wire, _response, stream=stream, target=self._target, deadline=deadline
        )


def _deadline(timeout: float, clock: Callable[[], float]) -> float:
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise ParamValidationError("timeout", "must be a positive number of seconds")
    return clock() + timeout
