"""An aiohttp.web service that relays a model's tokens to the browser as server-sent events.

``POST /generate`` with a JSON body is forwarded to a streaming endpoint
(InvokeEndpointWithResponseStream). Whatever the container streams (server-sent events from TGI,
vLLM or SGLang, JSON lines from LMI), ``stream.iter_text()`` decodes the generated text, and each
text delta goes out as one event of our own the moment it arrives, then ``done``::

    data: Once

    data:  upon
    ...
    event: done
    data: {"tokens": 48, "finish_reason": "eos_token"}

SSE in, SSE out: the container's own ``data:`` framing is decoded, never relayed inside ours. If the
browser goes away, the stream to SageMaker is closed at once rather than read to its end for
nobody.

Against the embedded local runtime and a canned TGI container (no AWS account needed)::

    python examples/streaming_proxy.py --local
    curl -N localhost:8080/generate -d '{"inputs": "tell me a story"}'

Against a real endpoint::

    ENDPOINT_NAME=my-llm AWS_REGION=us-east-1 python examples/streaming_proxy.py
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Sequence
from typing import Any

from _common import (
    ClientFactory,
    argument_parser,
    error_answer,
    pick_endpoint,
    request_id_header,
)
from aiohttp import web

from sagemaker_rt_aio import ResponseStream, SageMakerRuntimeClient, SageMakerRuntimeError
from sagemaker_rt_aio.local.demo_models import STORY, CannedLLM

CLIENT = web.AppKey("client", SageMakerRuntimeClient)
ENDPOINT_NAME = web.AppKey("endpoint_name", str)


def create_app(
    *, endpoint_name: str, client_factory: ClientFactory = SageMakerRuntimeClient
) -> web.Application:
    app = web.Application()
    app[ENDPOINT_NAME] = endpoint_name

    async def client_context(app: web.Application) -> AsyncIterator[None]:
        async with client_factory() as client:  # one client for the app's whole life
            app[CLIENT] = client
            yield

    app.cleanup_ctx.append(client_context)
    app.router.add_post("/generate", generate)
    return app


async def generate(request: web.Request) -> web.StreamResponse:
    try:
        payload = await request.json()
    except ValueError:
        return web.json_response(
            {"error": "BadRequest", "message": "the body must be JSON"}, status=400
        )
    events = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",  # tells nginx not to hold events back in its buffer
        }
    )
    try:
        async with request.app[CLIENT].invoke_endpoint_with_response_stream(
            endpoint_name=request.app[ENDPOINT_NAME],
            body=json.dumps(payload),
            content_type="application/json",
        ) as stream:
            # The model has started answering: from here on, errors are told inside the stream.
            events.headers.update(request_id_header(stream.response_metadata.request_id))
            await events.prepare(request)
            await relay(stream, events)
    except SageMakerRuntimeError as error:
        # Raised before the stream started (an invalid request, a ModelError...): a plain answer.
        return error_response(error)
    except ConnectionResetError:
        # The browser went away, so the next write failed. Leaving the `async with` block above
        # has already closed the stream to SageMaker; there is nobody left to answer. (With
        # aiohttp's handler_cancellation=True the handler is cancelled instead: the same exit.)
        pass
    return events


async def relay(stream: ResponseStream, events: web.StreamResponse) -> None:
    """One event per text delta of the model, each sent as soon as it arrives; then ``done``."""
    tokens = 0
    try:
        async for text in stream.iter_text():
            await events.write(sse(text))
            tokens += 1
    except SageMakerRuntimeError as error:
        # The stream broke after it started (ModelStreamError, a line that is not JSON...): say
        # so in the stream itself. The text so far was sent already (error.partial_text has it).
        await events.write(sse(str(error), event="error"))
    else:
        done: dict[str, Any] = {"tokens": tokens}
        if stream.finish_reason is not None:
            done["finish_reason"] = stream.finish_reason
        await events.write(sse(json.dumps(done), event="done"))


def sse(data: str, *, event: str | None = None) -> bytes:
    """One server-sent event. Each line of ``data`` needs its own ``data:`` field, or a token
    such as ``"\\n"`` would end the event early."""
    fields = [f"event: {event}"] if event else []
    fields += [f"data: {part}" for part in re.split(r"\r\n|\r|\n", data)]
    return ("\n".join(fields) + "\n\n").encode()


def error_response(error: SageMakerRuntimeError) -> web.Response:
    status, body, headers = error_answer(error)
    return web.json_response(body, status=status, headers=headers)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argument_parser("Relay a model's tokens as server-sent events.")
    args = parser.parse_args(argv)
    # A canned TGI container: native token events over SSE, cut into parts anywhere.
    storyteller = CannedLLM("tgi", STORY, delay=0.01, mean_part_bytes=48)
    endpoint_name, client_factory = pick_endpoint(
        args, "storyteller", storyteller, content_type=storyteller.content_type
    )
    app = create_app(endpoint_name=endpoint_name, client_factory=client_factory)
    web.run_app(app, host=args.host, port=args.port)


if __name__ == "__main__":
    main()
