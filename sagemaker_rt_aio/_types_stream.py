"""The response-stream operation's request and events, loaded with the first stream (``_types``
hands them out)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ._types import Body, _body_len, _WeakReferenceable


@dataclass(eq=False, slots=True)
class InvokeEndpointWithResponseStreamRequest(_WeakReferenceable):
    """InvokeEndpointWithResponseStream's input (no target_model or enable_explanations members)."""

    endpoint_name: str
    body: Body
    content_type: str | None = None
    accept: str | None = None
    custom_attributes: str | None = field(default=None, repr=False)
    target_variant: str | None = None
    target_container_hostname: str | None = None
    inference_id: str | None = None
    inference_component_name: str | None = None
    session_id: str | None = None
    prefix_aware_id: str | None = None

    def __repr__(self) -> str:
        return (
            f"InvokeEndpointWithResponseStreamRequest(endpoint_name={self.endpoint_name!r}, "
            f"body=<{_body_len(self.body)} bytes>, content_type={self.content_type!r})"
        )


@dataclass(frozen=True, slots=True)
class PayloadPart:
    """One ``PayloadPart`` event of a response stream: a chunk of the model's output."""

    bytes: bytes
