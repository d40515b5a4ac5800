"""Shared test fixtures: a scripted aiohttp server on loopback that records what it receives."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from multidict import CIMultiDict

# No test may reach AWS or read the developer's own AWS configuration.
for _name in list(os.environ):
    if _name.startswith("AWS_"):
        del os.environ[_name]
os.environ["AWS_CONFIG_FILE"] = os.devnull
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
# Nor the machine's proxies: the client honours them as boto3 does, loopback traffic included.
for _name in list(os.environ):
    if _name.lower() in ("http_proxy", "https_proxy", "all_proxy", "no_proxy") or (
        _name == "BOTOCORE_TCP_KEEPALIVE"
    ):
        del os.environ[_name]


@dataclass
class Received:
    method: str
    raw_path: str
    headers: CIMultiDict[str]
    body: bytes


Handler = Callable[[web.Request, bytes], Awaitable[web.StreamResponse]]


@dataclass
class ScriptedServer:
    """Answers each request with the next handler of ``script`` (the last one repeats), or
    with ``default``; records every request in ``received``."""

    url: str = ""
    received: list[Received] = field(default_factory=list)
    script: list[Handler] = field(default_factory=list)
    default: Handler | None = None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.received.append(
            Received(request.method, request.raw_path, CIMultiDict(request.headers), body)
        )
        if self.script:
            handler = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        elif self.default is not None:
            handler = self.default
        else:
            return web.Response(body=body, content_type="application/octet-stream")
        return await handler(request, body)


@pytest.fixture
async def scripted_server() -> AsyncIterator[ScriptedServer]:
    server = ScriptedServer()
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_route("*", "/{tail:.*}", server.handle)
    # Handlers still running at teardown (a hung model) are cancelled soon: no test waits on them.
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    server.url = f"http://{host}:{port}"
    try:
        yield server
    finally:
        await runner.cleanup()


def json_error(status: int, code: str, message: str, **extra: object) -> Handler:
    """A handler answering with a service error in SageMaker's format."""

    async def handler(request: web.Request, body: bytes) -> web.StreamResponse:
        return web.json_response(
            {"message": message, **extra},
            status=status,
            headers={
                "x-amzn-ErrorType": f"{code}:http://internal.amazon.com/coral/com.amazon.sagemaker/",
                "x-amzn-RequestId": f"req-{code}",
            },
        )

    return handler


class HungProvider:
    """botocore's refresh function for credentials that expired long ago: it hangs until ``gate``
    is set (at most 10 s), or with ``fails`` fails at once; ``calls`` counts its calls."""

    def __init__(self, fails: bool = False) -> None:
        self.fails = fails
        self.gate = threading.Event()
        self.calls = 0

    def __call__(self) -> dict[str, str]:
        self.calls += 1
        if self.fails:
            raise RuntimeError("the credential provider failed")
        self.gate.wait(10)
        return {
            "access_key": "AKIDHUNG",
            "secret_key": "hung-secret",
            "token": "hung-token",
            "expiry_time": "2099-01-01T00:00:00Z",
        }


class FakeTime:
    """Drives a client's waits (retry backoff, polls for async results) instead of sleeping.

    Each wait the client asks for is recorded in ``sleeps`` and skipped; its clocks run ahead of
    real time by what it slept (and what ``advance`` added), so deadlines, budgets and credential
    expiry still pass, never before they would really have. ``on_sleep(n)`` runs at the n-th
    wait: the world changing meanwhile.
    """

    def __init__(self, on_sleep: Callable[[int], Awaitable[None]] | None = None) -> None:
        self.sleeps: list[float] = []
        self.on_sleep = on_sleep
        self.offset = 0.0

    @property
    def slept(self) -> float:
        return sum(self.sleeps)

    def clock(self) -> float:
        """The client's monotonic clock."""
        return time.monotonic() + self.offset

    def wall(self) -> float:
        """The client's wall clock (signature dates, credential expiry)."""
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.offset += seconds
        if self.on_sleep is not None:
            await self.on_sleep(len(self.sleeps))
        await asyncio.sleep(0)

    def install(self, client: Any) -> Any:
        """Drive ``client``'s waits (its private lifecycle's injection points)."""
        lifecycle = client._lifecycle
        lifecycle.sleep = self.sleep
        lifecycle.clock = self.clock
        return client

    def patch_wall_clock(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Drive the wall clock that dates signatures and times credential refreshes."""
        from sagemaker_rt_aio import _credentials, _signing

        monkeypatch.setattr(_signing, "_wall_clock", self.wall)
        monkeypatch.setattr(_credentials, "_wall_clock", self.wall)


class RuntimeClock:
    """A local runtime's clock and sleep (``LocalRuntime(clock=..., sleep=...)``) that move only
    when a fault sleeps: latency, cold starts, slow parts and delays take no real time."""

    def __init__(self) -> None:
        self.now = 1_000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)
