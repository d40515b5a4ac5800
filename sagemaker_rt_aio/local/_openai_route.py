"""The OpenAI-compatible route: ``POST /endpoints/{name}/openai/v1/chat/completions``.

The request reaches the endpoint's ordinary handler, whose ``invocation.path`` is
``/openai/v1/chat/completions``; its answer goes back as it is, as the service relays the
container's: a whole body at once, or, for a handler that streams, each chunk as it is yielded
(server-sent events, typically) with no event-stream framing. A failure before the first chunk
answers the service's ``ModelError`` (424); after it, the connection is dropped, which is all a
relayed HTTP body can say.

With credentials, the runtime wants ``Authorization: Bearer sagemaker-api-key-...`` (a SigV4
signature is accepted too) and refuses a missing, malformed, wrong or expired token with 403.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

from aiohttp import web

from .._constants import CHAT_COMPLETIONS_PATH
from ._bearer_verify import BEARER_AUTH_ERRORS, bearer_token_of, verify_bearer_token
from ._frontend import CHAT_COMPLETIONS, STATE_KEY, Call, accept_call
from ._http import check_signature
from ._invocation import aclose, call_handler, next_chunk, within
from ._invoke import _common_headers
from ._service_errors import CORAL_SERVICE_NAMESPACE, auth_error, error_response

ROUTE = f"/endpoints/{{name}}{CHAT_COMPLETIONS_PATH}"
JSON_CONTENT_TYPE = "application/json"
EVENT_STREAM_CONTENT_TYPE = "text/event-stream"


def _authenticate(request: web.Request, body: bytes, request_id: str) -> web.Response | None:
    state = request.app[STATE_KEY]
    credentials = state.credentials
    if credentials is None:
        return None
    authorization = request.headers.get("Authorization")
    token = bearer_token_of(authorization)
    if token is None and authorization is not None:
        failure = check_signature(state.verifier(), request, body, "sagemaker")
        return None if failure is None else auth_error(failure, request_id)
    failure = verify_bearer_token(token, credentials, state.config.region, clock=state.clock)
    if failure is None:
        return None
    status, code = BEARER_AUTH_ERRORS[failure.kind]
    return error_response(
        status, code, failure.message, request_id, namespace=CORAL_SERVICE_NAMESPACE
    )


async def chat_completions(request: web.Request) -> web.StreamResponse:
    call = await accept_call(request, CHAT_COMPLETIONS, _authenticate)
    if not isinstance(call, Call):
        return call
    state, request_id = call.state, call.request_id
    invocation = replace(call.invocation, path=CHAT_COMPLETIONS_PATH)
    state.invocation_log.append(invocation)

    loop = asyncio.get_running_loop()
    deadline = loop.time() + state.config.model_timeout
    try:
        output = await within(
            call_handler(call.endpoint.handler, invocation), deadline - loop.time()
        )
    except Exception as exc:
        return call.errors.failure(request_id, exc)
    headers = _common_headers(call, output)
    if output.stream is None:
        body = output.body or b""
        if len(body) > state.config.max_body_bytes:
            return call.errors.response_too_large(request_id, state.config.max_body_bytes)
        headers["Content-Type"] = (
            output.content_type or call.endpoint.content_type or JSON_CONTENT_TYPE
        )
        return web.Response(status=200, body=body, headers=headers)

    stream = output.stream
    try:
        try:
            chunk = await within(next_chunk(stream), deadline - loop.time())
        except Exception as exc:  # nothing sent yet: an HTTP-level ModelError
            return call.errors.failure(request_id, exc)
        headers["Content-Type"] = (
            output.content_type or call.endpoint.content_type or EVENT_STREAM_CONTENT_TYPE
        )
        response = web.StreamResponse(status=200, headers=headers)
        try:
            await response.prepare(request)
            while chunk is not None:
                await response.write(chunk)
                try:
                    chunk = await within(next_chunk(stream), deadline - loop.time())
                except Exception:
                    _drop(request)  # the client sees its stream cut short
                    return response
            await response.write_eof()
        except ConnectionError:
            pass  # the client went away
        return response
    finally:
        await aclose(stream)


def _drop(request: web.Request) -> None:
    transport = request.transport
    if transport is not None:
        transport.abort()
