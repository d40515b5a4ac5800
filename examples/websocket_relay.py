"""A WebSocket-to-SageMaker relay in aiohttp.web: each WebSocket becomes one bidirectional stream.

Browsers and voice front ends speak WebSocket; SageMaker's bidirectional streaming speaks HTTP/2
with signed events. This service joins them: every WebSocket message is sent to the endpoint as it
arrives (text as ``UTF8``, binary as ``BINARY``), and every answer of the model goes back on the
socket as it comes (``UTF8`` parts as text frames, the rest as binary), both ways at once. The app
owns one client for its whole life; a WebSocket that closes ends the stream's input; a stream that
fails sends one JSON error message, then closes the socket (code 1011).

Needs the ``bidi`` extra (``pip install 'sagemaker-rt-aio[bidi]'``). Against the embedded local
runtime and a demo model that answers each message in upper case (no AWS account needed)::

    python examples/websocket_relay.py --local
    # then, e.g. with websocat: websocat ws://127.0.0.1:8080/ws

Against a real endpoint::

    ENDPOINT_NAME=my-voice-endpoint AWS_REGION=us-east-1 python examples/websocket_relay.py
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

from _common import ClientFactory, argument_parser, describe
from aiohttp import WSMsgType, web

from sagemaker_rt_aio import (
    BidirectionalPart,
    BidirectionalStream,
    SageMakerRuntimeClient,
    SageMakerRuntimeError,
)
from sagemaker_rt_aio.local import LocalRuntime

CLIENT = web.AppKey("client", SageMakerRuntimeClient)
ENDPOINT_NAME = web.AppKey("endpoint_name", str)


def create_app(
    *, endpoint_name: str, client_factory: ClientFactory = SageMakerRuntimeClient
) -> web.Application:
    app = web.Application()
    app[ENDPOINT_NAME] = endpoint_name

    async def client_context(app: web.Application) -> AsyncIterator[None]:
        async with client_factory() as client:
            app[CLIENT] = client
            yield

    app.cleanup_ctx.append(client_context)
    app.router.add_get("/ws", relay)
    return app


async def relay(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(heartbeat=30.0)
    await ws.prepare(request)
    client = request.app[CLIENT]
    try:
        async with client.invoke_endpoint_with_bidirectional_stream(
            endpoint_name=request.app[ENDPOINT_NAME],
            model_query_string=request.query_string or None,
        ) as stream:
            inbound = asyncio.create_task(_socket_to_stream(ws, stream))
            try:
                async for part in stream:
                    await _send_part(ws, part)
                await inbound
            finally:
                inbound.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await inbound
    except SageMakerRuntimeError as error:
        status, message = describe(error)
        if not ws.closed:
            await ws.send_str(
                json.dumps({"error": type(error).__name__, "status": status, "message": message})
            )
            await ws.close(code=1011, message=b"model stream failed")
    await ws.close()
    return ws


async def _socket_to_stream(ws: web.WebSocketResponse, stream: BidirectionalStream) -> None:
    """Every message as it arrives; the socket's end is the input's end."""
    async for message in ws:
        if message.type == WSMsgType.TEXT:
            await stream.send(message.data)  # a str goes as UTF8
        elif message.type == WSMsgType.BINARY:
            await stream.send(message.data, data_type="BINARY")
    await stream.end_input()


async def _send_part(ws: web.WebSocketResponse, part: BidirectionalPart) -> None:
    if ws.closed:
        return
    if part.data_type == "UTF8":
        await ws.send_str(part.bytes.decode("utf-8", "replace"))
    else:
        await ws.send_bytes(part.bytes)


# -- the demo model and the command line ---------------------------------------------------------


async def shout(invocation: Any, inbound: AsyncIterator[BidirectionalPart]) -> Any:
    """A demo bidirectional model: each message back in upper case, as soon as it arrives."""
    async for part in inbound:
        if part.data_type == "UTF8":
            yield part.bytes.decode().upper()
        else:
            yield BidirectionalPart(part.bytes.upper(), "BINARY")


@contextlib.asynccontextmanager
async def local_client(endpoint_name: str) -> AsyncIterator[SageMakerRuntimeClient]:
    async with LocalRuntime() as runtime:
        runtime.add_bidirectional_endpoint(endpoint_name, shout)
        async with SageMakerRuntimeClient(
            region_name=runtime.region,
            endpoint_url=runtime.url,
            bidirectional_endpoint_url=runtime.bidirectional_url,
            aws_access_key_id="local",
            aws_secret_access_key="local",
        ) as client:
            yield client


def main(argv: Sequence[str] | None = None) -> None:
    args = argument_parser("Relay WebSockets to a SageMaker bidirectional stream.").parse_args(argv)
    if args.local or not args.endpoint_name:
        name = "shout"
        factory: ClientFactory = lambda: local_client(name)  # noqa: E731
    else:
        name, region = args.endpoint_name, args.region
        factory = lambda: SageMakerRuntimeClient(region_name=region)  # noqa: E731
    web.run_app(
        create_app(endpoint_name=name, client_factory=factory), host=args.host, port=args.port
    )


if __name__ == "__main__":
    main()
