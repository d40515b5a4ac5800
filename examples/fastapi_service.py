"""A FastAPI service that forwards ``POST /predict`` to a SageMaker endpoint.

The app owns ONE ``SageMakerRuntimeClient`` for its whole life: the lifespan opens it at startup,
keeps it in ``app.state.client`` and shuts it down at shutdown. Every request shares its connection
pool, so no request pays for a new TLS handshake or a credential lookup.

Against the embedded local runtime and its demo ``sentiment`` model (no AWS account needed)::

    python examples/fastapi_service.py --local
    curl -s localhost:8080/predict -H 'content-type: application/json' -d '{"inputs": "I love this"}'

Against a real endpoint::

    ENDPOINT_NAME=my-endpoint AWS_REGION=us-east-1 python examples/fastapi_service.py

With ``--otel`` (needs ``pip install 'sagemaker-rt-aio[otel]' opentelemetry-sdk``) the process gets
OpenTelemetry SDK providers that print to the console: one span per SageMaker call, as it ends, and
the client's metrics every 10 seconds and at exit. A real service would export with OTLP instead.
"""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, TextIO

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


def console_telemetry(out: TextIO = sys.stdout) -> tuple[Any, Any]:
    """OpenTelemetry SDK tracer and meter providers that print spans and metrics to ``out``."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import (
        ConsoleMetricExporter,
        PeriodicExportingMetricReader,
    )
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter(out=out)))
    reader = PeriodicExportingMetricReader(
        ConsoleMetricExporter(out=out), export_interval_millis=10_000
    )
    return tracer_provider, MeterProvider(metric_readers=[reader])


def main(argv: Sequence[str] | None = None) -> None:
    parser = argument_parser("Forward POST /predict to a SageMaker endpoint.")
    parser.add_argument(
        "--otel", action="store_true", help="print OpenTelemetry spans and metrics to stdout"
    )
    args = parser.parse_args(argv)
    endpoint_name, client_factory = pick_endpoint(
        args, "sentiment", sentiment, content_type="application/json"
    )
    providers = None
    if args.otel:
        from opentelemetry import metrics, trace

        # Global providers: the client, built later in the lifespan, uses them (so would any
        # other instrumentation of the app, FastAPI's included).
        providers = console_telemetry()
        trace.set_tracer_provider(providers[0])
        metrics.set_meter_provider(providers[1])
    app = create_app(endpoint_name=endpoint_name, client_factory=client_factory)
    try:
        uvicorn.run(app, host=args.host, port=args.port)
    finally:
        if providers is not None:
            for provider in providers:
                provider.shutdown()  # the last metrics are printed here


if __name__ == "__main__":
    main()
