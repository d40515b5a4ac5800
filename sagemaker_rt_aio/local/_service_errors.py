"""Error answers in the SageMaker Runtime's rest-json format (as the service sends them).

Every error carries ``x-amzn-ErrorType: <Code>:<namespace>``, ``x-amzn-RequestId`` and a JSON body
with the message under both ``message`` (what botocore reads first) and ``Message`` (the modeled
member), plus any modeled members such as ModelError's ``OriginalStatusCode``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from .._stream_events import encode_exception
from . import _sigv4_verify as sigv4
from ._faults import BreakStreamFault
from ._invocation import ContainerError, ModelTimeout

SAGEMAKER_NAMESPACE = "http://internal.amazon.com/coral/com.amazon.sagemaker/"
CORAL_SERVICE_NAMESPACE = "http://internal.amazon.com/coral/com.amazon.coral.service/"
VALIDATE_NAMESPACE = "http://internal.amazon.com/coral/com.amazon.coral.validate/"

MODEL_TIMEOUT_TEXT = (
    "Your invocation timed out while waiting for a response from container primary. Review the "
    "latency metrics for each container in Amazon CloudWatch, resolve the issue, and try again."
)
STREAM_TIMEOUT_TEXT = (
    "Your model primary did not complete sending the inference response in the allotted time."
)


# Exception events that end a stream (both streaming operations) -------------------------------


def timeout_event() -> bytes:
    """The stream took longer than the model timeout."""
    return encode_exception(
        "ModelStreamError", STREAM_TIMEOUT_TEXT, error_code="ModelInvocationTimeExceeded"
    )


def stream_broken_event(text: str) -> bytes:
    """The model failed after its first part."""
    return encode_exception(
        "ModelStreamError",
        f"Model primary closed the stream with an error: {text}",
        error_code="StreamBroken",
    )


def injected_break_event(fault: BreakStreamFault) -> bytes:
    """What a :class:`BreakStreamFault` ends a stream with: by default the event of a model that
    broke its stream."""
    message = fault.message
    if message is None:
        message = "Model primary closed the stream with an error: injected fault: the stream broke"
    return encode_exception(fault.error, message, error_code=fault.error_code)


def describe_failure(exc: Exception) -> tuple[int, str]:
    """``(OriginalStatusCode, OriginalMessage)`` for a handler's failure: 0 for a timeout, the
    status of a :class:`ContainerError`, else 500 with the exception's text."""
    if isinstance(exc, ModelTimeout):
        return 0, MODEL_TIMEOUT_TEXT
    if isinstance(exc, ContainerError):
        return exc.status_code, exc.message
    return 500, str(exc) or type(exc).__name__


def error_response(
    status: int,
    code: str,
    message: str,
    request_id: str,
    *,
    fields: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
    namespace: str = SAGEMAKER_NAMESPACE,
) -> web.Response:
    doc: dict[str, Any] = {"message": message, "Message": message}
    doc.update(fields or {})
    all_headers = {
        "x-amzn-RequestId": request_id,
        "x-amzn-ErrorType": f"{code}:{namespace}",
        **(headers or {}),
    }
    return web.Response(
        status=status,
        body=json.dumps(doc).encode(),
        content_type="application/json",
        headers=all_headers,
    )


def validation_error(message: str, request_id: str) -> web.Response:
    return error_response(400, "ValidationError", message, request_id, namespace=VALIDATE_NAMESPACE)


def retry_after_headers(retry_after: float | None) -> dict[str, str]:
    """``Retry-After`` (whole seconds) and ``x-amz-retry-after`` (milliseconds)."""
    if retry_after is None:
        return {}
    return {
        "Retry-After": str(max(0, math.ceil(retry_after))),
        "x-amz-retry-after": str(max(0, round(retry_after * 1000))),
    }


_AUTH_ERRORS: dict[str, tuple[int, str]] = {
    sigv4.MISSING: (403, "MissingAuthenticationTokenException"),
    sigv4.MALFORMED: (400, "IncompleteSignatureException"),
    sigv4.UNKNOWN_KEY: (403, "UnrecognizedClientException"),
    sigv4.BAD_TOKEN: (403, "UnrecognizedClientException"),
    sigv4.SKEWED: (403, "InvalidSignatureException"),
    sigv4.BAD_SCOPE: (403, "InvalidSignatureException"),
    sigv4.MISMATCH: (403, "InvalidSignatureException"),
    sigv4.CONTENT_SHA_MISSING: (403, "InvalidSignatureException"),
    sigv4.CONTENT_SHA_MISMATCH: (403, "InvalidSignatureException"),
}


def auth_error(failure: sigv4.AuthFailure, request_id: str) -> web.Response:
    status, code = _AUTH_ERRORS[failure.kind]
    return error_response(
        status, code, failure.message, request_id, namespace=CORAL_SERVICE_NAMESPACE
    )


@dataclass(frozen=True)
class ModelErrorContext:
    """Where a model error happened, for the texts and ARNs the service puts in ModelError."""

    region: str
    account_id: str
    endpoint_name: str

    @property
    def log_group(self) -> str:
        return f"/aws/sagemaker/Endpoints/{self.endpoint_name}"

    @property
    def log_stream_arn(self) -> str:
        return f"arn:aws:logs:{self.region}:{self.account_id}:log-group:{self.log_group}"

    def see_logs(self) -> str:
        return (
            f"See https://{self.region}.console.aws.amazon.com/cloudwatch/home?region="
            f"{self.region}#logEventViewer:group={self.log_group} in account {self.account_id} "
            "for more information."
        )

    def container_error_text(self, original_status: int, original_message: str) -> str:
        """``Received server error (500) from primary with message "...". See ...``."""
        kind = "client" if 400 <= original_status < 500 else "server"
        return (
            f"Received {kind} error ({original_status}) from primary with message "
            f'"{original_message}". {self.see_logs()}'
        )

    def model_error(
        self,
        request_id: str,
        original_status: int,
        original_message: str,
        message: str | None = None,
    ) -> web.Response:
        text = message or self.container_error_text(original_status, original_message)
        return error_response(
            424,
            "ModelError",
            text,
            request_id,
            fields={
                "OriginalStatusCode": original_status,
                "OriginalMessage": original_message,
                "LogStreamArn": self.log_stream_arn,
            },
        )

    def failure(self, request_id: str, exc: Exception) -> web.Response:
        """The ModelError for a handler that raised ``exc`` (or timed out)."""
        return self.model_error(request_id, *describe_failure(exc))

    def response_too_large(self, request_id: str, limit: int) -> web.Response:
        original = f"Response body exceeds the maximum size of {limit} bytes."
        text = (
            f"Received a response from primary that is larger than {limit} bytes and could not "
            f"load the entire response body. {self.see_logs()}"
        )
        return self.model_error(request_id, 200, original, text)
