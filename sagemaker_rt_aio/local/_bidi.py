"""InvokeEndpointWithBidirectionalStream in the local runtime (reference section 10).

A separate HTTP/2 listener (``_h2_server``) serves ``POST /endpoints/{name}/invocations-bidirectional-
stream``. With credentials, the request's SigV4 signature is checked (its payload hash must be
``STREAMING-AWS4-HMAC-SHA256-EVENTS``), then every event envelope's ``:chunk-signature``, chained
from it. The handler is an async generator::

    async def handler(invocation, inbound):
        async for part in inbound:          # BidirectionalPart
            yield part.bytes                # bytes, str or BidirectionalPart

Its first yield sends the 200 and the response headers: a ``ContainerError`` (or any exception)
before that answers 424 ``ModelError``, as the service does when the container fails; after it, a
``ModelStreamError`` exception event ends the stream. An inbound part is acknowledged to the client
(flow control) only when the handler takes it, so a slow handler is a slow reader.
"""

from __future__ import annotations

import json
import re
import ssl
from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from multidict import CIMultiDict

from .._bidi_events import BidirectionalPart, encode_part
from .._eventstream import encode_message
from .._signing import (
    STREAMING_EVENTS_PAYLOAD,
    FrozenCredentials,
    request_signature,
)
from .._stream_events import encode_exception
from ._bidi_inbound import BadEvent, Inbound
from ._faults import Sleep, StreamPlan, stall
from ._h2_server import H2Server, ServerStream, StreamGone
from ._http import new_request_id
from ._invocation import Invocation, ModelTimeout, within
from ._service_errors import (
    _AUTH_ERRORS,
    CORAL_SERVICE_NAMESPACE,
    SAGEMAKER_NAMESPACE,
    ModelErrorContext,
    describe_failure,
    injected_break_event,
    timeout_event,
)
from ._sigv4_verify import SignatureVerifier
from ._state import RuntimeState, valid_endpoint_name

# The caller's credentials never reach a handler (h2 header names are lower case).
_HIDDEN = frozenset({"authorization", "x-amz-security-token"})
OPERATION = "InvokeEndpointWithBidirectionalStream"
_PATH = re.compile(r"^/endpoints/([^/]+)/invocations-bidirectional-stream$")

BidiHandler = Callable[..., AsyncGenerator[Any, None]]


@dataclass(frozen=True)
class BidirectionalInvocation(Invocation):
    """What a bidirectional handler receives besides its inbound parts."""

    model_invocation_path: str | None = None
    model_query_string: str | None = None


@dataclass
class BidiEndpoint:
    name: str
    handler: BidiHandler
    variant: str = "AllTraffic"


class BidiFrontEnd:
    """Routes and runs bidirectional calls for a ``LocalRuntime``."""

    def __init__(self, state: RuntimeState) -> None:
        self.state = state
        self.endpoints: dict[str, BidiEndpoint] = {}

    async def serve(self, stream: ServerStream) -> None:
        request_id = new_request_id()
        headers = stream.headers
        match = _PATH.match(headers.get(":path", "").split("?", 1)[0])
        if headers.get(":method") != "POST" or match is None:
            await _error(stream, 404, "UnknownOperationException", "Unknown operation",
                         request_id, CORAL_SERVICE_NAMESPACE)  # fmt: skip
            return
        name = match.group(1)
        state = self.state
        credentials = None
        seed = None
        verifier = state.verifier()
        if verifier is not None:
            failure = _verify_request(verifier, headers)
            if failure is not None:
                status, code, message = failure
                await _error(stream, status, code, message, request_id, CORAL_SERVICE_NAMESPACE)
                return
            frozen = state.credentials.get_frozen_credentials()  # type: ignore[union-attr]
            credentials = FrozenCredentials(frozen.access_key, frozen.secret_key, frozen.token)
            seed = request_signature(headers["authorization"])
        if not valid_endpoint_name(name):
            await _error(stream, 400, "InputValidationError",
                         f"Value '{name}' at 'endpointName' failed to satisfy constraint",
                         request_id)  # fmt: skip
            return
        state.call_counts[name] += 1
        # The faults every operation takes (one mechanism, see _faults): before the model, then
        # the stream's own.
        decision = state.faults.decide(name, stream=True)
        if decision.latency:
            await state.faults.sleep(decision.latency)
        if decision.reset_connection:
            stream.reset()
            return
        if decision.error is not None:
            injected = decision.error
            await _error(stream, injected.http_status, injected.code, injected.text, request_id,
                         fields=injected.fields)  # fmt: skip
            return
        endpoint = self.endpoints.get(name)
        if endpoint is None:
            await _error(stream, 400, "InputValidationError",
                         f"Endpoint {name} of account {state.config.account_id} not found.",
                         request_id)  # fmt: skip
            return
        if decision.cold_start_remaining is not None:
            await _error(stream, 429, "ModelNotReadyException",
                         f"Model for endpoint {name} is not ready yet (loading, about "
                         f"{decision.cold_start_remaining:.1f} s left). Retry the request later.",
                         request_id)  # fmt: skip
            return
        invocation = BidirectionalInvocation(
            endpoint_name=name,
            body=b"",
            target_variant=headers.get("x-amzn-sagemaker-target-variant"),
            headers=CIMultiDict(
                {k: v for k, v in headers.items() if not k.startswith(":") and k not in _HIDDEN}
            ),
            operation=OPERATION,
            request_id=request_id,
            model_invocation_path=headers.get("x-amzn-sagemaker-model-invocation-path"),
            model_query_string=headers.get("x-amzn-sagemaker-model-query-string"),
        )
        state.invocation_log.append(invocation)
        inbound = Inbound(stream, credentials, seed, state.config.region)
        await _run(stream, endpoint, invocation, inbound, request_id,
                   ModelErrorContext(state.config.region, state.config.account_id, name),
                   _Faults(decision.stream, state.faults.sleep,
                           state.config.model_timeout))  # fmt: skip


@dataclass(frozen=True)
class _Faults:
    """A stream's injected faults, and what they wait with."""

    plan: StreamPlan
    sleep: Sleep
    model_timeout: float


async def _run(
    stream: ServerStream,
    endpoint: BidiEndpoint,
    invocation: BidirectionalInvocation,
    inbound: Inbound,
    request_id: str,
    errors: ModelErrorContext,
    faults: _Faults,
) -> None:
    generator = endpoint.handler(invocation, inbound)
    plan = faults.plan
    started = False
    sent = 0

    async def start() -> None:
        nonlocal started
        if not started:
            started = True
            await stream.respond(200, _ok_headers(endpoint, request_id))

    async def injected_end() -> bool:
        """Stall or break the stream once ``sent`` parts are out (at once, not at the handler's
        next yield: a bidirectional handler may wait for input the client holds back)."""
        if plan.stall_after == sent:
            try:
                await within(stall(faults.sleep, plan.stall_seconds), faults.model_timeout)
            except ModelTimeout:
                await start()
                await stream.send_data(timeout_event(), end=True)
                return True
        broken = plan.broken
        if broken is not None and broken.after_parts == sent:
            await start()
            if broken.how == "reset":
                stream.reset()
            else:
                await stream.send_data(injected_break_event(broken), end=True)
            return True
        return False

    try:
        if await injected_end():
            return
        while True:
            try:
                item = await generator.__anext__()
            except StopAsyncIteration:
                break
            if inbound.error is not None:
                raise inbound.error
            if not started:
                await start()
                if plan.first_part_delay:
                    await faults.sleep(plan.first_part_delay)
            await stream.send_data(encode_part(_to_part(item)))
            sent += 1
            if await injected_end():
                return
        if inbound.error is not None:
            raise inbound.error
        if not started:
            await stream.respond(200, _ok_headers(endpoint, request_id), end=True)
        else:
            await stream.send_data(b"", end=True)
    except StreamGone:
        raise
    except BadEvent as bad:
        await _fail_stream(stream, started, bad.code, bad.message, request_id)
    except Exception as exc:
        if inbound.error is not None:
            await _fail_stream(stream, started, inbound.error.code, inbound.error.message,
                               request_id)  # fmt: skip
        elif not started:
            original_status, original_message = describe_failure(exc)
            text = errors.container_error_text(original_status, original_message)
            await _error(stream, 424, "ModelError", text, request_id, fields={
                "OriginalStatusCode": original_status,
                "OriginalMessage": original_message,
                "LogStreamArn": errors.log_stream_arn,
                "ErrorCode": "ModelError",
            })  # fmt: skip
        else:
            _, original_message = describe_failure(exc)
            event = encode_exception("ModelStreamError", original_message or type(exc).__name__,
                                     error_code="StreamBroken")  # fmt: skip
            await stream.send_data(event, end=True)
    finally:
        await generator.aclose()


async def _fail_stream(
    stream: ServerStream, started: bool, code: str, message: str, request_id: str
) -> None:
    if not started:
        status = 403 if code == "InvalidSignatureException" else 400
        await _error(stream, status, code, message, request_id, CORAL_SERVICE_NAMESPACE)
    else:
        headers = {
            ":exception-type": code,
            ":content-type": "application/json",
            ":message-type": "exception",
        }
        await stream.send_data(
            encode_message(headers, json.dumps({"Message": message}).encode()), end=True
        )


def _ok_headers(endpoint: BidiEndpoint, request_id: str) -> dict[str, str]:
    return {
        "content-type": "application/vnd.amazon.eventstream",
        "x-amzn-requestid": request_id,
        "x-amzn-invoked-production-variant": endpoint.variant,
    }


def _to_part(item: object) -> BidirectionalPart:
    if isinstance(item, BidirectionalPart):
        return item
    if isinstance(item, str):
        return BidirectionalPart(item.encode(), "UTF8")
    if isinstance(item, bytes | bytearray | memoryview):
        return BidirectionalPart(bytes(item))
    raise TypeError(f"a bidirectional handler yields bytes, str or BidirectionalPart, not {item!r}")


async def _error(
    stream: ServerStream,
    status: int,
    code: str,
    message: str,
    request_id: str,
    namespace: str = SAGEMAKER_NAMESPACE,
    *,
    fields: Mapping[str, Any] | None = None,
) -> None:
    doc: dict[str, Any] = {"message": message, "Message": message, **(fields or {})}
    body = json.dumps(doc).encode()
    await stream.respond(
        status,
        {
            "content-type": "application/json",
            "x-amzn-requestid": request_id,
            "x-amzn-errortype": f"{code}:{namespace}",
        },
    )
    await stream.send_data(body, end=True)


def _verify_request(
    verifier: SignatureVerifier, headers: dict[str, str]
) -> tuple[int, str, str] | None:
    """(status, code, message) of a bad request signature, else None."""
    if headers.get("x-amz-content-sha256") != STREAMING_EVENTS_PAYLOAD:
        return 403, "InvalidSignatureException", (
            f"x-amz-content-sha256 must be {STREAMING_EVENTS_PAYLOAD} for an event stream input"
        )  # fmt: skip
    fields = CIMultiDict({k: v for k, v in headers.items() if not k.startswith(":")})
    fields["host"] = headers.get(":authority", fields.get("host", ""))
    failure = verifier.verify(
        method="POST",
        raw_path=headers.get(":path", ""),
        headers=fields,
        body=b"",
        service="sagemaker",
        get_all=lambda name: fields.getall(name, []),
    )
    if failure is None:
        return None
    status, code = _AUTH_ERRORS[failure.kind]
    return status, code, failure.message


class BidiListener:
    """The runtime's HTTP/2 listener; started with the runtime when ``h2`` is installed."""

    def __init__(self, state: RuntimeState, window: int) -> None:
        self.front_end = BidiFrontEnd(state)
        self._window = window
        self._server: H2Server | None = None
        self._port: int | None = None
        self._missing: ImportError | None = None

    async def start(self, host: str, ssl_context: ssl.SSLContext | None) -> None:
        if self._server is not None:
            return
        try:
            server = H2Server(self.front_end.serve, ssl_context=ssl_context, window=self._window)
        except ImportError as exc:
            # The rest of the runtime works without the 'bidi' extra; only this URL needs it.
            self._missing = exc
            return
        self._port = await server.start(host, 0)
        self._server = server

    async def stop(self) -> None:
        server, self._server = self._server, None
        self._port = None
        if server is not None:
            await server.stop()

    @property
    def port(self) -> int:
        if self._missing is not None:
            raise self._missing
        if self._port is None:
            raise RuntimeError("the local runtime is not started")
        return self._port
