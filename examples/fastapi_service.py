"""A FastAPI service that forwards ``POST /predict`` to a SageMaker endpoint.

The app owns ONE ``SageMakerRuntimeClient`` for its whole life: the lifespan opens it at startup,
keeps it in ``app.state.client`` and shuts it down at shutdown. Every request shares its connection
pool, so no request pays for a new TLS handshake or a credential lookup.

Against the embedded local runtime and its demo ``sentiment`` model (no AWS account needed)::

    python examples/fastapi_service.py --local
    curl -s localhost:8080/predict -H 'content-type: application/json' -d '{"inputs": "I love this"}'

Against a real endpoint::

    ENDPOINT_NAME=my-endpoint AWS_REGION=us-east-1 python examples/fastapi_service.py
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

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
from sagemaker_rt_aio.local import LocalRuntime
from sagemaker_rt_aio.local.demo_models import sentiment

#: The SageMaker request id of the call behind each answer, for the caller's bug reports.
REQUEST_ID_HEADER = "X-SageMaker-Request-Id"

# Anything that opens a client as an async context manager: the client class itself, or a
# function that also starts a local runtime for the client to talk to (see local_client below).
ClientFactory = Callable[[], AbstractAsyncContextManager[SageMakerRuntimeClient]]


def create_app(
    *, endpoint_name: str, client_factory: ClientFactory = SageMakerRuntimeClient
) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The client lives exactly as long as the app; its shutdown lets calls in flight finish.
        async with client_factory() as client:
            app.state.client = client
            yield

    app = FastAPI(title="SageMaker proxy", lifespan=lifespan)

    @app.post("/predict")
    async def predict(payload: dict[str, Any], request: Request) -> Response:
        client: SageMakerRuntimeClient = request.app.state.client
        result = await client.invoke_endpoint(
            endpoint_name=endpoint_name,
            body=json.dumps(payload),
            content_type="application/json",
            accept="application/json",
        )
        # The model's JSON goes back as it came: no need to parse and re-encode it.
        return Response(
            content=result.body,
            media_type="application/json",
            headers=request_id_header(result.response_metadata.request_id),
        )

    # Errors of the client, from any route, become HTTP answers here.
    @app.exception_handler(SageMakerRuntimeError)
    async def on_client_error(request: Request, error: SageMakerRuntimeError) -> JSONResponse:
        status, message = describe(error)
        request_id = error.request_id if isinstance(error, ServiceError) else None
        return JSONResponse(
            {"error": type(error).__name__, "message": message},
            status_code=status,
            headers=request_id_header(request_id),
        )

    return app


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


@asynccontextmanager
async def local_client() -> AsyncIterator[SageMakerRuntimeClient]:
    """A client connected to a local runtime serving the demo ``sentiment`` model."""
    async with LocalRuntime() as runtime:
        runtime.add_endpoint("sentiment", sentiment, content_type="application/json")
        async with SageMakerRuntimeClient(
            region_name=runtime.region,
            endpoint_url=runtime.url,
            aws_access_key_id="local",  # the local runtime checks no signature unless asked to
            aws_secret_access_key="local",
        ) as client:
            yield client


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Forward POST /predict to a SageMaker endpoint.")
    parser.add_argument("--local", action="store_true", help="serve a local demo model")
    parser.add_argument("--endpoint-name", default=os.environ.get("ENDPOINT_NAME"))
    parser.add_argument("--region", default=None, help="default: from the AWS configuration")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args(argv)

    if args.local or not args.endpoint_name:
        app = create_app(endpoint_name="sentiment", client_factory=local_client)
    else:
        region = args.region
        app = create_app(
            endpoint_name=args.endpoint_name,
            client_factory=lambda: SageMakerRuntimeClient(region_name=region),
        )
    uvicorn.run(app, host=args.host, port=args.port)


if __name__ == "__main__":
    main()
