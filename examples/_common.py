"""What the examples share, so that each example file shows only its framework's part.

- ``error_answer`` (with ``describe`` and ``request_id_header``): an error of the client as an HTTP
  answer, the same in every web framework: a status, a JSON body and the SageMaker request id.
- ``ClientFactory``: how an app is told to open its one client.
- ``local_client``: a client against an embedded ``LocalRuntime`` serving a demo model, so the
  examples run with no AWS account.
- ``argument_parser`` and ``pick_endpoint``: the command line the examples take (``--local``,
  ``--endpoint-name`` or ``$ENDPOINT_NAME``, ``--region``, and ``--host``/``--port`` for services).

Not an example by itself: ``python examples/<name>.py`` puts ``examples/`` on ``sys.path``, so each
example imports what it needs from here as ``from _common import ...``.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import NamedTuple

from sagemaker_rt_aio import (
    ModelError,
    ModelNotReadyException,
    ParamValidationError,
    SageMakerRuntimeClient,
    SageMakerRuntimeError,
    ServiceError,
    ServiceUnavailable,
    ThrottlingException,
    TransportError,
    ValidationError,
)
from sagemaker_rt_aio.local import Handler, LocalRuntime

#: The SageMaker request id of the call behind each answer, for the caller's bug reports.
REQUEST_ID_HEADER = "X-SageMaker-Request-Id"

#: Anything that opens a client as an async context manager: the client class itself, or a
#: function that also starts a local runtime for the client to talk to (see ``local_client``).
ClientFactory = Callable[[], AbstractAsyncContextManager[SageMakerRuntimeClient]]


# -- errors as HTTP answers ----------------------------------------------------------------------


class ErrorAnswer(NamedTuple):
    """An error of the client as an HTTP answer; each framework wraps it in its own response."""

    status: int
    body: dict[str, str]  # {"error": the error's class name, "message": what went wrong}
    headers: dict[str, str]  # the request id, when the service answered


def error_answer(error: SageMakerRuntimeError) -> ErrorAnswer:
    status, message = describe(error)
    request_id = error.request_id if isinstance(error, ServiceError) else None
    body = {"error": type(error).__name__, "message": message}
    return ErrorAnswer(status, body, request_id_header(request_id))


def describe(error: SageMakerRuntimeError) -> tuple[int, str]:
    """Our HTTP status and message for an error of the client. By the time it gets here, the client
    has already retried what was safe to retry (503s, cold starts, connections that failed before
    sending)."""
    message = (error.message or error.code) if isinstance(error, ServiceError) else str(error)
    if isinstance(error, (ParamValidationError, ValidationError)):
        return 400, message  # the request is not valid: nothing was sent, or the service refused it
    if isinstance(error, ModelError):
        return 502, error.original_message or message  # the model failed; pass on what it said
    if isinstance(
        error, (ServiceUnavailable, ModelNotReadyException, ThrottlingException, TransportError)
    ):
        return 503, message  # worth trying again later
    if isinstance(error, ServiceError):
        return 502, message  # any other failure of the service
    return 500, message  # a problem on our side: no credentials, client shut down...


def request_id_header(request_id: str | None) -> dict[str, str]:
    return {REQUEST_ID_HEADER: request_id} if request_id else {}


# -- the client ----------------------------------------------------------------------------------


@asynccontextmanager
async def local_client(
    endpoint_name: str, handler: Handler, *, content_type: str
) -> AsyncIterator[SageMakerRuntimeClient]:
    """A client connected to a local runtime that serves ``handler`` (a demo model) as endpoint
    ``endpoint_name``. The runtime also plays S3, where async results are written: hence
    ``s3_endpoint_url``."""
    async with LocalRuntime() as runtime:
        runtime.add_endpoint(endpoint_name, handler, content_type=content_type)
        async with SageMakerRuntimeClient(
            region_name=runtime.region,
            endpoint_url=runtime.url,
            s3_endpoint_url=runtime.url,
            aws_access_key_id="local",  # the local runtime checks no signature unless asked to
            aws_secret_access_key="local",
        ) as client:
            yield client


# -- the command line ----------------------------------------------------------------------------


def argument_parser(description: str, *, service: bool = True) -> argparse.ArgumentParser:
    """``--local``, ``--endpoint-name`` (default: ``$ENDPOINT_NAME``) and ``--region``; for a
    service (an HTTP server) also ``--host`` and ``--port``."""
    parser = argparse.ArgumentParser(description=description)
    local_help = "serve a local demo model" if service else "use a local demo model"
    parser.add_argument("--local", action="store_true", help=local_help)
    parser.add_argument("--endpoint-name", default=os.environ.get("ENDPOINT_NAME"))
    parser.add_argument("--region", default=None, help="default: from the AWS configuration")
    if service:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8080)
    return parser


def pick_endpoint(
    args: argparse.Namespace, demo_endpoint: str, demo_handler: Handler, *, content_type: str
) -> tuple[str, ClientFactory]:
    """The endpoint to call and the factory of its client. With ``--local``, or when no endpoint
    name was given, the demo model on a local runtime; else the named endpoint, in ``--region``."""
    if args.local or not args.endpoint_name:
        return demo_endpoint, lambda: local_client(
            demo_endpoint, demo_handler, content_type=content_type
        )
    endpoint_name: str = args.endpoint_name
    region: str | None = args.region
    return endpoint_name, lambda: SageMakerRuntimeClient(region_name=region)
