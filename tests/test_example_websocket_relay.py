"""examples/websocket_relay.py: WebSocket messages to a bidirectional stream and back.

The relay runs on a real aiohttp server on 127.0.0.1; its client talks HTTP/2 to a local runtime
(signatures verified); the test is an aiohttp WebSocket client.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import aiohttp
import botocore.credentials
import pytest
from aiohttp import web

from sagemaker_rt_aio import BidirectionalPart, RetryPolicy, SageMakerRuntimeClient
from sagemaker_rt_aio.local import ContainerError, LocalRuntime

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
STEP = 10.0


def load_relay() -> ModuleType:
    name = "examples_websocket_relay"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / "websocket_relay.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    sys.path.insert(0, str(EXAMPLES))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(EXAMPLES))
    return module


async def broken(invocation: Any, inbound: AsyncIterator[BidirectionalPart]) -> Any:
    async for part in inbound:
        yield part.bytes
        raise ContainerError(500, "lost the audio device")


@pytest.fixture
async def relay_url() -> AsyncIterator[str]:
    relay = load_relay()
    credentials = botocore.credentials.Credentials("AKIDWS", "ws-secret")
    async with LocalRuntime(credentials=credentials) as runtime:
        runtime.add_bidirectional_endpoint("shout", relay.shout)
        runtime.add_bidirectional_endpoint("broken", broken)

        @asynccontextmanager
        async def factory() -> AsyncIterator[SageMakerRuntimeClient]:
            async with SageMakerRuntimeClient(
                "us-east-1",
                endpoint_url=runtime.url,
                bidirectional_endpoint_url=runtime.bidirectional_url,
                aws_access_key_id="AKIDWS",
                aws_secret_access_key="ws-secret",
                retry_policy=RetryPolicy.none(),
            ) as client:
                yield client

        app = web.Application()
        for name in ("shout", "broken", "missing"):
            sub = relay.create_app(endpoint_name=name, client_factory=factory)
            app.add_subapp(f"/{name}/", sub)
        runner = web.AppRunner(app, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            await runner.cleanup()


async def test_messages_are_relayed_both_ways(relay_url: str) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(f"{relay_url}/shout/ws") as ws,
    ):
        for word in ("hello", "relay"):
            await ws.send_str(word)
            assert await ws.receive_str(timeout=STEP) == word.upper()
        await ws.send_bytes(b"\x01abc")
        assert await ws.receive_bytes(timeout=STEP) == b"\x01ABC"
        await ws.close()


async def test_model_failure_mid_stream_is_one_error_message(relay_url: str) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(f"{relay_url}/broken/ws") as ws,
    ):
        await ws.send_str("first")
        assert await ws.receive_bytes(timeout=STEP) == b"first"
        error = json.loads(await ws.receive_str(timeout=STEP))
        assert error["error"] == "ModelStreamError"
        assert "lost the audio device" in error["message"]
        closing = await ws.receive(timeout=STEP)
        assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        assert ws.close_code == 1011


async def test_unknown_endpoint_is_reported_on_the_socket(relay_url: str) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(f"{relay_url}/missing/ws") as ws,
    ):
        await ws.send_str("anyone?")
        error = json.loads(await ws.receive_str(timeout=STEP))
        assert error == {
            "error": "InputValidationError",
            "status": 400,
            "message": error["message"],
        }
        assert "missing" in error["message"]
