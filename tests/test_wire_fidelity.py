"""Wire fidelity: boto3 and our client, given the same inputs, send the same request and read the
same answer.

Both clients talk to one recording loopback server. boto3 is synchronous, so its calls run in a
worker thread (``asyncio.to_thread``) while the server runs in the test's event loop. Compared:
method, raw path, body, every header SageMaker or the model container sees (Content-Type, Accept,
all X-Amzn-SageMaker-* headers, present or absent), the session token, Accept-Encoding, framing
headers, and the Authorization header's credential scope and SignedHeaders list (not the signature,
the timestamp or the SDKs' own telemetry headers). On the way back, the parsed results and errors
are compared field by field.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import re
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import boto3
import botocore.config
import botocore.exceptions
import botocore.session
import pytest
from aiohttp import web
from conftest import Received, ScriptedServer
from multidict import CIMultiDict

from sagemaker_rt_aio import (
    InvokeEndpointRequest,
    ModelError,
    ParamValidationError,
    RetryPolicy,
    SageMakerRuntimeClient,
    ServiceError,
)

ACCESS_KEY = "AKIDWIREFIDELITY"
SECRET_KEY = "wire/fidelity+secret"
TOKEN = "session-token/" + "t" * 120

_MODEL = botocore.session.get_session().get_service_model("sagemaker-runtime")
ASYNC_MODEL_HAS_INLINE_BODY = (
    "Body" in _MODEL.operation_model("InvokeEndpointAsync").input_shape.members
)

# boto3 parameter names to ours.
SNAKE = {
    "EndpointName": "endpoint_name",
    "Body": "body",
    "ContentType": "content_type",
    "Accept": "accept",
    "CustomAttributes": "custom_attributes",
    "TargetModel": "target_model",
    "TargetVariant": "target_variant",
    "TargetContainerHostname": "target_container_hostname",
    "InferenceId": "inference_id",
    "EnableExplanations": "enable_explanations",
    "InferenceComponentName": "inference_component_name",
    "SessionId": "session_id",
    "InputLocation": "input_location",
    "RequestTTLSeconds": "request_ttl_seconds",
    "InvocationTimeoutSeconds": "invocation_timeout_seconds",
    "S3OutputPathExtension": "s3_output_path_extension",
    "Filename": "filename",
}


def ours_kwargs(boto_kwargs: dict[str, Any]) -> dict[str, Any]:
    return {SNAKE[name]: value for name, value in boto_kwargs.items()}


# -- the two clients ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def boto_session() -> boto3.session.Session:
    return boto3.session.Session()


@dataclass
class Pair:
    server: ScriptedServer
    boto_session: boto3.session.Session

    @property
    def received(self) -> list[Received]:
        return self.server.received

    def boto(self, token: str | None = TOKEN) -> Any:
        return self.boto_session.client(
            "sagemaker-runtime",
            region_name="us-east-1",
            endpoint_url=self.server.url,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            aws_session_token=token,
            config=botocore.config.Config(
                retries={"total_max_attempts": 1}, connect_timeout=5, read_timeout=10
            ),
        )

    @asynccontextmanager
    async def ours(
        self, token: str | None = TOKEN, http_session: aiohttp.ClientSession | None = None
    ) -> AsyncIterator[SageMakerRuntimeClient]:
        async with SageMakerRuntimeClient(
            region_name="us-east-1",
            endpoint_url=self.server.url,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            aws_session_token=token,
            retry_policy=RetryPolicy.none(),
            timeout=aiohttp.ClientTimeout(total=30, sock_connect=5, sock_read=10),
            http_session=http_session,
        ) as client:
            yield client


@pytest.fixture
def pair(scripted_server: ScriptedServer, boto_session: boto3.session.Session) -> Iterator[Pair]:
    yield Pair(scripted_server, boto_session)


async def boto_call(client: Any, operation: str, **kwargs: Any) -> Any:
    """Run one boto3 call in a worker thread; its result (Body read) or the ClientError raised."""

    def run() -> Any:
        try:
            result = getattr(client, operation)(**kwargs)
        except botocore.exceptions.ClientError as exc:
            return exc
        if "Body" in result:
            result["Body"] = result["Body"].read()
        return result

    try:
        return await asyncio.wait_for(asyncio.to_thread(run), timeout=30)
    finally:
        client.close()


# -- comparing requests ---------------------------------------------------------------------

# Headers that reach the service or the model; compared including absence.
_COMPARED = frozenset(
    {
        "host",
        "content-type",
        "accept",
        "accept-encoding",
        "content-length",
        "content-encoding",
        "transfer-encoding",
        "expect",
        "x-amz-security-token",
        "x-amz-content-sha256",
    }
)
_AUTH_RE = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<akid>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/"
    r"(?P<service>[^/]+)/aws4_request, SignedHeaders=(?P<signed>[a-z0-9;-]+), "
    r"Signature=[0-9a-f]{64}"
)


def relevant_headers(headers: CIMultiDict[str]) -> dict[str, list[str]]:
    names = {name.lower() for name in headers}
    return {
        name: headers.getall(name)
        for name in sorted(names)
        if name in _COMPARED or name.startswith("x-amzn-sagemaker-")
    }


def authorization(received: Received) -> tuple[str, str, str, list[str]]:
    match = _AUTH_RE.fullmatch(received.headers.get("Authorization", ""))
    assert match is not None, received.headers.get("Authorization")
    assert match["date"] == received.headers["X-Amz-Date"][:8]
    return match["akid"], match["region"], match["service"], match["signed"].split(";")


def assert_same_wire(theirs: Received, ours: Received) -> None:
    assert ours.method == theirs.method == "POST"
    assert ours.raw_path == theirs.raw_path
    assert ours.body == theirs.body
    assert relevant_headers(ours.headers) == relevant_headers(theirs.headers)
    assert authorization(ours) == authorization(theirs)
    assert authorization(ours)[:3] == (ACCESS_KEY, "us-east-1", "sagemaker")


# -- InvokeEndpoint requests ----------------------------------------------------------------

ALL_INVOKE_MEMBERS: dict[str, Any] = {
    "EndpointName": "my-endpoint-1",
    "Body": b'{"inputs": [1, 2, 3]}',
    "ContentType": "application/json; charset=utf-8",
    "Accept": "application/json, text/plain;q=0.5",
    "CustomAttributes": 'trace=abc-123; note="two  words"',
    "TargetModel": "models/model-a.tar.gz",
    "TargetVariant": "variant-B",
    "TargetContainerHostname": "container-2",
    "InferenceId": "inference id 42",
    "EnableExplanations": "`true`",
    "InferenceComponentName": "ic-main",
    "SessionId": "NEW_SESSION",
}

INVOKE_CASES: dict[str, dict[str, Any]] = {
    "minimal": {"EndpointName": "my-endpoint", "Body": b'{"inputs": "hi"}'},
    "all-members": ALL_INVOKE_MEMBERS,
    "str-body-utf8": {"EndpointName": "ep", "Body": '{"text": "h\u00e9llo \u2713"}'},
    "bytes-body-utf8": {"EndpointName": "ep", "Body": '{"text": "h\u00e9llo \u2713"}'.encode()},
    "binary-body": {
        "EndpointName": "ep",
        "Body": bytes(range(256)) * 64,
        "ContentType": "application/x-npy",
    },
    "empty-body": {"EndpointName": "ep", "Body": b""},
    "empty-str-body": {"EndpointName": "ep", "Body": ""},
    "empty-header-values": {
        "EndpointName": "ep",
        "Body": b"",
        "ContentType": "",
        "Accept": "",
        "CustomAttributes": "",
    },
    "spaces-in-values": {
        "EndpointName": "ep",
        "Body": b" ",
        "ContentType": "text/csv;  header=present",
        "Accept": "  text/csv  ",
        "CustomAttributes": "  a   b  ",
    },
    "long-values": {
        "EndpointName": "e" * 63,
        "Body": b"x" * (1024 * 1024),
        "CustomAttributes": "c" * 1024,
        "TargetModel": "m" * 1024,
        "InferenceId": "i" * 64,
    },
    "single-char-names": {
        "EndpointName": "a",
        "Body": b"1",
        "TargetVariant": "b",
        "TargetContainerHostname": "c",
        "InferenceComponentName": "d",
        "SessionId": "e",
        "EnableExplanations": " ",
    },
    "punctuation-attributes": {
        "EndpointName": "A1--b2",
        "Body": b"{}",
        "CustomAttributes": "!#$%&'()*+,-./:;<=>?@[\\]^_`{|}~",
        "TargetModel": "dir/sub dir/model~1.tar.gz",
    },
}


@pytest.mark.parametrize("token", [TOKEN, None], ids=["token", "no-token"])
@pytest.mark.parametrize("case", sorted(INVOKE_CASES))
async def test_invoke_endpoint_request_matches_boto3(
    pair: Pair, case: str, token: str | None
) -> None:
    kwargs = INVOKE_CASES[case]
    theirs = await boto_call(pair.boto(token), "invoke_endpoint", **kwargs)
    assert not isinstance(theirs, Exception), theirs
    async with pair.ours(token) as client:
        await client.invoke_endpoint(**ours_kwargs(kwargs))
    assert len(pair.received) == 2
    assert_same_wire(*pair.received)
    if token is None:
        assert "X-Amz-Security-Token" not in pair.received[1].headers
    else:
        assert pair.received[1].headers["X-Amz-Security-Token"] == TOKEN


async def test_no_content_type_or_accept_unless_given(pair: Pair) -> None:
    # aiohttp's own defaults (Accept: */*, Content-Type: application/octet-stream,
    # Accept-Encoding: gzip, deflate) must not leak: the model container would see them. The
    # client's own session skips them for every request; a session of yours, call by call.
    kwargs = INVOKE_CASES["minimal"]
    await boto_call(pair.boto(), "invoke_endpoint", **kwargs)
    async with aiohttp.ClientSession() as yours:
        for session in (None, yours):
            async with pair.ours(http_session=session) as client:
                await client.invoke_endpoint(**ours_kwargs(kwargs))
                await client.invoke_endpoint(endpoint_name="ep", body="text")
                await client.invoke_endpoint(endpoint_name="ep", body=bytearray(b"x"))
    assert len(pair.received) == 7
    for received in pair.received:
        assert "Content-Type" not in received.headers
        assert "Accept" not in received.headers
        assert received.headers.getall("Accept-Encoding") == ["identity"]
        assert "Transfer-Encoding" not in received.headers
        signed = authorization(received)[3]
        assert "content-type" not in signed and "accept" not in signed
        assert "accept-encoding" not in signed


@pytest.mark.parametrize(
    "body",
    [bytearray(b"\x00abc\xff"), memoryview(b"\x00abc\xff"), b"\x00abc\xff"],
    ids=["bytearray", "memoryview", "bytes"],
)
async def test_buffer_bodies_match_boto3_bytes(pair: Pair, body: Any) -> None:
    await boto_call(pair.boto(), "invoke_endpoint", EndpointName="ep", Body=b"\x00abc\xff")
    async with pair.ours() as client:
        await client.invoke_endpoint(endpoint_name="ep", body=body)
    assert_same_wire(*pair.received)


async def test_request_object_sends_what_keywords_send(pair: Pair) -> None:
    fields = ours_kwargs(ALL_INVOKE_MEMBERS)
    async with pair.ours() as client:
        await client.invoke_endpoint(InvokeEndpointRequest(**fields))
        await client.invoke_endpoint(**fields)
    first, second = pair.received
    assert_same_wire(first, second)


# -- InvokeEndpointAsync requests -----------------------------------------------------------

ALL_ASYNC_MEMBERS: dict[str, Any] = {
    "EndpointName": "async-ep",
    "InputLocation": "s3://my-bucket/inputs/payload 1.json",
    "ContentType": "application/json",
    "Accept": "application/jsonlines",
    "CustomAttributes": "  k=v;  other  ",
    "InferenceId": "async inference 7",
    "RequestTTLSeconds": 21600,
    "InvocationTimeoutSeconds": 3600,
    "S3OutputPathExtension": "results/run-1/(a)!*'_.x",
    "Filename": "output-1.json",
}

ASYNC_CASES: dict[str, dict[str, Any]] = {
    "input-location-only": {"EndpointName": "ep", "InputLocation": "s3://b/k"},
    "all-members": ALL_ASYNC_MEMBERS,
    "https-location-min-ints": {
        "EndpointName": "ep",
        "InputLocation": "https://my-bucket.s3.amazonaws.com/in.csv",
        "RequestTTLSeconds": 60,
        "InvocationTimeoutSeconds": 1,
    },
    "empty-header-values": {
        "EndpointName": "ep",
        "InputLocation": "s3://b/",
        "ContentType": "",
        "Accept": "",
        "CustomAttributes": "",
    },
}

ASYNC_INLINE_CASES: dict[str, dict[str, Any]] = {
    "inline-body": {"EndpointName": "ep", "Body": b'{"inputs": "later"}'},
    "inline-body-all-members": {
        **{k: v for k, v in ALL_ASYNC_MEMBERS.items() if k != "InputLocation"},
        "Body": "caf\u00e9 " * 100,
    },
    "inline-empty-body": {"EndpointName": "ep", "Body": b""},
}


def async_answer(inference_id: str = "inf-1") -> Callable[..., Any]:
    async def handler(request: web.Request, body: bytes) -> web.StreamResponse:
        return web.json_response(
            {"InferenceId": inference_id},
            status=202,
            headers={
                "X-Amzn-SageMaker-OutputLocation": "s3://out/o.json",
                "X-Amzn-SageMaker-FailureLocation": "s3://out/f.json",
                "x-amzn-RequestId": "req-async",
            },
        )

    return handler


@pytest.mark.parametrize("case", sorted(ASYNC_CASES))
async def test_invoke_endpoint_async_request_matches_boto3(pair: Pair, case: str) -> None:
    pair.server.default = async_answer()
    kwargs = ASYNC_CASES[case]
    theirs = await boto_call(pair.boto(), "invoke_endpoint_async", **kwargs)
    assert not isinstance(theirs, Exception), theirs
    async with pair.ours() as client:
        await client.invoke_endpoint_async(**ours_kwargs(kwargs))
    assert_same_wire(*pair.received)
    ours = pair.received[1]
    assert ours.raw_path == f"/endpoints/{kwargs['EndpointName']}/async-invocations"
    assert ours.body == b""
    assert "Content-Type" not in ours.headers  # the content type travels in an X-Amzn header


@pytest.mark.skipif(
    not ASYNC_MODEL_HAS_INLINE_BODY,
    reason=f"botocore {botocore.__version__}'s model has no inline Body for InvokeEndpointAsync",
)
@pytest.mark.parametrize("case", sorted(ASYNC_INLINE_CASES))
async def test_invoke_endpoint_async_inline_body_matches_boto3(pair: Pair, case: str) -> None:
    pair.server.default = async_answer()
    kwargs = ASYNC_INLINE_CASES[case]
    theirs = await boto_call(pair.boto(), "invoke_endpoint_async", **kwargs)
    assert not isinstance(theirs, Exception), theirs
    async with pair.ours() as client:
        await client.invoke_endpoint_async(**ours_kwargs(kwargs))
    assert_same_wire(*pair.received)


@pytest.mark.parametrize("case", sorted(ASYNC_INLINE_CASES))
async def test_invoke_endpoint_async_inline_body_wire(pair: Pair, case: str) -> None:
    # What the reference (section 3.2) says the newer model sends, checked on ours alone.
    pair.server.default = async_answer()
    kwargs = ASYNC_INLINE_CASES[case]
    async with pair.ours() as client:
        result = await client.invoke_endpoint_async(**ours_kwargs(kwargs))
    assert result.inference_id == "inf-1"
    (received,) = pair.received
    body = kwargs["Body"]
    assert received.body == (body.encode() if isinstance(body, str) else body)
    assert received.raw_path == f"/endpoints/{kwargs['EndpointName']}/async-invocations"
    assert "Content-Type" not in received.headers
    assert "Accept" not in received.headers
    assert received.headers["Content-Length"] == str(len(received.body))
    if "ContentType" in kwargs:
        assert received.headers["X-Amzn-SageMaker-Content-Type"] == kwargs["ContentType"]
        assert received.headers["X-Amzn-SageMaker-Accept"] == kwargs["Accept"]


async def test_async_body_and_location_together_send_nothing(pair: Pair) -> None:
    async with pair.ours() as client:
        with pytest.raises(ParamValidationError):
            await client.invoke_endpoint_async(
                endpoint_name="ep", input_location="s3://b/k", body=b"x"
            )
    assert pair.received == []


# -- parsing results ------------------------------------------------------------------------

FULL_HEADERS = {
    "Content-Type": "application/json; charset=utf-8",
    "x-Amzn-Invoked-Production-Variant": "variant-a",
    "X-Amzn-SageMaker-Custom-Attributes": "reply=1;  two  spaces",
    "X-Amzn-SageMaker-New-Session-Id": "sess-1; Expires=2026-12-01T00:00:00Z",
    "X-Amzn-SageMaker-Closed-Session-Id": "sess-0",
    "x-amzn-RequestId": "9c1f7b4e-req",
}


def answer(
    body: bytes,
    headers: dict[str, str] | CIMultiDict[str],
    status: int = 200,
) -> Callable[..., Any]:
    async def handler(request: web.Request, request_body: bytes) -> web.StreamResponse:
        response = web.Response(body=body, status=status, headers=CIMultiDict(headers))
        return response

    return handler


def _duplicated() -> CIMultiDict[str]:
    headers: CIMultiDict[str] = CIMultiDict(FULL_HEADERS)
    headers.add("X-Amzn-SageMaker-Custom-Attributes", "second=2")
    headers.add("x-amzn-invoked-production-variant", "variant-b")
    return headers


RESULT_CASES: dict[str, tuple[bytes, Any]] = {
    "all-headers": (b'{"outputs": [0.5]}', FULL_HEADERS),
    "lower-case-names": (b"ok", {k.lower(): v for k, v in FULL_HEADERS.items()}),
    "only-content-type": (b"1,2,3\n", {"Content-Type": "text/csv"}),
    "empty-body": (b"", {"Content-Type": "application/json", "x-amzn-RequestId": "r-empty"}),
    "large-binary-body": (bytes(range(256)) * 8192, {"Content-Type": "application/x-npy"}),
    "gzip-passes-through": (
        gzip.compress(b'{"zipped": true}'),
        {"Content-Type": "application/json", "Content-Encoding": "gzip"},
    ),
    "repeated-headers": (b"dup", _duplicated()),
}


def assert_same_metadata(theirs: dict[str, Any], ours: Any) -> None:
    assert ours.request_id == theirs.get("RequestId")
    assert ours.http_status_code == theirs["HTTPStatusCode"]
    assert ours.retry_attempts == theirs["RetryAttempts"] == 0
    # Each response carries its own Date; everything else must agree, names lower-cased.
    assert {k: v for k, v in ours.http_headers.items() if k != "date"} == {
        k: v for k, v in theirs["HTTPHeaders"].items() if k != "date"
    }


@pytest.mark.parametrize("case", sorted(RESULT_CASES))
async def test_invoke_endpoint_result_matches_boto3(pair: Pair, case: str) -> None:
    body, headers = RESULT_CASES[case]
    pair.server.default = answer(body, headers)
    theirs = await boto_call(pair.boto(), "invoke_endpoint", EndpointName="ep", Body=b"x")
    assert not isinstance(theirs, Exception), theirs
    async with pair.ours() as client:
        ours = await client.invoke_endpoint(endpoint_name="ep", body=b"x")
    assert ours.body == theirs["Body"] == body
    assert ours.content_type == theirs.get("ContentType")
    assert ours.invoked_production_variant == theirs.get("InvokedProductionVariant")
    assert ours.custom_attributes == theirs.get("CustomAttributes")
    assert ours.new_session_id == theirs.get("NewSessionId")
    assert ours.closed_session_id == theirs.get("ClosedSessionId")
    assert_same_metadata(theirs["ResponseMetadata"], ours.response_metadata)
    if case == "all-headers":  # the comparison above is not vacuous
        assert ours.new_session_id == "sess-1; Expires=2026-12-01T00:00:00Z"
        assert ours.response_metadata.request_id == "9c1f7b4e-req"
        assert ours.json() == {"outputs": [0.5]}


ASYNC_RESULT_CASES: dict[str, tuple[int, bytes, dict[str, str]]] = {
    "accepted-202": (
        202,
        b'{"InferenceId":"abc-123"}',
        {
            "Content-Type": "application/json",
            "X-Amzn-SageMaker-OutputLocation": "s3://out/abc-123.out",
            "X-Amzn-SageMaker-FailureLocation": "s3://out-failures/abc-123-error.out",
            "x-amzn-RequestId": "req-202",
        },
    ),
    "ok-200-lower-case": (
        200,
        b'{"InferenceId": "id-2", "Other": 1}',
        {
            "content-type": "application/json",
            "x-amzn-sagemaker-outputlocation": "s3://out/2",
            "x-amzn-requestid": "req-200",
        },
    ),
    "no-inference-id": (
        202,
        b"{}",
        {"Content-Type": "application/json", "X-Amzn-SageMaker-OutputLocation": "s3://o/3"},
    ),
    "empty-body": (202, b"", {"X-Amzn-SageMaker-FailureLocation": "s3://f/4"}),
}


@pytest.mark.parametrize("case", sorted(ASYNC_RESULT_CASES))
async def test_invoke_endpoint_async_result_matches_boto3(pair: Pair, case: str) -> None:
    status, body, headers = ASYNC_RESULT_CASES[case]
    pair.server.default = answer(body, headers, status)
    kwargs = {"EndpointName": "ep", "InputLocation": "s3://b/in.json"}
    theirs = await boto_call(pair.boto(), "invoke_endpoint_async", **kwargs)
    assert not isinstance(theirs, Exception), theirs
    async with pair.ours() as client:
        ours = await client.invoke_endpoint_async(**ours_kwargs(kwargs))
    assert ours.inference_id == theirs.get("InferenceId")
    assert ours.output_location == theirs.get("OutputLocation")
    assert ours.failure_location == theirs.get("FailureLocation")
    assert_same_metadata(theirs["ResponseMetadata"], ours.response_metadata)
    if case == "accepted-202":
        assert ours.inference_id == "abc-123"
        assert ours.response_metadata.http_status_code == 202


# -- parsing errors -------------------------------------------------------------------------


@dataclass(frozen=True)
class ErrorCase:
    status: int
    body: bytes
    headers: dict[str, str]
    expected_code: str  # what both must report


_NS = ":http://internal.amazon.com/coral/com.amazon.sagemaker/"
MODEL_ERROR_BODY = {
    "LogStreamArn": "arn:aws:logs:us-east-1:111122223333:log-group:/aws/sagemaker/Endpoints/ep",
    "Message": 'Received client error (400) from primary with message "bad input". See ...',
    "OriginalMessage": "bad input",
    "OriginalStatusCode": 400,
}
ERROR_CASES: dict[str, ErrorCase] = {
    "validation-header-form": ErrorCase(
        400,
        b'{"message":"1 validation error detected: Value at \'endpointName\' failed"}',
        {
            "x-amzn-ErrorType": "ValidationError:http://internal.amazon.com/coral/"
            "com.amazon.coral.validate/",
            "Content-Type": "application/json",
        },
        "ValidationError",
    ),
    "model-error-original-fields": ErrorCase(
        424,
        json.dumps(MODEL_ERROR_BODY).encode(),
        {"x-amzn-ErrorType": "ModelError" + _NS, "Content-Type": "application/json"},
        "ModelError",
    ),
    "model-error-timeout-status-0": ErrorCase(
        424,
        json.dumps(
            {
                "message": "Received server error (0) from model: invocation timed out",
                "OriginalStatusCode": 0,
                "OriginalMessage": "Your invocation timed out",
            }
        ).encode(),
        {"x-amzn-ErrorType": "ModelError" + _NS},
        "ModelError",
    ),
    "dunder-type-body-form": ErrorCase(
        503,
        b'{"__type":"com.amazon.sagemaker#ServiceUnavailable","Message":"busy"}',
        {"Content-Type": "application/json"},
        "ServiceUnavailable",
    ),
    "code-body-form": ErrorCase(
        429,
        b'{"code":"ModelNotReadyException","message":"not ready"}',
        {"Content-Type": "application/json"},
        "ModelNotReadyException",
    ),
    "capital-code-body-form": ErrorCase(
        530,
        b'{"Code":"InternalDependencyException","Message":"dependency failed"}',
        {},
        "InternalDependencyException",
    ),
    "header-beats-body-code": ErrorCase(
        500,
        b'{"code":"Other","__type":"x#Another","message":"internal"}',
        {"x-amzn-errortype": "InternalFailure"},
        "InternalFailure",
    ),
    "empty-500": ErrorCase(500, b"", {}, "500"),
    "whitespace-503": ErrorCase(503, b"  \n", {}, "503"),
    "html-502": ErrorCase(
        502,
        b"<html><body><h1>502 Bad Gateway</h1></body></html>",
        {"Content-Type": "text/html"},
        "502",
    ),
    "non-json-400": ErrorCase(400, b"not json at all", {"Content-Type": "text/plain"}, "400"),
    "access-denied-403": ErrorCase(
        403,
        b'{"Message":"User: arn:aws:iam::111122223333:user/x is not authorized to perform: '
        b'sagemaker:InvokeEndpoint"}',
        {
            "x-amzn-ErrorType": "AccessDeniedException:http://internal.amazon.com/coral/"
            "com.amazon.coral.service/"
        },
        "AccessDeniedException",
    ),
    "throttling-400-null-message": ErrorCase(
        400,
        b'{"message": null}',
        {"x-amzn-ErrorType": "ThrottlingException" + _NS},
        "ThrottlingException",
    ),
}


def error_answer(case: ErrorCase, request_id: str) -> Callable[..., Any]:
    async def handler(request: web.Request, body: bytes) -> web.StreamResponse:
        headers = {**case.headers, "x-amzn-RequestId": request_id}
        return web.Response(status=case.status, body=case.body, headers=headers)

    return handler


@pytest.mark.parametrize("case_name", sorted(ERROR_CASES))
async def test_error_parsing_matches_boto3(pair: Pair, case_name: str) -> None:
    case = ERROR_CASES[case_name]
    request_id = f"req-{case_name}"
    pair.server.default = error_answer(case, request_id)
    theirs = await boto_call(pair.boto(), "invoke_endpoint", EndpointName="ep", Body=b"x")
    assert isinstance(theirs, botocore.exceptions.ClientError), theirs
    async with pair.ours() as client:
        with pytest.raises(ServiceError) as caught:
            await client.invoke_endpoint(endpoint_name="ep", body=b"x")
    ours = caught.value
    response = theirs.response
    # One attempt each: neither retried.
    assert len(pair.received) == 2

    assert ours.code == response["Error"]["Code"] == case.expected_code
    their_message = response["Error"]["Message"]
    if their_message == "" and ours.message is None:
        pass  # botocore's '' for "no message key at all"; ours says None
    else:
        assert ours.message == their_message
    assert ours.status_code == response["ResponseMetadata"]["HTTPStatusCode"] == case.status
    # Ours always reads x-amzn-RequestId (botocore drops it for empty and HTML 5xx answers).
    assert ours.request_id == request_id
    assert response["ResponseMetadata"].get("RequestId") in (request_id, None)
    assert ours.response_metadata is not None
    assert ours.response_metadata.request_id == request_id
    assert_same_metadata(
        {**response["ResponseMetadata"], "RequestId": request_id}, ours.response_metadata
    )

    # The class: boto3 raises a modeled exception class by code, or a plain ClientError.
    their_class = type(theirs).__name__
    if their_class != "ClientError":
        assert type(ours).__name__ == their_class
    elif case.expected_code == "ThrottlingException":
        assert type(ours).__name__ == "ThrottlingException"  # ours models it; boto3 does not
    else:
        assert type(ours) is ServiceError

    # Modeled members: botocore merges them at the top level of the response.
    if isinstance(ours, ModelError):
        assert ours.original_status_code == response.get("OriginalStatusCode")
        assert ours.original_message == response.get("OriginalMessage")
        assert ours.log_stream_arn == response.get("LogStreamArn")
        assert response.get("OriginalStatusCode") is not None


async def test_error_table_is_not_vacuous(pair: Pair) -> None:
    # Sanity checks on two rows whose values are easy to get subtly wrong.
    case = ERROR_CASES["model-error-original-fields"]
    pair.server.default = error_answer(case, "r-model")
    async with pair.ours() as client:
        with pytest.raises(ModelError) as caught:
            await client.invoke_endpoint(endpoint_name="ep", body=b"x")
        assert caught.value.original_status_code == 400
        assert caught.value.original_message == "bad input"
        assert caught.value.log_stream_arn == MODEL_ERROR_BODY["LogStreamArn"]
        assert caught.value.message == MODEL_ERROR_BODY["Message"]
        pair.server.default = error_answer(ERROR_CASES["html-502"], "r-html")
        with pytest.raises(ServiceError) as html:
            await client.invoke_endpoint(endpoint_name="ep", body=b"x")
        assert (html.value.code, html.value.message) == ("502", "Bad Gateway")


async def test_error_metadata_folds_repeated_headers(pair: Pair) -> None:
    async def handler(request: web.Request, body: bytes) -> web.StreamResponse:
        headers: CIMultiDict[str] = CIMultiDict({"x-amzn-ErrorType": "ValidationError"})
        headers.add("x-amzn-RequestId", "req-dup")
        headers.add("X-Trace", "one")
        headers.add("X-Trace", "two")
        return web.Response(status=400, body=b'{"message": "bad"}', headers=headers)

    pair.server.default = handler
    theirs = await boto_call(pair.boto(), "invoke_endpoint", EndpointName="ep", Body=b"x")
    assert isinstance(theirs, botocore.exceptions.ClientError)
    async with pair.ours() as client:
        with pytest.raises(ServiceError) as caught:
            await client.invoke_endpoint(endpoint_name="ep", body=b"x")
    assert theirs.response["ResponseMetadata"]["HTTPHeaders"]["x-trace"] == "one, two"
    assert caught.value.response_metadata is not None
    assert_same_metadata(theirs.response["ResponseMetadata"], caught.value.response_metadata)
