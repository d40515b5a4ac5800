"""Container endpoints: the local runtime in front of model servers speaking SageMaker's container
contract.

The real peer is MLflow's scoring server (``mlflow.pyfunc.scoring_server``, the server behind
``mlflow models serve``), started once per session in a subprocess on a free loopback port for a
``python_function`` model written here as plain files (no MLflow import in the test process). A
scripted container (``aiohttp.web``) covers what MLflow cannot show: headers as received, errors,
timing, streamed answers and broken streams. Both are driven through this library's client and
boto3.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import botocore.config
import botocore.exceptions
import pytest
from aiohttp import web

from sagemaker_rt_aio import (
    ModelError,
    ModelStreamError,
    RetryPolicy,
    SageMakerRuntimeClient,
    SageMakerRuntimeError,
    ValidationError,
)
from sagemaker_rt_aio.local import Invocation, LocalRuntime
from sagemaker_rt_aio.local._container import ContainerBackend

pytestmark = pytest.mark.timeout(60)

MLFLOW_START_TIMEOUT = 45.0
ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------- MLflow server


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _write_pyfunc_model(path: Path) -> None:
    """A python_function model as files: MLmodel naming a loader module in ``code/``."""
    (path / "code").mkdir(parents=True)
    (path / "MLmodel").write_text(
        textwrap.dedent(
            f"""\
            flavors:
              python_function:
                loader_module: doubler_model
                code: code
                python_version: {sys.version_info.major}.{sys.version_info.minor}.{sys.version_info.micro}
            """
        )
    )
    (path / "code" / "doubler_model.py").write_text(
        textwrap.dedent(
            """\
            class Doubler:
                def predict(self, model_input, params=None):
                    return model_input * 2


            def _load_pyfunc(path):
                return Doubler()
            """
        )
    )


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """MLflow's scoring server for the doubling model: its URL. Stopped after the session."""
    root = tmp_path_factory.mktemp("mlflow")
    model = root / "model"
    _write_pyfunc_model(model)
    port = _free_port()
    env = {
        **os.environ,
        "__pyfunc_model_path__": str(model),
        "MLFLOW_TRACKING_URI": str(root),
        # Traffic stays on loopback: no usage telemetry from the server.
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "true",
    }
    log = (root / "server.log").open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
            "mlflow.pyfunc.scoring_server.app:app",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=root,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + MLFLOW_START_TIMEOUT
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"MLflow exited: {(root / 'server.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(url + "/ping", timeout=1) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("MLflow's scoring server did not answer /ping in time")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


# ------------------------------------------------------------------------------ scripted container


@dataclass
class Container:
    """A scripted model server: ``/ping`` answers ``ping_status``; ``/invocations`` obeys the
    JSON command in the body."""

    url: str = ""
    ping_status: int = 200
    pings: int = 0
    received: list[dict[str, Any]] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def ping(self, request: web.Request) -> web.Response:
        self.pings += 1
        if self.ping_status == 0:  # a container that never answers its health check
            await asyncio.Event().wait()
        return web.Response(status=self.ping_status, text="\n")

    async def invocations(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.received.append({"path": request.path, "headers": dict(request.headers), "body": body})
        self.arrived.set()
        try:
            command = json.loads(body)
        except ValueError:
            command = {}
        if not isinstance(command, dict):
            command = {}
        if "status" in command:
            return web.Response(status=command["status"], text=command.get("message", ""))
        if command.get("hang"):
            await asyncio.Event().wait()
        if command.get("endless"):
            response = web.StreamResponse()
            response.enable_chunked_encoding()
            await response.prepare(request)
            while True:  # until the runtime hangs up
                await response.write(b"x" * 65536)
        if "stream" in command:
            response = web.StreamResponse(
                headers={"Content-Type": "text/plain", "X-Amzn-SageMaker-Custom-Attributes": "s=1"}
            )
            response.enable_chunked_encoding()
            await response.prepare(request)
            for i, part in enumerate(command["stream"]):
                await response.write(part.encode())
                if command.get("wait_after") == i:
                    await self.release.wait()
                if command.get("break_after") == i:
                    assert request.transport is not None
                    request.transport.abort()
                    return response
                if command.get("hang_after") == i:
                    await asyncio.Event().wait()
            await response.write_eof()
            return response
        headers = {"X-Amzn-SageMaker-Custom-Attributes": "answered=yes"}
        session = request.headers.get("X-Amzn-SageMaker-Session-Id")
        if session == "NEW_SESSION":  # a stateful container names its sessions
            headers["X-Amzn-SageMaker-New-Session-Id"] = "c-123; Expires=2030-01-01T00:00:00Z"
        elif session is not None and command.get("close"):
            headers["X-Amzn-SageMaker-Closed-Session-Id"] = session
        return web.json_response(
            {"path": request.path, "headers": dict(request.headers), "body": body.decode()},
            headers=headers,
        )


@pytest.fixture
async def container() -> AsyncIterator[Container]:
    state = Container()
    app = web.Application()
    app.router.add_get("/ping", state.ping)
    app.router.add_post("/invocations", state.invocations)
    app.router.add_post("/openai/v1/chat/completions", state.invocations)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    state.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    yield state
    state.release.set()
    await runner.cleanup()


# ---------------------------------------------------------------------------------------- clients


@pytest.fixture
async def runtime() -> AsyncIterator[LocalRuntime]:
    async with LocalRuntime() as rt:
        yield rt


MakeClient = Callable[..., SageMakerRuntimeClient]


@pytest.fixture
async def make_client() -> AsyncIterator[MakeClient]:
    clients: list[SageMakerRuntimeClient] = []

    def make(runtime: LocalRuntime, **kwargs: Any) -> SageMakerRuntimeClient:
        kwargs.setdefault("retry_policy", RetryPolicy.none())
        client = SageMakerRuntimeClient(
            runtime.region,
            endpoint_url=runtime.url,
            aws_access_key_id="AKIDCONTAINERTEST",
            aws_secret_access_key="container-test-secret",
            aws_session_token="container-test-token",
            **kwargs,
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.shutdown()


@contextlib.contextmanager
def boto3_client(runtime: LocalRuntime) -> Iterator[Any]:
    client = boto3.client(
        "sagemaker-runtime",
        region_name=runtime.region,
        endpoint_url=runtime.url,
        aws_access_key_id="AKIDCONTAINERTEST",
        aws_secret_access_key="container-test-secret",
        config=botocore.config.Config(
            retries={"total_max_attempts": 1}, connect_timeout=5, read_timeout=10
        ),
    )
    try:
        yield client
    finally:
        client.close()


async def stream_parts(client: SageMakerRuntimeClient, **kwargs: Any) -> list[bytes]:
    async with client.invoke_endpoint_with_response_stream(**kwargs) as stream:
        return [part.bytes async for part in stream]


# ------------------------------------------------------------------------------------ MLflow tests


async def test_mlflow_through_this_client(
    mlflow_server: str, runtime: LocalRuntime, make_client: MakeClient
) -> None:
    endpoint = await runtime.add_container_endpoint("doubler", mlflow_server)
    assert endpoint.status == "InService"
    client = make_client(runtime)

    result = await client.invoke_endpoint(
        endpoint_name="doubler",
        body=json.dumps({"inputs": [[1, 2], [3, 4]]}).encode(),
        content_type="application/json",
        accept="application/json",
    )
    assert json.loads(result.body) == {"predictions": [[2, 4], [6, 8]]}
    assert result.content_type == "application/json"

    csv = await client.invoke_endpoint(
        endpoint_name="doubler", body=b"a,b\n1,2\n", content_type="text/csv"
    )
    assert json.loads(csv.body) == {"predictions": [{"a": 2, "b": 4}]}

    # MLflow refuses a body without a known input field with 400: the service's ModelError.
    with pytest.raises(ModelError) as caught:
        await client.invoke_endpoint(
            endpoint_name="doubler", body=b'{"bogus": 1}', content_type="application/json"
        )
    assert caught.value.status_code == 424
    assert caught.value.original_status_code == 400
    assert "BAD_REQUEST" in (caught.value.original_message or "")

    parts = await stream_parts(
        client,
        endpoint_name="doubler",
        body=json.dumps({"inputs": [5]}).encode(),
        content_type="application/json",
    )
    assert json.loads(b"".join(parts)) == {"predictions": [10]}

    calls = runtime.calls("doubler")
    assert [call.operation for call in calls] == [
        "InvokeEndpoint",
        "InvokeEndpoint",
        "InvokeEndpoint",
        "InvokeEndpointWithResponseStream",
    ]
    assert [call.content_type for call in calls] == ["application/json", "text/csv"] + [
        "application/json"
    ] * 2
    assert calls[1].body == b"a,b\n1,2\n"


async def test_mlflow_through_boto3(mlflow_server: str, runtime: LocalRuntime) -> None:
    await runtime.add_container_endpoint("doubler", mlflow_server)

    def run() -> tuple[Any, Any]:
        with boto3_client(runtime) as client:
            ok = client.invoke_endpoint(
                EndpointName="doubler",
                Body=json.dumps({"inputs": [1.5]}),
                ContentType="application/json",
            )
            answer = json.loads(ok["Body"].read())
            with pytest.raises(botocore.exceptions.ClientError) as caught:
                client.invoke_endpoint(
                    EndpointName="doubler", Body=b"{}", ContentType="application/json"
                )
            stream = client.invoke_endpoint_with_response_stream(
                EndpointName="doubler",
                Body=json.dumps({"inputs": [2]}),
                ContentType="application/json",
            )
            streamed = b"".join(event["PayloadPart"]["Bytes"] for event in stream["Body"])
            return (answer, caught.value.response), json.loads(streamed)

    (answer, error), streamed = await asyncio.to_thread(run)
    assert answer == {"predictions": [3.0]}
    assert error["Error"]["Code"] == "ModelError"
    assert error["OriginalStatusCode"] == 400
    assert streamed == {"predictions": [4]}
    assert len(runtime.calls("doubler")) == 3


async def test_mlflow_async_invocation(
    mlflow_server: str, runtime: LocalRuntime, make_client: MakeClient
) -> None:
    await runtime.add_container_endpoint("doubler", mlflow_server)
    client = make_client(runtime)
    location = runtime.put_object("inputs", "batch.json", json.dumps({"inputs": [21]}))
    accepted = await client.invoke_endpoint_async(
        endpoint_name="doubler", input_location=location, content_type="application/json"
    )
    await runtime.wait_async_idle(timeout=20)
    assert accepted.output_location is not None
    output = runtime.get_location(accepted.output_location)
    assert output is not None and json.loads(output) == {"predictions": [42]}
    [call] = runtime.calls("doubler")
    assert call.operation == "InvokeEndpointAsync"
    assert call.inference_id == accepted.inference_id


# ---------------------------------------------------------------------------- scripted container


async def test_headers_the_container_receives(
    container: Container, runtime: LocalRuntime, make_client: MakeClient
) -> None:
    await runtime.add_container_endpoint("scripted", container.url)
    client = make_client(runtime)
    result = await client.invoke_endpoint(
        endpoint_name="scripted",
        body=b'{"x": 1}',
        content_type="application/json",
        accept="application/json",
        custom_attributes="trace=abc",
        target_model="model-a.tar.gz",
        target_variant="AllTraffic",
        inference_id="inf-1",
        enable_explanations="`true`",
    )
    assert result.custom_attributes == "answered=yes"
    seen = {k.lower(): v for k, v in json.loads(result.body)["headers"].items()}
    assert seen["content-type"] == "application/json"
    assert seen["accept"] == "application/json"
    assert seen["x-amzn-sagemaker-custom-attributes"] == "trace=abc"
    assert seen["x-amzn-sagemaker-target-model"] == "model-a.tar.gz"
    assert seen["x-amzn-sagemaker-inference-id"] == "inf-1"
    assert seen["x-amzn-sagemaker-enable-explanations"] == "`true`"
    # The caller's credentials stop at the runtime, for containers and handlers alike.
    for secret in ("authorization", "x-amz-security-token", "x-amz-date"):
        assert secret not in seen
    [call] = runtime.calls("scripted")
    assert "Authorization" not in call.headers
    assert "X-Amz-Security-Token" not in call.headers
    assert call.custom_attributes == "trace=abc"

    # The streaming operation's accept arrives as the container's Accept.
    await stream_parts(
        client, endpoint_name="scripted", body=b"{}", content_type="text/plain", accept="x/y"
    )
    assert container.received[-1]["headers"]["Accept"] == "x/y"
    assert container.received[-1]["headers"]["Content-Type"] == "text/plain"


async def test_async_invocation_reaches_the_container(
    container: Container, runtime: LocalRuntime, make_client: MakeClient
) -> None:
    await runtime.add_container_endpoint("scripted", container.url)
    client = make_client(runtime)
    accepted = await client.invoke_endpoint_async(
        endpoint_name="scripted",
        input_location=runtime.put_object(
            "inputs", "x.json", b'{"status": 503, "message": "busy"}'
        ),
        content_type="application/json",
        accept="application/json",
        custom_attributes="batch=7",
        inference_id="async-1",
    )
    await runtime.wait_async_idle(timeout=10)
    seen = container.received[-1]["headers"]
    assert seen["X-Amzn-SageMaker-Inference-Id"] == "async-1"
    assert seen["X-Amzn-SageMaker-Custom-Attributes"] == "batch=7"
    assert seen["Content-Type"] == "application/json"
    assert seen["Accept"] == "application/json"
    # The container's 503 is the job's failure, written where the service writes it.
    assert accepted.failure_location is not None
    failure = runtime.get_location(accepted.failure_location)
    assert (
        failure is not None
        and b'Received server error (503) from primary with message "busy"' in failure
    )


async def test_stateful_sessions_use_the_containers_ids(
    container: Container, runtime: LocalRuntime, make_client: MakeClient
) -> None:
    await runtime.add_container_endpoint("scripted", container.url)
    client = make_client(runtime)
    opened = await client.invoke_endpoint(
        endpoint_name="scripted", body=b"{}", session_id="NEW_SESSION"
    )
    assert opened.new_session_id is not None
    assert opened.new_session_id.startswith("c-123")
    again = await client.invoke_endpoint(endpoint_name="scripted", body=b"{}", session_id="c-123")
    assert json.loads(again.body)["headers"]["X-Amzn-SageMaker-Session-Id"] == "c-123"
    closed = await client.invoke_endpoint(
        endpoint_name="scripted", body=b'{"close": true}', session_id="c-123"
    )
    assert closed.closed_session_id == "c-123"
    with pytest.raises(ValidationError):  # closed: the runtime refuses it now
        await client.invoke_endpoint(endpoint_name="scripted", body=b"{}", session_id="c-123")


async def test_not_in_service_until_ping_answers(
    container: Container, runtime: LocalRuntime, make_client: MakeClient
) -> None:
    container.ping_status = 503
    endpoint = runtime.add_container_endpoint("scripted", container.url, ping_interval=0.01)
    client = make_client(runtime)
    with pytest.raises(ValidationError) as caught:
        await client.invoke_endpoint(endpoint_name="scripted", body=b"{}")
    assert "not in service" in str(caught.value)
    assert endpoint.status == "Creating"
    assert container.received == []
    assert runtime.calls("scripted") == []
    with pytest.raises(TimeoutError, match="HTTP 503"):
        await endpoint.wait_in_service(timeout=0.1)
    assert container.pings >= 2  # the background poll keeps asking

    container.ping_status = 200
    await endpoint.wait_in_service(timeout=10)
    assert endpoint.status == "InService"
    result = await client.invoke_endpoint(endpoint_name="scripted", body=b"{}")
    assert json.loads(result.body)["path"] == "/invocations"
    assert len(runtime.calls("scripted")) == 1


async def test_ping_that_never_answers(
    container: Container, runtime: LocalRuntime, make_client: MakeClient
) -> None:
    container.ping_status = 0
    endpoint = runtime.add_container_endpoint("scripted", container.url, ping_timeout=0.05)
    with pytest.raises(ValidationError):
        await make_client(runtime).invoke_endpoint(endpoint_name="scripted", body=b"{}")
    assert endpoint.status == "Creating"
    assert container.received == []


async def test_first_call_checks_health_itself(
    container: Container, runtime: LocalRuntime, make_client: MakeClient
) -> None:
    runtime.add_container_endpoint("scripted", container.url, ping_interval=30)
    result = await make_client(runtime).invoke_endpoint(endpoint_name="scripted", body=b"{}")
    assert result.body
    assert container.pings >= 1


async def test_unreachable_container_is_not_in_service(
    runtime: LocalRuntime, make_client: MakeClient
) -> None:
    endpoint = runtime.add_container_endpoint("gone", f"http://127.0.0.1:{_free_port()}")
    with pytest.raises(ValidationError):
        await make_client(runtime).invoke_endpoint(endpoint_name="gone", body=b"{}")
    with pytest.raises(TimeoutError, match="ClientConnectorError"):
        await endpoint.wait_in_service(timeout=0.2)


def test_container_url_is_validated() -> None:
    runtime = LocalRuntime()
    for bad in ("ftp://host", "127.0.0.1:8080", "http://", "http://h/?q=1"):
        with pytest.raises(ValueError):
            runtime.add_container_endpoint("x", bad)
    with pytest.raises(ValueError):
        runtime.add_container_endpoint("bad name", "http://127.0.0.1:1")


@pytest.mark.parametrize("status", [400, 404, 500, 503])
async def test_container_errors_are_model_errors(
    status: int, container: Container, runtime: LocalRuntime, make_client: MakeClient
) -> None:
    await runtime.add_container_endpoint("scripted", container.url)
    client = make_client(runtime)
    body = json.dumps({"status": status, "message": f"it said {status}"}).encode()
    with pytest.raises(ModelError) as caught:
        await client.invoke_endpoint(endpoint_name="scripted", body=body)
    assert caught.value.status_code == 424
    assert caught.value.original_status_code == status
    assert caught.value.original_message == f"it said {status}"
    kind = "client" if status < 500 else "server"
    assert f"Received {kind} error ({status}) from primary" in str(caught.value)
    # The streaming operation gets the same HTTP-level ModelError.
    with pytest.raises(ModelError) as streamed:
        await stream_parts(client, endpoint_name="scripted", body=body)
    assert streamed.value.original_status_code == status


async def test_model_timeout_against_a_hung_container(
    container: Container, make_client: MakeClient
) -> None:
    async with LocalRuntime(model_timeout=0.2) as runtime:
        await runtime.add_container_endpoint("scripted", container.url)
        client = make_client(runtime)
        with pytest.raises(ModelError) as caught:
            await client.invoke_endpoint(endpoint_name="scripted", body=b'{"hang": true}')
        assert caught.value.original_status_code == 0
        assert "timed out" in str(caught.value)
        # Mid-stream, the timeout ends the stream with ModelInvocationTimeExceeded.
        with pytest.raises(ModelStreamError) as stream_error:
            await stream_parts(
                client, endpoint_name="scripted", body=b'{"stream": ["a", "b"], "hang_after": 0}'
            )
        assert stream_error.value.error_code == "ModelInvocationTimeExceeded"
        # The runtime is still usable afterwards.
        ok = await client.invoke_endpoint(endpoint_name="scripted", body=b"{}")
        assert ok.body


async def test_endless_answer_is_bounded(container: Container, make_client: MakeClient) -> None:
    async with LocalRuntime(max_body_bytes=200_000) as runtime:
        await runtime.add_container_endpoint("scripted", container.url)
        client = make_client(runtime)
        with pytest.raises(ModelError) as caught:
            await client.invoke_endpoint(endpoint_name="scripted", body=b'{"endless": true}')
        assert caught.value.original_status_code == 200
        assert "larger than 200000 bytes" in str(caught.value)
        # The runtime hung up on the container and still serves.
        assert (await client.invoke_endpoint(endpoint_name="scripted", body=b"{}")).body


async def test_streamed_answer_is_relayed_part_by_part(
    container: Container, runtime: LocalRuntime, make_client: MakeClient
) -> None:
    await runtime.add_container_endpoint("scripted", container.url)
    client = make_client(runtime)
    body = json.dumps({"stream": ["first ", "second ", "third"], "wait_after": 0}).encode()
    async with client.invoke_endpoint_with_response_stream(
        endpoint_name="scripted", body=body
    ) as stream:
        iterator = stream.__aiter__()
        first = await asyncio.wait_for(iterator.__anext__(), 10)
        # The container holds back the rest: the first part arrived on its own, not buffered.
        assert first.bytes == b"first "
        container.release.set()
        rest = [part.bytes async for part in iterator]
    assert b"".join(rest) == b"second third"
    assert stream.content_type == "text/plain"

    # InvokeEndpoint joins the container's chunks.
    joined = await client.invoke_endpoint(endpoint_name="scripted", body=body)
    assert joined.body == b"first second third"
    assert joined.custom_attributes == "s=1"


async def test_container_breaking_mid_stream(
    container: Container, runtime: LocalRuntime, make_client: MakeClient
) -> None:
    await runtime.add_container_endpoint("scripted", container.url)
    client = make_client(runtime)
    body = b'{"stream": ["a", "b", "c"], "wait_after": 0, "break_after": 1}'
    got: list[bytes] = []
    with pytest.raises(ModelStreamError) as caught:
        async with client.invoke_endpoint_with_response_stream(
            endpoint_name="scripted", body=body
        ) as stream:
            async for part in stream:
                got.append(part.bytes)
                container.release.set()
    assert caught.value.error_code == "StreamBroken"
    assert got[0] == b"a"
    assert b"".join(got) in (b"a", b"ab")


async def test_openai_route_is_forwarded_to_its_path(container: Container) -> None:
    @dataclass(frozen=True)
    class RoutedInvocation(Invocation):
        path: str = "/invocations"

    backend = ContainerBackend("scripted", container.url)
    try:
        answer = await backend(
            RoutedInvocation(
                endpoint_name="scripted",
                body=b'{"messages": []}',
                content_type="application/json",
                path="/openai/v1/chat/completions",
            )
        )
        assert isinstance(answer.body, AsyncIterator)
        text = b"".join([chunk async for chunk in answer.body])  # type: ignore[misc]
        assert json.loads(text)["path"] == "/openai/v1/chat/completions"
        assert container.received[-1]["body"] == b'{"messages": []}'
    finally:
        await backend.close()


async def test_calls_keep_the_last_n(container: Container, make_client: MakeClient) -> None:
    async with LocalRuntime(max_recorded_calls=3) as runtime:
        await runtime.add_container_endpoint("scripted", container.url)
        client = make_client(runtime)
        for i in range(5):
            await client.invoke_endpoint(endpoint_name="scripted", body=f'{{"n": {i}}}'.encode())
        assert [call.json()["n"] for call in runtime.calls("scripted")] == [2, 3, 4]
        assert runtime.calls("other") == []


async def test_remove_and_replace_container_endpoint(
    container: Container, runtime: LocalRuntime, make_client: MakeClient
) -> None:
    await runtime.add_container_endpoint("scripted", container.url)
    client = make_client(runtime)
    await client.invoke_endpoint(endpoint_name="scripted", body=b"{}")
    runtime.remove_endpoint("scripted")
    with pytest.raises(ValidationError):
        await client.invoke_endpoint(endpoint_name="scripted", body=b"{}")
    await runtime.add_container_endpoint("scripted", container.url)
    runtime.add_endpoint("scripted", lambda invocation: b"handler")
    assert (await client.invoke_endpoint(endpoint_name="scripted", body=b"{}")).body == b"handler"


async def test_stop_with_a_call_in_flight(container: Container, make_client: MakeClient) -> None:
    runtime = LocalRuntime()
    await runtime.start()
    await runtime.add_container_endpoint("scripted", container.url)
    client = make_client(runtime)
    call = asyncio.ensure_future(
        client.invoke_endpoint(endpoint_name="scripted", body=b'{"hang": true}')
    )
    await asyncio.wait_for(container.arrived.wait(), 10)
    await runtime.stop()
    with pytest.raises(SageMakerRuntimeError):  # the container's connection was closed
        await call
    assert not runtime.started


# ------------------------------------------------------------------------------------------ CLI


async def test_serve_local_container_from_the_command_line(mlflow_server: str) -> None:
    """``sagemaker-rt-aio serve-local --container URL --name NAME``, used by boto3."""
    port = _free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sagemaker_rt_aio",
        "serve-local",
        "--container",
        mlflow_server,
        "--name",
        "doubler",
        "--port",
        str(port),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.returncode is None, "serve-local exited early"
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                assert time.monotonic() < deadline, "serve-local did not listen"
                await asyncio.sleep(0.05)
            else:
                writer.close()
                await writer.wait_closed()
                break

        def run() -> Any:
            client = boto3.client(
                "sagemaker-runtime",
                region_name="us-east-1",
                endpoint_url=f"http://127.0.0.1:{port}",
                aws_access_key_id="AKIDCLI",
                aws_secret_access_key="cli-secret",
                config=botocore.config.Config(retries={"total_max_attempts": 1}),
            )
            try:
                answer = client.invoke_endpoint(
                    EndpointName="doubler",
                    Body=json.dumps({"inputs": [4]}),
                    ContentType="application/json",
                )
                return json.loads(answer["Body"].read())
            finally:
                client.close()

        assert await asyncio.to_thread(run) == {"predictions": [8]}
    finally:
        process.terminate()
        _, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert f"forwarding to the container at {mlflow_server}" in stderr.decode()


def test_serve_local_needs_one_model(capsys: pytest.CaptureFixture[str]) -> None:
    from sagemaker_rt_aio.cli import main

    for argv in (["serve-local"], ["serve-local", "m:h", "--container", "http://127.0.0.1:1"]):
        with pytest.raises(SystemExit, match="either module:function or --container URL"):
            main(argv)
    with pytest.raises(SystemExit, match="container URL must be"):
        main(["serve-local", "--container", "localhost:8080", "--port", "0"])


async def test_container_endpoint_survives_a_restart(
    container: Container, make_client: MakeClient
) -> None:
    runtime = LocalRuntime()
    endpoint = runtime.add_container_endpoint("scripted", container.url)  # before start
    assert endpoint.status == "Creating"
    async with runtime:
        await endpoint
        assert endpoint.status == "InService"
        client = make_client(runtime)
        assert (await client.invoke_endpoint(endpoint_name="scripted", body=b"{}")).body
    async with runtime:
        client = make_client(runtime)
        assert (await client.invoke_endpoint(endpoint_name="scripted", body=b"{}")).body
    assert len(runtime.calls("scripted")) == 2
