"""What every SageMaker operation does before the model runs, and the application's routes.

For each ``POST /endpoints/{name}/...``: read the body within the size limit, check the signature
(when the runtime has credentials), validate the endpoint name, take the call's fault decision,
find the endpoint, and build the :class:`Invocation` from the headers where the operation carries
them (protocol reference, table 3.4).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from .. import _model
from .._openai_route import CHAT_COMPLETIONS as CHAT_COMPLETIONS_OPERATION
from ._faults import FaultDecision
from ._http import check_signature, new_request_id, precheck_signature, read_body
from ._invocation import BodyTooLarge, Invocation
from ._service_errors import (
    ModelErrorContext,
    auth_error,
    error_response,
    retry_after_headers,
    validation_error,
)
from ._state import ENDPOINT_NAME_PATTERN, Endpoint, RuntimeState, valid_endpoint_name

STATE_KEY = web.AppKey("sagemaker_rt_aio_local_state", RuntimeState)

INVOKE_ENDPOINT = "InvokeEndpoint"
INVOKE_ENDPOINT_ASYNC = "InvokeEndpointAsync"
INVOKE_ENDPOINT_STREAM = "InvokeEndpointWithResponseStream"
CHAT_COMPLETIONS = "ChatCompletions"  # the OpenAI-compatible route

# The operation's description in the client's model: its header names are read from there, so a
# member added to the model reaches the emulator's Invocation without a second list.
_OPERATIONS = {
    INVOKE_ENDPOINT: _model.INVOKE_ENDPOINT,
    INVOKE_ENDPOINT_STREAM: _model.INVOKE_ENDPOINT_WITH_RESPONSE_STREAM,
    INVOKE_ENDPOINT_ASYNC: _model.INVOKE_ENDPOINT_ASYNC,
    CHAT_COMPLETIONS: CHAT_COMPLETIONS_OPERATION,
}
_INVOCATION_FIELDS = frozenset(f.name for f in dataclasses.fields(Invocation))


@dataclass
class Call:
    """A request that passed the common checks and is addressed to a registered endpoint."""

    request: web.Request
    state: RuntimeState
    endpoint: Endpoint
    invocation: Invocation
    errors: ModelErrorContext
    #: What the injected faults do to this call at its later stages (stream, async job).
    faults: FaultDecision = field(default_factory=FaultDecision)

    @property
    def request_id(self) -> str:
        return self.invocation.request_id


Authenticate = Callable[[web.Request, bytes, str], "web.Response | None"]


async def accept_call(
    request: web.Request, operation: str, authenticate: Authenticate | None = None
) -> Call | web.StreamResponse:
    """The :class:`Call`, or the response that ends the request here (an error, a reset).

    ``authenticate(request, body, request_id)`` replaces the SigV4 check (the OpenAI route's
    bearer tokens): it returns the refusal, or None."""
    state = request.app[STATE_KEY]
    request_id = new_request_id()
    name = request.match_info["name"]
    # SigV4 routes refuse a bad signature before buffering the body (a bearer route checks after).
    failure = None if authenticate else precheck_signature(state.verifier(), request, "sagemaker")
    if failure is not None:
        return auth_error(failure, request_id)
    try:
        body = await read_body(request, state.config.max_body_bytes)
    except BodyTooLarge as exc:
        return validation_error(
            "1 validation error detected: Value at 'body' failed to satisfy constraint: Member "
            f"must have length less than or equal to {exc.limit}",
            request_id,
        )
    if authenticate is not None:
        refusal = authenticate(request, body, request_id)
        if refusal is not None:
            return refusal
    else:
        failure = check_signature(state.verifier(), request, body, "sagemaker")
        if failure is not None:
            return auth_error(failure, request_id)
    if not valid_endpoint_name(name):
        return validation_error(
            f"1 validation error detected: Value '{name}' at 'endpointName' failed to satisfy "
            "constraint: Member must satisfy regular expression pattern: "
            f"{ENDPOINT_NAME_PATTERN}",
            request_id,
        )

    state.call_counts[name] += 1
    # Synchronous: calls take their faults in arrival order.
    decision = state.faults.decide(
        name,
        stream=operation == INVOKE_ENDPOINT_STREAM,
        async_job=operation == INVOKE_ENDPOINT_ASYNC,
    )
    if decision.latency:
        await state.faults.sleep(decision.latency)
    if decision.reset_connection:
        return reset(request)
    if decision.error is not None:
        injected = decision.error
        return error_response(
            injected.http_status,
            injected.code,
            injected.text,
            request_id,
            fields=injected.fields,
            headers=retry_after_headers(injected.retry_after),
        )
    endpoint = state.endpoints.get(name)
    if endpoint is None:
        return validation_error(
            f"Endpoint {name} of account {state.config.account_id} not found.", request_id
        )
    if endpoint.in_service is not None and not await endpoint.in_service():
        return validation_error(
            f"Endpoint {name} of account {state.config.account_id} is not in service: its "
            "container has not answered the health check (GET /ping) yet.",
            request_id,
        )
    if decision.cold_start_remaining is not None:
        return error_response(
            429,
            "ModelNotReadyException",
            f"Model for endpoint {name} is not ready yet (loading, about "
            f"{decision.cold_start_remaining:.1f} s left). Retry the request later.",
            request_id,
        )
    return Call(
        request=request,
        state=state,
        endpoint=endpoint,
        invocation=build_invocation(request, operation, name, body, request_id),
        errors=ModelErrorContext(state.config.region, state.config.account_id, name),
        faults=decision,
    )


def build_invocation(
    request: web.Request, operation: str, name: str, body: bytes, request_id: str
) -> Invocation:
    headers = request.headers
    fields: dict[str, Any] = {
        member.attr: headers.get(member.header)
        for member in _OPERATIONS[operation].members
        if member.attr in _INVOCATION_FIELDS and not member.is_int
    }
    # The model's header; older clients sent the unhyphenated form.
    fields["inference_id"] = fields.get("inference_id") or headers.get(
        "X-Amzn-SageMaker-InferenceId"
    )
    fields.pop("input_location", None)  # set by the async path once the body is read from it
    return Invocation(
        endpoint_name=name,
        body=body,
        **fields,
        headers=visible_headers(headers),
        operation=operation,
        request_id=request_id,
    )


# The caller's credentials stop at the front door, as in the service: models never see them.
_HIDDEN_HEADERS = frozenset({"authorization", "x-amz-security-token"})


def visible_headers(headers: CIMultiDictProxy[str]) -> CIMultiDict[str]:
    """The request headers without the caller's signature, bearer token or session token."""
    return CIMultiDict((k, v) for k, v in headers.items() if k.lower() not in _HIDDEN_HEADERS)


def reset(request: web.Request) -> web.Response:
    """Drop the connection without answering (the request has been read in full)."""
    transport = request.transport
    if transport is not None:
        transport.close()
    return web.Response(status=500)  # never written: the transport is closed


async def unknown_operation(request: web.Request) -> web.Response:
    return error_response(
        404,
        "UnknownOperationException",
        f"No operation at {request.method} {request.path}",
        new_request_id(),
        namespace="http://internal.amazon.com/coral/com.amazon.coral.service/",
    )


Operation = Callable[[web.Request], Awaitable[web.StreamResponse]]


def add_routes(
    router: web.UrlDispatcher,
    *,
    invoke: Operation,
    invoke_async: Operation,
    invoke_stream: Operation,
) -> None:
    router.add_post("/endpoints/{name}/invocations", invoke)
    router.add_post("/endpoints/{name}/async-invocations", invoke_async)
    router.add_post("/endpoints/{name}/invocations-response-stream", invoke_stream)
