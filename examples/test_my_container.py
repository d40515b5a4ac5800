"""An example test for YOUR project: your model container behind the local runtime.

Copy this file into your project's tests. Start your image the way SageMaker does
(``docker run --rm -p 8080:8080 my-image serve``) and point the tests at it::

    MODEL_CONTAINER_URL=http://127.0.0.1:8080 pytest test_my_container.py

Without ``MODEL_CONTAINER_URL`` a stand-in container (below, twenty lines of aiohttp that answer
the container contract: ``GET /ping``, ``POST /invocations``) takes its place, so the file runs
as it is. The tests talk to the container through the real wire path: the SageMaker Runtime
client (this library's here; boto3, aiobotocore or another language would do the same against
``runtime.url``), the runtime's headers, errors and timeouts, then your container.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from sagemaker_rt_aio import (
    ModelError,
    ModelStreamError,
    RetryPolicy,
    SageMakerRuntimeClient,
    ServiceUnavailable,
)
from sagemaker_rt_aio.local import BreakStreamFault, LocalRuntime, ServiceErrorFault

pytestmark = pytest.mark.asyncio


async def _stand_in_container() -> web.AppRunner:
    """What your image does: ``/ping`` says healthy, ``/invocations`` scores (here: sums)."""

    async def ping(request: web.Request) -> web.Response:
        return web.Response(text="\n")

    async def invocations(request: web.Request) -> web.StreamResponse:
        data = await request.json()
        if not isinstance(data.get("inputs"), list):
            return web.json_response({"error": "inputs must be a list"}, status=400)
        if request.headers.get("Accept") == "text/event-stream":  # streamed: one part per input
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await response.prepare(request)
            for value in data["inputs"]:
                await response.write(f"data: {value}\n\n".encode())
            await response.write_eof()
            return response
        return web.json_response({"sum": sum(data["inputs"])})

    app = web.Application()
    app.router.add_get("/ping", ping)
    app.router.add_post("/invocations", invocations)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner


@pytest.fixture
async def container_url() -> AsyncIterator[str]:
    url = os.environ.get("MODEL_CONTAINER_URL")
    if url:
        yield url
        return
    runner = await _stand_in_container()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


@pytest.fixture
async def runtime(container_url: str) -> AsyncIterator[LocalRuntime]:
    async with LocalRuntime(model_timeout=5) as runtime:
        # Awaiting waits until the container answers /ping (as the endpoint goes InService).
        await runtime.add_container_endpoint("my-model", container_url)
        yield runtime


@pytest.fixture
async def client(runtime: LocalRuntime) -> AsyncIterator[SageMakerRuntimeClient]:
    async with SageMakerRuntimeClient(
        runtime.region,
        endpoint_url=runtime.url,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        retry_policy=RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.05),
    ) as client:
        yield client


async def test_scores(runtime: LocalRuntime, client: SageMakerRuntimeClient) -> None:
    result = await client.invoke_endpoint(
        endpoint_name="my-model",
        body=json.dumps({"inputs": [1, 2, 3]}),
        content_type="application/json",
        custom_attributes="request=42",
    )
    assert json.loads(result.body) == {"sum": 6}
    # What the container was sent, for assertions on your service's requests.
    [call] = runtime.calls("my-model")
    assert call.content_type == "application/json"
    assert call.custom_attributes == "request=42"


async def test_bad_input_is_a_model_error(client: SageMakerRuntimeClient) -> None:
    with pytest.raises(ModelError) as caught:
        await client.invoke_endpoint(
            endpoint_name="my-model", body=b'{"inputs": 1}', content_type="application/json"
        )
    assert caught.value.original_status_code == 400


async def test_streams(client: SageMakerRuntimeClient) -> None:
    async with client.invoke_endpoint_with_response_stream(
        endpoint_name="my-model",
        body=json.dumps({"inputs": [1, 2]}),
        content_type="application/json",
        accept="text/event-stream",
    ) as stream:
        text = b"".join([part.bytes async for part in stream])
    assert text == b"data: 1\n\ndata: 2\n\n"


async def test_rides_out_a_brief_outage(
    runtime: LocalRuntime, client: SageMakerRuntimeClient
) -> None:
    runtime.fail_next("my-model", 2)  # two 503s: the client's retries absorb them
    result = await client.invoke_endpoint(
        endpoint_name="my-model", body=b'{"inputs": [5]}', content_type="application/json"
    )
    assert json.loads(result.body) == {"sum": 5}
    runtime.add_fault("my-model", ServiceErrorFault(code="ServiceUnavailable"), times=3)
    with pytest.raises(ServiceUnavailable):  # three are one too many
        await client.invoke_endpoint(endpoint_name="my-model", body=b'{"inputs": [5]}')


async def test_a_broken_stream_is_reported(
    runtime: LocalRuntime, client: SageMakerRuntimeClient
) -> None:
    runtime.add_fault("my-model", BreakStreamFault(after_parts=0), times=1)
    with pytest.raises(ModelStreamError) as caught:
        async with client.invoke_endpoint_with_response_stream(
            endpoint_name="my-model",
            body=b'{"inputs": [1, 2, 3]}',
            content_type="application/json",
            accept="text/event-stream",
        ) as stream:
            async for _ in stream:
                pass
    assert caught.value.error_code == "StreamBroken"
