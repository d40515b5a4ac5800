"""InvokeEndpointAsync (protocol reference, 3.2): accept with 202, run the model in the background.

The input is the inline body (at most 128000 bytes) or the object at ``InputLocation`` in the
runtime's store. The job runs the handler in a task the runtime tracks (``stop()`` cancels and
awaits it) and writes the output to ``<output path>/[<S3OutputPathExtension>/]<id>.out`` (or the
``Filename``), or the error text to ``<failure path>/[<extension>/]<id>-error.out``. The 202 answer
names both locations; ``async_delay`` holds the result back for that many seconds.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from dataclasses import replace

from aiohttp import web

from ._faults import AsyncPlan
from ._frontend import INVOKE_ENDPOINT_ASYNC, Call, accept_call
from ._invocation import Invocation, ModelOutput, call_handler, within
from ._s3 import parse_s3_location, s3_uri
from ._service_errors import ModelErrorContext, describe_failure, validation_error
from ._state import Endpoint, RuntimeState, join_key

logger = logging.getLogger(__name__)

INVOCATION_TIMEOUT_RANGE = (1, 3600)


async def invoke_endpoint_async(request: web.Request) -> web.StreamResponse:
    call = await accept_call(request, INVOKE_ENDPOINT_ASYNC)
    if not isinstance(call, Call):
        return call
    state, invocation, request_id = call.state, call.invocation, call.request_id
    headers = request.headers
    input_location = headers.get("X-Amzn-SageMaker-InputLocation")
    body = invocation.body
    limit = state.config.max_async_body_bytes
    if input_location and body:
        return validation_error("Only one of InputLocation and Body may be specified.", request_id)
    if not input_location and not body:
        return validation_error("Either InputLocation or Body must be specified.", request_id)
    if len(body) > limit:
        return validation_error(
            "1 validation error detected: Value at 'body' failed to satisfy constraint: Member "
            f"must have length less than or equal to {limit}",
            request_id,
        )
    if input_location:
        try:
            parse_s3_location(input_location)
        except ValueError:
            return validation_error(
                f"1 validation error detected: Value '{input_location}' at 'inputLocation' failed "
                "to satisfy constraint: Member must satisfy regular expression pattern: "
                "^(https|s3)://([^/]+)/?(.*)$",
                request_id,
            )
    timeout = state.config.model_timeout
    timeout_header = headers.get("X-Amzn-SageMaker-InvocationTimeoutSeconds")
    if timeout_header is not None:
        low, high = INVOCATION_TIMEOUT_RANGE
        if not timeout_header.isdigit() or not low <= int(timeout_header) <= high:
            return validation_error(
                f"InvocationTimeoutSeconds must be an integer from {low} to {high}.", request_id
            )
        timeout = float(timeout_header)

    inference_id = invocation.inference_id or str(uuid.uuid4())
    invocation = replace(invocation, inference_id=inference_id, input_location=input_location)
    extension = headers.get("X-Amzn-SageMaker-S3OutputPathExtension", "")
    filename = headers.get("X-Amzn-SageMaker-Filename") or f"{inference_id}.out"
    out_bucket, out_prefix = state.output_base(call.endpoint)
    fail_bucket, fail_prefix = state.failure_base(call.endpoint)
    output = (out_bucket, join_key(out_prefix, extension, filename))
    failure = (fail_bucket, join_key(fail_prefix, extension, f"{inference_id}-error.out"))

    job = _Job(state, call.endpoint, invocation, output, failure, timeout, call.errors)
    job.plan = call.faults.async_job
    task = asyncio.get_running_loop().create_task(job.run(), name=f"async-inference-{inference_id}")
    state.tasks.add(task)
    task.add_done_callback(state.tasks.discard)

    return web.Response(
        status=202,
        body=json.dumps({"InferenceId": inference_id}).encode(),
        content_type="application/json",
        headers={
            "x-amzn-RequestId": request_id,
            "X-Amzn-SageMaker-OutputLocation": s3_uri(*output),
            "X-Amzn-SageMaker-FailureLocation": s3_uri(*failure),
        },
    )


class _Job:
    def __init__(
        self,
        state: RuntimeState,
        endpoint: Endpoint,
        invocation: Invocation,
        output: tuple[str, str],
        failure: tuple[str, str],
        timeout: float,
        errors: ModelErrorContext,
    ) -> None:
        self.state = state
        self.endpoint = endpoint
        self.invocation = invocation
        self.output = output
        self.failure = failure
        self.timeout = timeout
        self.errors = errors
        self.plan = AsyncPlan()

    async def run(self) -> None:
        try:
            await self._run()
        except Exception:  # a bug here must not vanish into an unretrieved task exception
            logger.exception("async inference %s failed", self.invocation.inference_id)

    async def _run(self) -> None:
        invocation = self.invocation
        store = self.state.store
        if invocation.input_location:
            bucket, key = parse_s3_location(invocation.input_location)
            stored = store.get(bucket, key)
            if stored is None:
                await self._delay()
                store.put(
                    *self.failure,
                    f"Failed to download input from {invocation.input_location}: NoSuchKey: The "
                    "specified key does not exist.".encode(),
                    content_type="text/plain",
                )
                return
            invocation = replace(invocation, body=stored.data)
        if self.plan.failure is not None:  # an injected failure: the model is not called
            await self._delay()
            store.put(*self.failure, self.plan.failure.encode(), content_type="text/plain")
            return
        self.state.invocation_log.append(invocation)

        async def produce() -> tuple[ModelOutput, bytes]:
            output = await call_handler(self.endpoint.handler, invocation)
            return output, await output.read_all(self.state.config.max_object_bytes)

        failure_text: str | None = None
        try:
            output, body = await within(produce(), self.timeout)
        except Exception as exc:  # the model failed or timed out
            failure_text = self.errors.container_error_text(*describe_failure(exc))
        await self._delay()
        if failure_text is not None:
            store.put(*self.failure, failure_text.encode(), content_type="text/plain")
        else:
            content_type = output.content_type or self.endpoint.content_type or invocation.accept
            store.put(*self.output, body, content_type=content_type)

    async def _delay(self) -> None:
        delay = self.state.config.async_delay + self.plan.delay
        if delay > 0:
            await self.state.faults.sleep(delay)
