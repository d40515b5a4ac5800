"""The examples in ``examples/``, each run against a real ``LocalRuntime`` over loopback HTTP.

The examples are scripts, not a package: each is loaded from its path, with ``examples/`` on
``sys.path`` as ``python examples/<name>.py`` has it, so that the ``_common`` module they share
imports. The services get a client factory that points at the test's runtime and records the
clients it makes, so a test can check that the app made one client for its life and shut it down
at the end.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
import sys
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import aiohttp
import pytest
import uvicorn
from aiohttp import web

from sagemaker_rt_aio import RetryPolicy, SageMakerRuntimeClient
from sagemaker_rt_aio.local import ContainerError, Invocation, LocalRuntime
from sagemaker_rt_aio.local import demo_models as demo

pytestmark = pytest.mark.timeout(30)

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
REQUEST_ID_HEADER = "X-SageMaker-Request-Id"
STEP = 10.0  # seconds: the bound on any single wait of these tests


@cache
def example(name: str) -> ModuleType:
    """Import ``examples/<name>.py`` (once) as module ``examples_<name>``. The examples directory
    is on ``sys.path`` just while the example is imported, long enough for it to import
    ``_common`` (one module, then shared by all the examples as it is cached in ``sys.modules``)."""
    spec = importlib.util.spec_from_file_location(f"examples_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    sys.path.insert(0, str(EXAMPLES))
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[spec.name]
        raise
    finally:
        sys.path.remove(str(EXAMPLES))
    return module


# -- models behind the local runtime ------------------------------------------------------------


def broken(invocation: Invocation) -> bytes:
    raise ContainerError(500, "the model broke")


async def broken_stream(invocation: Invocation) -> AsyncIterator[bytes]:
    raise ContainerError(500, "the model broke before its first token")
    yield b""  # pragma: no cover - makes this an async generator


async def breaks_mid_stream(invocation: Invocation) -> AsyncIterator[bytes]:
    yield b'{"token": {"text": "Once "}}\n'
    yield b'{"token": {"text": "upon"}}\n'
    raise RuntimeError("out of memory")


class SlowStory:
    """A model streaming 40 tokens 10 ms apart, recording how many it sent and if it was stopped."""

    def __init__(self) -> None:
        self.sent = 0
        self.stopped = asyncio.Event()

    async def __call__(self, invocation: Invocation) -> AsyncIterator[bytes]:
        try:
            for i in range(40):
                await asyncio.sleep(0.01)
                self.sent += 1
                yield json.dumps({"token": {"text": f"t{i} "}}).encode() + b"\n"
        finally:
            self.stopped.set()


@pytest.fixture
async def runtime() -> AsyncIterator[LocalRuntime]:
    async with LocalRuntime() as runtime:
        runtime.add_endpoint("sentiment", demo.sentiment, content_type="application/json")
        runtime.add_endpoint("storyteller", demo.generate, content_type="application/jsonlines")
        runtime.add_endpoint("broken", broken)
        runtime.add_endpoint("broken-stream", broken_stream)
        runtime.add_endpoint("breaks-mid-stream", breaks_mid_stream)
        yield runtime


class ClientFactory:
    """Makes clients for the runtime, as an app's ``client_factory``, and keeps them."""

    def __init__(self, runtime: LocalRuntime) -> None:
        self.runtime = runtime
        self.clients: list[SageMakerRuntimeClient] = []

    def __call__(self) -> SageMakerRuntimeClient:
        client = SageMakerRuntimeClient(
            region_name=self.runtime.region,
            endpoint_url=self.runtime.url,
            aws_access_key_id="test",
            aws_secret_access_key="test",
            # Retry, but quickly: a 503 answer of the services must come within the test's time.
            retry_policy=RetryPolicy(
                max_attempts=2,
                base_delay=0.01,
                model_not_ready_budget=0.2,
                model_not_ready_base_delay=0.05,
            ),
        )
        self.clients.append(client)
        return client


@pytest.fixture
def factory(runtime: LocalRuntime) -> ClientFactory:
    return ClientFactory(runtime)


@asynccontextmanager
async def aiohttp_app(
    module: ModuleType, endpoint_name: str, factory: ClientFactory
) -> AsyncIterator[aiohttp.ClientSession]:
    """An example's aiohttp app served on 127.0.0.1 as ``web.run_app`` serves it (a real
    ``AppRunner``: aiohttp's test server would cancel handlers on disconnect, run_app does not),
    and an HTTP client session for it."""
    app = module.create_app(endpoint_name=endpoint_name, client_factory=factory)
    runner = web.AppRunner(app, shutdown_timeout=1.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        async with aiohttp.ClientSession(f"http://{host}:{port}") as session:
            yield session
    finally:
        await runner.cleanup()


def errors_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


# -- examples/_common.py: the command line the examples share ---------------------------------


async def test_command_line_picks_the_demo_model_or_the_named_endpoint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    service = example("aiohttp_service")  # its main() does this with the two from _common
    monkeypatch.delenv("ENDPOINT_NAME", raising=False)

    def pick(argv: list[str]) -> tuple[str, Any]:
        args = service.argument_parser("test").parse_args(argv)
        picked: tuple[str, Any] = service.pick_endpoint(
            args, "sentiment", demo.sentiment, content_type="application/json"
        )
        return picked

    # --local, or no endpoint name at all: the demo model, served by a local runtime.
    assert pick(["--local", "--endpoint-name", "real"])[0] == "sentiment"
    name, client_factory = pick([])
    assert name == "sentiment"
    async with client_factory() as client:
        result = await client.invoke_endpoint(
            endpoint_name=name, body=b'{"inputs": "I love it"}', content_type="application/json"
        )
        assert json.loads(result.body)["label"] == "POSITIVE"

    # Otherwise the named endpoint (--endpoint-name, or $ENDPOINT_NAME), in --region.
    monkeypatch.setenv("ENDPOINT_NAME", "from-env")
    name, client_factory = pick(["--region", "eu-west-1"])
    assert name == "from-env"
    async with client_factory() as client:
        assert client.region_name == "eu-west-1"
    assert pick(["--endpoint-name", "from-flag", "--region", "eu-west-1"])[0] == "from-flag"


# -- examples/aiohttp_service.py ----------------------------------------------------------------


async def test_aiohttp_service_forwards_predict(
    runtime: LocalRuntime, factory: ClientFactory
) -> None:
    service = example("aiohttp_service")
    async with aiohttp_app(service, "sentiment", factory) as http:
        for text, label in [("I love it", "POSITIVE"), ("slow and bad", "NEGATIVE")]:
            response = await http.post("/predict", json={"inputs": text})
            assert response.status == 200
            assert (await response.json())["label"] == label
            # The request id is the one the runtime gave the call.
            assert response.headers[REQUEST_ID_HEADER] == runtime.invocations()[-1].request_id
        # One client for the app's life, open while it serves...
        assert len(factory.clients) == 1
        assert not factory.clients[0].closed
    # ...and shut down with the app.
    assert factory.clients[0].closed


@pytest.mark.parametrize(
    ("endpoint_name", "body", "status", "message"),
    [
        pytest.param("broken", b'{"inputs": 1}', 502, "the model broke", id="model-error"),
        pytest.param("no such endpoint!", b"{}", 400, "endpoint_name", id="invalid-name"),
        pytest.param("missing", b"{}", 400, "not found", id="unknown-endpoint"),
        pytest.param("sentiment", b'{"inputs":', 400, "JSON", id="body-not-json"),
    ],
)
async def test_aiohttp_service_maps_errors(
    factory: ClientFactory, endpoint_name: str, body: bytes, status: int, message: str
) -> None:
    async with aiohttp_app(example("aiohttp_service"), endpoint_name, factory) as http:
        response = await http.post("/predict", data=body)
        assert response.status == status
        assert message in await response.text()


async def test_aiohttp_service_passes_on_the_model_error(
    runtime: LocalRuntime, factory: ClientFactory
) -> None:
    async with aiohttp_app(example("aiohttp_service"), "broken", factory) as http:
        response = await http.post("/predict", json={"inputs": "x"})
        assert response.status == 502
        assert await response.json() == {"error": "ModelError", "message": "the model broke"}
        assert response.headers[REQUEST_ID_HEADER] == runtime.invocations()[-1].request_id


@pytest.mark.parametrize("fault", ["service-unavailable", "cold-start", "connection-reset"])
async def test_aiohttp_service_answers_503_when_worth_retrying(
    runtime: LocalRuntime, factory: ClientFactory, fault: str
) -> None:
    if fault == "service-unavailable":
        runtime.fail_next("sentiment", 2, error="ServiceUnavailable", status=503)
    elif fault == "cold-start":
        runtime.cold_start("sentiment", 30)
    else:
        runtime.reset_connection_next("sentiment")
    async with aiohttp_app(example("aiohttp_service"), "sentiment", factory) as http:
        response = await http.post("/predict", json={"inputs": "x"})
        assert response.status == 503
        if fault != "connection-reset":  # no answer, so no request id
            assert REQUEST_ID_HEADER in response.headers
    if fault == "service-unavailable":
        assert runtime.call_count("sentiment") == 2  # the client retried before giving up


# -- examples/fastapi_service.py ----------------------------------------------------------------


@asynccontextmanager
async def uvicorn_serving(app: Any) -> AsyncIterator[str]:
    """Serve an ASGI app with uvicorn on 127.0.0.1 (a free port) in this event loop; yields its
    URL. Leaving the block shuts the server down, lifespan included."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="on", log_level="warning")
    )
    task = asyncio.create_task(server.serve())

    async def started() -> None:
        while not server.started:
            assert not task.done(), "uvicorn did not start"
            await asyncio.sleep(0.01)

    try:
        await asyncio.wait_for(started(), STEP)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, STEP)


async def test_fastapi_service_forwards_predict(
    runtime: LocalRuntime, factory: ClientFactory
) -> None:
    app = example("fastapi_service").create_app(endpoint_name="sentiment", client_factory=factory)
    async with uvicorn_serving(app) as url, aiohttp.ClientSession(url) as http:
        async with http.post("/predict", json={"inputs": "I love it"}) as response:
            assert response.status == 200
            assert (await response.json())["label"] == "POSITIVE"
            assert response.headers[REQUEST_ID_HEADER] == runtime.invocations()[-1].request_id
        async with http.post("/predict", data=b"[1, 2]") as response:
            assert response.status == 422  # FastAPI's own answer to a body that is not an object
        assert len(factory.clients) == 1
        assert not factory.clients[0].closed
    # The lifespan shut the client down when uvicorn stopped.
    assert factory.clients[0].closed


@pytest.mark.parametrize(
    ("endpoint_name", "status", "message"),
    [
        pytest.param("broken", 502, "the model broke", id="model-error"),
        pytest.param("no such endpoint!", 400, "endpoint_name", id="invalid-name"),
        pytest.param("missing", 400, "not found", id="unknown-endpoint"),
    ],
)
async def test_fastapi_service_maps_errors(
    factory: ClientFactory, endpoint_name: str, status: int, message: str
) -> None:
    app = example("fastapi_service").create_app(endpoint_name=endpoint_name, client_factory=factory)
    async with (
        uvicorn_serving(app) as url,
        aiohttp.ClientSession(url) as http,
        http.post("/predict", json={"inputs": "x"}) as response,
    ):
        assert response.status == status
        assert message in (await response.json())["message"]
        if endpoint_name != "no such endpoint!":  # nothing was sent: no request id
            assert REQUEST_ID_HEADER in response.headers
    assert factory.clients[0].closed


# -- examples/streaming_proxy.py ----------------------------------------------------------------


async def read_events(
    response: aiohttp.ClientResponse,
) -> AsyncGenerator[tuple[str, str], None]:
    """Parse a text/event-stream into (event name, data) pairs as the events arrive."""
    name = "message"
    data: list[str] = []
    async for raw in response.content:
        line = raw.decode().rstrip("\r\n")
        if not line:
            yield name, "\n".join(data)
            name, data = "message", []
        elif line.startswith("event:"):
            name = line[6:].removeprefix(" ")
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))


async def test_streaming_proxy_relays_tokens_as_events(
    runtime: LocalRuntime, factory: ClientFactory
) -> None:
    async with aiohttp_app(example("streaming_proxy"), "storyteller", factory) as http:
        response = await http.post("/generate", json={"inputs": "a story"})
        assert response.status == 200
        assert response.content_type == "text/event-stream"
        assert response.headers[REQUEST_ID_HEADER] == runtime.invocations()[-1].request_id
        events = [event async for event in read_events(response)]
    tokens = [data for name, data in events if name == "message"]
    assert "".join(tokens) == demo.STORY
    assert events[-1] == ("done", json.dumps({"tokens": len(tokens)}))
    assert factory.clients[0].closed


async def test_streaming_proxy_stops_upstream_when_client_disconnects(
    runtime: LocalRuntime, factory: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    story = SlowStory()
    runtime.add_endpoint("slow-story", story)
    async with aiohttp_app(example("streaming_proxy"), "slow-story", factory) as http:
        response = await http.post("/generate", json={"inputs": "a story"})
        events = read_events(response)
        for _ in range(3):
            await anext(events)
        await events.aclose()
        response.close()  # the browser goes away mid-stream
        await asyncio.wait_for(story.stopped.wait(), STEP)  # the model's stream was closed...
        assert story.sent < 40  # ...long before its end

        # The proxy still serves, and nothing was logged as an error.
        response = await http.post("/generate", json={"inputs": "again"})
        events_again = [event async for event in read_events(response)]
        assert events_again[-1] == ("done", json.dumps({"tokens": 40}))
    assert errors_logged(caplog) == []


async def test_streaming_proxy_reports_model_errors(factory: ClientFactory) -> None:
    proxy = example("streaming_proxy")
    # A model that fails before its first token: an ordinary HTTP error, no event stream.
    async with aiohttp_app(proxy, "broken-stream", factory) as http:
        response = await http.post("/generate", json={"inputs": "x"})
        assert response.status == 502
        assert "the model broke before its first token" in (await response.json())["message"]
    # A model that fails mid-stream: the events so far, then an error event.
    async with aiohttp_app(proxy, "breaks-mid-stream", factory) as http:
        response = await http.post("/generate", json={"inputs": "x"})
        assert response.status == 200
        events = [event async for event in read_events(response)]
    assert events[:2] == [("message", "Once "), ("message", "upon")]
    assert events[2][0] == "error"
    assert "out of memory" in events[2][1]
    assert len(events) == 3


@pytest.mark.parametrize("fmt", demo.FORMATS)
async def test_streaming_proxy_decodes_every_container_format(
    runtime: LocalRuntime, factory: ClientFactory, fmt: str
) -> None:
    # SSE in (TGI, OpenAI-style) or JSON lines in (LMI): plain text events out, never the
    # container's own framing inside ours ("data: data: ...").
    llm = demo.CannedLLM(fmt, seed=5)
    runtime.add_endpoint(f"llm-{fmt}", llm, content_type=llm.content_type)
    async with aiohttp_app(example("streaming_proxy"), f"llm-{fmt}", factory) as http:
        response = await http.post("/generate", json={"inputs": "x"})
        events = [event async for event in read_events(response)]
    tokens = [data for name, data in events if name == "message"]
    assert "".join(tokens).replace("\r", "\n") == llm.text.replace("\r\n", "\n")
    assert not any(token.startswith(("data:", "{")) for token in tokens)
    assert events[-1][0] == "done"


def test_sse_keeps_line_breaks_inside_a_token() -> None:
    sse = example("streaming_proxy").sse
    assert sse("\n") == b"data: \ndata: \n\n"
    assert sse("a\r\nb", event="x") == b"event: x\ndata: a\ndata: b\n\n"


# -- examples/async_inference.py ----------------------------------------------------------------
# main() runs its own event loop (asyncio.run), so these tests are plain functions.


def test_async_inference_local(capsys: pytest.CaptureFixture[str]) -> None:
    assert example("async_inference").main(["--local"]) == 0
    out = capsys.readouterr().out.splitlines()
    expected = json.dumps({"words": 15, "summary": example("async_inference").TEXT[:40] + "..."})
    assert out[0] == f"invoke_endpoint_async_and_wait: {expected}"
    assert out[1].startswith("queued ") and "s3://" in out[1]
    assert out[2] == f"wait_for_async_result: {expected}"


def test_async_inference_reports_errors(capsys: pytest.CaptureFixture[str]) -> None:
    # The tests' environment has no AWS region: one line on stderr and exit code 1.
    assert example("async_inference").main(["--endpoint-name", "my-endpoint"]) == 1
    assert capsys.readouterr().err.startswith("error: No region")


# -- examples/openai_sdk.py -----------------------------------------------------------------------


def test_openai_sdk_example_local(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The openai SDK with our bearer token, against a local runtime that verifies it.
    monkeypatch.setattr(example("openai_sdk"), "LOCAL_DELAY", 0)
    assert example("openai_sdk").main(["--local"]) == 0
    out = capsys.readouterr().out
    assert f"openai, whole: {demo.LLM_TEXT!r}" in out
    assert out.count("Streaming tokens, café-style") == 3  # whole, openai stream, our stream
    assert "finish_reason=stop usage=TokenUsage(prompt_tokens=7" in out


def test_openai_sdk_example_reports_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert example("openai_sdk").main(["--endpoint-name", "my-llm"]) == 1  # no region here
    assert capsys.readouterr().err.startswith("error: No region")
