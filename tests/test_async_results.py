"""Waiting for async-inference results: against moto's S3 (a real S3 emulator, in server mode), a
second moto server that enforces IAM, scripted S3 answers on loopback, and the local runtime.

Every wait is bounded; every test asserts what the caller sees and, where it matters, what S3 saw.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import boto3
import pytest
from aiohttp import web
from conftest import FakeTime, Received, ScriptedServer
from moto.server import ThreadedMotoServer

from sagemaker_rt_aio import (
    AsyncInferenceFailure,
    AsyncInferenceTimeout,
    ClientClosedError,
    ConnectionClosedError,
    InvokeEndpointAsyncResult,
    ParamValidationError,
    ReadTimeoutError,
    ResponseMetadata,
    RetryPolicy,
    S3Error,
    SageMakerRuntimeClient,
    SageMakerRuntimeError,
)
from sagemaker_rt_aio._constants import EMPTY_SHA256
from tests.test_hostile import Hostile

ACCESS_KEY = "AKIDTESTS3WAITER"
SECRET_KEY = "test-secret-key"
REGION = "us-east-1"
BOUND = 30.0  # seconds: only a broken client waits this long
FAST = 0.05  # poll_interval for tests: the first polls come quickly
NOWHERE = "http://127.0.0.1:9"  # a SageMaker endpoint URL for tests that never call SageMaker

# -- servers -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    """moto's S3 in server mode, in a thread of this process, on a port the OS picks."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="module")
def s3(moto_url: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=moto_url,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )


@pytest.fixture
def bucket(s3: Any) -> str:
    name = f"bkt-{uuid.uuid4().hex[:16]}"
    s3.create_bucket(Bucket=name)
    return name


@pytest.fixture
async def client(moto_url: str) -> AsyncIterator[SageMakerRuntimeClient]:
    async with make_client(s3_endpoint_url=moto_url) as c:
        yield c


def make_client(
    *,
    s3_endpoint_url: str,
    endpoint_url: str = NOWHERE,
    access_key: str = ACCESS_KEY,
    secret_key: str = SECRET_KEY,
    timeout: aiohttp.ClientTimeout | None = None,
) -> SageMakerRuntimeClient:
    return SageMakerRuntimeClient(
        REGION,
        endpoint_url=endpoint_url,
        s3_endpoint_url=s3_endpoint_url,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        # The default attempts, with waits short enough for a test (S3's SlowDown backs off
        # from 0.5 s by default).
        retry_policy=RetryPolicy(base_delay=0.001, throttle_base_delay=0.001, max_delay=0.01),
        timeout=timeout,
    )


def queued(
    bucket: str, key: str = "out/inf-1.out", failure_key: str | None = "fail/inf-1.out"
) -> InvokeEndpointAsyncResult:
    """What invoke_endpoint_async returns for an inference whose result goes to ``bucket``."""
    return InvokeEndpointAsyncResult(
        inference_id="inf-1",
        output_location=f"s3://{bucket}/{key}",
        failure_location=f"s3://{bucket}/{failure_key}" if failure_key else None,
        response_metadata=ResponseMetadata(request_id="rid", http_status_code=202),
    )


def files_in(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def put_later(s3: Any, delay: float, bucket: str, key: str, body: bytes) -> asyncio.Task[None]:
    """Write an object ``delay`` seconds from now, as the model container would."""

    async def later() -> None:
        await asyncio.sleep(delay)
        await asyncio.to_thread(s3.put_object, Bucket=bucket, Key=key, Body=body)

    return asyncio.get_running_loop().create_task(later())


# -- moto S3: the four outcomes --------------------------------------------------------------------


async def test_output_appears_after_a_delay(
    client: SageMakerRuntimeClient, s3: Any, bucket: str
) -> None:
    async def model_writes_during_the_third_wait(n: int) -> None:
        if n == 3:
            await asyncio.to_thread(
                s3.put_object, Bucket=bucket, Key="out/inf-1.out", Body=b'{"prediction": 0.93}'
            )

    fake = FakeTime(model_writes_during_the_third_wait)
    fake.install(client)
    body = await client.wait_for_async_result(queued(bucket), timeout=10, poll_interval=FAST)
    assert body == b'{"prediction": 0.93}'
    assert len(fake.sleeps) == 3  # three polls found nothing, the fourth the output
    assert FAST / 2 <= fake.sleeps[0] <= FAST  # the first poll interval, with jitter


async def test_output_already_there_returns_at_once(
    client: SageMakerRuntimeClient, s3: Any, bucket: str
) -> None:
    key = "out/a b/\u00fcber+%~!.out"  # a key that must be encoded, and signed, as S3 expects
    s3.put_object(Bucket=bucket, Key=key, Body=b"ready")
    fake = FakeTime()
    fake.install(client)
    body = await client.wait_for_async_result(queued(bucket, key), timeout=10, poll_interval=5)
    assert body == b"ready"
    assert fake.sleeps == []  # found by the first poll, no wait


async def test_a_read_result_leaves_no_read_watch_behind(
    client: SageMakerRuntimeClient, s3: Any, bucket: str
) -> None:
    """The GET of a result is a stream the client's read watchdog keeps sock_read for: every
    read counts as progress, and the watch ends with the body (read, failed or dropped)."""
    s3.put_object(Bucket=bucket, Key="out/inf-1.out", Body=b"ready")
    assert await client.wait_for_async_result(queued(bucket), timeout=10) == b"ready"
    s3.put_object(Bucket=bucket, Key="fail/inf-2.out", Body=b"model failed")
    with pytest.raises(AsyncInferenceFailure):
        await client.wait_for_async_result(
            queued(bucket, "out/inf-2.out", "fail/inf-2.out"), timeout=10
        )
    assert len(client._pipeline._watchdog) == 0


async def test_a_result_body_that_stalls_raises_read_timeout(
    scripted_server: ScriptedServer,
) -> None:
    release = asyncio.Event()

    async def handler(request: web.Request, body: bytes) -> web.StreamResponse:
        if request.method == "HEAD":
            return web.Response(status=200, headers={"Content-Length": "10"})
        response = web.StreamResponse(headers={"Content-Length": "10"})
        await response.prepare(request)
        await response.write(b"12345")
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(release.wait(), 5)
        return response

    scripted_server.default = handler
    async with make_client(
        s3_endpoint_url=scripted_server.url, timeout=aiohttp.ClientTimeout(sock_read=0.3)
    ) as c:
        with pytest.raises(ReadTimeoutError):
            await c.wait_for_async_result(queued("bkt"), timeout=30, poll_interval=FAST)
        release.set()
        assert len(c._pipeline._watchdog) == 0


async def test_a_result_whose_headers_trickle_raises_read_timeout() -> None:
    """The GET of a result is watched from its request on, as every call: headers that come a
    byte at a time, each sooner than sock_read, never end the idle time (aiohttp's own timer,
    re-armed on every read, would let them run until the wait's timeout). The GET is retried as
    S3's are, each attempt ended after sock_read."""
    gets = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal gets
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            if head.startswith(b"HEAD "):  # the poll: the output is there
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n")
                continue
            gets += 1
            writer.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
            for _ in range(400):  # 20 s at most, far past the wait's timeout
                writer.write(b"a")
                await writer.drain()
                await asyncio.sleep(0.05)  # within sock_read (0.3 s)

    server = Hostile(serve)
    await server.start()
    try:
        async with make_client(
            s3_endpoint_url=server.url, timeout=aiohttp.ClientTimeout(sock_read=0.3)
        ) as c:
            with pytest.raises(ReadTimeoutError):
                await c.wait_for_async_result(queued("bkt"), timeout=10, poll_interval=FAST)
            # Every attempt ended by the read timeout, none by the wait's end.
            assert gets == c.retry_policy.max_attempts
            assert len(c._pipeline._watchdog) == 0
    finally:
        await server.stop()  # its handlers' connections too


async def test_failure_object_appears_instead(
    client: SageMakerRuntimeClient, s3: Any, bucket: str
) -> None:
    text = "Received server error (500) from primary with message \u201cboom\u201d."

    async def model_fails_during_the_second_wait(n: int) -> None:
        if n == 2:
            await asyncio.to_thread(
                s3.put_object, Bucket=bucket, Key="fail/inf-1.out", Body=text.encode()
            )

    fake = FakeTime(model_fails_during_the_second_wait)
    fake.install(client)
    with pytest.raises(AsyncInferenceFailure) as info:
        await client.wait_for_async_result(queued(bucket), timeout=10, poll_interval=FAST)
    assert info.value.failure == text
    assert info.value.failure_location == f"s3://{bucket}/fail/inf-1.out"
    assert text in str(info.value)
    assert len(fake.sleeps) == 2  # found by the poll right after it appeared


async def test_nothing_appears_times_out_on_time(
    client: SageMakerRuntimeClient, bucket: str
) -> None:
    fake = FakeTime()
    fake.install(client)
    started = fake.clock()
    with pytest.raises(AsyncInferenceTimeout) as info:
        await client.wait_for_async_result(queued(bucket), timeout=60, poll_interval=FAST)
    assert fake.clock() - started >= 60  # it waited the whole timeout...
    assert fake.slept <= 60  # ...and not one wait past it
    assert len(fake.sleeps) >= 3
    assert isinstance(info.value, TimeoutError)
    assert info.value.timeout == 60
    assert info.value.output_location == f"s3://{bucket}/out/inf-1.out"


async def test_output_wins_over_a_failure_written_later(
    client: SageMakerRuntimeClient, s3: Any, bucket: str
) -> None:
    s3.put_object(Bucket=bucket, Key="out/inf-1.out", Body=b"ok")
    s3.put_object(Bucket=bucket, Key="fail/inf-1.out", Body=b"stale failure")
    assert await client.wait_for_async_result(queued(bucket), timeout=5) == b"ok"


async def test_without_failure_location_only_the_output_is_polled(
    client: SageMakerRuntimeClient, s3: Any, bucket: str
) -> None:
    async def model_writes_during_the_second_wait(n: int) -> None:
        if n == 2:
            await asyncio.to_thread(s3.put_object, Bucket=bucket, Key="out/inf-1.out", Body=b"done")

    fake = FakeTime(model_writes_during_the_second_wait)
    fake.install(client)
    result = queued(bucket, failure_key=None)
    assert await client.wait_for_async_result(result, timeout=5, poll_interval=FAST) == b"done"
    assert len(fake.sleeps) == 2


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"timeout": 0}, "timeout"),
        ({"timeout": -1}, "timeout"),
        ({"timeout": 5, "poll_interval": 0}, "poll_interval"),
    ],
)
async def test_bad_arguments_send_nothing(
    scripted_server: ScriptedServer, kwargs: dict[str, float], field: str
) -> None:
    async with make_client(s3_endpoint_url=scripted_server.url) as c:
        with pytest.raises(ParamValidationError) as info:
            await c.wait_for_async_result(queued("bkt"), **kwargs)
        assert info.value.field == field
        no_output = InvokeEndpointAsyncResult(None, None, None, ResponseMetadata(None, 202))
        with pytest.raises(ParamValidationError):
            await c.wait_for_async_result(no_output, timeout=5)
        bad = InvokeEndpointAsyncResult(None, "not-a-uri", None, ResponseMetadata(None, 202))
        with pytest.raises(ParamValidationError):
            await c.wait_for_async_result(bad, timeout=5)
    assert scripted_server.received == []


# -- access denied ---------------------------------------------------------------------------------


def s3_xml_error(status: int, code: str, message: str, request_id: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message>"
        f"<RequestId>{request_id}</RequestId><HostId>hid</HostId></Error>"
    ).encode()


async def test_access_denied_on_head_raises_at_once(scripted_server: ScriptedServer) -> None:
    """S3 answers a HEAD without a body: the 403 alone must raise, not read as "not ready"."""

    async def denied(request: web.Request, body: bytes) -> web.StreamResponse:
        return web.Response(
            status=403,
            body=s3_xml_error(403, "AccessDenied", "Access Denied", "XMLID"),
            headers={"x-amz-request-id": "HEAD-RID", "Content-Type": "application/xml"},
        )

    scripted_server.default = denied
    fake = FakeTime()
    async with fake.install(make_client(s3_endpoint_url=scripted_server.url)) as c:
        with pytest.raises(S3Error) as info:
            await c.wait_for_async_result(queued("bkt"), timeout=30, poll_interval=FAST)
    assert fake.sleeps == []  # raised by the first poll: not read as "not ready yet"
    error = info.value
    assert (error.code, error.status_code, error.request_id) == ("AccessDenied", 403, "HEAD-RID")
    assert [r.method for r in scripted_server.received] == ["HEAD"]  # no second poll


async def test_access_denied_on_get_reads_s3_xml_error(scripted_server: ScriptedServer) -> None:
    """HEAD allowed, GET refused (a KMS key the role may not use, say): S3's XML is parsed."""

    async def handler(request: web.Request, body: bytes) -> web.StreamResponse:
        if request.method == "HEAD":
            return web.Response(status=200, headers={"Content-Length": "5"})
        return web.Response(
            status=403,
            body=s3_xml_error(403, "AccessDenied", "Access Denied", "XML-RID"),
            headers={"x-amz-request-id": "HEADER-RID", "Content-Type": "application/xml"},
        )

    scripted_server.default = handler
    async with make_client(s3_endpoint_url=scripted_server.url) as c:
        with pytest.raises(S3Error) as info:
            await c.wait_for_async_result(queued("bkt"), timeout=30, poll_interval=FAST)
    error = info.value
    assert (error.code, error.status_code, error.request_id) == ("AccessDenied", 403, "XML-RID")
    assert error.message == "Access Denied"
    assert [r.method for r in scripted_server.received] == ["HEAD", "GET"]


async def test_access_denied_on_the_failure_location_is_not_hidden(
    scripted_server: ScriptedServer,
) -> None:
    async def handler(request: web.Request, body: bytes) -> web.StreamResponse:
        if "/fail/" in request.raw_path:
            return web.Response(status=403, headers={"x-amz-request-id": "F"})
        return web.Response(status=404)

    scripted_server.default = handler
    async with make_client(s3_endpoint_url=scripted_server.url) as c:
        with pytest.raises(S3Error) as info:
            await c.wait_for_async_result(queued("bkt"), timeout=30, poll_interval=FAST)
    assert info.value.status_code == 403
    assert len(scripted_server.received) == 2


@dataclass
class IamMoto:
    url: str
    bucket: str
    reader: tuple[str, str]
    nobody: tuple[str, str]


@pytest.fixture(scope="module")
def iam_moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IamMoto]:
    """A second moto server that enforces IAM (and so checks every SigV4 signature with botocore's
    ``S3SigV4Auth``).

    moto reads ``INITIAL_NO_AUTH_ACTION_COUNT`` into the module global ``moto.settings`` and counts
    requests in a class attribute, so enforcement is per process, not per server: turning it on in
    this process would also lock the thread-mode server above. This one runs in a process of its
    own; it starts open, the users and objects are made, then ``/moto-api/reset-auth`` switches
    enforcement on for that process alone.

    It binds a port of its own choosing (``-p 0``) and says which: a port picked free here and
    handed to it could be taken meanwhile by another worker's server (a moto one answers the
    readiness check too), and this module's users would be made on, and its calls sent to, a
    server that is not this one.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.pop("INITIAL_NO_AUTH_ACTION_COUNT", None)
    log = tmp_path_factory.mktemp("iam-moto") / "server.log"
    with log.open("wb") as server_log:  # the server keeps its own handle
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", "0"],
            stdout=subprocess.DEVNULL,
            stderr=server_log,
            env=env,
        )
    try:
        deadline = time.monotonic() + 30
        url = ""
        while not url:
            bound = re.search(rb"Running on (http://127\.0\.0\.1:\d+)", log.read_bytes())
            if bound is not None:
                url = bound.group(1).decode()
            elif process.poll() is not None or time.monotonic() > deadline:
                pytest.fail("the IAM-enforcing moto server did not say where it listens")
            else:
                time.sleep(0.05)
        while True:
            try:
                with urllib.request.urlopen(f"{url}/moto-api/data.json", timeout=1):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("the IAM-enforcing moto server did not start")
                time.sleep(0.05)
        admin = {
            "endpoint_url": url,
            "region_name": REGION,
            "aws_access_key_id": "admin",
            "aws_secret_access_key": "admin",
        }
        iam = boto3.client("iam", **admin)
        s3 = boto3.client("s3", **admin)
        bucket = "locked-bucket"
        s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket=bucket, Key="out/ready.out", Body=b"for readers only")

        def user(name: str, actions: list[str]) -> tuple[str, str]:
            iam.create_user(UserName=name)
            if actions:
                policy = {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Action": actions,
                            "Resource": f"arn:aws:s3:::{bucket}/*",
                        }
                    ],
                }
                iam.put_user_policy(
                    UserName=name, PolicyName="s3", PolicyDocument=json.dumps(policy)
                )
            key = iam.create_access_key(UserName=name)["AccessKey"]
            return key["AccessKeyId"], key["SecretAccessKey"]

        # s3:HeadObject is no IAM action of AWS's, where a HEAD needs s3:GetObject; moto 5.2.6
        # checks it for a HEAD all the same (boto3's own head_object is refused there without
        # it), as moto did before getmoto/moto#8334. Granted too, so that this module tests
        # signatures on every moto, not which action moto looks up.
        reader = user("reader", ["s3:GetObject", "s3:PutObject", "s3:HeadObject"])
        nobody = user("nobody", [])
        request = urllib.request.Request(
            f"{url}/moto-api/reset-auth",
            data=b"0",
            method="POST",
            headers={"Content-Type": "text/plain"},
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert json.load(answer)["status"] == "ok"
        yield IamMoto(url, bucket, reader, nobody)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


async def test_moto_iam_denies_a_user_without_permission(iam_moto: IamMoto) -> None:
    access_key, secret_key = iam_moto.nobody
    result = queued(iam_moto.bucket, "out/ready.out", "fail/x.out")
    fake = FakeTime()
    async with fake.install(
        make_client(s3_endpoint_url=iam_moto.url, access_key=access_key, secret_key=secret_key)
    ) as c:
        with pytest.raises(S3Error) as info:
            await c.wait_for_async_result(result, timeout=30, poll_interval=FAST)
        assert fake.sleeps == []  # promptly: the first poll, not after the timeout
        assert info.value.status_code == 403
        assert info.value.code == "AccessDenied"
        # The upload path maps S3's XML error the same way.
        with pytest.raises(S3Error) as put_info:
            await c.upload_async_input(b"x", f"s3://{iam_moto.bucket}/in/x")
        assert (put_info.value.code, put_info.value.status_code) == ("AccessDenied", 403)
        assert put_info.value.request_id


async def test_moto_iam_accepts_our_signatures(iam_moto: IamMoto) -> None:
    """moto re-signs each request with botocore's S3SigV4Auth: HEAD, GET and PUT must match."""
    access_key, secret_key = iam_moto.reader
    fake = FakeTime()
    async with fake.install(
        make_client(s3_endpoint_url=iam_moto.url, access_key=access_key, secret_key=secret_key)
    ) as c:
        ready = queued(iam_moto.bucket, "out/ready.out", "fail/ready.out")
        assert await c.wait_for_async_result(ready, timeout=10) == b"for readers only"
        # moto's verifier re-signs a decoded path, so keys with "+", "%", "!" or non-ASCII fail
        # there for boto3 as for us (tests/test_s3.py compares those with botocore directly).
        location = f"s3://{iam_moto.bucket}/in/run 1/input.json"
        assert await c.upload_async_input(b'{"x": 1}', location) == location
        uploaded = queued(iam_moto.bucket, "in/run 1/input.json", None)
        assert await c.wait_for_async_result(uploaded, timeout=10) == b'{"x": 1}'
        assert fake.sleeps == []  # each found by its first poll
        # Allowed to read, but nothing there yet: a 404, so the wait polls on until its timeout.
        started = fake.clock()
        with pytest.raises(AsyncInferenceTimeout):
            await c.wait_for_async_result(
                queued(iam_moto.bucket, "out/never.out", "fail/never.out"),
                timeout=60,
                poll_interval=FAST,
            )
        assert fake.clock() - started >= 60
        assert len(fake.sleeps) >= 2
        assert fake.slept <= 60


async def test_moto_iam_rejects_a_wrong_secret_at_once(iam_moto: IamMoto) -> None:
    access_key, _ = iam_moto.reader
    async with make_client(
        s3_endpoint_url=iam_moto.url, access_key=access_key, secret_key="not-the-secret"
    ) as c:
        with pytest.raises(S3Error) as info:
            await c.wait_for_async_result(
                queued(iam_moto.bucket, "out/ready.out"), timeout=30, poll_interval=FAST
            )
        assert info.value.status_code == 403
        with pytest.raises(S3Error) as put_info:
            await c.upload_async_input(b"x", f"s3://{iam_moto.bucket}/in/y")
        assert put_info.value.code == "SignatureDoesNotMatch"


# -- scripted S3: transient answers, signing, hanging servers ------------------------------------------


Answer = Callable[[web.Request, bytes], Awaitable[web.StreamResponse]]


def s3_script(
    head_statuses: list[int], get_answers: list[tuple[int, bytes]], failure_status: int = 404
) -> Answer:
    """HEADs of the output answer ``head_statuses`` in turn (the last repeats); GETs answer
    ``get_answers`` in turn; the failure location answers ``failure_status``."""
    heads = list(head_statuses)
    gets = list(get_answers)

    async def handler(request: web.Request, body: bytes) -> web.StreamResponse:
        if "/fail/" in request.raw_path:
            return web.Response(status=failure_status)
        if request.method == "HEAD":
            status = heads.pop(0) if len(heads) > 1 else heads[0]
            return web.Response(status=status, headers={"x-amz-request-id": f"head-{status}"})
        status, payload = gets.pop(0) if len(gets) > 1 else gets[0]
        return web.Response(status=status, body=payload)

    return handler


def output_heads(server: ScriptedServer) -> list[Received]:
    return [r for r in server.received if r.method == "HEAD" and "/out/" in r.raw_path]


async def test_slowdown_and_500_keep_polling_then_succeed(
    scripted_server: ScriptedServer,
) -> None:
    slowdown = s3_xml_error(503, "SlowDown", "Please reduce your request rate.", "r")
    scripted_server.default = s3_script(
        [503, 500, 503, 200],
        [(503, slowdown), (500, s3_xml_error(500, "InternalError", "oops", "r")), (200, b"done")],
    )
    async with make_client(s3_endpoint_url=scripted_server.url) as c:
        body = await c.wait_for_async_result(queued("bkt"), timeout=20, poll_interval=FAST)
    assert body == b"done"
    assert len(output_heads(scripted_server)) == 4
    assert [r.method for r in scripted_server.received].count("GET") == 3


async def test_not_found_keeps_polling_both_locations(scripted_server: ScriptedServer) -> None:
    scripted_server.default = s3_script([404, 404, 404, 404, 404, 200], [(200, b"late")])
    fake = FakeTime()
    async with fake.install(make_client(s3_endpoint_url=scripted_server.url)) as c:
        body = await c.wait_for_async_result(queued("bkt"), timeout=20, poll_interval=FAST)
    assert body == b"late"
    assert len(fake.sleeps) == 5  # a wait between polls
    heads = output_heads(scripted_server)
    failure_heads = [r for r in scripted_server.received if "/fail/" in r.raw_path]
    assert len(heads) == 6
    assert len(failure_heads) == 5  # each poll asks both, until the output is found


async def test_polls_back_off(scripted_server: ScriptedServer) -> None:
    """With poll_interval 0.5, a 7.5 s wait polls a handful of times, not the 15-30 a fixed
    interval would make."""
    scripted_server.default = s3_script([404], [(200, b"")])
    fake = FakeTime()
    async with fake.install(make_client(s3_endpoint_url=scripted_server.url)) as c:
        with pytest.raises(AsyncInferenceTimeout):
            await c.wait_for_async_result(queued("bkt"), timeout=7.5, poll_interval=0.5)
    assert 3 <= len(output_heads(scripted_server)) <= 12
    assert len(output_heads(scripted_server)) == len(fake.sleeps) + 1
    # Each wait is jittered within an interval that grows by half each time (the last one is
    # cut short by the timeout).
    for n, wait in enumerate(fake.sleeps[:-1]):
        assert 0.5 * 1.5**n / 2 <= wait <= 0.5 * 1.5**n, fake.sleeps


async def test_s3_requests_are_signed_for_s3(scripted_server: ScriptedServer) -> None:
    scripted_server.default = s3_script([404, 200], [(200, b"out")])
    async with make_client(s3_endpoint_url=scripted_server.url) as c:
        await c.wait_for_async_result(
            queued("bkt", "out/a b+\u00fc.out"), timeout=10, poll_interval=FAST
        )
        await c.upload_async_input(
            b'{"big": true}', "s3://bkt/in/x y.json", content_type="application/json"
        )
    methods = [r.method for r in scripted_server.received]
    assert methods == ["HEAD", "HEAD", "HEAD", "GET", "PUT"]
    for received in scripted_server.received:
        auth = received.headers["Authorization"]
        assert auth.startswith(f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/")
        assert f"/{REGION}/s3/aws4_request" in auth
        signed = auth.split("SignedHeaders=")[1].split(",")[0].split(";")
        assert {"host", "x-amz-content-sha256", "x-amz-date"} <= set(signed)
        assert received.headers["X-Amz-Date"].endswith("Z")
        expected_hash = hashlib.sha256(received.body).hexdigest()
        assert received.headers["x-amz-content-sha256"] == expected_hash
    head, get, put = (
        scripted_server.received[0],
        scripted_server.received[3],
        scripted_server.received[4],
    )
    assert head.raw_path == "/bkt/out/a%20b%2B%C3%BC.out"  # path style for a custom endpoint
    assert get.headers["x-amz-content-sha256"] == EMPTY_SHA256
    assert put.raw_path == "/bkt/in/x%20y.json"
    assert put.body == b'{"big": true}'
    assert put.headers["Content-Type"] == "application/json"
    assert "content-type" in put.headers["Authorization"]


async def test_a_hanging_s3_does_not_stretch_the_timeout(scripted_server: ScriptedServer) -> None:
    release = asyncio.Event()

    async def hang(request: web.Request, body: bytes) -> web.StreamResponse:
        await asyncio.wait_for(release.wait(), 2 * BOUND)
        return web.Response(status=404)

    scripted_server.default = hang
    try:
        async with make_client(s3_endpoint_url=scripted_server.url) as c:
            started = time.monotonic()
            with pytest.raises(AsyncInferenceTimeout):
                # S3 hangs longer than BOUND: only the wait's own timeout can end this in time.
                await asyncio.wait_for(
                    c.wait_for_async_result(queued("bkt"), timeout=0.8, poll_interval=FAST),
                    BOUND,
                )
            assert time.monotonic() - started >= 0.8
    finally:
        release.set()
    assert len(scripted_server.received) == 1  # the one HEAD that hung; no retry past the end


# -- cancellation and shutdown -----------------------------------------------------------------------


async def wait_for_requests(server: ScriptedServer, count: int, limit: float = 5.0) -> None:
    deadline = time.monotonic() + limit
    while len(server.received) < count:
        assert time.monotonic() < deadline, f"only {len(server.received)} requests arrived"
        await asyncio.sleep(0.01)


async def test_cancelling_a_wait_stops_all_polling(scripted_server: ScriptedServer) -> None:
    scripted_server.default = s3_script([404], [(200, b"")])
    fake = FakeTime()  # waits between polls take no time: a poll still running would show at once
    async with fake.install(make_client(s3_endpoint_url=scripted_server.url)) as c:
        task = asyncio.create_task(
            c.wait_for_async_result(queued("bkt"), timeout=30, poll_interval=FAST)
        )
        await wait_for_requests(scripted_server, 4)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        seen, waits = len(scripted_server.received), len(fake.sleeps)
        await asyncio.sleep(0.2)  # time for many polls (each takes milliseconds)
        assert len(fake.sleeps) == waits  # the loop ended
        # At most the one HEAD on its way when the wait was cancelled arrives after it.
        assert len(scripted_server.received) <= seen + 1


async def test_cancelling_during_a_request_ends_at_once(scripted_server: ScriptedServer) -> None:
    release = asyncio.Event()

    async def hang(request: web.Request, body: bytes) -> web.StreamResponse:
        await asyncio.wait_for(release.wait(), 2 * BOUND)
        return web.Response(status=404)

    scripted_server.default = hang
    try:
        async with make_client(s3_endpoint_url=scripted_server.url) as c:
            task = asyncio.create_task(
                c.wait_for_async_result(queued("bkt"), timeout=3600, poll_interval=FAST)
            )
            await wait_for_requests(scripted_server, 1)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):  # at once: S3 answers only after BOUND
                await asyncio.wait_for(task, BOUND)
            release.set()
            await asyncio.sleep(0.3)
            assert len(scripted_server.received) == 1
    finally:
        release.set()


async def test_shutdown_during_a_wait_raises_client_closed(
    client: SageMakerRuntimeClient, bucket: str
) -> None:
    # Polls an hour apart: only shutdown waking the wait ends it within BOUND.
    task = asyncio.create_task(
        client.wait_for_async_result(queued(bucket), timeout=7200, poll_interval=3600)
    )
    await asyncio.sleep(0.3)
    await asyncio.wait_for(client.shutdown(), BOUND)
    with pytest.raises(ClientClosedError):
        await asyncio.wait_for(task, BOUND)


async def test_shutdown_during_an_s3_request_raises_client_closed(
    scripted_server: ScriptedServer,
) -> None:
    release = asyncio.Event()

    async def hang(request: web.Request, body: bytes) -> web.StreamResponse:
        await asyncio.wait_for(release.wait(), 2 * BOUND)
        return web.Response(status=404)

    scripted_server.default = hang
    c = make_client(s3_endpoint_url=scripted_server.url)
    try:
        task = asyncio.create_task(
            c.wait_for_async_result(queued("bkt"), timeout=3600, poll_interval=FAST)
        )
        await wait_for_requests(scripted_server, 1)
        # S3 answers only after BOUND, and the default grace is 10 s: the wait ends at once.
        await asyncio.wait_for(c.shutdown(grace=3600), BOUND)
        with pytest.raises(ClientClosedError):
            await asyncio.wait_for(task, BOUND)
    finally:
        release.set()
        await c.shutdown()


async def test_shutdown_while_streaming_the_output_raises_client_closed(
    scripted_server: ScriptedServer,
) -> None:
    release = asyncio.Event()

    async def handler(request: web.Request, body: bytes) -> web.StreamResponse:
        if request.method == "HEAD":
            return web.Response(status=200)
        response = web.StreamResponse(headers={"Content-Length": "1000000"})
        await response.prepare(request)
        await response.write(b"x" * 1000)
        await asyncio.wait_for(release.wait(), 10)
        return response

    scripted_server.default = handler
    c = make_client(s3_endpoint_url=scripted_server.url)
    try:
        chunks = c.iter_async_result(queued("bkt"), timeout=30, poll_interval=FAST)
        first = await chunks.__anext__()
        assert first == b"x" * 1000

        async def next_chunk() -> bytes:
            return await chunks.__anext__()

        task = asyncio.create_task(next_chunk())
        await asyncio.sleep(0.1)
        await c.shutdown()
        with pytest.raises(ClientClosedError):
            await asyncio.wait_for(task, 2)
    finally:
        release.set()
        await c.shutdown()


async def test_calls_after_shutdown_raise_and_send_nothing(
    scripted_server: ScriptedServer, tmp_path: Path
) -> None:
    async with make_client(
        s3_endpoint_url=scripted_server.url, endpoint_url=scripted_server.url
    ) as c:
        pass
    assert c.closed
    result = queued("bkt")
    with pytest.raises(ClientClosedError):
        await c.wait_for_async_result(result, timeout=5)
    with pytest.raises(ClientClosedError):
        await c.download_async_result(result, tmp_path / "out", timeout=5)
    with pytest.raises(ClientClosedError):
        c.iter_async_result(result, timeout=5)
    with pytest.raises(ClientClosedError):
        await c.upload_async_input(b"x", "s3://bkt/in/x")
    with pytest.raises(ClientClosedError):
        await c.invoke_endpoint_async_and_wait(endpoint_name="m", body=b"x", timeout=5)
    with pytest.raises(ClientClosedError):
        await c.invoke_endpoint_async_and_wait(
            endpoint_name="m", body=b"x" * 200_000, timeout=5, upload_location="s3://bkt/in/x"
        )
    assert scripted_server.received == []
    assert files_in(tmp_path) == []


# -- to a file, in chunks, and uploads ---------------------------------------------------------------


async def test_download_writes_the_file(
    client: SageMakerRuntimeClient, s3: Any, bucket: str, tmp_path: Path
) -> None:
    payload = os.urandom(2 * 1024 * 1024 + 17)
    writer = put_later(s3, 0.3, bucket, "out/inf-1.out", payload)
    target = tmp_path / "result.bin"
    size = await client.download_async_result(
        queued(bucket), target, timeout=10, poll_interval=FAST
    )
    await writer
    assert size == len(payload)
    assert target.read_bytes() == payload
    assert files_in(tmp_path) == ["result.bin"]


@pytest.mark.parametrize("outcome", ["failure", "timeout"])
async def test_download_leaves_no_file_when_the_wait_fails(
    client: SageMakerRuntimeClient, s3: Any, bucket: str, tmp_path: Path, outcome: str
) -> None:
    if outcome == "failure":
        s3.put_object(Bucket=bucket, Key="fail/inf-1.out", Body=b"model crashed")
    target = tmp_path / "result.bin"
    expected = AsyncInferenceFailure if outcome == "failure" else AsyncInferenceTimeout
    FakeTime().install(client)
    with pytest.raises(expected):
        await client.download_async_result(
            queued(bucket), str(target), timeout=0.5, poll_interval=FAST
        )
    assert files_in(tmp_path) == []


async def test_download_keeps_an_existing_file_when_the_wait_fails(
    client: SageMakerRuntimeClient, s3: Any, bucket: str, tmp_path: Path
) -> None:
    target = tmp_path / "result.bin"
    target.write_bytes(b"previous result")
    s3.put_object(Bucket=bucket, Key="fail/inf-1.out", Body=b"model crashed")
    with pytest.raises(AsyncInferenceFailure):
        await client.download_async_result(queued(bucket), target, timeout=5)
    assert target.read_bytes() == b"previous result"
    assert files_in(tmp_path) == ["result.bin"]


async def test_download_cut_off_midway_leaves_no_partial_file(
    scripted_server: ScriptedServer, tmp_path: Path
) -> None:
    async def handler(request: web.Request, body: bytes) -> web.StreamResponse:
        if request.method == "HEAD":
            return web.Response(status=200)
        response = web.StreamResponse(headers={"Content-Length": "100000"})
        await response.prepare(request)
        await response.write(b"y" * 5000)
        assert request.transport is not None
        request.transport.close()  # the connection drops with 95,000 bytes still owed
        return response

    scripted_server.default = handler
    target = tmp_path / "result.bin"
    async with make_client(s3_endpoint_url=scripted_server.url) as c:
        with pytest.raises(ConnectionClosedError):
            await c.download_async_result(queued("bkt"), target, timeout=10, poll_interval=FAST)
    assert files_in(tmp_path) == []


async def test_iter_yields_chunks_that_join_to_the_object(
    client: SageMakerRuntimeClient, s3: Any, bucket: str
) -> None:
    payload = os.urandom(3 * 1024 * 1024)
    writer = put_later(s3, 0.2, bucket, "out/inf-1.out", payload)
    chunks = [
        chunk
        async for chunk in client.iter_async_result(queued(bucket), timeout=10, poll_interval=FAST)
    ]
    await writer
    assert b"".join(chunks) == payload
    assert len(chunks) > 1
    assert all(chunks)


async def test_iter_raises_the_failure(
    client: SageMakerRuntimeClient, s3: Any, bucket: str
) -> None:
    s3.put_object(Bucket=bucket, Key="fail/inf-1.out", Body=b"bad input")
    with pytest.raises(AsyncInferenceFailure) as info:
        async for _ in client.iter_async_result(queued(bucket), timeout=5):
            pytest.fail("a failed inference yields nothing")
    assert info.value.failure == "bad input"


@pytest.mark.parametrize("key", ["in/input.json", "in/a b/\u00fcber+%.json"])
async def test_upload_then_get_object(
    client: SageMakerRuntimeClient, s3: Any, bucket: str, key: str
) -> None:
    payload = os.urandom(300_000)
    location = f"s3://{bucket}/{key}"
    assert (
        await client.upload_async_input(payload, location, content_type="application/x-npy")
        == location
    )
    stored = s3.get_object(Bucket=bucket, Key=key)
    assert stored["Body"].read() == payload
    assert stored["ContentType"] == "application/x-npy"


async def test_upload_text(client: SageMakerRuntimeClient, s3: Any, bucket: str) -> None:
    await client.upload_async_input("h\u00e9llo", f"s3://{bucket}/in/t.txt")
    assert s3.get_object(Bucket=bucket, Key="in/t.txt")["Body"].read() == "h\u00e9llo".encode()


async def test_upload_retries_slowdown(scripted_server: ScriptedServer) -> None:
    slowdown = s3_xml_error(503, "SlowDown", "Please reduce your request rate.", "r")

    async def answer_slowdown(request: web.Request, body: bytes) -> web.StreamResponse:
        return web.Response(status=503, body=slowdown)

    async def answer_ok(request: web.Request, body: bytes) -> web.StreamResponse:
        return web.Response(status=200)

    scripted_server.script = [answer_slowdown, answer_ok]
    async with make_client(s3_endpoint_url=scripted_server.url) as c:
        assert await c.upload_async_input(b"abc", "s3://bkt/in/x") == "s3://bkt/in/x"
    assert [r.body for r in scripted_server.received] == [b"abc", b"abc"]
    first, second = scripted_server.received
    assert first.headers["Authorization"] and second.headers["Authorization"]


async def test_upload_gives_up_on_persistent_slowdown(scripted_server: ScriptedServer) -> None:
    async def answer_slowdown(request: web.Request, body: bytes) -> web.StreamResponse:
        return web.Response(
            status=503, body=s3_xml_error(503, "SlowDown", "Reduce your request rate.", "sd")
        )

    scripted_server.default = answer_slowdown
    async with make_client(s3_endpoint_url=scripted_server.url) as c:
        with pytest.raises(S3Error) as info:
            await c.upload_async_input(b"abc", "s3://bkt/in/x")
    assert (info.value.code, info.value.status_code, info.value.request_id) == (
        "SlowDown",
        503,
        "sd",
    )
    assert len(scripted_server.received) == 3  # the client's retry policy: 3 attempts


# -- invoke_endpoint_async_and_wait: a scripted SageMaker endpoint, moto's S3 -----------------------


def sagemaker_async_endpoint(s3: Any, bucket: str, *, fail: bool = False) -> Answer:
    """Answers InvokeEndpointAsync as SageMaker does (202, InferenceId, the two locations) and
    writes the result to moto's S3 0.3 s later."""
    counter = iter(range(1, 1000))

    async def handler(request: web.Request, body: bytes) -> web.StreamResponse:
        inference_id = f"inf-{next(counter)}"
        output = f"out/{inference_id}.out"
        failure = f"fail/{inference_id}-error.out"
        if fail:
            put_later(s3, 0.3, bucket, failure, b"ModelError: bad tensor shape")
        else:
            put_later(s3, 0.3, bucket, output, b"result of " + (body or b"<input location>"))
        return web.json_response(
            {"InferenceId": inference_id},
            status=202,
            headers={
                "x-amzn-RequestId": f"req-{inference_id}",
                "X-Amzn-SageMaker-OutputLocation": f"s3://{bucket}/{output}",
                "X-Amzn-SageMaker-FailureLocation": f"s3://{bucket}/{failure}",
            },
        )

    return handler


async def test_invoke_and_wait_end_to_end(
    scripted_server: ScriptedServer, moto_url: str, s3: Any, bucket: str
) -> None:
    scripted_server.default = sagemaker_async_endpoint(s3, bucket)
    async with make_client(s3_endpoint_url=moto_url, endpoint_url=scripted_server.url) as c:
        started = time.monotonic()
        body = await c.invoke_endpoint_async_and_wait(
            endpoint_name="my-endpoint",
            body=b'{"x": 1}',
            content_type="application/json",
            timeout=10,
            poll_interval=FAST,
        )
        assert time.monotonic() - started >= 0.3  # the output appeared 0.3 s after the invoke
    assert body == b'result of {"x": 1}'
    (post,) = scripted_server.received
    assert post.method == "POST"
    assert post.raw_path == "/endpoints/my-endpoint/async-invocations"
    assert post.body == b'{"x": 1}'
    assert "/sagemaker/aws4_request" in post.headers["Authorization"]


async def test_invoke_and_wait_failure(
    scripted_server: ScriptedServer, moto_url: str, s3: Any, bucket: str
) -> None:
    scripted_server.default = sagemaker_async_endpoint(s3, bucket, fail=True)
    async with make_client(s3_endpoint_url=moto_url, endpoint_url=scripted_server.url) as c:
        with pytest.raises(AsyncInferenceFailure) as info:
            await c.invoke_endpoint_async_and_wait(
                endpoint_name="m", body=b"x", timeout=10, poll_interval=FAST
            )
    assert info.value.failure == "ModelError: bad tensor shape"
    assert info.value.failure_location == f"s3://{bucket}/fail/inf-1-error.out"


async def test_invoke_and_wait_timeout_covers_the_whole_call(
    scripted_server: ScriptedServer, moto_url: str, bucket: str
) -> None:
    async def queued_only(request: web.Request, body: bytes) -> web.StreamResponse:
        await asyncio.sleep(0.3)  # the invoke itself takes part of the budget
        return web.json_response(
            {"InferenceId": "never"},
            status=202,
            headers={
                "X-Amzn-SageMaker-OutputLocation": f"s3://{bucket}/out/never.out",
                "X-Amzn-SageMaker-FailureLocation": f"s3://{bucket}/fail/never.out",
            },
        )

    scripted_server.default = queued_only
    fake = FakeTime()
    async with fake.install(
        make_client(s3_endpoint_url=moto_url, endpoint_url=scripted_server.url)
    ) as c:
        started = fake.clock()
        with pytest.raises(AsyncInferenceTimeout):
            await c.invoke_endpoint_async_and_wait(
                endpoint_name="m", body=b"x", timeout=10, poll_interval=FAST
            )
        assert fake.clock() - started >= 10
    assert fake.slept <= 10 - 0.3  # the invoke's time counted: the polls got only the rest
    assert len(fake.sleeps) >= 2


async def test_invoke_and_wait_uploads_a_large_body_first(
    scripted_server: ScriptedServer, moto_url: str, s3: Any, bucket: str
) -> None:
    scripted_server.default = sagemaker_async_endpoint(s3, bucket)
    payload = os.urandom(128_001)
    location = f"s3://{bucket}/inputs/big.bin"
    async with make_client(s3_endpoint_url=moto_url, endpoint_url=scripted_server.url) as c:
        body = await c.invoke_endpoint_async_and_wait(
            endpoint_name="m",
            body=payload,
            content_type="application/octet-stream",
            timeout=10,
            poll_interval=FAST,
            upload_location=location,
        )
    assert body == b"result of <input location>"
    stored = s3.get_object(Bucket=bucket, Key="inputs/big.bin")
    assert stored["Body"].read() == payload
    assert stored["ContentType"] == "application/octet-stream"
    (post,) = scripted_server.received
    assert post.headers["X-Amzn-SageMaker-InputLocation"] == location
    assert post.body == b""
    assert post.headers.get("Content-Length", "0") == "0"


async def test_invoke_and_wait_keeps_a_small_body_inline(
    scripted_server: ScriptedServer, moto_url: str, s3: Any, bucket: str
) -> None:
    scripted_server.default = sagemaker_async_endpoint(s3, bucket)
    payload = b"z" * 128_000  # exactly the inline limit
    async with make_client(s3_endpoint_url=moto_url, endpoint_url=scripted_server.url) as c:
        await c.invoke_endpoint_async_and_wait(
            endpoint_name="m",
            body=payload,
            timeout=10,
            poll_interval=FAST,
            upload_location=f"s3://{bucket}/inputs/small.bin",
        )
    (post,) = scripted_server.received
    assert post.body == payload
    assert "X-Amzn-SageMaker-InputLocation" not in post.headers
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="inputs/")
    assert listed["KeyCount"] == 0


# -- the local runtime -------------------------------------------------------------------------------


async def test_local_runtime_end_to_end() -> None:
    local = pytest.importorskip("sagemaker_rt_aio.local")
    from botocore.credentials import Credentials

    async def handler(invocation: Any) -> bytes:
        return b"model says: " + bytes(invocation.body)

    async def failing(invocation: Any) -> bytes:
        raise local.ContainerError(500, "the model fell over")

    credentials = Credentials("AKIDLOCALRUNTIME", "local-secret")
    async with local.LocalRuntime(credentials=credentials, async_delay=0.3) as runtime:
        runtime.add_endpoint("m", handler)
        runtime.add_endpoint("broken", failing)
        async with SageMakerRuntimeClient(
            runtime.region,
            endpoint_url=runtime.url,
            s3_endpoint_url=runtime.url,
            aws_access_key_id="AKIDLOCALRUNTIME",
            aws_secret_access_key="local-secret",
        ) as c:
            started = time.monotonic()
            out = await c.invoke_endpoint_async_and_wait(
                endpoint_name="m", body=b"hello", timeout=5, poll_interval=FAST
            )
            assert out == b"model says: hello"
            assert time.monotonic() - started >= 0.25  # async_delay held the output back

            with pytest.raises(AsyncInferenceFailure) as info:
                await c.invoke_endpoint_async_and_wait(
                    endpoint_name="broken", body=b"hello", timeout=5, poll_interval=FAST
                )
            assert "the model fell over" in info.value.failure
            assert info.value.failure_location is not None
            assert runtime.get_location(info.value.failure_location) is not None

            big = os.urandom(200_000)
            out = await c.invoke_endpoint_async_and_wait(
                endpoint_name="m",
                body=big,
                timeout=5,
                poll_interval=FAST,
                upload_location="s3://inputs/big.bin",
            )
            assert out == b"model says: " + big
            assert runtime.get_location("s3://inputs/big.bin") == big


async def test_invoke_and_wait_refuses_a_large_body_without_upload_location(
    scripted_server: ScriptedServer,
) -> None:
    async with make_client(
        s3_endpoint_url=scripted_server.url, endpoint_url=scripted_server.url
    ) as c:
        with pytest.raises(ParamValidationError):
            await c.invoke_endpoint_async_and_wait(
                endpoint_name="m", body=b"x" * 128_001, timeout=5
            )
    assert scripted_server.received == []


async def test_invoke_and_wait_timeout_bounds_a_slow_upload(
    scripted_server: ScriptedServer,
) -> None:
    release = asyncio.Event()

    async def slow(request: web.Request, body: bytes) -> web.StreamResponse:
        if request.method == "PUT":
            await asyncio.wait_for(release.wait(), BOUND)  # S3 does not finish the upload
            return web.Response(status=200)
        return web.json_response(
            {"InferenceId": "i"},
            status=202,
            headers={"X-Amzn-SageMaker-OutputLocation": "s3://bkt/out/never.out"},
        )

    scripted_server.default = slow
    async with make_client(
        s3_endpoint_url=scripted_server.url, endpoint_url=scripted_server.url
    ) as c:
        started = time.monotonic()
        with pytest.raises(SageMakerRuntimeError) as caught:
            await asyncio.wait_for(  # BOUND: a hang fails the test instead
                c.invoke_endpoint_async_and_wait(
                    endpoint_name="m",
                    body=b"x" * 200_000,
                    timeout=0.3,
                    upload_location="s3://bkt/in/big.bin",
                ),
                BOUND,
            )
        assert time.monotonic() - started >= 0.3
        release.set()
    assert isinstance(caught.value, TimeoutError)
