"""Every kind of fault of the local runtime, through its public API, seen by this library's client.

Faults that wait do so through the runtime's injected ``clock``/``sleep`` (:class:`RuntimeClock`), so
latency, cold starts, slow parts and delays take no real time here.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import botocore.credentials
import pytest
from conftest import RuntimeClock

from sagemaker_rt_aio import (
    AsyncInferenceFailure,
    ConnectionClosedError,
    InternalFailure,
    ModelNotReadyException,
    ModelStreamError,
    RetryPolicy,
    SageMakerRuntimeClient,
    SageMakerRuntimeError,
    ServiceUnavailable,
    ThrottlingException,
)
from sagemaker_rt_aio.local import (
    AsyncDelayFault,
    AsyncFailureFault,
    BreakStreamFault,
    ColdStartFault,
    ConnectionResetFault,
    Invocation,
    LatencyFault,
    LocalRuntime,
    S3ErrorFault,
    ServiceErrorFault,
    SlowFirstPartFault,
    StallStreamFault,
)

pytestmark = pytest.mark.timeout(60)


async def echo(invocation: Invocation) -> bytes:
    return invocation.body


async def five_parts(invocation: Invocation) -> AsyncIterator[bytes]:
    for i in range(5):
        yield f"part{i};".encode()


@pytest.fixture
def fake_time() -> RuntimeClock:
    return RuntimeClock()


@pytest.fixture
async def runtime(fake_time: RuntimeClock) -> AsyncIterator[LocalRuntime]:
    async with LocalRuntime(clock=fake_time.clock, sleep=fake_time.sleep) as rt:
        rt.add_endpoint("echo", echo)
        rt.add_endpoint("gen", five_parts)
        yield rt


MakeClient = Callable[..., SageMakerRuntimeClient]


@pytest.fixture
async def client(runtime: LocalRuntime) -> AsyncIterator[SageMakerRuntimeClient]:
    client = SageMakerRuntimeClient(
        runtime.region,
        endpoint_url=runtime.url,
        aws_access_key_id="AKIDFAULTS",
        aws_secret_access_key="faults-secret",
        retry_policy=RetryPolicy.none(),
        s3_endpoint_url=runtime.url,
    )
    yield client
    await client.shutdown()


async def invoke(client: SageMakerRuntimeClient, name: str = "echo") -> bytes:
    return (await client.invoke_endpoint(endpoint_name=name, body=b"hello")).body


async def stream(client: SageMakerRuntimeClient, got: list[bytes], name: str = "gen") -> None:
    async with client.invoke_endpoint_with_response_stream(endpoint_name=name, body=b"{}") as s:
        async for part in s:
            got.append(part.bytes)


# ---------------------------------------------------------------------------------- before the model


async def test_service_error_for_n_calls(runtime: LocalRuntime, client: Any) -> None:
    runtime.add_fault("echo", ServiceErrorFault(code="ThrottlingException"), times=2)
    for _ in range(2):
        with pytest.raises(ThrottlingException) as caught:
            await invoke(client)
        assert caught.value.status_code == 400
    assert await invoke(client) == b"hello"
    assert len(runtime.calls("echo")) == 1
    assert runtime.call_count("echo") == 3


async def test_service_error_for_a_while(
    runtime: LocalRuntime, client: Any, fake_time: RuntimeClock
) -> None:
    runtime.add_fault(
        "echo", ServiceErrorFault(code="InternalFailure", message="down", retry_after=2), seconds=5
    )
    for _ in range(3):
        with pytest.raises(InternalFailure, match="down"):
            await invoke(client)
    fake_time.now += 5
    assert await invoke(client) == b"hello"


async def test_fail_next_shortcut_takes_keyword_only_codes(
    runtime: LocalRuntime, client: Any
) -> None:
    runtime.fail_next("echo", 1)
    with pytest.raises(ServiceUnavailable) as caught:
        await invoke(client)
    assert caught.value.status_code == 503
    runtime.fail_next("echo", 1, error="InternalFailure", status=500, fields={"Extra": 1})
    with pytest.raises(InternalFailure):
        await invoke(client)
    with pytest.raises(TypeError):
        runtime.fail_next("echo", 1, "InternalFailure")  # type: ignore[misc]


async def test_cold_start_uses_the_runtime_clock(
    runtime: LocalRuntime, client: Any, fake_time: RuntimeClock
) -> None:
    runtime.cold_start("echo", 30)
    with pytest.raises(ModelNotReadyException) as caught:
        await invoke(client)
    assert caught.value.status_code == 429
    fake_time.now += 29
    with pytest.raises(ModelNotReadyException):
        await invoke(client)
    fake_time.now += 1
    assert await invoke(client) == b"hello"
    # The same through the general API, for a number of calls.
    runtime.add_fault("echo", ColdStartFault(), times=1)
    with pytest.raises(ModelNotReadyException):
        await invoke(client)
    assert await invoke(client) == b"hello"


async def test_latency_sleeps_on_the_injected_clock(
    runtime: LocalRuntime, client: Any, fake_time: RuntimeClock
) -> None:
    runtime.set_latency("echo", 3)
    assert await invoke(client) == b"hello"
    assert await invoke(client) == b"hello"
    assert fake_time.slept == [3, 3]
    runtime.set_latency("echo", 0)
    runtime.add_fault("echo", LatencyFault(seconds=7), times=1)
    await invoke(client)
    await invoke(client)
    assert fake_time.slept == [3, 3, 7]


async def test_connection_reset(runtime: LocalRuntime, client: Any) -> None:
    runtime.add_fault("echo", ConnectionResetFault(), times=1)
    with pytest.raises(ConnectionClosedError):
        await invoke(client)
    runtime.reset_connection_next("echo")
    with pytest.raises(ConnectionClosedError):
        await invoke(client)
    assert await invoke(client) == b"hello"
    assert len(runtime.calls("echo")) == 1


async def test_reset_comes_before_errors_and_latency_adds(
    runtime: LocalRuntime, client: Any, fake_time: RuntimeClock
) -> None:
    runtime.add_fault("echo", ServiceErrorFault(code="ServiceUnavailable"), times=1)
    runtime.add_fault("echo", ConnectionResetFault(), times=1)
    runtime.add_fault("echo", LatencyFault(seconds=1), times=2)
    with pytest.raises(ConnectionClosedError):
        await invoke(client)
    with pytest.raises(ServiceUnavailable):
        await invoke(client)
    assert await invoke(client) == b"hello"
    assert fake_time.slept == [1, 1]


# ---------------------------------------------------------------------------------- during a stream


async def test_break_stream_after_n_parts(runtime: LocalRuntime, client: Any) -> None:
    runtime.add_fault("gen", BreakStreamFault(after_parts=2), times=1)
    # Stream faults are taken by streaming calls only.
    assert await invoke(client, "gen") == b"part0;part1;part2;part3;part4;"
    got: list[bytes] = []
    with pytest.raises(ModelStreamError) as caught:
        await stream(client, got)
    assert caught.value.error_code == "StreamBroken"
    assert got == [b"part0;", b"part1;"]
    again: list[bytes] = []
    await stream(client, again)
    assert len(again) == 5


async def test_break_stream_by_reset(runtime: LocalRuntime, client: Any) -> None:
    runtime.add_fault("gen", BreakStreamFault(after_parts=1, how="reset"), times=1)
    got: list[bytes] = []
    with pytest.raises(SageMakerRuntimeError) as caught:
        await stream(client, got)
    assert not isinstance(caught.value, ModelStreamError)  # no event: the connection went away
    assert got in ([], [b"part0;"])


async def test_slow_first_part(runtime: LocalRuntime, client: Any, fake_time: RuntimeClock) -> None:
    runtime.add_fault("gen", SlowFirstPartFault(seconds=4), times=1)
    got: list[bytes] = []
    await stream(client, got)
    assert len(got) == 5
    assert fake_time.slept == [4]


async def test_stall_for_seconds(runtime: LocalRuntime, client: Any, fake_time: RuntimeClock) -> None:
    runtime.add_fault("gen", StallStreamFault(after_parts=3, seconds=9), times=1)
    got: list[bytes] = []
    await stream(client, got)
    assert len(got) == 5
    assert fake_time.slept == [9]


async def test_stall_until_the_model_timeout(fake_time: RuntimeClock) -> None:
    async with LocalRuntime(model_timeout=0.1, clock=fake_time.clock, sleep=fake_time.sleep) as rt:
        rt.add_endpoint("gen", five_parts)
        rt.add_fault("gen", StallStreamFault(after_parts=1))
        async with SageMakerRuntimeClient(
            rt.region,
            endpoint_url=rt.url,
            aws_access_key_id="AKIDFAULTS",
            aws_secret_access_key="faults-secret",
            retry_policy=RetryPolicy.none(),
        ) as client:
            got: list[bytes] = []
            with pytest.raises(ModelStreamError) as caught:
                await stream(client, got)
            assert caught.value.error_code == "ModelInvocationTimeExceeded"
            assert got == [b"part0;"]


# ------------------------------------------------------------------------------------ async jobs


async def test_async_failure_and_delay(
    runtime: LocalRuntime, client: Any, fake_time: RuntimeClock
) -> None:
    runtime.add_fault("echo", AsyncFailureFault(message="the GPU fell over"), times=1)
    runtime.add_fault("echo", AsyncDelayFault(seconds=7), times=2)
    # Async faults are taken by async calls only.
    assert await invoke(client) == b"hello"
    with pytest.raises(AsyncInferenceFailure) as caught:
        await client.invoke_endpoint_async_and_wait(
            endpoint_name="echo", body=b"in", timeout=20, poll_interval=0.01
        )
    assert "the GPU fell over" in str(caught.value)
    result = await client.invoke_endpoint_async_and_wait(
        endpoint_name="echo", body=b"in", timeout=20, poll_interval=0.01
    )
    assert result == b"in"
    assert fake_time.slept == [7, 7]
    assert [call.operation for call in runtime.calls("echo")] == [
        "InvokeEndpoint",
        "InvokeEndpointAsync",
    ]


# ------------------------------------------------------------------------------------------- S3


async def s3_get(runtime: LocalRuntime, path: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(runtime.url + path) as response:
        return response.status, await response.text()


@pytest.mark.parametrize(
    ("code", "status"), [("NoSuchKey", 404), ("SlowDown", 503), ("AccessDenied", 403)]
)
async def test_s3_errors(runtime: LocalRuntime, code: Any, status: int) -> None:
    runtime.put_object("bucket", "key", b"data")
    runtime.add_s3_fault(S3ErrorFault(code=code), bucket="bucket", times=1)
    got_status, text = await s3_get(runtime, "/bucket/key")
    assert got_status == status
    assert f"<Code>{code}</Code>" in text
    assert await s3_get(runtime, "/bucket/key") == (200, "data")


async def test_s3_not_found_for_a_while(runtime: LocalRuntime, fake_time: RuntimeClock) -> None:
    runtime.put_object("bucket", "out/1.out", b"result")
    runtime.add_s3_fault(
        S3ErrorFault(code="NoSuchKey", methods=frozenset({"GET", "HEAD"})),
        key_prefix="out/",
        seconds=10,
    )
    assert (await s3_get(runtime, "/bucket/out/1.out"))[0] == 404
    assert (await s3_get(runtime, "/bucket/other"))[0] == 404  # really missing
    runtime.put_object("bucket", "in/x", b"x")
    assert await s3_get(runtime, "/bucket/in/x") == (200, "x")  # outside the prefix
    fake_time.now += 10
    assert await s3_get(runtime, "/bucket/out/1.out") == (200, "result")


async def test_async_waiter_rides_out_late_outputs(runtime: LocalRuntime, client: Any) -> None:
    runtime.add_s3_fault(S3ErrorFault(code="NoSuchKey"), times=3)
    result = await client.invoke_endpoint_async_and_wait(
        endpoint_name="echo", body=b"late", timeout=20, poll_interval=0.01
    )
    assert result == b"late"


# -------------------------------------------------------------------------------- the API itself


def test_faults_are_typed_and_checked() -> None:
    runtime = LocalRuntime()
    with pytest.raises(TypeError):
        runtime.add_fault("echo", "ServiceUnavailable")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        runtime.add_fault("echo", S3ErrorFault(code="SlowDown"))
    with pytest.raises(TypeError):
        runtime.add_s3_fault(ServiceErrorFault())  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        runtime.add_fault("echo", ServiceErrorFault(), times=-1)
    with pytest.raises(ValueError):
        runtime.add_fault("echo", LatencyFault(seconds=-1))
    with pytest.raises(TypeError):
        ServiceErrorFault("ServiceUnavailable")  # type: ignore[misc]
    with pytest.raises(ValueError):
        runtime.set_latency("echo", -1)


async def test_clear_faults(runtime: LocalRuntime, client: Any) -> None:
    runtime.add_fault("echo", ServiceErrorFault())
    runtime.add_s3_fault(S3ErrorFault(code="SlowDown"))
    with pytest.raises(ServiceUnavailable):
        await invoke(client)
    runtime.clear_faults("echo")
    assert await invoke(client) == b"hello"
    runtime.put_object("bucket", "key", b"data")
    assert (await s3_get(runtime, "/bucket/key"))[0] == 503
    runtime.clear_faults()
    assert (await s3_get(runtime, "/bucket/key"))[0] == 200


# ------------------------------------------------------------------------------- safe to run


async def test_store_is_bounded() -> None:
    async with LocalRuntime(max_store_bytes=100) as runtime, aiohttp.ClientSession() as session:
        async with session.put(runtime.url + "/bkt/a", data=b"x" * 80) as response:
            assert response.status == 200
        async with session.put(runtime.url + "/bkt/b", data=b"x" * 30) as response:
            assert response.status == 507
            assert "LocalStoreFull" in await response.text()
        async with session.put(runtime.url + "/bkt/a", data=b"x" * 90) as response:
            assert response.status == 200  # a replacement counts only the difference
        async with session.delete(runtime.url + "/bkt/a") as response:
            assert response.status == 204
        async with session.put(runtime.url + "/bkt/b", data=b"x" * 30) as response:
            assert response.status == 200
        assert runtime.list_objects() == ["s3://bkt/b"]


@pytest.mark.parametrize("path", ["/endpoints/echo/invocations", "/bucket/key"])
async def test_unsigned_request_refused_before_its_body_is_read(path: str) -> None:
    credentials = botocore.credentials.Credentials("AKIDSAFE", "safe-secret")
    async with LocalRuntime(credentials=credentials) as runtime:
        runtime.add_endpoint("echo", echo)
        reader, writer = await asyncio.open_connection("127.0.0.1", runtime.port)
        try:
            method = "POST" if path.startswith("/endpoints") else "PUT"
            # Announces 50 MB, sends 5 bytes: an answer now means nothing was waited for.
            writer.write(
                f"{method} {path} HTTP/1.1\r\nHost: localhost\r\n"
                "Content-Length: 50000000\r\n\r\nhello".encode()
            )
            await writer.drain()
            status_line = await asyncio.wait_for(reader.readline(), 10)
        finally:
            writer.close()
            await writer.wait_closed()
        assert status_line.split()[1] in (b"403",)
        assert runtime.calls("echo") == []


async def test_handlers_never_see_credentials(runtime: LocalRuntime) -> None:
    async with SageMakerRuntimeClient(
        runtime.region,
        endpoint_url=runtime.url,
        aws_access_key_id="AKIDFAULTS",
        aws_secret_access_key="faults-secret",
        aws_session_token="faults-token",
    ) as client:
        await client.invoke_endpoint(endpoint_name="echo", body=json.dumps({}).encode())
    [call] = runtime.calls("echo")
    names = {name.lower() for name in call.headers}
    assert "authorization" not in names
    assert "x-amz-security-token" not in names
    assert "faults-token" not in repr(call) + str(dict(call.headers))
