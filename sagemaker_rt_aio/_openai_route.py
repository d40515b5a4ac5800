"""The OpenAI-compatible route: ``POST /endpoints/{name}/openai/v1/chat/completions``.

The service passes the request body to the container and its answer back as it is (JSON, or
server-sent events when the body asks for ``"stream": true``). It authenticates a bearer token
(``_bearer``) instead of a SigV4 signature; everything else about a call (slots, deadline,
middlewares, retries of "not now" answers) is the same pipeline as the other operations, which
this module feeds a ``WireRequest`` and an ``auth`` hook.

Inference components are addressed with the ``X-Amzn-SageMaker-Inference-Component`` header, as on
InvokeEndpoint: AWS documents the route as available "on all endpoints and inference
components using standard SageMaker AI APIs", routed by the endpoint name in the URL.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import _model as m
from ._constants import CHAT_COMPLETIONS_PATH, OPENAI_ROUTE_PREFIX
from ._errors import ParamValidationError
from ._protocol import WireRequest
from ._signing import payload_sha256
from ._stream import ResponseStream
from ._transport import HttpResponse
from ._types import ResponseMetadata
from ._validation import body_bytes, check_endpoint_name, header_value

# The members the route carries as headers (the local runtime binds its Invocation from them; the
# client sets Content-Type and Accept itself).
CHAT_COMPLETIONS = m.Operation(
    "ChatCompletions",
    CHAT_COMPLETIONS_PATH,
    (m.CONTENT_TYPE, m.ACCEPT, m.CUSTOM_ATTRIBUTES, m.INFERENCE_COMPONENT),
    200,
    True,
    None,
)

JSON_TYPE = "application/json"
EVENT_STREAM_TYPE = "text/event-stream"


def base_url(endpoint_url: str, endpoint_name: str) -> str:
    name = check_endpoint_name(endpoint_name)
    return f"{endpoint_url.rstrip('/')}/endpoints/{name}{OPENAI_ROUTE_PREFIX}"


def chat_request(
    endpoint_name: str,
    body: object,
    *,
    stream: bool,
    inference_component_name: str | None,
    max_body_bytes: int,
) -> WireRequest:
    """Validate a chat-completions call and lay it out for the wire (nothing is sent)."""
    name = check_endpoint_name(endpoint_name)
    if isinstance(body, Mapping):
        document = dict(body)
        if stream:
            document["stream"] = True  # the stream call always asks the container to stream
        try:
            raw = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()
        except (TypeError, ValueError) as exc:
            raise ParamValidationError("body", f"cannot be serialized as JSON: {exc}") from None
        if len(raw) > max_body_bytes:
            raise ParamValidationError(
                "body", f"is {len(raw)} bytes, more than the limit of {max_body_bytes} bytes"
            )
    elif body is None:
        raise ParamValidationError("body", "is required")
    else:
        raw = body_bytes(body, "body", max_body_bytes)
    headers = {
        "Content-Type": JSON_TYPE,
        "Accept": EVENT_STREAM_TYPE if stream else JSON_TYPE,
    }
    if inference_component_name is not None:
        member = m.INFERENCE_COMPONENT
        headers[member.header] = header_value(member, inference_component_name)
    return WireRequest(
        operation=CHAT_COMPLETIONS,
        endpoint_name=name,
        path=f"/endpoints/{name}{CHAT_COMPLETIONS_PATH}",
        headers=headers,
        body=raw,
        payload_hash=payload_sha256(raw),
    )


@dataclass
class ChatCompletionsResult:
    """The container's answer, as the route returned it."""

    body: bytes = field(repr=False)
    content_type: str | None
    response_metadata: ResponseMetadata

    def json(self) -> Any:
        return json.loads(self.body)


def parse_chat_result(response: HttpResponse, retries: int) -> ChatCompletionsResult:
    metadata = ResponseMetadata.from_http(response.status, response.headers, retries)
    return ChatCompletionsResult(
        body=response.body,
        content_type=metadata.http_headers.get("content-type"),
        response_metadata=metadata,
    )


class ChatCompletionsStream(ResponseStream):
    """The route's streamed answer: the body's bytes as the container sent them (no event-stream
    framing), with ``iter_events()``, ``iter_json()``, ``iter_text()`` and ``iter_lines()``."""

    @property
    def content_type(self) -> str | None:  # type: ignore[override]  # the mixin's, read-only here
        """The body's content type, as the container sent it (``Content-Type``)."""
        return self._response.headers.get("Content-Type")

    def __repr__(self) -> str:
        return (
            f"<ChatCompletionsStream content_type={self.content_type!r} "
            f"request_id={self.response_metadata.request_id!r}>"
        )

    # Its body is the container's own bytes: each chunk is a part (ResponseStream._read).
    _event_stream = False


def open_chat_stream(response: HttpResponse, retries: int) -> ChatCompletionsStream:
    assert response.stream is not None
    return ChatCompletionsStream(response.stream, watch=response.watch, retries=retries)
