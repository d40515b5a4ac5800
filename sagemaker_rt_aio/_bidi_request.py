"""InvokeEndpointWithBidirectionalStream's request: its members, checked, and how they go on the
wire (reference section 10): the path, and headers whose values are given by the caller."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from ._errors import ParamValidationError
from ._signing import STREAMING_EVENTS_PAYLOAD

EVENT_STREAM_CONTENT_TYPE = "application/vnd.amazon.eventstream"
_ENDPOINT_NAME_MAX = 63
_INVOCATION_PATH_MAX = 100
_QUERY_STRING_MAX = 2048
_VARIANT_MAX = 63


@dataclass(frozen=True)
class BidiRequest:
    """The operation's input; checked when made, so bad input fails before anything is sent."""

    endpoint_name: str
    model_invocation_path: str | None = None
    model_query_string: str | None = None
    target_variant: str | None = None

    def __post_init__(self) -> None:
        name = self.endpoint_name
        if not isinstance(name, str) or not name:
            raise ParamValidationError("endpoint_name", "is required and must be a non-empty str")
        if len(name) > _ENDPOINT_NAME_MAX or not (name[0].isascii() and name[0].isalnum()):
            raise ParamValidationError(
                "endpoint_name", "must be at most 63 characters, starting with a letter or digit"
            )
        for field, value, limit in (
            ("model_invocation_path", self.model_invocation_path, _INVOCATION_PATH_MAX),
            ("model_query_string", self.model_query_string, _QUERY_STRING_MAX),
            ("target_variant", self.target_variant, _VARIANT_MAX),
        ):
            if value is None:
                continue
            if not isinstance(value, str) or not value:
                raise ParamValidationError(field, "must be a non-empty str")
            if len(value) > limit:
                raise ParamValidationError(field, f"must be at most {limit} characters")
            if not value.isprintable() or not value.isascii():
                raise ParamValidationError(field, "must be printable ASCII")
        path = self.model_invocation_path
        if path is not None and (
            path.startswith("/") or path.endswith("/") or "//" in path
            or any(not (c.isalnum() or c in "-._/") for c in path)
        ):  # fmt: skip
            raise ParamValidationError(
                "model_invocation_path", "must be segments of [A-Za-z0-9-._] joined by '/'"
            )

    def path(self) -> str:
        return f"/endpoints/{quote(self.endpoint_name, safe='')}/invocations-bidirectional-stream"

    def headers(self) -> dict[str, str]:
        headers = {"content-type": EVENT_STREAM_CONTENT_TYPE}
        if self.target_variant is not None:
            headers["x-amzn-sagemaker-target-variant"] = self.target_variant
        if self.model_invocation_path is not None:
            headers["x-amzn-sagemaker-model-invocation-path"] = self.model_invocation_path
        if self.model_query_string is not None:
            headers["x-amzn-sagemaker-model-query-string"] = self.model_query_string
        headers["x-amz-content-sha256"] = STREAMING_EVENTS_PAYLOAD
        return headers
