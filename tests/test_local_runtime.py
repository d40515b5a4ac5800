"""LocalRuntime's SageMaker operations, driven by boto3's own client over real loopback HTTP.

boto3 is synchronous: it runs in a worker thread (``asyncio.to_thread``) while the runtime serves
in the test's event loop. Every client is configured for one attempt and short timeouts and is
closed after the test. Raw aiohttp requests show what boto3 hides (ErrorCode of stream errors,
chunked uploads, unsigned requests).
"""

from __future__ import annotations

import asyncio
import datetime
import json
import os
import re
import subprocess
import sys
import textwrap
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import boto3
import botocore.auth
import botocore.awsrequest
import botocore.config
import botocore.credentials
import botocore.exceptions
import pytest
from botocore.eventstream import EventStreamBuffer

from sagemaker_rt_aio.local import (
    ContainerError,
    Invocation,
    InvocationResponse,
    LocalRuntime,
    pytest_plugin,
)

pytestmark = pytest.mark.timeout(60)

# The plugin's fixtures, used here without registering the plugin (so that this module works
# whether or not the package's pytest11 entry point is installed).
sagemaker_local_runtime = pytest_plugin.sagemaker_local_runtime
sagemaker_local_runtime_options = pytest_plugin.sagemaker_local_runtime_options

ACCESS_KEY = "AKIDLOCALTEST"
SECRET_KEY = "local-test-secret"
REGION = "us-east-1"
ROOT = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------------------- helpers


def boto_config(**kwargs: Any) -> botocore.config.Config:
    options: dict[str, Any] = {
        "retries": {"total_max_attempts": 1},
        "connect_timeout": 5,
        "read_timeout": 10,
    }
    options.update(kwargs)
    return botocore.config.Config(**options)


@pytest.fixture
def make_client() -> Iterator[Callable[..., Any]]:
    """Builds boto3 ``sagemaker-runtime`` clients for a runtime; closes them after the test."""
    clients: list[Any] = []

    def make(
        runtime: LocalRuntime,
        *,
        access_key: str = ACCESS_KEY,
        secret_key: str = SECRET_KEY,
        token: str | None = None,
        service: str = "sagemaker-runtime",
        **config: Any,
    ) -> Any:
        client = boto3.session.Session().client(
            service,
            region_name=REGION,
            endpoint_url=runtime.url,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            aws_session_token=token,
            config=boto_config(**config),
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
async def runtime() -> AsyncIterator[LocalRuntime]:
    async with LocalRuntime() as rt:
        yield rt


async def echo(invocation: Invocation) -> bytes:
    return invocation.body


def error_of(excinfo: pytest.ExceptionInfo[Any]) -> dict[str, Any]:
    response: dict[str, Any] = excinfo.value.response
    return response


def decode_events(data: bytes) -> list[Any]:
    buffer = EventStreamBuffer()
    buffer.add_data(data)
    return list(buffer)


# ------------------------------------------------------------------------------ InvokeEndpoint


async def test_invoke_endpoint_echo_with_boto3(runtime: LocalRuntime, make_client: Any) -> None:
    async def model(invocation: Invocation) -> InvocationResponse:
        return InvocationResponse(
            invocation.body, content_type="application/json", custom_attributes="seen=yes"
        )

    runtime.add_endpoint("echo", model, variant="blue")
    client = make_client(runtime)
    result = await asyncio.to_thread(
        client.invoke_endpoint,
        EndpointName="echo",
        Body=b'{"inputs": "hi"}',
        ContentType="application/json",
        Accept="application/jsonlines",
        CustomAttributes="trace=1",
        TargetModel="model-a.tar.gz",
        TargetVariant="blue",
        TargetContainerHostname="c1",
        InferenceId="inf-1",
        EnableExplanations="`true`",
        InferenceComponentName="ic-1",
    )
    assert result["Body"].read() == b'{"inputs": "hi"}'
    assert result["ContentType"] == "application/json"
    assert result["InvokedProductionVariant"] == "blue"
    assert result["CustomAttributes"] == "seen=yes"
    request_id = result["ResponseMetadata"]["RequestId"]
    assert uuid.UUID(request_id).version == 4

    [seen] = runtime.invocations("echo")
    assert seen.operation == "InvokeEndpoint"
    assert seen.request_id == request_id
    assert seen.json() == {"inputs": "hi"}
    assert seen.content_type == "application/json"
    assert seen.accept == "application/jsonlines"
    assert seen.custom_attributes == "trace=1"
    assert seen.target_model == "model-a.tar.gz"
    assert seen.target_variant == "blue"
    assert seen.target_container_hostname == "c1"
    assert seen.inference_id == "inf-1"
    assert seen.enable_explanations == "`true`"
    assert seen.inference_component_name == "ic-1"
    assert seen.session_id is None
    assert seen.headers["x-amz-date"]  # the raw headers, looked up case-insensitively
    assert "Custom-Attributes" not in str(seen)  # the repr leaves body and headers out


async def test_sync_handler_str_answer_and_no_content_type(
    runtime: LocalRuntime, make_client: Any
) -> None:
    def model(invocation: Invocation) -> str:
        return f"héllo {invocation.content_type} {invocation.accept}"

    runtime.add_endpoint("plain", model)
    client = make_client(runtime)
    result = await asyncio.to_thread(client.invoke_endpoint, EndpointName="plain", Body=b"x")
    # boto3 sends neither Content-Type nor Accept when not given; the model sees None.
    assert result["Body"].read().decode() == "héllo None None"
    assert result["ContentType"] == "application/octet-stream"
    assert result["InvokedProductionVariant"] == "AllTraffic"
    assert "CustomAttributes" not in result  # not echoed unless the handler sets it


async def test_generator_handler_answers_joined_body(
    runtime: LocalRuntime, make_client: Any
) -> None:
    async def model(invocation: Invocation) -> AsyncIterator[bytes]:
        yield b"a"
        yield b"b"

    runtime.add_endpoint("gen", model, content_type="text/plain")
    client = make_client(runtime)
    result = await asyncio.to_thread(client.invoke_endpoint, EndpointName="gen", Body=b"x")
    assert result["Body"].read() == b"ab"
    assert result["ContentType"] == "text/plain"


async def test_sync_generator_handler_streams(runtime: LocalRuntime, make_client: Any) -> None:
    def model(invocation: Invocation) -> Iterator[str]:
        yield from ("x", "y")

    runtime.add_endpoint("sync-gen", model)
    client = make_client(runtime)

    def stream() -> list[Any]:
        response = client.invoke_endpoint_with_response_stream(EndpointName="sync-gen", Body=b"")
        try:
            return list(response["Body"])
        finally:
            response["Body"].close()

    assert await asyncio.to_thread(stream) == [
        {"PayloadPart": {"Bytes": b"x"}},
        {"PayloadPart": {"Bytes": b"y"}},
    ]


async def test_sessions(runtime: LocalRuntime, make_client: Any) -> None:
    async def model(invocation: Invocation) -> InvocationResponse:
        return InvocationResponse(b"ok", close_session=invocation.body == b"bye")

    runtime.add_endpoint("chat", model)
    client = make_client(runtime)
    first = await asyncio.to_thread(
        client.invoke_endpoint, EndpointName="chat", Body=b"hi", SessionId="NEW_SESSION"
    )
    new_session = first["NewSessionId"]
    assert re.fullmatch(
        r"[a-zA-Z0-9](-*[a-zA-Z0-9])*;\sExpires=\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", new_session
    )
    session_id = new_session.split(";")[0]
    expires = datetime.datetime.strptime(new_session.split("Expires=")[1], "%Y-%m-%dT%H:%M:%SZ")
    assert expires.replace(tzinfo=datetime.timezone.utc) > datetime.datetime.now(
        datetime.timezone.utc
    )
    assert runtime.invocations("chat")[0].new_session_id == session_id

    await asyncio.to_thread(
        client.invoke_endpoint, EndpointName="chat", Body=b"again", SessionId=session_id
    )
    assert runtime.invocations("chat")[1].session_id == session_id
    last = await asyncio.to_thread(
        client.invoke_endpoint, EndpointName="chat", Body=b"bye", SessionId=session_id
    )
    assert last["ClosedSessionId"] == session_id
    with pytest.raises(client.exceptions.ValidationError):
        await asyncio.to_thread(
            client.invoke_endpoint, EndpointName="chat", Body=b"x", SessionId=session_id
        )


# ------------------------------------------------------------------ InvokeEndpointWithResponseStream


async def test_stream_with_boto3(runtime: LocalRuntime, make_client: Any) -> None:
    async def tokens(invocation: Invocation) -> AsyncIterator[bytes | str]:
        for word in ("Hello", " wor", "ld\n"):
            yield word
            await asyncio.sleep(0)

    async def model(invocation: Invocation) -> InvocationResponse:
        return InvocationResponse(
            tokens(invocation), content_type="application/jsonlines", custom_attributes="s=1"
        )

    runtime.add_endpoint("llm", model)
    client = make_client(runtime)

    def call() -> tuple[dict[str, Any], list[Any]]:
        result = client.invoke_endpoint_with_response_stream(
            EndpointName="llm",
            Body=b'{"inputs": "x"}',
            ContentType="application/json",
            Accept="application/jsonlines",
        )
        try:
            return result, list(result["Body"])
        finally:
            result["Body"].close()

    result, events = await asyncio.to_thread(call)
    assert events == [
        {"PayloadPart": {"Bytes": b"Hello"}},
        {"PayloadPart": {"Bytes": b" wor"}},
        {"PayloadPart": {"Bytes": b"ld\n"}},
    ]
    assert result["ContentType"] == "application/jsonlines"
    assert result["InvokedProductionVariant"] == "AllTraffic"
    assert result["CustomAttributes"] == "s=1"
    headers = result["ResponseMetadata"]["HTTPHeaders"]
    assert headers["content-type"] == "application/vnd.amazon.eventstream"
    [seen] = runtime.invocations("llm")
    assert seen.operation == "InvokeEndpointWithResponseStream"
    assert seen.content_type == "application/json"
    assert seen.accept == "application/jsonlines"  # from X-Amzn-SageMaker-Accept


async def test_stream_error_mid_stream_with_boto3(runtime: LocalRuntime, make_client: Any) -> None:
    async def model(invocation: Invocation) -> AsyncIterator[bytes]:
        yield b"partial"
        raise RuntimeError("GPU fell off")

    runtime.add_endpoint("broken", model)
    client = make_client(runtime)

    def call() -> tuple[list[Any], botocore.exceptions.EventStreamError]:
        result = client.invoke_endpoint_with_response_stream(EndpointName="broken", Body=b"x")
        events: list[Any] = []
        try:
            for event in result["Body"]:
                events.append(event)
        except botocore.exceptions.EventStreamError as exc:
            return events, exc
        finally:
            result["Body"].close()
        raise AssertionError("no EventStreamError")

    events, error = await asyncio.to_thread(call)
    assert events == [{"PayloadPart": {"Bytes": b"partial"}}]
    assert error.response["Error"]["Code"] == "ModelStreamError"
    assert "GPU fell off" in error.response["Error"]["Message"]


async def raw_post(
    runtime: LocalRuntime, path: str, body: bytes = b"x", headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    timeout = aiohttp.ClientTimeout(total=15)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.post(runtime.url + path, data=body, headers=headers or {}) as response,
    ):
        return response.status, dict(response.headers), await response.read()


async def test_stream_error_codes_on_the_wire() -> None:
    async def broken(invocation: Invocation) -> AsyncIterator[bytes]:
        yield b"one"
        raise RuntimeError("boom")

    async def slow(invocation: Invocation) -> AsyncIterator[bytes]:
        yield b"one"
        await asyncio.sleep(30)
        yield b"never"

    async with LocalRuntime(model_timeout=0.3) as runtime:
        runtime.add_endpoint("broken", broken)
        runtime.add_endpoint("slow", slow)
        results = {}
        for name in ("broken", "slow"):
            # "slow" would yield b"never" after 30 s: its last event being the timeout shows that
            # the 0.3 s model timeout ended it, with no wall-clock bound a loaded machine can break.
            status, headers, body = await raw_post(
                runtime, f"/endpoints/{name}/invocations-response-stream"
            )
            assert status == 200
            assert headers["Content-Type"] == "application/vnd.amazon.eventstream"
            results[name] = decode_events(body)
    for name, code in (("broken", "StreamBroken"), ("slow", "ModelInvocationTimeExceeded")):
        first, last = results[name]
        assert first.headers[":event-type"] == "PayloadPart"
        assert first.payload == b"one"
        assert last.headers[":message-type"] == "exception"
        assert last.headers[":exception-type"] == "ModelStreamError"
        assert json.loads(last.payload)["ErrorCode"] == code
    assert "allotted time" in json.loads(results["slow"][1].payload)["Message"]


async def test_stream_failure_before_output_is_model_error(
    runtime: LocalRuntime, make_client: Any
) -> None:
    async def model(invocation: Invocation) -> AsyncIterator[bytes]:
        raise ContainerError(400, "bad prompt")
        yield b""  # pragma: no cover

    runtime.add_endpoint("picky", model)
    client = make_client(runtime)
    with pytest.raises(client.exceptions.ModelError) as excinfo:
        await asyncio.to_thread(
            client.invoke_endpoint_with_response_stream, EndpointName="picky", Body=b"x"
        )
    assert error_of(excinfo)["OriginalStatusCode"] == 400
    assert error_of(excinfo)["OriginalMessage"] == "bad prompt"


async def test_stream_refuses_new_session(runtime: LocalRuntime, make_client: Any) -> None:
    runtime.add_endpoint("echo", echo)
    client = make_client(runtime)
    with pytest.raises(client.exceptions.ValidationError):
        await asyncio.to_thread(
            client.invoke_endpoint_with_response_stream,
            EndpointName="echo",
            Body=b"x",
            SessionId="NEW_SESSION",
        )


# ---------------------------------------------------------------------------------------- errors


async def test_unknown_endpoint_is_validation_error(
    runtime: LocalRuntime, make_client: Any
) -> None:
    client = make_client(runtime)
    with pytest.raises(client.exceptions.ValidationError) as excinfo:
        await asyncio.to_thread(client.invoke_endpoint, EndpointName="missing", Body=b"x")
    assert (
        error_of(excinfo)["Error"]["Message"]
        == "Endpoint missing of account 123456789012 not found."
    )
    assert error_of(excinfo)["ResponseMetadata"]["HTTPStatusCode"] == 400
    headers = error_of(excinfo)["ResponseMetadata"]["HTTPHeaders"]
    assert headers["x-amzn-errortype"].startswith("ValidationError:http://internal.amazon.com/")


async def test_removed_endpoint_is_gone(runtime: LocalRuntime, make_client: Any) -> None:
    runtime.add_endpoint("echo", echo)
    assert runtime.endpoints == ["echo"]
    runtime.remove_endpoint("echo")
    client = make_client(runtime)
    with pytest.raises(client.exceptions.ValidationError):
        await asyncio.to_thread(client.invoke_endpoint, EndpointName="echo", Body=b"x")
    with pytest.raises(ValueError):
        runtime.add_endpoint("not valid!", echo)


async def test_handler_exception_is_model_error(runtime: LocalRuntime, make_client: Any) -> None:
    async def model(invocation: Invocation) -> bytes:
        raise RuntimeError("boom")

    runtime.add_endpoint("crash", model)
    client = make_client(runtime)
    with pytest.raises(client.exceptions.ModelError) as excinfo:
        await asyncio.to_thread(client.invoke_endpoint, EndpointName="crash", Body=b"x")
    error = error_of(excinfo)
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert error["OriginalStatusCode"] == 500
    assert error["OriginalMessage"] == "boom"
    assert error["LogStreamArn"] == (
        "arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/Endpoints/crash"
    )
    assert error["Error"]["Message"].startswith(
        'Received server error (500) from primary with message "boom". See https://'
    )


async def test_container_error_keeps_its_status(runtime: LocalRuntime, make_client: Any) -> None:
    def model(invocation: Invocation) -> bytes:
        raise ContainerError(415, "unsupported content type")

    runtime.add_endpoint("strict", model)
    client = make_client(runtime)
    with pytest.raises(client.exceptions.ModelError) as excinfo:
        await asyncio.to_thread(client.invoke_endpoint, EndpointName="strict", Body=b"x")
    assert error_of(excinfo)["OriginalStatusCode"] == 415
    assert error_of(excinfo)["Error"]["Message"].startswith("Received client error (415)")


async def test_model_timeout(make_client: Any) -> None:
    cancelled = asyncio.Event()

    async def model(invocation: Invocation) -> bytes:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return b"late"  # pragma: no cover

    async def raises_timeout_error(invocation: Invocation) -> bytes:
        raise TimeoutError("the model's own timeout")

    async with LocalRuntime(model_timeout=0.3) as runtime:
        runtime.add_endpoint("slow", model)
        runtime.add_endpoint("own-timeout", raises_timeout_error)
        client = make_client(runtime)
        with pytest.raises(client.exceptions.ModelError) as excinfo:
            await asyncio.to_thread(client.invoke_endpoint, EndpointName="slow", Body=b"x")
        assert cancelled.is_set()  # the 30 s model was cut off by the 0.3 s timeout
        error = error_of(excinfo)
        assert error["OriginalStatusCode"] == 0
        assert (
            "Your invocation timed out while waiting for a response from container primary"
            in (error["Error"]["Message"])
        )
        # A TimeoutError raised by the handler is an ordinary model failure, not the runtime's.
        with pytest.raises(client.exceptions.ModelError) as excinfo:
            await asyncio.to_thread(client.invoke_endpoint, EndpointName="own-timeout", Body=b"x")
        assert error_of(excinfo)["OriginalStatusCode"] == 500


async def test_request_body_limit(make_client: Any) -> None:
    async with LocalRuntime(max_body_bytes=1024) as runtime:
        runtime.add_endpoint("echo", echo)
        client = make_client(runtime)
        result = await asyncio.to_thread(
            client.invoke_endpoint, EndpointName="echo", Body=b"x" * 1024
        )
        assert len(result["Body"].read()) == 1024
        with pytest.raises(client.exceptions.ValidationError) as excinfo:
            await asyncio.to_thread(client.invoke_endpoint, EndpointName="echo", Body=b"x" * 1025)
        assert "less than or equal to 1024" in error_of(excinfo)["Error"]["Message"]

        # A chunked body (no Content-Length) is cut off as it is read.
        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(10):
                yield b"y" * 512

        status, headers, _ = await raw_post(runtime, "/endpoints/echo/invocations", chunks())  # type: ignore[arg-type]
        assert status == 400
        assert headers["x-amzn-ErrorType"].startswith("ValidationError:")
        # The connection is still usable after the refused body.
        result = await asyncio.to_thread(client.invoke_endpoint, EndpointName="echo", Body=b"ok")
        assert result["Body"].read() == b"ok"
        assert len(runtime.invocations("echo")) == 2


async def test_default_body_limit_is_the_services_6_mib(
    runtime: LocalRuntime, make_client: Any
) -> None:
    runtime.add_endpoint("echo", lambda invocation: b"ok")
    client = make_client(runtime)
    limit = 6 * 1024 * 1024
    result = await asyncio.to_thread(client.invoke_endpoint, EndpointName="echo", Body=b"x" * limit)
    assert result["Body"].read() == b"ok"
    with pytest.raises(client.exceptions.ValidationError):
        await asyncio.to_thread(
            client.invoke_endpoint, EndpointName="echo", Body=b"x" * (limit + 1)
        )


async def test_response_body_limit_is_model_error(make_client: Any) -> None:
    async with LocalRuntime(max_body_bytes=1000) as runtime:
        runtime.add_endpoint("big", lambda invocation: b"z" * 1001)
        client = make_client(runtime)
        with pytest.raises(client.exceptions.ModelError) as excinfo:
            await asyncio.to_thread(client.invoke_endpoint, EndpointName="big", Body=b"x")
        assert "1000 bytes" in error_of(excinfo)["Error"]["Message"]


async def test_unknown_operation_answers_404(runtime: LocalRuntime) -> None:
    status, headers, body = await raw_post(runtime, "/endpoints/echo/nothing-here")
    assert status == 404
    assert headers["x-amzn-ErrorType"].startswith("UnknownOperationException:")
    assert json.loads(body)["message"]


# --------------------------------------------------------------------------------- fault injection


async def test_fail_next_then_success(runtime: LocalRuntime, make_client: Any) -> None:
    runtime.add_endpoint("echo", echo)
    runtime.fail_next("echo", 2)
    client = make_client(runtime)
    for _ in range(2):
        with pytest.raises(client.exceptions.ServiceUnavailable) as excinfo:
            await asyncio.to_thread(client.invoke_endpoint, EndpointName="echo", Body=b"x")
        assert error_of(excinfo)["ResponseMetadata"]["HTTPStatusCode"] == 503
        assert error_of(excinfo)["ResponseMetadata"]["RetryAttempts"] == 0
    result = await asyncio.to_thread(client.invoke_endpoint, EndpointName="echo", Body=b"x")
    assert result["Body"].read() == b"x"
    assert runtime.call_count("echo") == 3
    assert len(runtime.invocations("echo")) == 1  # the model only saw the call that succeeded


async def test_fail_next_with_custom_error_and_retry_after(runtime: LocalRuntime) -> None:
    runtime.add_endpoint("echo", echo)
    runtime.fail_next(
        "echo", 1, error="ThrottlingException", status=400, message="slow down", retry_after=1.5
    )
    status, headers, body = await raw_post(runtime, "/endpoints/echo/invocations")
    assert status == 400
    assert headers["x-amzn-ErrorType"].startswith("ThrottlingException:")
    assert headers["Retry-After"] == "2"
    assert headers["x-amz-retry-after"] == "1500"
    assert json.loads(body)["message"] == "slow down"
    status, _, _ = await raw_post(runtime, "/endpoints/echo/invocations")
    assert status == 200


async def test_boto3_retries_consume_injected_faults(
    runtime: LocalRuntime, make_client: Any
) -> None:
    runtime.add_endpoint("echo", echo)
    runtime.fail_next("echo", 1, error="InternalFailure", status=500)
    client = make_client(runtime, retries={"mode": "standard", "total_max_attempts": 2})
    result = await asyncio.to_thread(client.invoke_endpoint, EndpointName="echo", Body=b"x")
    assert result["ResponseMetadata"]["RetryAttempts"] == 1
    assert runtime.call_count("echo") == 2


async def test_faults_are_counted_per_call_under_concurrency(runtime: LocalRuntime) -> None:
    runtime.add_endpoint("echo", echo)
    runtime.fail_next("echo", 3)
    results = await asyncio.gather(
        *(raw_post(runtime, "/endpoints/echo/invocations") for _ in range(8))
    )
    assert sorted(status for status, _, _ in results) == [200] * 5 + [503] * 3
    assert runtime.call_count("echo") == 8


async def test_cold_start(make_client: Any) -> None:
    now = [100.0]  # the runtime's clock: the cold start ends when the test says so
    async with LocalRuntime(clock=lambda: now[0]) as runtime:
        runtime.add_endpoint("mme", echo)
        runtime.cold_start("mme", 0.5)
        client = make_client(runtime)
        with pytest.raises(client.exceptions.ModelNotReadyException) as excinfo:
            await asyncio.to_thread(client.invoke_endpoint, EndpointName="mme", Body=b"x")
        assert error_of(excinfo)["ResponseMetadata"]["HTTPStatusCode"] == 429
        now[0] += 0.5
        result = await asyncio.to_thread(client.invoke_endpoint, EndpointName="mme", Body=b"x")
        assert result["Body"].read() == b"x"


async def test_reset_connection_next(runtime: LocalRuntime, make_client: Any) -> None:
    runtime.add_endpoint("echo", echo)
    runtime.reset_connection_next("echo", 1)
    client = make_client(runtime)
    with pytest.raises(botocore.exceptions.ConnectionClosedError):
        await asyncio.to_thread(client.invoke_endpoint, EndpointName="echo", Body=b"x")
    assert runtime.invocations("echo") == []
    result = await asyncio.to_thread(client.invoke_endpoint, EndpointName="echo", Body=b"x")
    assert result["Body"].read() == b"x"
    assert runtime.call_count("echo") == 2


async def test_latency(make_client: Any) -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:  # the runtime's sleep: no real time passes
        slept.append(seconds)

    async with LocalRuntime(sleep=sleep) as runtime:
        runtime.add_endpoint("echo", echo)
        runtime.set_latency("echo", 0.3)
        client = make_client(runtime)
        await asyncio.to_thread(client.invoke_endpoint, EndpointName="echo", Body=b"x")
        assert slept == [0.3]
        runtime.clear_faults()
        await asyncio.to_thread(client.invoke_endpoint, EndpointName="echo", Body=b"x")
        assert slept == [0.3]


# ------------------------------------------------------------------------------------ signatures


@pytest.fixture
async def signed_runtime() -> AsyncIterator[LocalRuntime]:
    credentials = botocore.credentials.Credentials(ACCESS_KEY, SECRET_KEY)
    async with LocalRuntime(credentials=credentials) as rt:
        rt.add_endpoint("echo", echo)
        yield rt


async def test_signed_requests_pass(signed_runtime: LocalRuntime, make_client: Any) -> None:
    client = make_client(signed_runtime)
    result = await asyncio.to_thread(
        client.invoke_endpoint,
        EndpointName="echo",
        Body=b"signed",
        ContentType="text/plain",
        Accept="text/plain",
        CustomAttributes="a=1, b=2",
    )
    assert result["Body"].read() == b"signed"

    def stream() -> list[Any]:
        response = client.invoke_endpoint_with_response_stream(EndpointName="echo", Body=b"s")
        try:
            return list(response["Body"])
        finally:
            response["Body"].close()

    assert await asyncio.to_thread(stream) == [{"PayloadPart": {"Bytes": b"s"}}]


async def test_signature_covers_double_encoded_path(
    signed_runtime: LocalRuntime, make_client: Any
) -> None:
    # boto3 percent-encodes the label ("bad%20name%2F..") and signs it encoded twice; the runtime
    # must recompute from the raw path to accept the signature and reach the name validation.
    client = make_client(signed_runtime)
    with pytest.raises(client.exceptions.ValidationError) as excinfo:
        await asyncio.to_thread(client.invoke_endpoint, EndpointName="bad name/..", Body=b"x")
    assert "endpointName" in error_of(excinfo)["Error"]["Message"]


async def test_wrong_secret_is_invalid_signature(
    signed_runtime: LocalRuntime, make_client: Any
) -> None:
    client = make_client(signed_runtime, secret_key="not-the-secret")
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        await asyncio.to_thread(client.invoke_endpoint, EndpointName="echo", Body=b"x")
    error = error_of(excinfo)
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert error["Error"]["Code"] == "InvalidSignatureException"
    assert signed_runtime.invocations() == []


async def test_unknown_key_and_unsigned_requests(
    signed_runtime: LocalRuntime, make_client: Any
) -> None:
    client = make_client(signed_runtime, access_key="AKIDSOMEONEELSE")
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        await asyncio.to_thread(client.invoke_endpoint, EndpointName="echo", Body=b"x")
    assert error_of(excinfo)["Error"]["Code"] == "UnrecognizedClientException"
    assert error_of(excinfo)["ResponseMetadata"]["HTTPStatusCode"] == 403

    status, headers, _ = await raw_post(signed_runtime, "/endpoints/echo/invocations")
    assert status == 403
    assert headers["x-amzn-ErrorType"].startswith("MissingAuthenticationTokenException:")
    assert signed_runtime.call_count("echo") == 0


async def test_tampered_body_is_invalid_signature(signed_runtime: LocalRuntime) -> None:
    credentials = botocore.credentials.Credentials(ACCESS_KEY, SECRET_KEY)
    request = botocore.awsrequest.AWSRequest(
        method="POST", url=signed_runtime.url + "/endpoints/echo/invocations", data=b"original"
    )
    botocore.auth.SigV4Auth(credentials, "sagemaker", REGION).add_auth(request)
    headers = dict(request.headers.items())
    status, _, _ = await raw_post(
        signed_runtime, "/endpoints/echo/invocations", b"original", headers
    )
    assert status == 200
    status, response_headers, _ = await raw_post(
        signed_runtime, "/endpoints/echo/invocations", b"tampered", headers
    )
    assert status == 403
    assert response_headers["x-amzn-ErrorType"].startswith("InvalidSignatureException:")
    # Signed for the wrong service.
    request = botocore.awsrequest.AWSRequest(
        method="POST", url=signed_runtime.url + "/endpoints/echo/invocations", data=b"x"
    )
    botocore.auth.SigV4Auth(credentials, "s3", REGION).add_auth(request)
    status, response_headers, body = await raw_post(
        signed_runtime, "/endpoints/echo/invocations", b"x", dict(request.headers.items())
    )
    assert status == 403
    assert "correct service: 'sagemaker'" in json.loads(body)["message"]


async def test_stale_timestamp_is_rejected(
    signed_runtime: LocalRuntime, make_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    stale = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None) - datetime.timedelta(
        minutes=6
    )
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: stale)
    client = make_client(signed_runtime)
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        await asyncio.to_thread(client.invoke_endpoint, EndpointName="echo", Body=b"x")
    assert error_of(excinfo)["Error"]["Code"] == "InvalidSignatureException"
    assert error_of(excinfo)["Error"]["Message"].startswith("Signature expired")
    assert error_of(excinfo)["ResponseMetadata"]["HTTPStatusCode"] == 403


async def test_session_token_is_checked(make_client: Any) -> None:
    credentials = botocore.credentials.Credentials(ACCESS_KEY, SECRET_KEY, "the-token")
    async with LocalRuntime(credentials=credentials) as runtime:
        runtime.add_endpoint("echo", echo)
        good = make_client(runtime, token="the-token")
        result = await asyncio.to_thread(good.invoke_endpoint, EndpointName="echo", Body=b"x")
        assert result["Body"].read() == b"x"
        for token in (None, "another-token"):
            bad = make_client(runtime, token=token)
            with pytest.raises(botocore.exceptions.ClientError) as excinfo:
                await asyncio.to_thread(bad.invoke_endpoint, EndpointName="echo", Body=b"x")
            assert error_of(excinfo)["Error"]["Code"] == "UnrecognizedClientException"


# ------------------------------------------------------------------------ lifecycle and plugin


async def test_start_stop_and_url() -> None:
    runtime = LocalRuntime()
    with pytest.raises(RuntimeError):
        _ = runtime.url
    await runtime.start()
    await runtime.start()  # idempotent
    try:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", runtime.url)
        assert runtime.started
    finally:
        await runtime.stop()
        await runtime.stop()
    assert not runtime.started


async def test_stop_cancels_background_work(make_client: Any) -> None:
    cancelled, entered = asyncio.Event(), asyncio.Event()

    async def forever(invocation: Invocation) -> bytes:
        entered.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return b""  # pragma: no cover

    runtime = LocalRuntime(model_timeout=3600)
    await runtime.start()
    try:
        runtime.add_endpoint("forever", forever)
        client = make_client(runtime)
        result = await asyncio.to_thread(
            client.invoke_endpoint_async, EndpointName="forever", Body=b"x"
        )
        assert result["ResponseMetadata"]["HTTPStatusCode"] == 202
        await asyncio.wait_for(entered.wait(), 5)
    finally:
        # Bounded far below the model's 3,600 s: stop() cancels it rather than waiting it out.
        await asyncio.wait_for(runtime.stop(), 60)
    assert cancelled.is_set()


async def test_plugin_fixture(sagemaker_local_runtime: LocalRuntime, make_client: Any) -> None:
    sagemaker_local_runtime.add_endpoint("echo", echo)
    client = make_client(sagemaker_local_runtime)
    result = await asyncio.to_thread(client.invoke_endpoint, EndpointName="echo", Body=b"fixture")
    assert result["Body"].read() == b"fixture"


def test_plugin_loads_as_a_pytest_plugin(tmp_path: Path) -> None:
    (tmp_path / "test_uses_fixture.py").write_text(
        textwrap.dedent(
            """
            import aiohttp
            import pytest

            @pytest.fixture
            def sagemaker_local_runtime_options():
                return {"region": "eu-west-1"}

            @pytest.mark.asyncio
            async def test_it(sagemaker_local_runtime):
                sagemaker_local_runtime.add_endpoint("echo", lambda invocation: invocation.body)
                assert sagemaker_local_runtime.region == "eu-west-1"
                url = sagemaker_local_runtime.url + "/endpoints/echo/invocations"
                async with aiohttp.ClientSession() as session:
                    async with session.post(url, data=b"hi") as response:
                        assert response.status == 200
                        assert await response.read() == b"hi"
            """
        )
    )
    env = dict(os.environ, PYTEST_DISABLE_PLUGIN_AUTOLOAD="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-W",
            "error",
            # pytest-asyncio warns (an error under -W error) when a project leaves this unset.
            "-o",
            "asyncio_default_fixture_loop_scope=function",
            "-p",
            "asyncio",
            "-p",
            "sagemaker_rt_aio.local.pytest_plugin",
            str(tmp_path),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "1 passed" in completed.stdout
