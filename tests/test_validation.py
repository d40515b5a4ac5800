"""Every rule of ``_model.py``, through the client's public calls: a bad argument raises
``ParamValidationError`` naming the field and sends NOTHING; a value at the boundary is sent as given."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import pytest
from aiohttp import web
from conftest import ScriptedServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sagemaker_rt_aio import (
    InvokeEndpointAsyncRequest,
    InvokeEndpointRequest,
    InvokeEndpointWithResponseStreamRequest,
    ParamValidationError,
    RetryPolicy,
    SageMakerRuntimeClient,
)
from sagemaker_rt_aio import _model as m
from sagemaker_rt_aio._constants import DEFAULT_MAX_BODY_BYTES, MAX_ASYNC_INLINE_BODY_BYTES
from sagemaker_rt_aio._protocol import serialize

SYNC_MEMBERS = {member.attr: member for member in m.INVOKE_ENDPOINT.members}
ASYNC_MEMBERS = {member.attr: member for member in m.INVOKE_ENDPOINT_ASYNC.members}
ASYNC_STR_MEMBERS = {k: v for k, v in ASYNC_MEMBERS.items() if not v.is_int}

ASYNC_BASE: dict[str, Any] = {"endpoint_name": "ep", "input_location": "s3://bucket/key"}


def make_client(url: str, **kwargs: Any) -> SageMakerRuntimeClient:
    return SageMakerRuntimeClient(
        "us-east-1",
        endpoint_url=url,
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="secret",
        retry_policy=RetryPolicy.none(),
        **kwargs,
    )


async def accepted_async(request: web.Request, body: bytes) -> web.StreamResponse:
    return web.json_response(
        {"InferenceId": "inf-1"},
        status=202,
        headers={"X-Amzn-SageMaker-OutputLocation": "s3://bucket/out/inf-1.out"},
    )


@pytest.fixture
async def client(scripted_server: ScriptedServer) -> AsyncIterator[SageMakerRuntimeClient]:
    async with make_client(scripted_server.url) as client:
        yield client


async def refused(server: ScriptedServer, call: Awaitable[Any], field: str) -> ParamValidationError:
    """Awaits ``call``, which must fail validation on ``field`` without sending anything."""
    with pytest.raises(ParamValidationError) as info:
        await call
    assert info.value.field == field, str(info.value)
    assert server.received == []
    return info.value


def valid_value(attr: str, length: int) -> str:
    """A value of ``length`` characters that satisfies the member's pattern (when it has one)."""
    if attr == "input_location":
        return "s3://b/" + "k" * (length - len("s3://b/"))
    return "a" * length


# -- the endpoint name ------------------------------------------------------------------------------

BAD_NAMES: list[object] = [
    "",
    "a" * 64,
    "bad name",
    "bad_name",
    "-leading",
    "trailing-",
    "dots.are.bad",
    "../etc",
    "a/b",
    "a%2Fb",
    "é",
    "ep\r\nX-Evil: 1",
    123,
    b"ep",
    None,
]


@pytest.mark.parametrize("name", BAD_NAMES, ids=repr)
async def test_bad_endpoint_name_sync(
    scripted_server: ScriptedServer, client: SageMakerRuntimeClient, name: object
) -> None:
    await refused(
        scripted_server,
        client.invoke_endpoint(endpoint_name=name, body=b"{}"),  # type: ignore[arg-type]
        "endpoint_name",
    )


@pytest.mark.parametrize("name", BAD_NAMES, ids=repr)
async def test_bad_endpoint_name_async(
    scripted_server: ScriptedServer, client: SageMakerRuntimeClient, name: object
) -> None:
    await refused(
        scripted_server,
        client.invoke_endpoint_async(endpoint_name=name, input_location="s3://b/k"),  # type: ignore[arg-type]
        "endpoint_name",
    )


async def test_bad_endpoint_name_in_a_request_object(
    scripted_server: ScriptedServer, client: SageMakerRuntimeClient
) -> None:
    await refused(
        scripted_server,
        client.invoke_endpoint(InvokeEndpointRequest(endpoint_name="a" * 64, body=b"")),
        "endpoint_name",
    )


@pytest.mark.parametrize("name", ["a" * 63, "a", "A1", "a-b", "a---b", "0-9"])
async def test_good_endpoint_names_are_sent(
    scripted_server: ScriptedServer, client: SageMakerRuntimeClient, name: str
) -> None:
    await client.invoke_endpoint(endpoint_name=name, body=b"x")
    assert [r.raw_path for r in scripted_server.received] == [f"/endpoints/{name}/invocations"]


# -- header members: length, ASCII, CR/LF --------------------------------------------------------


def str_members_with_op() -> list[tuple[str, str, m.Member]]:
    out = [("sync", attr, member) for attr, member in SYNC_MEMBERS.items()]
    out += [("async", attr, member) for attr, member in ASYNC_STR_MEMBERS.items()]
    return out


def call_with(client: SageMakerRuntimeClient, op: str, **fields: Any) -> Awaitable[object]:
    call: Awaitable[object]
    if op == "sync":
        call = client.invoke_endpoint(**{"endpoint_name": "ep", "body": b"{}", **fields})
    else:
        call = client.invoke_endpoint_async(**{**ASYNC_BASE, **fields})
    return call


MEMBER_IDS = [f"{op}-{attr}" for op, attr, _ in str_members_with_op()]


@pytest.mark.parametrize(("op", "attr", "member"), str_members_with_op(), ids=MEMBER_IDS)
async def test_header_too_long(
    scripted_server: ScriptedServer,
    client: SageMakerRuntimeClient,
    op: str,
    attr: str,
    member: m.Member,
) -> None:
    assert member.max_len is not None
    error = await refused(
        scripted_server,
        call_with(client, op, **{attr: valid_value(attr, member.max_len + 1)}),
        attr,
    )
    assert str(member.max_len) in error.rule


@pytest.mark.parametrize(
    ("op", "attr", "member"),
    [t for t in str_members_with_op() if t[2].min_len > 0],
    ids=[i for i, t in zip(MEMBER_IDS, str_members_with_op(), strict=True) if t[2].min_len > 0],
)
async def test_header_too_short(
    scripted_server: ScriptedServer,
    client: SageMakerRuntimeClient,
    op: str,
    attr: str,
    member: m.Member,
) -> None:
    await refused(scripted_server, call_with(client, op, **{attr: ""}), attr)


def test_the_min_length_members_are_the_models() -> None:
    with_min = {(op, attr) for op, attr, member in str_members_with_op() if member.min_len}
    assert with_min == {
        ("sync", "target_model"),
        ("sync", "inference_id"),
        ("sync", "enable_explanations"),
        ("sync", "prefix_aware_id"),
        ("async", "inference_id"),
        ("async", "input_location"),
        ("async", "s3_output_path_extension"),
        ("async", "filename"),
    }


@pytest.mark.parametrize("bad", ["é", "caf\u00e9", "\u2603", "\x00", "\x7f", "\x1b[0m"], ids=repr)
@pytest.mark.parametrize(("op", "attr", "member"), str_members_with_op(), ids=MEMBER_IDS)
async def test_header_non_ascii_or_control(
    scripted_server: ScriptedServer,
    client: SageMakerRuntimeClient,
    op: str,
    attr: str,
    member: m.Member,
    bad: str,
) -> None:
    await refused(
        scripted_server, call_with(client, op, **{attr: valid_value(attr, 8) + bad}), attr
    )


@pytest.mark.parametrize(
    "injection", ["a\r\nX-Evil: 1", "a\nX-Evil: 1", "a\rX-Evil: 1", "a\r\n\r\nGET / HTTP/1.1"]
)
@pytest.mark.parametrize(("op", "attr", "member"), str_members_with_op(), ids=MEMBER_IDS)
async def test_header_crlf_injection(
    scripted_server: ScriptedServer,
    client: SageMakerRuntimeClient,
    op: str,
    attr: str,
    member: m.Member,
    injection: str,
) -> None:
    value = valid_value(attr, 8) + injection if attr == "input_location" else injection
    await refused(scripted_server, call_with(client, op, **{attr: value}), attr)


@pytest.mark.parametrize(("op", "attr", "member"), str_members_with_op(), ids=MEMBER_IDS)
async def test_header_non_str(
    scripted_server: ScriptedServer,
    client: SageMakerRuntimeClient,
    op: str,
    attr: str,
    member: m.Member,
) -> None:
    await refused(scripted_server, call_with(client, op, **{attr: b"bytes"}), attr)


# -- header members: patterns ----------------------------------------------------------------------

PATTERN_CASES: list[tuple[str, str, str, bool]] = [
    # (op, attr, value, accepted)
    ("sync", "target_variant", "variant-1", True),
    ("sync", "target_variant", "AllTraffic", True),
    ("sync", "target_variant", "-variant", False),
    ("sync", "target_variant", "variant-", False),
    ("sync", "target_variant", "variant 1", False),
    ("sync", "target_variant", "variant_1", False),
    ("sync", "target_variant", "", False),
    ("sync", "target_container_hostname", "container-2", True),
    ("sync", "target_container_hostname", "c.example", False),
    ("sync", "session_id", "NEW_SESSION", True),
    ("sync", "session_id", "abc-123", True),
    ("sync", "session_id", "new_session", False),
    ("sync", "session_id", "NEW_SESSION2", False),
    ("sync", "session_id", "abc-", False),
    ("sync", "session_id", "abc; Expires=2025-01-01T00:00:00Z", False),
    ("sync", "inference_component_name", "ic-1", True),
    ("sync", "inference_component_name", "a--b", True),
    ("sync", "inference_component_name", "x", True),
    ("sync", "inference_component_name", "ic-", False),
    ("sync", "inference_component_name", "-ic", False),
    ("sync", "inference_component_name", "ic_1", False),
    ("sync", "target_model", "model.tar.gz", True),
    ("sync", "target_model", "models/a b/c.tar.gz", True),
    ("sync", "target_model", " model.tar.gz", False),
    ("sync", "target_model", "\tmodel", False),
    ("sync", "inference_id", "id with spaces", True),
    ("sync", "inference_id", " leading-space", False),
    ("sync", "enable_explanations", "`true`", True),
    ("async", "inference_id", "x", True),
    ("async", "s3_output_path_extension", "team-a/run_1/(x)*!'.", True),
    ("async", "s3_output_path_extension", "s3://bucket/x", False),
    ("async", "s3_output_path_extension", "https://bucket/x", False),
    ("async", "s3_output_path_extension", "s3:x", False),
    ("async", "s3_output_path_extension", "a b", False),
    ("async", "s3_output_path_extension", "a?b", False),
    ("async", "filename", "result.json", True),
    ("async", "filename", "a-b_c", True),
    ("async", "filename", "1.txt", True),
    ("async", "filename", "a.b.c", False),
    ("async", "filename", "a..b", False),
    ("async", "filename", ".hidden", False),
    ("async", "filename", "_x", False),
    ("async", "filename", "a/b", False),
    ("async", "input_location", "s3://bucket/key/input.json", True),
    ("async", "input_location", "https://bucket.s3.amazonaws.com/key", True),
    ("async", "input_location", "s3://bucket", True),
    ("async", "input_location", "http://bucket/key", False),
    ("async", "input_location", "S3://bucket/key", False),
    ("async", "input_location", "s3:///key", False),
    ("async", "input_location", "s3://", False),
    ("async", "input_location", "bucket/key", False),
    ("async", "input_location", "file:///etc/passwd", False),
]


@pytest.mark.parametrize(("op", "attr", "value", "accepted"), PATTERN_CASES)
async def test_patterns(
    scripted_server: ScriptedServer,
    client: SageMakerRuntimeClient,
    op: str,
    attr: str,
    value: str,
    accepted: bool,
) -> None:
    if op == "async":
        scripted_server.script = [accepted_async]
    call = call_with(client, op, **{attr: value})
    if not accepted:
        await refused(scripted_server, call, attr)
        return
    await call
    assert len(scripted_server.received) == 1
    member = (SYNC_MEMBERS if op == "sync" else ASYNC_MEMBERS)[attr]
    assert scripted_server.received[0].headers[member.header] == value


def test_new_session_is_refused_for_the_streaming_operation() -> None:
    # The stream's SessionId has no NEW_SESSION alternative (reference 3.3).
    request = InvokeEndpointWithResponseStreamRequest(
        endpoint_name="ep", body=b"", session_id="NEW_SESSION"
    )
    with pytest.raises(ParamValidationError) as info:
        serialize(m.INVOKE_ENDPOINT_WITH_RESPONSE_STREAM, request, max_body_bytes=100)
    assert info.value.field == "session_id"
    ok = InvokeEndpointWithResponseStreamRequest(endpoint_name="ep", body=b"", session_id="s-1")
    wire = serialize(m.INVOKE_ENDPOINT_WITH_RESPONSE_STREAM, ok, max_body_bytes=100)
    assert wire.headers["X-Amzn-SageMaker-Session-Id"] == "s-1"


# -- integer members --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attr", "value", "accepted"),
    [
        ("request_ttl_seconds", 59, False),
        ("request_ttl_seconds", 60, True),
        ("request_ttl_seconds", 21600, True),
        ("request_ttl_seconds", 21601, False),
        ("request_ttl_seconds", -1, False),
        ("invocation_timeout_seconds", 0, False),
        ("invocation_timeout_seconds", 1, True),
        ("invocation_timeout_seconds", 3600, True),
        ("invocation_timeout_seconds", 3601, False),
        ("invocation_timeout_seconds", True, False),
        ("invocation_timeout_seconds", False, False),
        ("request_ttl_seconds", True, False),
        ("request_ttl_seconds", "60", False),
        ("request_ttl_seconds", 60.0, False),
        ("invocation_timeout_seconds", 10**30, False),
    ],
)
async def test_int_ranges(
    scripted_server: ScriptedServer,
    client: SageMakerRuntimeClient,
    attr: str,
    value: object,
    accepted: bool,
) -> None:
    scripted_server.script = [accepted_async]
    call = client.invoke_endpoint_async(**{**ASYNC_BASE, attr: value})
    if not accepted:
        await refused(scripted_server, call, attr)
        return
    result = await call
    assert result.inference_id == "inf-1"
    header = ASYNC_MEMBERS[attr].header
    assert scripted_server.received[0].headers[header] == str(value)


# -- bodies -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [1, 1.5, {"a": 1}, ["x"], None, object()],
    ids=lambda v: "object()" if type(v) is object else repr(v),
)
async def test_sync_body_types(
    scripted_server: ScriptedServer, client: SageMakerRuntimeClient, body: object
) -> None:
    await refused(
        scripted_server,
        client.invoke_endpoint(endpoint_name="ep", body=body),  # type: ignore[arg-type]
        "body",
    )


@pytest.mark.parametrize("body", [1, {"a": 1}, ["x"]], ids=repr)
async def test_async_body_types(
    scripted_server: ScriptedServer, client: SageMakerRuntimeClient, body: object
) -> None:
    await refused(
        scripted_server,
        client.invoke_endpoint_async(endpoint_name="ep", body=body),  # type: ignore[arg-type]
        "body",
    )


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"raw", b"raw"),
        (bytearray(b"array"), b"array"),
        (memoryview(b"view"), b"view"),
        ("snow \u2603", "snow \u2603".encode()),
        (b"", b""),
    ],
    ids=["bytes", "bytearray", "memoryview", "str", "empty"],
)
async def test_body_types_accepted(
    scripted_server: ScriptedServer, client: SageMakerRuntimeClient, body: Any, expected: bytes
) -> None:
    await client.invoke_endpoint(endpoint_name="ep", body=body)
    assert scripted_server.received[0].body == expected


async def test_custom_body_limit_boundary(scripted_server: ScriptedServer) -> None:
    async with make_client(scripted_server.url, max_body_bytes=1000) as client:
        await refused(
            scripted_server, client.invoke_endpoint(endpoint_name="ep", body=b"x" * 1001), "body"
        )
        await refused(
            scripted_server,
            client.invoke_endpoint(endpoint_name="ep", body=bytearray(1001)),
            "body",
        )
        # The limit counts encoded bytes: 501 two-byte characters are 1002 bytes.
        await refused(
            scripted_server, client.invoke_endpoint(endpoint_name="ep", body="é" * 501), "body"
        )
        await client.invoke_endpoint(endpoint_name="ep", body=b"y" * 1000)
        await client.invoke_endpoint(endpoint_name="ep", body="é" * 500)
    assert [len(r.body) for r in scripted_server.received] == [1000, 1000]


async def test_default_body_limit_is_6_mib(
    scripted_server: ScriptedServer, client: SageMakerRuntimeClient
) -> None:
    assert DEFAULT_MAX_BODY_BYTES == 6 * 1024 * 1024
    error = await refused(
        scripted_server,
        client.invoke_endpoint(endpoint_name="ep", body=bytes(DEFAULT_MAX_BODY_BYTES + 1)),
        "body",
    )
    assert str(DEFAULT_MAX_BODY_BYTES) in error.rule
    # Through a request object too.
    request = InvokeEndpointRequest(endpoint_name="ep", body=bytes(DEFAULT_MAX_BODY_BYTES + 1))
    await refused(scripted_server, client.invoke_endpoint(request), "body")


async def test_async_inline_body_limit(
    scripted_server: ScriptedServer, client: SageMakerRuntimeClient
) -> None:
    assert MAX_ASYNC_INLINE_BODY_BYTES == 128_000
    await refused(
        scripted_server,
        client.invoke_endpoint_async(endpoint_name="ep", body=b"x" * 128_001),
        "body",
    )
    scripted_server.script = [accepted_async]
    result = await client.invoke_endpoint_async(
        endpoint_name="ep", body=b"x" * 128_000, content_type="application/json"
    )
    assert result.inference_id == "inf-1"
    received = scripted_server.received[0]
    assert len(received.body) == 128_000
    assert received.headers["X-Amzn-SageMaker-Content-Type"] == "application/json"
    assert "X-Amzn-SageMaker-InputLocation" not in received.headers


async def test_async_inline_limit_applies_even_with_a_larger_client_limit(
    scripted_server: ScriptedServer,
) -> None:
    async with make_client(scripted_server.url, max_body_bytes=10_000_000) as client:
        await refused(
            scripted_server,
            client.invoke_endpoint_async(endpoint_name="ep", body=b"x" * 128_001),
            "body",
        )


async def test_async_body_and_input_location_both(
    scripted_server: ScriptedServer, client: SageMakerRuntimeClient
) -> None:
    await refused(
        scripted_server,
        client.invoke_endpoint_async(endpoint_name="ep", body=b"x", input_location="s3://b/k"),
        "body",
    )
    await refused(
        scripted_server,
        client.invoke_endpoint_async(
            InvokeEndpointAsyncRequest(endpoint_name="ep", body="", input_location="s3://b/k")
        ),
        "body",
    )


async def test_async_neither_body_nor_input_location(
    scripted_server: ScriptedServer, client: SageMakerRuntimeClient
) -> None:
    await refused(
        scripted_server, client.invoke_endpoint_async(endpoint_name="ep"), "input_location"
    )
    await refused(
        scripted_server,
        client.invoke_endpoint_async(InvokeEndpointAsyncRequest(endpoint_name="ep")),
        "input_location",
    )


# -- the request object -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "request_object",
    [
        InvokeEndpointAsyncRequest(endpoint_name="ep", input_location="s3://b/k"),
        InvokeEndpointWithResponseStreamRequest(endpoint_name="ep", body=b""),
        {"endpoint_name": "ep", "body": b""},
        "ep",
    ],
    ids=["async-request", "stream-request", "dict", "str"],
)
async def test_wrong_request_type_sync(
    scripted_server: ScriptedServer, client: SageMakerRuntimeClient, request_object: object
) -> None:
    await refused(
        scripted_server,
        client.invoke_endpoint(request_object),  # type: ignore[arg-type]
        "request",
    )


@pytest.mark.parametrize(
    "request_object",
    [InvokeEndpointRequest(endpoint_name="ep", body=b""), {"endpoint_name": "ep"}],
    ids=["sync-request", "dict"],
)
async def test_wrong_request_type_async(
    scripted_server: ScriptedServer, client: SageMakerRuntimeClient, request_object: object
) -> None:
    await refused(
        scripted_server,
        client.invoke_endpoint_async(request_object),  # type: ignore[arg-type]
        "request",
    )


class _NoCompare:
    """A value that cannot be compared or tested for truth (as a numpy array cannot)."""

    def __eq__(self, other: object) -> bool:
        raise ValueError("ambiguous")

    __hash__ = None  # type: ignore[assignment]

    def __bool__(self) -> bool:
        raise ValueError("ambiguous")


@pytest.mark.parametrize(
    "value", ["application/json", b"", _NoCompare()], ids=["str", "empty-bytes", "no-compare"]
)
async def test_a_request_object_with_keyword_fields_is_refused(
    scripted_server: ScriptedServer, client: SageMakerRuntimeClient, value: object
) -> None:
    sync = InvokeEndpointRequest(endpoint_name="ep", body=b"")
    stream = InvokeEndpointWithResponseStreamRequest(endpoint_name="ep", body=b"")
    async_request = InvokeEndpointAsyncRequest(endpoint_name="ep", input_location="s3://b/k")
    calls: list[Awaitable[Any]] = [
        client.invoke_endpoint(sync, content_type=value),  # type: ignore[call-overload]
        client.invoke_endpoint(sync, body=value),  # type: ignore[call-overload]
        client.invoke_endpoint_async(async_request, accept=value),  # type: ignore[call-overload]
    ]
    for call in calls:
        error = await refused(scripted_server, call, "request")
        assert "not both" in str(error)
    with pytest.raises(ParamValidationError, match="not both") as caught:
        client.invoke_endpoint_with_response_stream(stream, accept=value)  # type: ignore[call-overload]
    assert caught.value.field == "request"
    assert scripted_server.received == []


async def test_request_object_members_are_validated(
    scripted_server: ScriptedServer, client: SageMakerRuntimeClient
) -> None:
    request = InvokeEndpointRequest(endpoint_name="ep", body=b"", custom_attributes="a\r\nb: c")
    await refused(scripted_server, client.invoke_endpoint(request), "custom_attributes")
    async_request = InvokeEndpointAsyncRequest(
        endpoint_name="ep", input_location="s3://b/k", request_ttl_seconds=1
    )
    await refused(
        scripted_server, client.invoke_endpoint_async(async_request), "request_ttl_seconds"
    )


# -- boundaries that must be accepted -------------------------------------------------------------


async def test_every_sync_member_at_its_maximum_is_sent(
    scripted_server: ScriptedServer, client: SageMakerRuntimeClient
) -> None:
    fields: dict[str, str] = {}
    for attr, member in SYNC_MEMBERS.items():
        assert member.max_len is not None
        fields[attr] = valid_value(attr, member.max_len)
    await client.invoke_endpoint(endpoint_name="e" * 63, body=b"{}", **fields)
    received = scripted_server.received
    assert len(received) == 1
    assert received[0].raw_path == f"/endpoints/{'e' * 63}/invocations"
    for attr, member in SYNC_MEMBERS.items():
        assert received[0].headers[member.header] == fields[attr], attr


async def test_every_async_member_at_its_maximum_is_sent(
    scripted_server: ScriptedServer, client: SageMakerRuntimeClient
) -> None:
    scripted_server.script = [accepted_async]
    fields: dict[str, Any] = {}
    for attr, member in ASYNC_STR_MEMBERS.items():
        assert member.max_len is not None
        fields[attr] = valid_value(attr, member.max_len)
    fields["request_ttl_seconds"] = 21600
    fields["invocation_timeout_seconds"] = 3600
    result = await client.invoke_endpoint_async(endpoint_name="ep", **fields)
    assert result.output_location == "s3://bucket/out/inf-1.out"
    received = scripted_server.received
    assert len(received) == 1
    for attr, member in ASYNC_MEMBERS.items():
        assert received[0].headers[member.header] == str(fields[attr]), attr


async def test_every_sync_member_at_its_minimum_is_sent(
    scripted_server: ScriptedServer, client: SageMakerRuntimeClient
) -> None:
    fields = {
        attr: valid_value(attr, 1) for attr, member in SYNC_MEMBERS.items() if member.min_len == 1
    }
    await client.invoke_endpoint(endpoint_name="e", body=b"", **fields)
    headers = scripted_server.received[0].headers
    for attr, value in fields.items():
        assert headers[SYNC_MEMBERS[attr].header] == value


async def test_tab_and_space_are_allowed_in_free_text_headers(
    scripted_server: ScriptedServer, client: SageMakerRuntimeClient
) -> None:
    # RFC 9110 field-value allows SP and HTAB inside a value.
    await client.invoke_endpoint(
        endpoint_name="ep", body=b"", custom_attributes="k=v;\tother = x", accept="a/b, c/d"
    )
    headers = scripted_server.received[0].headers
    assert headers["X-Amzn-SageMaker-Custom-Attributes"] == "k=v;\tother = x"
    assert headers["Accept"] == "a/b, c/d"


# -- property: custom_attributes outside printable ASCII never leaves the client --------------------

PRINTABLE = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40)
# Anything but printable ASCII and tab (which RFC 9110 allows inside a field value, see above).
NOT_PRINTABLE = st.one_of(
    st.characters(max_codepoint=0x1F, exclude_characters="\t"),
    st.just("\x7f"),
    st.characters(min_codepoint=0x80, max_codepoint=0xD7FF),
    st.characters(min_codepoint=0xE000),
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(prefix=PRINTABLE, bad=NOT_PRINTABLE, suffix=PRINTABLE, op=st.sampled_from(["sync", "async"]))
async def test_property_non_printable_custom_attributes_refused(
    scripted_server: ScriptedServer, prefix: str, bad: str, suffix: str, op: str
) -> None:
    async with make_client(scripted_server.url) as client:
        await refused(
            scripted_server,
            call_with(client, op, custom_attributes=prefix + bad + suffix),
            "custom_attributes",
        )


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(value=st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=1024))
async def test_property_printable_custom_attributes_are_sent(
    scripted_server: ScriptedServer, value: str
) -> None:
    scripted_server.received.clear()
    async with make_client(scripted_server.url) as client:
        await client.invoke_endpoint(endpoint_name="ep", body=b"", custom_attributes=value)
    received = scripted_server.received
    assert len(received) == 1
    # The server's parser drops leading and trailing white space of a field value.
    assert received[0].headers["X-Amzn-SageMaker-Custom-Attributes"] == value.strip(" ")


# -- the result of a refused call leaves the client usable ------------------------------------------


async def test_client_still_works_after_validation_errors(
    scripted_server: ScriptedServer, client: SageMakerRuntimeClient
) -> None:
    for _ in range(3):
        with pytest.raises(ParamValidationError):
            await client.invoke_endpoint(endpoint_name="", body=b"")
    assert scripted_server.received == []

    async def answer(request: web.Request, body: bytes) -> web.StreamResponse:
        return web.json_response({"ok": True})

    scripted_server.script = [answer]
    result = await client.invoke_endpoint(endpoint_name="ep", body=json.dumps({"x": 1}))
    assert result.json() == {"ok": True}


def test_a_laid_out_request_shape_is_reused_but_never_skips_a_check() -> None:
    from sagemaker_rt_aio._protocol import serialize_fields

    def lay_out(endpoint: object, content_type: object, body: object = b"{}") -> Any:
        values = (content_type,) + (None,) * (len(m.INVOKE_ENDPOINT.members) - 1)
        return serialize_fields(
            m.INVOKE_ENDPOINT, endpoint, body, values, max_body_bytes=DEFAULT_MAX_BODY_BYTES
        )

    first = lay_out("ep-shape", "application/json")
    again = lay_out("ep-shape", "application/json", b"other")
    assert again.headers is first.headers  # the same shape, laid out once...
    assert again.body == b"other" and again.payload_hash != first.payload_hash
    with pytest.raises(TypeError):
        first.headers["Content-Type"] = "text/plain"  # type: ignore[index]  # ...and read-only
    # Values that have not passed are checked every time, whatever was laid out before.
    with pytest.raises(ParamValidationError):
        lay_out("ep-shape", "application/json\r\nX-Evil: 1")
    with pytest.raises(ParamValidationError):
        lay_out("ep-shape", ["application/json"])  # unhashable: no shape to look up
    with pytest.raises(ParamValidationError):
        lay_out("ep shape", "application/json")
    with pytest.raises(ParamValidationError):
        lay_out("ep-shape", "application/json", body=None)  # the body is checked per call
