"""An asyncio-native client for the Amazon SageMaker Runtime API, built on aiohttp."""

from __future__ import annotations

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
    DeadlineExceededError,
    EndpointConnectionError,
    EventStreamError,
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
    SSLError,
    ThrottlingException,
    TransportError,
    ValidationError,
)
from ._logging import LOG_ENV_VAR, configure_logging_from_env
from ._pipeline import CallNext, Middleware
from ._retry import RetryPolicy
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

configure_logging_from_env()  # SAGEMAKER_RT_AIO_LOG=debug: the library's debug log on stderr

__all__ = [
    "ENDPOINT_PREFIX",
    "LOG_ENV_VAR",
    "AsyncInferenceFailure",
    "AsyncInferenceTimeout",
    "CallNext",
    "CertificateVerificationError",
    "ClientClosedError",
    "ConnectTimeoutError",
    "ConnectionClosedError",
    "CredentialsError",
    "DeadlineExceededError",
    "EndpointConnectionError",
    "EventStreamError",
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
    "SSLError",
    "SageMakerRuntimeClient",
    "SageMakerRuntimeError",
    "ServiceError",
    "ServiceUnavailable",
    "StreamCall",
    "ThrottlingException",
    "TransportError",
    "ValidationError",
    "__version__",
    "configure_logging_from_env",
]
