"""The local runtime's faults on the bidirectional operation: the same mechanism, the same fault
values, and the same arming as the other operations (``add_fault``), seen by this library's client.

Waiting faults sleep through the runtime's injected ``sleep`` (:class:`RuntimeClock`): no real time.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from conftest import RuntimeClock

from sagemaker_rt_aio import (
    BidirectionalPart,
    ConnectionClosedError,
    InternalStreamFailure,
    ModelNotReadyException,
    ModelStreamError,
    ReadTimeoutError,
    RetryPolicy,
    SageMakerRuntimeClient,
    SageMakerRuntimeError,
    ServiceUnavailable,
)
from sagemaker_rt_aio.local import (
    BreakStreamFault,
    ColdStartFault,
    Invocation,
    LatencyFault,
    LocalRuntime,
    ServiceErrorFault,
    SlowFirstPartFault,
    StallStreamFault,
)

pytestmark = pytest.mark.timeout(60)


async def echo(invocation: Any, inbound: AsyncIterator[BidirectionalPart]) -> Any:
    async for part in inbound:
        yield part


async def three_parts(invocation: Invocation) -> AsyncIterator[bytes]:
    for i in range(3):
        yield f"part{i}".encode()


@pytest.fixture
def fake_time() -> RuntimeClock:
    return RuntimeClock()


@pytest.fixture
async def runtime(fake_time: RuntimeClock) -> AsyncIterator[LocalRuntime]:
    async with LocalRuntime(
        clock=fake_time.clock, sleep=fake_time.sleep, model_timeout=0.2
    ) as rt:
        rt.add_bidirectional_endpoint("echo", echo)
        yield rt


@pytest.fixture
async def client(runtime: LocalRuntime) -> AsyncIterator[SageMakerRuntimeClient]:
    async with SageMakerRuntimeClient(
        runtime.region,
        endpoint_url=runtime.url,
        bidirectional_endpoint_url=runtime.bidirectional_url,
        aws_access_key_id="AKIDBIDIFAULTS",
        aws_secret_access_key="bidi-faults-secret",
        retry_policy=RetryPolicy.none(),
    ) as c:
        yield c


async def exchange(client: SageMakerRuntimeClient, words: list[bytes], got: list[bytes]) -> None:
    """Send ``words``, end the input, and read the answer parts into ``got``.

    A test whose fault ends the stream after N parts sends N words: the server may close the
    stream as soon as it has answered, and a word sent after that fails to send (a race this file
    is not about)."""
    async with client.invoke_endpoint_with_bidirectional_stream(endpoint_name="echo") as stream:
        for word in words:
            await stream.send(word)
        await stream.end_input()
        async for part in stream:
            got.append(part.bytes)


WORDS = [b"a", b"b", b"c"]


async def test_break_after_parts_with_the_default_event(
    runtime: LocalRuntime, client: SageMakerRuntimeClient
) -> None:
    runtime.add_fault("echo", BreakStreamFault(after_parts=2), times=1)
    got: list[bytes] = []
    with pytest.raises(ModelStreamError) as caught:
        await exchange(client, WORDS[:2], got)
    assert got == [b"a", b"b"]
    assert caught.value.error_code == "StreamBroken"
    assert "injected fault" in (caught.value.message or "")
    again: list[bytes] = []
    await exchange(client, WORDS, again)  # times=1: the next stream is whole
    assert again == WORDS


async def test_break_with_an_internal_stream_failure(
    runtime: LocalRuntime, client: SageMakerRuntimeClient
) -> None:
    fault = BreakStreamFault(
        after_parts=0, error="InternalStreamFailure", error_code=None, message="gone"
    )
    runtime.add_fault("echo", fault, times=1)
    with pytest.raises(InternalStreamFailure) as caught:
        await exchange(client, [], [])
    assert caught.value.message == "gone"


async def test_break_by_reset(runtime: LocalRuntime, client: SageMakerRuntimeClient) -> None:
    runtime.add_fault("echo", BreakStreamFault(after_parts=1, how="reset"), times=1)
    got: list[bytes] = []
    with pytest.raises(SageMakerRuntimeError) as caught:
        await exchange(client, WORDS[:1], got)
    assert not isinstance(caught.value, ModelStreamError)  # no event: the stream was reset
    assert got in ([], [b"a"])


async def test_slow_first_part_and_stall(
    runtime: LocalRuntime, client: SageMakerRuntimeClient, fake_time: RuntimeClock
) -> None:
    runtime.add_fault("echo", SlowFirstPartFault(seconds=4), times=1)
    runtime.add_fault("echo", StallStreamFault(after_parts=2, seconds=9), times=1)
    got: list[bytes] = []
    await exchange(client, WORDS, got)
    assert got == WORDS
    assert fake_time.slept == [4, 9]


async def test_stall_until_the_model_timeout(
    runtime: LocalRuntime, client: SageMakerRuntimeClient
) -> None:
    runtime.add_fault("echo", StallStreamFault(after_parts=1), times=1)
    got: list[bytes] = []
    with pytest.raises(ModelStreamError) as caught:
        await exchange(client, WORDS[:1], got)
    assert caught.value.error_code == "ModelInvocationTimeExceeded"
    assert got == [b"a"]


async def test_faults_before_the_model(
    runtime: LocalRuntime, client: SageMakerRuntimeClient, fake_time: RuntimeClock
) -> None:
    runtime.add_fault("echo", LatencyFault(seconds=2), times=3)
    runtime.add_fault("echo", ServiceErrorFault(code="ServiceUnavailable"), times=1)
    runtime.add_fault("echo", ColdStartFault(), times=1)
    with pytest.raises(ServiceUnavailable):
        await exchange(client, WORDS, [])
    with pytest.raises(ModelNotReadyException):
        await exchange(client, WORDS, [])
    got: list[bytes] = []
    await exchange(client, WORDS, got)
    assert got == WORDS
    assert fake_time.slept == [2, 2, 2]


async def test_one_stream_fault_serves_either_streaming_operation(
    runtime: LocalRuntime, client: SageMakerRuntimeClient
) -> None:
    runtime.add_endpoint("echo", three_parts)  # the same name on HTTP/1.1
    runtime.add_fault("echo", BreakStreamFault(after_parts=1), times=2)
    streamed: list[bytes] = []
    with pytest.raises(ModelStreamError):
        async with client.invoke_endpoint_with_response_stream(
            endpoint_name="echo", body=b"x"
        ) as response:
            async for part in response:
                streamed.append(part.bytes)
    assert streamed == [b"part0"]
    got: list[bytes] = []
    with pytest.raises(ModelStreamError):
        await exchange(client, WORDS[:1], got)
    assert got == [b"a"]
    # Both uses taken: the shortcut arms the same fault for the next bidirectional stream.
    runtime.fail_bidirectional_stream_next("echo", after_parts=2, message="shortcut")
    with pytest.raises(InternalStreamFailure) as caught:
        await exchange(client, WORDS[:2], [])
    assert caught.value.message == "shortcut"
    assert (await client.invoke_endpoint(endpoint_name="echo", body=b"x")).body == (
        b"part0part1part2"
    )


async def test_a_client_giving_up_on_a_stalled_stream_leaves_nothing_behind() -> None:
    async with LocalRuntime(model_timeout=3600) as rt:
        rt.add_bidirectional_endpoint("echo", echo)
        rt.add_fault("echo", StallStreamFault(after_parts=0))  # until the 3,600 s model timeout
        timeout = aiohttp.ClientTimeout(sock_connect=5, sock_read=0.05)
        async with SageMakerRuntimeClient(
            rt.region,
            endpoint_url=rt.url,
            bidirectional_endpoint_url=rt.bidirectional_url,
            aws_access_key_id="AKIDBIDIFAULTS",
            aws_secret_access_key="bidi-faults-secret",
            retry_policy=RetryPolicy.none(),
            timeout=timeout,
        ) as client:
            with pytest.raises(ReadTimeoutError):
                await exchange(client, WORDS, [])
        # Leaving the runtime cancels the stalled stream rather than waiting out the hour (the
        # test's own timeout bounds it); no task of the runtime's is left.
    assert asyncio.all_tasks() == {asyncio.current_task()}


async def test_input_after_the_model_ended_its_answer(
    runtime: LocalRuntime, client: SageMakerRuntimeClient
) -> None:
    """The model ends its answer at once (an exception event) while the client still sends: a
    send the server no longer takes says so, and the stream still tells how the answer ended."""
    fault = BreakStreamFault(after_parts=0, error="InternalStreamFailure", message="gone")
    runtime.add_fault("echo", fault, times=1)
    async with client.invoke_endpoint_with_bidirectional_stream(endpoint_name="echo") as stream:
        answers = stream.__aiter__()
        with pytest.raises(InternalStreamFailure) as caught:
            await answers.__anext__()
        assert caught.value.message == "gone"
        refused: ConnectionClosedError | None = None
        for _ in range(50):  # the server's reset of the stream may take a few sends to arrive
            try:
                await stream.send(b"late")
            except ConnectionClosedError as error:
                refused = error
                break
            await asyncio.sleep(0.01)
    assert refused is not None
    assert "the model ended its answer" in str(refused)
