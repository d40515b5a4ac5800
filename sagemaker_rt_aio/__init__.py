"""An asyncio-native client for the Amazon SageMaker Runtime API, built on aiohttp."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._client import SageMakerRuntimeClient
from ._constants import ENDPOINT_PREFIX
from ._errors import (
    AsyncInferenceFailure,
    AsyncInferenceTimeout,
    CertificateVerificationError,
    ClientClosedError,
    ConnectionClosedError,
    ConnectTimeoutError,
    CredentialsError,
    CredentialsTimeoutError,
    DeadlineExceededError,
    EndpointConnectionError,
    EventStreamError,
    EventTooLargeError,
    InputValidationError,
    InternalDependencyException,
    InternalFailure,
    InternalServerError,
    InternalStreamFailure,
    LineTooLongError,
    LLMStreamError,
    ModelError,
    ModelNotReadyException,
    ModelStreamError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
    PoolTimeoutError,
    ReadTimeoutError,
    ResponseTooLargeError,
    S3Error,
    SageMakerRuntimeError,
    ServiceError,
    ServiceUnavailable,
    ServiceUnavailableError,
    SSLError,
    StreamDecodeError,
    TextDecodeError,
    ThrottlingException,
    TransportError,
    ValidationError,
)
from ._lazy import lazy_attributes as _lazy_attributes
from ._logging import LOG_ENV_VAR, configure_logging_from_env
from ._pipeline import CallNext, Middleware
from ._retry import RetryPolicy
from ._transport import HttpRequest, HttpResponse
from ._types import (
    InvokeEndpointRequest,
    InvokeEndpointResult,
    ResponseMetadata,
)
from ._version import __version__

if TYPE_CHECKING:  # loaded on first use (``__getattr__`` below); here for type checkers and IDEs
    from ._bidi import BidirectionalCall, BidirectionalStream
    from ._bidi_events import BidirectionalPart
    from ._llm_text import JsonDecoder, TextDecoder, TokenUsage
    from ._openai_route import ChatCompletionsResult, ChatCompletionsStream
    from ._sse import ServerSentEvent, SSEDecoder
    from ._stream import ResponseStream, StreamCall
    from ._types_async import InvokeEndpointAsyncRequest, InvokeEndpointAsyncResult
    from ._types_stream import InvokeEndpointWithResponseStreamRequest, PayloadPart

# Public names whose modules most clients never need (bidirectional streams and HTTP/2, response
# streams, their request, events and text decoders, the OpenAI-compatible route, async
# inference's request and result), imported on first access
# (PEP 562) so that ``import sagemaker_rt_aio`` stays cheap: name -> module.
_LAZY = {
    "BidirectionalCall": "._bidi",
    "BidirectionalStream": "._bidi",
    "BidirectionalPart": "._bidi_events",
    "JsonDecoder": "._llm_text",
    "TextDecoder": "._llm_text",
    "TokenUsage": "._llm_text",
    "ChatCompletionsResult": "._openai_route",
    "ChatCompletionsStream": "._openai_route",
    "ServerSentEvent": "._sse",
    "SSEDecoder": "._sse",
    "ResponseStream": "._stream",
    "StreamCall": "._stream",
    "InvokeEndpointAsyncRequest": "._types_async",
    "InvokeEndpointAsyncResult": "._types_async",
    "InvokeEndpointWithResponseStreamRequest": "._types_stream",
    "PayloadPart": "._types_stream",
}

configure_logging_from_env()  # SAGEMAKER_RT_AIO_LOG=debug: the library's debug log on stderr


if not TYPE_CHECKING:  # hidden from type checkers, which would otherwise accept any name
    __getattr__ = _lazy_attributes(globals(), _LAZY)

    def __dir__() -> list[str]:
        return sorted({*globals(), *_LAZY})


__all__ = [
    "ENDPOINT_PREFIX",
    "LOG_ENV_VAR",
    "AsyncInferenceFailure",
    "AsyncInferenceTimeout",
    "BidirectionalCall",
    "BidirectionalPart",
    "BidirectionalStream",
    "CallNext",
    "CertificateVerificationError",
    "ChatCompletionsResult",
    "ChatCompletionsStream",
    "ClientClosedError",
    "ConnectTimeoutError",
    "ConnectionClosedError",
    "CredentialsError",
    "CredentialsTimeoutError",
    "DeadlineExceededError",
    "EndpointConnectionError",
    "EventStreamError",
    "EventTooLargeError",
    "HttpRequest",
    "HttpResponse",
    "InputValidationError",
    "InternalDependencyException",
    "InternalFailure",
    "InternalServerError",
    "InternalStreamFailure",
    "InvokeEndpointAsyncRequest",
    "InvokeEndpointAsyncResult",
    "InvokeEndpointRequest",
    "InvokeEndpointResult",
    "InvokeEndpointWithResponseStreamRequest",
    "JsonDecoder",
    "LLMStreamError",
    "LineTooLongError",
    "Middleware",
    "ModelError",
    "ModelNotReadyException",
    "ModelStreamError",
    "NoCredentialsError",
    "NoRegionError",
    "ParamValidationError",
    "PayloadPart",
    "PoolTimeoutError",
    "ReadTimeoutError",
    "ResponseMetadata",
    "ResponseStream",
    "ResponseTooLargeError",
    "RetryPolicy",
    "S3Error",
    "SSEDecoder",
    "SSLError",
    "SageMakerRuntimeClient",
    "SageMakerRuntimeError",
    "ServerSentEvent",
    "ServiceError",
    "ServiceUnavailable",
    "ServiceUnavailableError",
    "StreamCall",
    "StreamDecodeError",
    "TextDecodeError",
    "TextDecoder",
    "ThrottlingException",
    "TokenUsage",
    "TransportError",
    "ValidationError",
    "__version__",
    "configure_logging_from_env",
]
