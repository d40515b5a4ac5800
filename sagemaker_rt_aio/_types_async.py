"""InvokeEndpointAsync's request and result, loaded on first use (``_types`` hands them out)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ._types import Body, ResponseMetadata, _body_len, _WeakReferenceable


@dataclass(eq=False, slots=True)
class InvokeEndpointAsyncRequest(_WeakReferenceable):
    """InvokeEndpointAsync's input: exactly one of ``input_location`` and ``body``."""

    endpoint_name: str
    input_location: str | None = None
    body: Body | None = None
    content_type: str | None = None
    accept: str | None = None
    custom_attributes: str | None = field(default=None, repr=False)
    inference_id: str | None = None
    request_ttl_seconds: int | None = None
    invocation_timeout_seconds: int | None = None
    s3_output_path_extension: str | None = None
    filename: str | None = None

    def __repr__(self) -> str:
        body = "None" if self.body is None else f"<{_body_len(self.body)} bytes>"
        return (
            f"InvokeEndpointAsyncRequest(endpoint_name={self.endpoint_name!r}, "
            f"input_location={self.input_location!r}, body={body})"
        )


@dataclass
class InvokeEndpointAsyncResult:
    inference_id: str | None
    output_location: str | None
    failure_location: str | None
    response_metadata: ResponseMetadata
