"""Our client and boto3 against moto's SageMaker Runtime, in server mode on loopback.

moto answers InvokeEndpoint with a result taken from a queue that the test fills through
``/moto-api/static/sagemaker/endpoint-results`` (or with static defaults), and remembers it per
endpoint and request fingerprint (the X-Amzn-SageMaker-* headers, Accept and the body), so that the
same request always gets the same answer. InvokeEndpointAsync writes its result to moto's S3 and
returns the locations, remembered per endpoint and InputLocation. moto does not check signatures.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import boto3
import botocore.config
import pytest
from moto.server import ThreadedMotoServer

from sagemaker_rt_aio import (
    AsyncInferenceFailure,
    RetryPolicy,
    SageMakerRuntimeClient,
)

ACCESS_KEY = "AKIDMOTOTESTING"
SECRET_KEY = "moto-secret"
REGION = "us-east-1"
HTTP_TIMEOUT = aiohttp.ClientTimeout(total=30, sock_connect=5, sock_read=15)
_OUTPUT = re.compile(r"s3://sagemaker-output-[0-9a-f-]{36}/response\.json")
_FAILURE = re.compile(r"s3://sagemaker-output-[0-9a-f-]{36}/failure\.json")


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


async def moto_api(url: str, path: str, payload: dict[str, Any] | None = None) -> None:
    async with (
        aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as session,
        session.post(f"{url}/moto-api/{path}", json=payload) as response,
    ):
        assert response.status in (200, 201), await response.text()


@pytest.fixture
async def moto(moto_url: str) -> AsyncIterator[str]:
    await moto_api(moto_url, "reset")  # forget earlier tests' results, queues and buckets
    yield moto_url


async def queue_results(url: str, *results: dict[str, str]) -> None:
    await moto_api(
        url, "static/sagemaker/endpoint-results", {"region": REGION, "results": list(results)}
    )


async def queue_async_results(url: str, *results: dict[str, Any]) -> None:
    await moto_api(
        url,
        "static/sagemaker/async-endpoint-results",
        {"region": REGION, "results": list(results)},
    )


def boto_client(url: str, service: str = "sagemaker-runtime") -> Any:
    return boto3.session.Session().client(
        service,
        region_name=REGION,
        endpoint_url=url,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        config=botocore.config.Config(
            retries={"total_max_attempts": 1},
            connect_timeout=5,
            read_timeout=10,
            s3={"addressing_style": "path"},
        ),
    )


async def boto_call(url: str, operation: str, service: str = "sagemaker-runtime", **kw: Any) -> Any:
    """One boto3 call in a worker thread, with any streamed Body read."""
    client = boto_client(url, service)

    def run() -> Any:
        try:
            result = getattr(client, operation)(**kw)
            if "Body" in result:
                result["Body"] = result["Body"].read()
            return result
        finally:
            client.close()

    return await asyncio.wait_for(asyncio.to_thread(run), timeout=30)


@asynccontextmanager
async def our_client(url: str) -> AsyncIterator[SageMakerRuntimeClient]:
    async with SageMakerRuntimeClient(
        region_name=REGION,
        endpoint_url=url,
        s3_endpoint_url=url,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        retry_policy=RetryPolicy.none(),
        timeout=HTTP_TIMEOUT,
    ) as client:
        yield client


def assert_same_invoke_result(theirs: dict[str, Any], ours: Any) -> None:
    assert ours.body == theirs["Body"]
    assert ours.content_type == theirs.get("ContentType")
    assert ours.custom_attributes == theirs.get("CustomAttributes")
    assert ours.invoked_production_variant == theirs.get("InvokedProductionVariant")
    assert ours.response_metadata.http_status_code == theirs["ResponseMetadata"]["HTTPStatusCode"]


# -- InvokeEndpoint ---------------------------------------------------------------------------


async def test_invoke_endpoint_default_result(moto: str) -> None:
    theirs = await boto_call(moto, "invoke_endpoint", EndpointName="ep", Body=b"in")
    async with our_client(moto) as client:
        ours = await client.invoke_endpoint(endpoint_name="ep", body=b"in")
    assert_same_invoke_result(theirs, ours)
    # moto's static answer, so the comparison above compared something.
    assert ours.body == b"body"
    assert ours.content_type == "content_type"
    assert ours.invoked_production_variant == "invoked_production_variant"
    assert ours.custom_attributes == "custom_attributes"


QUEUED = {
    "json": {
        "Body": '{"predictions": [0.25, 0.75]}',
        "ContentType": "application/json",
        "InvokedProductionVariant": "AllTraffic",
        "CustomAttributes": "c000b4f9-df62-4c85-a0bf-7c525f9104a4",
    },
    "csv": {
        "Body": "1,2,3\n4,5,6\n",
        "ContentType": "text/csv",
        "InvokedProductionVariant": "variant-b",
        "CustomAttributes": "a=1; b=2",
    },
    "body-only": {"Body": "just a body"},
}


@pytest.mark.parametrize("name", sorted(QUEUED))
async def test_invoke_endpoint_queued_result(moto: str, name: str) -> None:
    result = QUEUED[name]
    # One copy for each client: whether or not moto takes both calls for the same request, both
    # must read this result.
    await queue_results(moto, result, result)
    kwargs: dict[str, Any] = {"EndpointName": "ep", "Body": b'{"x": 1}', "Accept": "text/csv"}
    theirs = await boto_call(moto, "invoke_endpoint", **kwargs)
    async with our_client(moto) as client:
        ours = await client.invoke_endpoint(endpoint_name="ep", body=b'{"x": 1}', accept="text/csv")
    assert_same_invoke_result(theirs, ours)
    assert ours.body == result["Body"].encode()
    assert ours.invoked_production_variant == result.get("InvokedProductionVariant")
    assert ours.custom_attributes == result.get("CustomAttributes")


async def test_same_request_has_the_same_moto_fingerprint(moto: str) -> None:
    # moto keys remembered results on the X-Amzn-SageMaker-* headers, Accept and the body: our
    # request with every member set must read boto3's result, and a different request the next one.
    first, second = QUEUED["json"], QUEUED["csv"]
    await queue_results(moto, first, second)
    members = {
        "EndpointName": "ep-all",
        "Body": '{"inputs": "caf\u00e9"}',
        "ContentType": "application/json",
        "Accept": "application/json",
        "CustomAttributes": "trace=1",
        "TargetModel": "model-a.tar.gz",
        "TargetVariant": "v1",
        "TargetContainerHostname": "c1",
        "InferenceId": "inference-1",
        "EnableExplanations": "`true`",
        "InferenceComponentName": "ic-1",
        "SessionId": "NEW_SESSION",
    }
    theirs = await boto_call(moto, "invoke_endpoint", **members)
    async with our_client(moto) as client:
        ours = await client.invoke_endpoint(
            endpoint_name="ep-all",
            body='{"inputs": "caf\u00e9"}',
            content_type="application/json",
            accept="application/json",
            custom_attributes="trace=1",
            target_model="model-a.tar.gz",
            target_variant="v1",
            target_container_hostname="c1",
            inference_id="inference-1",
            enable_explanations="`true`",
            inference_component_name="ic-1",
            session_id="NEW_SESSION",
        )
        other = await client.invoke_endpoint(
            endpoint_name="ep-all", body='{"inputs": "caf\u00e9"}', custom_attributes="trace=2"
        )
    assert theirs["Body"] == first["Body"].encode()
    assert_same_invoke_result(theirs, ours)
    assert other.body == second["Body"].encode()
    assert other.content_type == second["ContentType"]


# -- InvokeEndpointAsync ----------------------------------------------------------------------


async def test_invoke_endpoint_async_locations(moto: str) -> None:
    kwargs: dict[str, Any] = {
        "EndpointName": "async-ep",
        "InputLocation": "s3://inputs/payload.json",
        "InferenceId": "inference-42",
        "ContentType": "application/json",
        "RequestTTLSeconds": 600,
    }
    theirs = await boto_call(moto, "invoke_endpoint_async", **kwargs)
    async with our_client(moto) as client:
        ours = await client.invoke_endpoint_async(
            endpoint_name="async-ep",
            input_location="s3://inputs/payload.json",
            inference_id="inference-42",
            content_type="application/json",
            request_ttl_seconds=600,
        )
    # moto remembers the locations per endpoint and InputLocation: both clients must read them.
    assert ours.output_location == theirs["OutputLocation"]
    assert ours.failure_location == theirs["FailureLocation"]
    assert ours.inference_id == theirs["InferenceId"] == "inference-42"
    assert ours.output_location is not None and _OUTPUT.fullmatch(ours.output_location)
    assert ours.failure_location is not None and _FAILURE.fullmatch(ours.failure_location)
    # moto answers 200 where the service answers 202; both clients take it as success.
    assert ours.response_metadata.http_status_code == theirs["ResponseMetadata"]["HTTPStatusCode"]


async def test_invoke_endpoint_async_generated_inference_ids(moto: str) -> None:
    theirs = await boto_call(
        moto, "invoke_endpoint_async", EndpointName="ep", InputLocation="s3://b/one"
    )
    async with our_client(moto) as client:
        ours = await client.invoke_endpoint_async(endpoint_name="ep", input_location="s3://b/two")
    for inference_id in (theirs["InferenceId"], ours.inference_id):
        assert inference_id is not None
        uuid.UUID(inference_id)
    # A different InputLocation is a different request: a new output bucket.
    assert ours.output_location != theirs["OutputLocation"]
    assert ours.output_location is not None and _OUTPUT.fullmatch(ours.output_location)


async def test_invoke_endpoint_async_inline_body(moto: str) -> None:
    theirs = await boto_call(
        moto, "invoke_endpoint_async", EndpointName="inline-ep", Body=b'{"inline": true}'
    )
    async with our_client(moto) as client:
        ours = await client.invoke_endpoint_async(
            endpoint_name="inline-ep", body=b'{"inline": true}'
        )
    assert ours.output_location == theirs["OutputLocation"]
    assert ours.failure_location == theirs["FailureLocation"]


async def test_async_output_reads_the_same_through_both(moto: str) -> None:
    data = '{"generated": "text", "n": 3}'
    await queue_async_results(moto, {"data": data})
    theirs = await boto_call(
        moto, "invoke_endpoint_async", EndpointName="ep", InputLocation="s3://in/x.json"
    )
    async with our_client(moto) as client:
        ours = await client.invoke_endpoint_async(
            endpoint_name="ep", input_location="s3://in/x.json"
        )
        assert ours.output_location == theirs["OutputLocation"]
        output = await client.wait_for_async_result(ours, timeout=10, poll_interval=0.05)
    assert output == data.encode()
    # boto3's S3 client reads the object at the location boto3's call returned.
    bucket, _, key = theirs["OutputLocation"].removeprefix("s3://").partition("/")
    got = await boto_call(moto, "get_object", service="s3", Bucket=bucket, Key=key)
    assert got["Body"] == output


async def test_async_failure_reads_the_same_through_both(moto: str) -> None:
    await queue_async_results(moto, {"is_failure": True, "data": "inference failed: OOM"})
    async with our_client(moto) as client:
        ours = await client.invoke_endpoint_async(endpoint_name="ep", input_location="s3://in/f")
        with pytest.raises(AsyncInferenceFailure) as caught:
            await client.wait_for_async_result(ours, timeout=10, poll_interval=0.05)
    assert caught.value.failure == "inference failed: OOM"
    assert ours.failure_location is not None
    bucket, _, key = ours.failure_location.removeprefix("s3://").partition("/")
    got = await boto_call(moto, "get_object", service="s3", Bucket=bucket, Key=key)
    assert got["Body"].decode() == caught.value.failure
