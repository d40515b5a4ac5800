"""InvokeEndpoint and InvokeEndpointWithResponseStream (protocol reference, 3.1 and 3.3).

InvokeEndpoint runs the handler within ``model_timeout`` and answers the whole body at once; a
handler that streams has its chunks joined. The streaming operation calls the handler and waits for
its first chunk before answering: a handler that fails or times out before producing anything gets
the HTTP-level ``ModelError`` (424), as a container that answered an error status would. Once the
200 and its headers are out, every chunk becomes a ``PayloadPart`` event as soon as the handler
yields it; a failure becomes a ``ModelStreamError`` exception event (``StreamBroken``, or
``ModelInvocationTimeExceeded`` when the whole stream takes longer than ``model_timeout``) that ends
the stream.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace

from aiohttp import web

from .._stream_events import encode_payload_part
from ._faults import stall
from ._frontend import INVOKE_ENDPOINT, INVOKE_ENDPOINT_STREAM, Call, accept_call, reset
from ._invocation import (
    BodyTooLarge,
    ModelOutput,
    ModelTimeout,
    aclose,
    call_handler,
    next_chunk,
    within,
)
from ._service_errors import (
    describe_failure,
    injected_break_event,
    stream_broken_event,
    timeout_event,
    validation_error,
)

DEFAULT_CONTENT_TYPE = "application/octet-stream"
EVENTSTREAM_CONTENT_TYPE = "application/vnd.amazon.eventstream"
NEW_SESSION = "NEW_SESSION"
NEW_SESSION_HEADER = "X-Amzn-SageMaker-New-Session-Id"


async def invoke_endpoint(request: web.Request) -> web.StreamResponse:
    call = await accept_call(request, INVOKE_ENDPOINT)
    if not isinstance(call, Call):
        return call
    state, invocation, request_id = call.state, call.invocation, call.request_id
    headers: dict[str, str] = {}
    session_id = invocation.session_id
    if session_id == NEW_SESSION:
        new_id, expires = state.new_session(invocation.endpoint_name)
        invocation = replace(invocation, new_session_id=new_id)
        headers[NEW_SESSION_HEADER] = f"{new_id}; Expires={expires}"
    elif session_id is not None and not state.session_valid(session_id, invocation.endpoint_name):
        return _unknown_session(session_id, request_id)
    state.invocation_log.append(invocation)

    limit = state.config.max_body_bytes

    async def run() -> tuple[ModelOutput, bytes]:
        output = await call_handler(call.endpoint.handler, invocation)
        return output, await output.read_all(limit)

    try:
        output, body = await within(run(), state.config.model_timeout)
    except BodyTooLarge:
        return call.errors.response_too_large(request_id, limit)
    except Exception as exc:  # the model failed or timed out
        return call.errors.failure(request_id, exc)

    chosen = output.headers.get(NEW_SESSION_HEADER)  # a container that names its sessions
    if invocation.new_session_id is not None and chosen:
        state.rename_session(invocation.new_session_id, chosen.split(";")[0].strip())
        invocation = replace(invocation, new_session_id=chosen.split(";")[0].strip())
    if output.close_session and session_id is not None:
        closed = invocation.new_session_id or session_id
        state.close_session(closed)
        headers["X-Amzn-SageMaker-Closed-Session-Id"] = closed
    headers.update(_common_headers(call, output))
    headers["Content-Type"] = (
        output.content_type or call.endpoint.content_type or DEFAULT_CONTENT_TYPE
    )
    return web.Response(status=200, body=body, headers=headers)


async def invoke_endpoint_with_response_stream(request: web.Request) -> web.StreamResponse:
    call = await accept_call(request, INVOKE_ENDPOINT_STREAM)
    if not isinstance(call, Call):
        return call
    state, invocation, request_id = call.state, call.invocation, call.request_id
    session_id = invocation.session_id
    if session_id is not None and (
        session_id == NEW_SESSION or not state.session_valid(session_id, invocation.endpoint_name)
    ):
        return _unknown_session(session_id, request_id)
    state.invocation_log.append(invocation)

    loop = asyncio.get_running_loop()
    deadline = loop.time() + state.config.model_timeout
    try:
        output = await within(
            call_handler(call.endpoint.handler, invocation), deadline - loop.time()
        )
    except Exception as exc:
        return call.errors.failure(request_id, exc)
    stream = output.stream if output.stream is not None else _single(output.body or b"")
    try:
        try:
            chunk = await within(next_chunk(stream), deadline - loop.time())
        except Exception as exc:  # nothing sent yet: an HTTP-level ModelError
            return call.errors.failure(request_id, exc)

        response = web.StreamResponse(status=200)
        response.headers.update(_common_headers(call, output))
        response.headers["Content-Type"] = EVENTSTREAM_CONTENT_TYPE
        response.headers["X-Amzn-SageMaker-Content-Type"] = (
            output.content_type or call.endpoint.content_type or DEFAULT_CONTENT_TYPE
        )
        plan = call.faults.stream
        sent = 0
        try:
            await response.prepare(request)
            if plan.first_part_delay:
                await state.faults.sleep(plan.first_part_delay)
            while chunk is not None:
                if plan.stall_after == sent:
                    try:  # an injected stall counts against the model timeout like a slow model
                        await within(
                            stall(state.faults.sleep, plan.stall_seconds), deadline - loop.time()
                        )
                    except ModelTimeout:
                        await response.write(timeout_event())
                        break
                if plan.broken is not None and plan.broken.after_parts == sent:
                    if plan.broken.how == "reset":
                        reset(request)
                        return response
                    await response.write(injected_break_event(plan.broken))
                    break
                await response.write(encode_payload_part(chunk))
                sent += 1
                try:
                    chunk = await within(next_chunk(stream), deadline - loop.time())
                except ModelTimeout:
                    await response.write(timeout_event())
                    break
                except Exception as exc:
                    await response.write(stream_broken_event(describe_failure(exc)[1]))
                    break
            await response.write_eof()
        except ConnectionError:
            pass  # the client went away; nothing more to send
        return response
    finally:
        await aclose(stream)


def _common_headers(call: Call, output: ModelOutput) -> dict[str, str]:
    headers = {
        "x-amzn-RequestId": call.request_id,
        "x-Amzn-Invoked-Production-Variant": (
            output.invoked_production_variant or call.endpoint.variant
        ),
    }
    if output.custom_attributes is not None:
        headers["X-Amzn-SageMaker-Custom-Attributes"] = output.custom_attributes
    headers.update(output.headers)
    return headers


def _unknown_session(session_id: str, request_id: str) -> web.Response:
    return validation_error(
        f"Session id {session_id} does not exist, has expired or cannot be used here.", request_id
    )


async def _single(body: bytes) -> AsyncIterator[bytes]:
    yield body
