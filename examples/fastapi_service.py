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

import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from _common import (
    ClientFactory,
    argument_parser,
    error_answer,
    pick_endpoint,
    request_id_header,
)
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from sagemaker_rt_aio import SageMakerRuntimeClient, SageMakerRuntimeError
from sagemaker_rt_aio.local.demo_models import sentiment


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
        status, body, headers = error_answer(error)
        return JSONResponse(body, status_code=status, headers=headers)

    return app


def main(argv: Sequence[str] | None = None) -> None:
    parser = argument_parser("Forward POST /predict to a SageMaker endpoint.")
    args = parser.parse_args(argv)
    endpoint_name, client_factory = pick_endpoint(
        args, "sentiment", sentiment, content_type="application/json"
    )
    app = create_app(endpoint_name=endpoint_name, client_factory=client_factory)
    uvicorn.run(app, host=args.host, port=args.port)


if __name__ == "__main__":
    main()
