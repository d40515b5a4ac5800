"""LocalRuntime's async inference and its path-style S3 interface, driven by boto3's own clients.

The SageMaker and S3 clients run in worker threads (``asyncio.to_thread``) while the runtime serves
in the test's loop; both are configured for one attempt and short timeouts and closed afterwards.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import aiohttp
import boto3
import botocore.auth
import botocore.awsrequest
import botocore.config
import botocore.credentials
import botocore.exceptions
import pytest

from sagemaker_rt_aio.local import ContainerError, Invocation, InvocationResponse, LocalRuntime

pytestmark = pytest.mark.timeout(60)

ACCESS_KEY = "AKIDLOCALTEST"
SECRET_KEY = "local-test-secret"
REGION = "us-east-1"


def boto_config(**kwargs: Any) -> botocore.config.Config:
    options: dict[str, Any] = {
        "retries": {"total_max_attempts": 1},
        "connect_timeout": 5,
        "read_timeout": 10,
        "s3": {"addressing_style": "path"},
    }
    options.update(kwargs)
    return botocore.config.Config(**options)


@pytest.fixture
def make_client() -> Iterator[Callable[..., Any]]:
    """``make_client(runtime, "s3" | "sagemaker-runtime", secret_key=...)``; closed after the test."""
    clients: list[Any] = []

    def make(
        runtime: LocalRuntime,
        service: str = "sagemaker-runtime",
        *,
        access_key: str = ACCESS_KEY,
        secret_key: str = SECRET_KEY,
    ) -> Any:
        client = boto3.session.Session().client(
            service,
            region_name=REGION,
            endpoint_url=runtime.url,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            config=boto_config(),
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


def split_s3(uri: str) -> tuple[str, str]:
    assert uri.startswith("s3://")
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


async def read_s3(s3: Any, uri: str, timeout: float = 5.0) -> bytes:
    """Poll ``uri`` with boto3's S3 client until it exists (bounded), then return its bytes."""
    bucket, key = split_s3(uri)
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = await asyncio.to_thread(s3.get_object, Bucket=bucket, Key=key)
        except s3.exceptions.NoSuchKey:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.02)
            continue
        data: bytes = result["Body"].read()
        return data


async def raw(
    runtime: LocalRuntime, method: str, path: str, body: bytes = b""
) -> tuple[int, dict[str, str], bytes]:
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as session,
        session.request(method, runtime.url + path, data=body) as response,
    ):
        return response.status, dict(response.headers), await response.read()


async def upper(invocation: Invocation) -> InvocationResponse:
    return InvocationResponse(invocation.body.upper(), content_type="text/plain")


# ----------------------------------------------------------------------------- async inference


async def test_async_inline_body_output_readable_with_boto3_s3(
    runtime: LocalRuntime, make_client: Any
) -> None:
    runtime.add_endpoint("upper", upper)
    client, s3 = make_client(runtime), make_client(runtime, "s3")
    result = await asyncio.to_thread(
        client.invoke_endpoint_async,
        EndpointName="upper",
        Body=b"hello async",
        ContentType="text/plain",
        Accept="text/plain",
        CustomAttributes="c=1",
    )
    assert result["ResponseMetadata"]["HTTPStatusCode"] == 202
    inference_id = result["InferenceId"]
    assert result["OutputLocation"] == (
        f"s3://sagemaker-rt-aio-local/async-inference/output/{inference_id}.out"
    )
    assert result["FailureLocation"] == (
        f"s3://sagemaker-rt-aio-local/async-inference/failures/{inference_id}-error.out"
    )
    assert await read_s3(s3, result["OutputLocation"]) == b"HELLO ASYNC"
    bucket, key = split_s3(result["OutputLocation"])
    head = await asyncio.to_thread(s3.head_object, Bucket=bucket, Key=key)
    assert head["ContentType"] == "text/plain"
    assert runtime.get_location(result["FailureLocation"]) is None

    [seen] = runtime.invocations("upper")
    assert seen.operation == "InvokeEndpointAsync"
    assert seen.inference_id == inference_id
    # InvokeEndpointAsync carries them in X-Amzn-SageMaker-Content-Type / -Accept.
    assert seen.content_type == "text/plain"
    assert seen.accept == "text/plain"
    assert seen.custom_attributes == "c=1"


async def test_async_input_location_and_given_inference_id(
    runtime: LocalRuntime, make_client: Any
) -> None:
    runtime.add_endpoint("upper", upper, output_path="s3://results/out")
    client, s3 = make_client(runtime), make_client(runtime, "s3")
    stored = runtime.put_object("inputs", "req/1.txt", b"from the store")
    assert stored == "s3://inputs/req/1.txt"
    await asyncio.to_thread(s3.put_object, Bucket="inputs", Key="req/2.txt", Body=b"uploaded")

    first = await asyncio.to_thread(
        client.invoke_endpoint_async,
        EndpointName="upper",
        InputLocation=stored,
        InferenceId="my-id-1",
        S3OutputPathExtension="batch7",
    )
    assert first["InferenceId"] == "my-id-1"
    assert first["OutputLocation"] == "s3://results/out/batch7/my-id-1.out"
    second = await asyncio.to_thread(
        client.invoke_endpoint_async,
        EndpointName="upper",
        InputLocation="s3://inputs/req/2.txt",
        Filename="answer.txt",
    )
    assert second["OutputLocation"] == "s3://results/out/answer.txt"
    assert await read_s3(s3, first["OutputLocation"]) == b"FROM THE STORE"
    assert await read_s3(s3, second["OutputLocation"]) == b"UPLOADED"
    assert {inv.input_location for inv in runtime.invocations("upper")} == {
        "s3://inputs/req/1.txt",
        "s3://inputs/req/2.txt",
    }


async def test_async_failures_are_written_to_the_failure_location(
    runtime: LocalRuntime, make_client: Any
) -> None:
    async def crash(invocation: Invocation) -> bytes:
        raise ContainerError(400, "cannot parse input")

    runtime.add_endpoint("crash", crash)
    runtime.add_endpoint("upper", upper)
    client, s3 = make_client(runtime), make_client(runtime, "s3")
    result = await asyncio.to_thread(client.invoke_endpoint_async, EndpointName="crash", Body=b"x")
    failure = (await read_s3(s3, result["FailureLocation"])).decode()
    assert failure.startswith(
        'Received client error (400) from primary with message "cannot parse input".'
    )
    assert runtime.get_location(result["OutputLocation"]) is None

    missing = await asyncio.to_thread(
        client.invoke_endpoint_async, EndpointName="upper", InputLocation="s3://inputs/none"
    )
    assert b"NoSuchKey" in await read_s3(s3, missing["FailureLocation"])


async def test_async_timeout_and_delay(make_client: Any) -> None:
    async def slow(invocation: Invocation) -> bytes:
        await asyncio.sleep(30)
        return b"late"  # pragma: no cover

    async with LocalRuntime(model_timeout=0.2, async_delay=0.3) as runtime:
        runtime.add_endpoint("slow", slow)
        runtime.add_endpoint("upper", upper)
        client, s3 = make_client(runtime), make_client(runtime, "s3")
        result = await asyncio.to_thread(
            client.invoke_endpoint_async, EndpointName="upper", Body=b"x"
        )
        # The output is held back for async_delay seconds.
        assert runtime.get_location(result["OutputLocation"]) is None
        assert await read_s3(s3, result["OutputLocation"]) == b"X"

        timed_out = await asyncio.to_thread(
            client.invoke_endpoint_async, EndpointName="slow", Body=b"x"
        )
        await runtime.wait_async_idle(timeout=5)
        failure = runtime.get_location(timed_out["FailureLocation"])
        assert failure is not None
        assert b"Received server error (0)" in failure
        assert b"timed out" in failure


async def test_async_validation(runtime: LocalRuntime, make_client: Any) -> None:
    runtime.add_endpoint("upper", upper)
    client = make_client(runtime)
    with pytest.raises(client.exceptions.ValidationError) as excinfo:
        await asyncio.to_thread(
            client.invoke_endpoint_async, EndpointName="upper", Body=b"x" * 128_001
        )
    assert "128000" in excinfo.value.response["Error"]["Message"]
    accepted = await asyncio.to_thread(
        client.invoke_endpoint_async, EndpointName="upper", Body=b"x" * 128_000
    )
    assert accepted["ResponseMetadata"]["HTTPStatusCode"] == 202
    with pytest.raises(client.exceptions.ValidationError):
        await asyncio.to_thread(client.invoke_endpoint_async, EndpointName="upper")
    with pytest.raises(client.exceptions.ValidationError):
        await asyncio.to_thread(
            client.invoke_endpoint_async, EndpointName="upper", InputLocation="ftp://x/y"
        )
    with pytest.raises(client.exceptions.ValidationError):
        await asyncio.to_thread(
            client.invoke_endpoint_async, EndpointName="nope", InputLocation="s3://b/k"
        )
    await runtime.wait_async_idle(timeout=5)


# ------------------------------------------------------------------------------------------ S3


async def test_s3_put_get_head_delete_with_boto3(runtime: LocalRuntime, make_client: Any) -> None:
    s3 = make_client(runtime, "s3")
    key = "dir/a b+c%d.json"
    put = await asyncio.to_thread(
        s3.put_object,
        Bucket="data",
        Key=key,
        Body=b'{"k": 1}',
        ContentType="application/json",
        Metadata={"origin": "test"},
    )
    etag = '"' + hashlib.md5(b'{"k": 1}').hexdigest() + '"'
    assert put["ETag"] == etag
    assert runtime.get_object("data", key) == b'{"k": 1}'

    got = await asyncio.to_thread(s3.get_object, Bucket="data", Key=key)
    assert got["Body"].read() == b'{"k": 1}'
    assert got["ContentType"] == "application/json"
    assert got["ContentLength"] == 8
    assert got["ETag"] == etag
    assert got["Metadata"] == {"origin": "test"}
    assert got["ResponseMetadata"]["RequestId"]
    assert got["ResponseMetadata"]["HTTPHeaders"]["x-amz-request-id"]

    head = await asyncio.to_thread(s3.head_object, Bucket="data", Key=key)
    assert head["ContentLength"] == 8
    assert head["ETag"] == etag

    await asyncio.to_thread(s3.delete_object, Bucket="data", Key=key)
    with pytest.raises(s3.exceptions.NoSuchKey):
        await asyncio.to_thread(s3.get_object, Bucket="data", Key=key)
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        await asyncio.to_thread(s3.head_object, Bucket="data", Key=key)
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


async def test_s3_error_format_on_the_wire(runtime: LocalRuntime) -> None:
    runtime.put_object("data", "present.bin", b"\x00\x01", content_type="application/x-test")
    status, headers, body = await raw(runtime, "GET", "/data/present.bin")
    assert (status, body) == (200, b"\x00\x01")
    assert headers["Content-Type"] == "application/x-test"
    assert headers["Content-Length"] == "2"

    status, headers, body = await raw(runtime, "GET", "/data/missing/key.txt")
    assert status == 404
    assert headers["Content-Type"] == "application/xml"
    text = body.decode()
    assert "<Code>NoSuchKey</Code>" in text
    assert "<Message>The specified key does not exist.</Message>" in text
    assert "<Key>missing/key.txt</Key>" in text
    assert f"<RequestId>{headers['x-amz-request-id']}</RequestId>" in text

    status, headers, body = await raw(runtime, "HEAD", "/data/missing/key.txt")
    assert (status, body) == (404, b"")
    status, headers, body = await raw(runtime, "HEAD", "/data/present.bin")
    assert (status, body, headers["Content-Length"]) == (200, b"", "2")

    # "endpoints" is never a bucket: its paths belong to the SageMaker operations.
    status, _, body = await raw(runtime, "GET", "/endpoints/x/invocations")
    assert status == 400
    assert b"<Code>InvalidBucketName</Code>" in body
    with pytest.raises(ValueError):
        runtime.put_object("endpoints", "x", b"")


async def test_s3_aws_chunked_upload(runtime: LocalRuntime) -> None:
    body = b"5;chunk-signature=abc\r\nhello\r\n6\r\n world\r\n0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n"
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as session,
        session.put(
            runtime.url + "/data/chunked.txt",
            data=body,
            headers={
                "Content-Encoding": "aws-chunked",
                "x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
            },
        ) as response,
    ):
        assert response.status == 200
    assert runtime.get_object("data", "chunked.txt") == b"hello world"


async def test_s3_object_size_limit(make_client: Any) -> None:
    async with LocalRuntime(max_object_bytes=100) as runtime:
        s3 = make_client(runtime, "s3")
        with pytest.raises(botocore.exceptions.ClientError) as excinfo:
            await asyncio.to_thread(s3.put_object, Bucket="data", Key="big", Body=b"x" * 101)
        assert excinfo.value.response["Error"]["Code"] == "EntityTooLarge"
        assert runtime.get_object("data", "big") is None


# ------------------------------------------------------------------------------- S3 signatures


@pytest.fixture
async def signed_runtime() -> AsyncIterator[LocalRuntime]:
    credentials = botocore.credentials.Credentials(ACCESS_KEY, SECRET_KEY)
    async with LocalRuntime(credentials=credentials) as rt:
        rt.add_endpoint("upper", upper)
        yield rt


async def test_s3_signed_requests(signed_runtime: LocalRuntime, make_client: Any) -> None:
    s3 = make_client(signed_runtime, "s3")
    key = "odd keys/with spaces+plus%percent~tilde/é.txt"  # percent-encoded once on the wire
    await asyncio.to_thread(s3.put_object, Bucket="data", Key=key, Body=b"signed")
    got = await asyncio.to_thread(s3.get_object, Bucket="data", Key=key)
    assert got["Body"].read() == b"signed"
    await asyncio.to_thread(s3.head_object, Bucket="data", Key=key)

    # The whole async round trip with signatures on both services.
    client = make_client(signed_runtime)
    result = await asyncio.to_thread(
        client.invoke_endpoint_async, EndpointName="upper", InputLocation=f"s3://data/{key}"
    )
    assert await read_s3(s3, result["OutputLocation"]) == b"SIGNED"


async def test_s3_wrong_secret_and_unsigned(signed_runtime: LocalRuntime, make_client: Any) -> None:
    signed_runtime.put_object("data", "k", b"secret data")
    bad = make_client(signed_runtime, "s3", secret_key="not-the-secret")
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        await asyncio.to_thread(bad.get_object, Bucket="data", Key="k")
    error = excinfo.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert error["Error"]["Code"] == "SignatureDoesNotMatch"
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        await asyncio.to_thread(bad.put_object, Bucket="data", Key="k", Body=b"overwritten")
    assert excinfo.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    assert signed_runtime.get_object("data", "k") == b"secret data"

    unknown = make_client(signed_runtime, "s3", access_key="AKIDSOMEONEELSE")
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        await asyncio.to_thread(unknown.get_object, Bucket="data", Key="k")
    assert excinfo.value.response["Error"]["Code"] == "InvalidAccessKeyId"

    status, _, body = await raw(signed_runtime, "GET", "/data/k")
    assert status == 403
    assert b"<Code>AccessDenied</Code>" in body

    # A request signed for SageMaker is not valid on the S3 paths.
    request = botocore.awsrequest.AWSRequest(method="GET", url=signed_runtime.url + "/data/k")
    credentials = botocore.credentials.Credentials(ACCESS_KEY, SECRET_KEY)
    botocore.auth.SigV4Auth(credentials, "sagemaker", REGION).add_auth(request)
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as session,
        session.get(request.url, headers=dict(request.headers.items())) as response,
    ):
        assert response.status == 400
        assert b"<Code>AuthorizationHeaderMalformed</Code>" in await response.read()


async def test_async_job_json_body(runtime: LocalRuntime) -> None:
    runtime.add_endpoint("upper", upper)
    status, headers, body = await raw(
        runtime, "POST", "/endpoints/upper/async-invocations", b"inline"
    )
    assert status == 202
    assert headers["Content-Type"].startswith("application/json")
    inference_id = json.loads(body)["InferenceId"]
    assert headers["X-Amzn-SageMaker-OutputLocation"].endswith(f"/{inference_id}.out")
    assert headers["X-Amzn-SageMaker-FailureLocation"].endswith(f"/{inference_id}-error.out")
    await runtime.wait_async_idle(timeout=5)
    assert runtime.get_location(headers["X-Amzn-SageMaker-OutputLocation"]) == b"INLINE"
