"""The error tree, and the one function that turns an HTTP error response into an error.

::

    SageMakerRuntimeError
    ├── ParamValidationError            the call's arguments are invalid; nothing was sent
    ├── ClientClosedError               the client was shut down; nothing was sent
    ├── NoRegionError                   no region in arguments, environment or config
    ├── CredentialsError                credentials could not be loaded or refreshed
    │   ├── NoCredentialsError          botocore's chain found no credentials
    │   └── CredentialsTimeoutError     (also DeadlineExceededError) not loaded before the deadline
    ├── TransportError                  the exchange failed below HTTP
    │   ├── EndpointConnectionError     (also ConnectionError) no connection; request not sent
    │   │   └── ConnectTimeoutError     (also TimeoutError)
    │   ├── SSLError                    (also ConnectionError) TLS failed; request not sent
    │   │   └── CertificateVerificationError  the server's certificate is not trusted
    │   ├── ConnectionClosedError       (also ConnectionError) dropped after the request was sent
    │   ├── ReadTimeoutError            (also TimeoutError) no bytes for sock_read seconds
    │   ├── PoolTimeoutError            (also TimeoutError) no free connection before the deadline
    │   └── DeadlineExceededError       (also TimeoutError) the call's overall deadline passed
    ├── ServiceError                    the service answered with an error
    │   ├── InternalFailure                 500
    │   ├── ServiceUnavailable              503
    │   ├── ValidationError                 400
    │   ├── ModelError                      424, the model container failed
    │   ├── InternalDependencyException     530
    │   ├── ModelNotReadyException          429, cold start or model load
    │   ├── ThrottlingException             400/429
    │   ├── ModelStreamError                inside a response stream
    │   ├── InternalStreamFailure           inside a response stream
    │   └── S3Error                         an S3 request of the async-result waiter failed
    ├── ResponseTooLargeError           an answer's body passed max_response_bytes (never retried)
    ├── EventStreamError                the response stream's bytes are not a valid event stream
    ├── LineTooLongError                iter_lines() met a line over its length bound
    ├── TextDecodeError                 (also ValueError) iter_lines() met bytes it cannot decode
    ├── AsyncInferenceFailure           the async inference wrote its failure object
    └── AsyncInferenceTimeout           (also TimeoutError) no result before the timeout

Every service error keeps ``code``, ``message``, ``status_code``, ``request_id`` and
``response_metadata``. Error texts never include credentials or request bodies.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Mapping
from typing import Any

from ._types import ResponseMetadata


class SageMakerRuntimeError(Exception):
    """Base of every error this library raises."""

    #: Set on the error that ends ``stream.iter_text()`` midway (a ``ModelStreamError``, a dropped
    #: connection...): the text decoded before it, so that a caller can keep or show it.
    partial_text: str | None = None

    def __reduce__(self) -> Any:
        # Pickle (multiprocessing, concurrent.futures) without calling __init__ again: most
        # subclasses take other arguments than the message text kept in ``args``.
        return (_rebuild, (type(self), self.args, self.__dict__.copy()))


def _rebuild(
    cls: type[SageMakerRuntimeError], args: tuple[Any, ...], state: dict[str, Any]
) -> SageMakerRuntimeError:
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


class SanitizedCause(Exception):
    """Stands in for a foreign exception under one of ours (as ``__cause__``): its type name and
    text only, since the original may hold a request's headers or a provider's inputs."""

    @classmethod
    def of(cls, exc: BaseException) -> SanitizedCause:
        try:
            text = str(exc)
        except Exception:
            text = "<unprintable>"
        return cls(f"{type(exc).__name__}: {text}")


class ParamValidationError(SageMakerRuntimeError, ValueError):
    """An argument breaks a rule of the service model. Nothing was sent.

    ``field`` names the member (``endpoint_name``); ``rule`` says what it broke.
    """

    def __init__(self, field: str, rule: str) -> None:
        self.field = field
        self.rule = rule
        super().__init__(f"Invalid value for {field!r}: {rule}")


class ClientClosedError(SageMakerRuntimeError, RuntimeError):
    """The client was shut down; the call sent nothing."""

    def __init__(self, message: str = "the client has been shut down") -> None:
        super().__init__(message)


class NoRegionError(SageMakerRuntimeError):
    def __init__(self) -> None:
        super().__init__(
            "No region: pass region_name=, set AWS_DEFAULT_REGION, or set region in the profile "
            "of ~/.aws/config (AWS_REGION alone is not read, as botocore does not read it)"
        )


class CredentialsError(SageMakerRuntimeError):
    """Loading or refreshing credentials failed (SSO token expired, role assumption refused...).

    ``__cause__`` holds botocore's error."""


class NoCredentialsError(CredentialsError):
    def __init__(self) -> None:
        super().__init__(
            "No AWS credentials found: pass them to the client, set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, or configure a profile"
        )


class TransportError(SageMakerRuntimeError):
    """The HTTP exchange failed below the HTTP layer. ``__cause__`` holds aiohttp's error."""

    #: False when the request certainly did not reach the server (safe to send again); True when
    #: it may have (the model may have run: not sent again).
    request_sent: bool = True
    #: False when trying again cannot help (a certificate that is not trusted).
    retryable: bool = True


class EndpointConnectionError(TransportError, ConnectionError):
    """No connection could be made to the endpoint; the request was not sent."""

    request_sent = False


class ConnectTimeoutError(EndpointConnectionError, TimeoutError):
    """The connection was not established within ``sock_connect``."""


class SSLError(TransportError, ConnectionError):
    """The TLS handshake failed; the request was not sent. Never retried: the same handshake
    would fail the same way."""

    request_sent = False
    retryable = False


class CertificateVerificationError(SSLError):
    """The server's certificate could not be verified against the trusted CAs (``verify=``,
    ``ca_bundle=``, ``AWS_CA_BUNDLE``, ``ca_bundle`` in the profile, or the system's store)."""


class ConnectionClosedError(TransportError, ConnectionError):
    """The connection was closed or reset after the request was (perhaps partly) sent."""


class ReadTimeoutError(TransportError, TimeoutError):
    """No bytes arrived for ``sock_read`` seconds. The model may have run: never re-sent."""


class PoolTimeoutError(TransportError, TimeoutError):
    """No free connection could be had before the call's deadline; the request was not sent."""

    request_sent = False


class DeadlineExceededError(TransportError, TimeoutError):
    """The call's overall deadline (``timeout.total``) passed."""


class CredentialsTimeoutError(DeadlineExceededError, CredentialsError):
    """Credentials could not be had before the call's deadline (a hung credential provider).
    Nothing was sent."""

    request_sent = False


class ResponseTooLargeError(SageMakerRuntimeError):
    """An answer's body is larger than the client's ``max_response_bytes``. The body was not read
    past the bound and the connection was closed. Never retried: the model may have run."""

    def __init__(self, limit: int, content_length: int | None) -> None:
        self.limit = limit
        self.content_length = content_length
        size = (
            f"{content_length} bytes (Content-Length)"
            if content_length is not None
            else "more bytes"
        )
        super().__init__(
            f"the response body has {size} than the limit of {limit} bytes (max_response_bytes)"
        )


class TextDecodeError(SageMakerRuntimeError, ValueError):
    """Text from the response stream could not be decoded with the requested encoding."""

    def __init__(self, encoding: str, reason: str) -> None:
        self.encoding = encoding
        self.reason = reason
        super().__init__(f"a line of the response stream is not valid {encoding}: {reason}")


class EventStreamError(SageMakerRuntimeError):
    """The response stream's bytes broke the event-stream framing (CRC, lengths, truncation)."""


class LineTooLongError(SageMakerRuntimeError, ValueError):
    """A response stream line grew past ``max_line_bytes`` without a line break."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(f"a line of the response stream is longer than {limit} bytes")


class StreamDecodeError(SageMakerRuntimeError, ValueError):
    """A response stream's bytes are not in the format being decoded (an event's data that is
    not JSON, a JSON line that does not parse)."""


class LLMStreamError(SageMakerRuntimeError):
    """The model's stream itself reported an error (TGI's ``{"error": ..., "error_type": ...}``,
    an OpenAI-style ``{"error": {...}}`` or ``{"object": "error"}`` event): ``iter_text()`` raises
    it, with ``payload`` (the event's JSON) and the text so far in ``partial_text``."""

    def __init__(self, message: str, payload: object) -> None:
        self.payload = payload
        super().__init__(message)


class EventTooLargeError(StreamDecodeError):
    """A server-sent event's data grew past ``max_event_bytes`` before the event ended."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(f"a server-sent event of the response stream is longer than {limit} bytes")


class ServiceError(SageMakerRuntimeError):
    """The service answered with an error."""

    def __init__(
        self,
        message: str | None,
        *,
        code: str,
        status_code: int,
        request_id: str | None = None,
        response_metadata: ResponseMetadata | None = None,
    ) -> None:
        self.code = code
        self.message = message
        self.status_code = status_code
        self.request_id = request_id
        self.response_metadata = response_metadata
        text = f"{code} ({status_code})"
        if message:
            text += f": {message}"
        if request_id:
            text += f" [request id {request_id}]"
        super().__init__(text)


class InternalFailure(ServiceError):
    pass


class ServiceUnavailable(ServiceError):
    pass


class ValidationError(ServiceError):
    pass


class ModelError(ServiceError):
    """The model container answered with an error (or did not answer within 60 s)."""

    def __init__(
        self,
        message: str | None,
        *,
        original_status_code: int | None = None,
        original_message: str | None = None,
        log_stream_arn: str | None = None,
        error_code: str | None = None,
        **kwargs: Any,
    ) -> None:
        self.original_status_code = original_status_code
        self.error_code = error_code  # the bidirectional operation's ModelError adds ErrorCode
        self.original_message = original_message
        self.log_stream_arn = log_stream_arn
        super().__init__(message, **kwargs)


class InternalDependencyException(ServiceError):
    pass


# The HTTP/2 service's (InvokeEndpointWithBidirectionalStream's) own names for the same errors:
# subclasses, so ``except ValidationError`` and friends catch both services' errors.
class InputValidationError(ValidationError):
    """400 from the bidirectional operation (its ``ValidationError``)."""


class InternalServerError(InternalFailure):
    """500 from the bidirectional operation."""


class ServiceUnavailableError(ServiceUnavailable):
    """503 from the bidirectional operation: nothing reached the model; retried before any input."""


class ModelNotReadyException(ServiceError):
    pass


class ThrottlingException(ServiceError):
    pass


class ModelStreamError(ServiceError):
    """An exception event inside a response stream; ``error_code`` is ``ModelInvocationTimeExceeded``
    or ``StreamBroken``."""

    def __init__(
        self, message: str | None, *, error_code: str | None = None, **kwargs: Any
    ) -> None:
        self.error_code = error_code
        super().__init__(message, **kwargs)


class InternalStreamFailure(ServiceError):
    pass


class S3Error(ServiceError):
    """An S3 request of the async-result waiter failed (``code`` is S3's, e.g. ``AccessDenied``)."""


class AsyncInferenceFailure(SageMakerRuntimeError):
    """The asynchronous inference failed; ``failure`` is the text of its failure object."""

    def __init__(self, failure: str, *, failure_location: str | None = None) -> None:
        self.failure = failure
        self.failure_location = failure_location
        super().__init__(f"async inference failed: {failure}")


class AsyncInferenceTimeout(SageMakerRuntimeError, TimeoutError):
    """Neither the output nor the failure object appeared within the timeout."""

    def __init__(self, timeout: float, *, output_location: str | None = None) -> None:
        self.timeout = timeout
        self.output_location = output_location
        super().__init__(f"no async inference result after {timeout:g} s at {output_location}")


ERROR_CLASSES: dict[str, type[ServiceError]] = {
    cls.__name__: cls
    for cls in (
        InternalFailure,
        ServiceUnavailable,
        ValidationError,
        ModelError,
        InternalDependencyException,
        ModelNotReadyException,
        ThrottlingException,
        ModelStreamError,
        InternalStreamFailure,
        InputValidationError,
        InternalServerError,
        ServiceUnavailableError,
    )
}


def normalize_error_code(raw: str) -> str:
    """``ValidationError:http://...`` and ``com.amazon.sagemaker#ModelError`` to the bare code."""
    return raw.split(":", 1)[0].rsplit("#", 1)[-1]


def parse_error_response(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    retry_attempts: int = 0,
) -> ServiceError:
    """Build the typed error for a non-2xx response (botocore's rest-json error parsing).

    ``headers`` must be case-insensitive (aiohttp's ``CIMultiDictProxy``) or lower-cased.
    Code: ``x-amzn-ErrorType`` > body ``code`` > ``Code`` > ``__type`` > the status. Message:
    ``message`` > ``Message`` > ``errorMessage``. An empty or HTML 5xx gets the HTTP reason phrase.
    """
    metadata = ResponseMetadata.from_http(status, headers, retry_attempts)
    headers = metadata.http_headers  # lower-cased, repeats folded
    request_id = metadata.request_id
    doc: dict[str, Any] = {}
    stripped = body.strip()
    if status >= 500 and (not stripped or stripped[:5].lower() in (b"<html", b"<!doc")):
        message: str | None = http.client.responses.get(status, "")
    else:
        try:
            loaded = json.loads(stripped) if stripped else {}
            doc = loaded if isinstance(loaded, dict) else {}
        except ValueError:
            doc = {"message": stripped.decode("utf-8", "replace")}
        message = _first_str(doc, "message", "Message", "errorMessage")
    raw_code = (
        headers.get("x-amzn-errortype") or _first_str(doc, "code", "Code", "__type") or str(status)
    )
    code = normalize_error_code(raw_code)
    cls = ERROR_CLASSES.get(code, ServiceError)
    common: dict[str, Any] = {
        "code": code,
        "status_code": status,
        "request_id": request_id,
        "response_metadata": metadata,
    }
    if cls is ModelError:
        original = doc.get("OriginalStatusCode")
        return ModelError(
            message,
            original_status_code=(
                original if isinstance(original, int) and not isinstance(original, bool) else None
            ),
            original_message=_first_str(doc, "OriginalMessage"),
            log_stream_arn=_first_str(doc, "LogStreamArn"),
            error_code=_first_str(doc, "ErrorCode"),
            **common,
        )
    if cls is ModelStreamError:
        return ModelStreamError(message, error_code=_first_str(doc, "ErrorCode"), **common)
    return cls(message, **common)


def _first_str(doc: Mapping[str, Any], *keys: str) -> str | None:
    for key in keys:
        value = doc.get(key)
        if isinstance(value, str):
            return value
    return None
