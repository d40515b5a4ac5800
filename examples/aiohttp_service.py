"""An aiohttp.web service that forwards ``POST /predict`` to a SageMaker endpoint.

The app owns ONE ``SageMakerRuntimeClient`` for its whole life: a cleanup context opens it when the
app starts and shuts it down when the app stops. Every request shares its connection pool, so no
request pays for a new TLS handshake or a credential lookup.

Against the embedded local runtime and its demo ``sentiment`` model (no AWS account needed)::

    python examples/aiohttp_service.py --local
    curl -s localhost:8080/predict -d '{"inputs": "I love this"}'

Against a real endpoint::

    ENDPOINT_NAME=my-endpoint AWS_REGION=us-east-1 python examples/aiohttp_service.py
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence

from _common import (
    ClientFactory,
    argument_parser,
    error_answer,
    pick_endpoint,
    request_id_header,
)
from aiohttp import web

from sagemaker_rt_aio import SageMakerRuntimeClient, SageMakerRuntimeError
from sagemaker_rt_aio.local.demo_models import sentiment

CLIENT = web.AppKey("client", SageMakerRuntimeClient)
ENDPOINT_NAME = web.AppKey("endpoint_name", str)


def create_app(
    *, endpoint_name: str, client_factory: ClientFactory = SageMakerRuntimeClient
) -> web.Application:
    app = web.Application()
    app[ENDPOINT_NAME] = endpoint_name

    async def client_context(app: web.Application) -> AsyncIterator[None]:
        # Code before the yield runs at startup, after it at cleanup: the client lives exactly as
        # long as the app, and its shutdown lets calls still in flight finish first.
        async with client_factory() as client:
            app[CLIENT] = client
            yield

    app.cleanup_ctx.append(client_context)
    app.router.add_post("/predict", predict)
    return app


async def predict(request: web.Request) -> web.Response:
    try:
        payload = await request.json()
    except ValueError:
        return web.json_response(
            {"error": "BadRequest", "message": "the body must be JSON"}, status=400
        )
    client = request.app[CLIENT]
    try:
        result = await client.invoke_endpoint(
            endpoint_name=request.app[ENDPOINT_NAME],
            body=json.dumps(payload),
            content_type="application/json",
            accept="application/json",
        )
    except SageMakerRuntimeError as error:
        return error_response(error)
    # The model's JSON goes back as it came: no need to parse and re-encode it.
    headers = request_id_header(result.response_metadata.request_id)
    return web.Response(body=result.body, content_type="application/json", headers=headers)


def error_response(error: SageMakerRuntimeError) -> web.Response:
    status, body, headers = error_answer(error)
    return web.json_response(body, status=status, headers=headers)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argument_parser("Forward POST /predict to a SageMaker endpoint.")
    args = parser.parse_args(argv)
    endpoint_name, client_factory = pick_endpoint(
        args, "sentiment", sentiment, content_type="application/json"
    )
    app = create_app(endpoint_name=endpoint_name, client_factory=client_factory)
    web.run_app(app, host=args.host, port=args.port)


if __name__ == "__main__":
    main()
