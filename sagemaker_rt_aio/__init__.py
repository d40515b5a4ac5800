"""An asyncio-native client for the Amazon SageMaker Runtime API, built on aiohttp."""

from __future__ import annotations

from ._client import SageMakerRuntimeClient
from ._constants import ENDPOINT_PREFIX
from ._errors import (
    AsyncInferenceFailure,
    AsyncInferenceTimeout,
    ClientClosedError,
    ConnectionClosedError,
    ConnectTimeoutError,
    CredentialsError,
    DeadlineExceededError,
    EndpointConnectionError,
    EventStreamError,
    EventTooLargeError,
    InternalDependencyException,
    InternalFailure,
    InternalStreamFailure,
    LineTooLongError,
    ModelError,
    ModelNotReadyException,
    ModelStreamError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
    PoolTimeoutError,
    ReadTimeoutError,
    S3Error,
    SageMakerRuntimeError,
    ServiceError,
    ServiceUnavailable,
    StreamDecodeError,
    ThrottlingException,
    TransportError,
    ValidationError,
)
from ._llm_text import JsonDecoder, TextDecoder, TokenUsage
from ._openai_route import ChatCompletionsResult, ChatCompletionsStream
from ._pipeline import CallNext, Middleware
from ._retry import RetryPolicy
from ._sse import ServerSentEvent, SSEDecoder
from ._stream import ResponseStream, StreamCall
from ._transport import HttpRequest, HttpResponse
from ._types import (
    InvokeEndpointAsyncRequest,
    InvokeEndpointAsyncResult,
    InvokeEndpointRequest,
    InvokeEndpointResult,
    InvokeEndpointWithResponseStreamRequest,
    PayloadPart,
    ResponseMetadata,
)

__version__ = "0.1.0"

__all__ = [
    "ENDPOINT_PREFIX",
    "AsyncInferenceFailure",
    "AsyncInferenceTimeout",
    "CallNext",
    "ChatCompletionsResult",
    "ChatCompletionsStream",
    "ClientClosedError",
    "ConnectTimeoutError",
    "ConnectionClosedError",
    "CredentialsError",
    "DeadlineExceededError",
    "EndpointConnectionError",
    "EventStreamError",
    "EventTooLargeError",
    "HttpRequest",
    "HttpResponse",
    "InternalDependencyException",
    "InternalFailure",
    "InternalStreamFailure",
    "InvokeEndpointAsyncRequest",
    "InvokeEndpointAsyncResult",
    "InvokeEndpointRequest",
    "InvokeEndpointResult",
    "InvokeEndpointWithResponseStreamRequest",
    "JsonDecoder",
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
    "RetryPolicy",
    "S3Error",
    "SSEDecoder",
    "SageMakerRuntimeClient",
    "SageMakerRuntimeError",
    "ServerSentEvent",
    "ServiceError",
    "ServiceUnavailable",
    "StreamCall",
    "StreamDecodeError",
    "TextDecoder",
    "ThrottlingException",
    "TokenUsage",
    "TransportError",
    "ValidationError",
    "__version__",
]
