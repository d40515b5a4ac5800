"""The client's lifecycle and surface: owned and injected sessions, shutdown, properties, the
response-metadata cache, and the public names of the API contract."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from conftest import Handler, ScriptedServer, json_error

import sagemaker_rt_aio
from sagemaker_rt_aio import (
    ENDPOINT_PREFIX,
    ClientClosedError,
    InvokeEndpointAsyncRequest,
    InvokeEndpointAsyncResult,
    InvokeEndpointRequest,
    InvokeEndpointResult,
    ResponseMetadata,
    RetryPolicy,
    SageMakerRuntimeClient,
    ServiceError,
    ValidationError,
)
from sagemaker_rt_aio._lifecycle import Lifecycle

KEYS: dict[str, Any] = {"aws_access_key_id": "AKIDEXAMPLE", "aws_secret_access_key": "secret"}


def make_client(url: str, **kwargs: Any) -> SageMakerRuntimeClient:
    kwargs.setdefault("retry_policy", RetryPolicy.none())
    return SageMakerRuntimeClient("us-east-1", endpoint_url=url, **KEYS, **kwargs)


def owned_sessions(client: SageMakerRuntimeClient) -> list[aiohttp.ClientSession]:
    return [v for v in vars(client).values() if isinstance(v, aiohttp.ClientSession)]


def counting_trace() -> tuple[aiohttp.TraceConfig, list[str]]:
    seen: list[str] = []
    trace = aiohttp.TraceConfig()

    async def on_start(session: Any, context: Any, params: aiohttp.TraceRequestStartParams) -> None:
        seen.append(str(params.url))

    trace.on_request_start.append(on_start)
    return trace, seen


def numbered_handler() -> Handler:
    """Answers 200 with a request id numbering the requests it has seen."""
    count = 0

    async def numbered(request: web.Request, body: bytes) -> web.StreamResponse:
        nonlocal count
        count += 1
        return web.json_response(
            {"n": count},
            headers={"x-amzn-RequestId": f"rid-{count}", "x-Amzn-Invoked-Production-Variant": "v1"},
        )

    return numbered


# -- sessions -------------------------------------------------------------------------------------


async def test_owned_session_is_created_and_closed(scripted_server: ScriptedServer) -> None:
    client = make_client(scripted_server.url)
    assert client.closed is False
    async with client:
        sessions = owned_sessions(client)
        assert len(sessions) == 1
        session = sessions[0]
        assert not session.closed
        result = await client.invoke_endpoint(endpoint_name="ep", body=b"hi")
        assert result.body == b"hi"
    assert client.closed is True
    assert session.closed
    assert "closed" in repr(client)


async def test_owned_session_is_created_lazily_without_async_with(
    scripted_server: ScriptedServer,
) -> None:
    client = make_client(scripted_server.url)
    assert owned_sessions(client) == []
    await client.invoke_endpoint(endpoint_name="ep", body=b"x")
    (session,) = owned_sessions(client)
    await client.shutdown()
    assert session.closed
    assert len(scripted_server.received) == 1


async def test_injected_session_is_used_and_not_closed(scripted_server: ScriptedServer) -> None:
    trace, seen = counting_trace()
    async with aiohttp.ClientSession(trace_configs=[trace]) as session:
        async with make_client(scripted_server.url, http_session=session) as client:
            await client.invoke_endpoint(endpoint_name="ep", body=b"1")
            await client.invoke_endpoint_async(endpoint_name="ep", input_location="s3://b/k")
        assert client.closed
        assert not session.closed
        assert seen == [
            f"{scripted_server.url}/endpoints/ep/invocations",
            f"{scripted_server.url}/endpoints/ep/async-invocations",
        ]
        assert len(scripted_server.received) == 2
        # Still usable by its owner.
        async with session.post(f"{scripted_server.url}/after", data=b"z") as response:
            assert await response.read() == b"z"
    assert len(scripted_server.received) == 3


async def test_shutdown_and_close_are_idempotent(scripted_server: ScriptedServer) -> None:
    client = make_client(scripted_server.url)
    async with client:
        (session,) = owned_sessions(client)
    await client.shutdown()
    await client.close()
    await client.shutdown()
    assert client.closed and session.closed


async def test_close_alone_shuts_down(scripted_server: ScriptedServer) -> None:
    client = make_client(scripted_server.url)
    await client.invoke_endpoint(endpoint_name="ep", body=b"")
    (session,) = owned_sessions(client)
    await client.close()
    assert client.closed and session.closed


async def test_shutdown_of_a_never_used_client(scripted_server: ScriptedServer) -> None:
    client = make_client(scripted_server.url)
    await client.shutdown()
    assert client.closed
    assert owned_sessions(client) == []


@pytest.mark.parametrize("injected", [False, True])
async def test_calls_after_shutdown_raise_and_send_nothing(
    scripted_server: ScriptedServer, injected: bool
) -> None:
    async with aiohttp.ClientSession() as session:
        kwargs: dict[str, Any] = {"http_session": session} if injected else {}
        client = make_client(scripted_server.url, **kwargs)
        async with client:
            await client.invoke_endpoint(endpoint_name="ep", body=b"")
        assert len(scripted_server.received) == 1
        with pytest.raises(ClientClosedError):
            await client.invoke_endpoint(endpoint_name="ep", body=b"")
        with pytest.raises(ClientClosedError):
            await client.invoke_endpoint(InvokeEndpointRequest(endpoint_name="ep", body=b""))
        with pytest.raises(ClientClosedError):
            await client.invoke_endpoint_async(endpoint_name="ep", input_location="s3://b/k")
        with pytest.raises(ClientClosedError):
            async with client:
                pass
        assert len(scripted_server.received) == 1
        assert owned_sessions(client) == [] or injected


async def test_invalid_call_after_shutdown_is_client_closed(
    scripted_server: ScriptedServer,
) -> None:
    client = make_client(scripted_server.url)
    await client.shutdown()
    with pytest.raises(ClientClosedError):
        await client.invoke_endpoint(endpoint_name="", body=b"")


@pytest.mark.parametrize("earlier_calls", [0, 1])
async def test_shutdown_while_calls_are_in_flight_ends_them(
    scripted_server: ScriptedServer, earlier_calls: int
) -> None:
    # After an earlier call, the call in flight found its task by the client's loop, which the
    # first call taught the lifecycle (no getpid() system call on Python 3.10-3.11): it is
    # registered all the same.
    arrived = asyncio.Event()
    release = asyncio.Event()

    async def quick(request: web.Request, body: bytes) -> web.StreamResponse:
        return web.Response(body=b"first")

    async def slow(request: web.Request, body: bytes) -> web.StreamResponse:
        arrived.set()
        await release.wait()
        return web.Response(body=b"late")

    scripted_server.script = [quick] * earlier_calls + [slow]
    client = make_client(scripted_server.url)
    for _ in range(earlier_calls):
        assert (await client.invoke_endpoint(endpoint_name="ep", body=b"")).body == b"first"
    call = asyncio.create_task(client.invoke_endpoint(endpoint_name="ep", body=b""))
    await asyncio.wait_for(arrived.wait(), 5)
    assert client._lifecycle.loop is asyncio.get_running_loop()
    assert len(client._lifecycle.inflight) == 1
    await client.shutdown(grace=0.05)
    release.set()
    with pytest.raises(ClientClosedError):
        await asyncio.wait_for(call, 5)
    assert client.closed


def test_running_task_is_found_in_another_loop_than_the_one_learned() -> None:
    lifecycle = Lifecycle()

    async def check() -> asyncio.AbstractEventLoop:
        assert lifecycle.running_task() is asyncio.current_task()
        return asyncio.get_running_loop()

    first = asyncio.run(check())
    assert lifecycle.loop is first
    asyncio.run(check())  # a task of a loop other than the learned one, the long way
    assert lifecycle.loop is first


# -- properties -------------------------------------------------------------------------------------


def test_properties_and_defaults() -> None:
    client = SageMakerRuntimeClient("eu-west-1", **KEYS)
    assert client.region_name == "eu-west-1"
    assert client.endpoint_url == "https://runtime.sagemaker.eu-west-1.amazonaws.com"
    assert isinstance(client.timeout, aiohttp.ClientTimeout)
    assert client.timeout.sock_read == 70
    assert client.timeout.total is None
    assert client.timeout.sock_connect is not None and client.timeout.sock_connect > 0
    assert client.retry_policy == RetryPolicy()
    assert {"ServiceUnavailable", "ModelNotReadyException"} <= client.retry_policy.retry_on
    assert client.closed is False
    assert ENDPOINT_PREFIX == "runtime.sagemaker"


def test_given_timeout_and_retry_policy_are_kept() -> None:
    timeout = aiohttp.ClientTimeout(total=5, sock_read=2)
    policy = RetryPolicy(max_attempts=7, base_delay=0.5)
    client = SageMakerRuntimeClient("us-east-1", timeout=timeout, retry_policy=policy, **KEYS)
    # Given fields are kept; the ones left None take their defaults (sock_connect 10 s).
    assert client.timeout == aiohttp.ClientTimeout(total=5, sock_read=2, sock_connect=10.0)
    assert client.retry_policy is policy
    assert client.retry_policy.max_attempts == 7


def test_retry_policy_none() -> None:
    policy = RetryPolicy.none()
    assert policy.max_attempts == 1
    assert policy.retry_on == frozenset()
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)


# -- the response-metadata cache ----------------------------------------------------------------


@pytest.fixture
async def numbered_client(scripted_server: ScriptedServer) -> AsyncIterator[SageMakerRuntimeClient]:
    scripted_server.default = numbered_handler()
    async with make_client(scripted_server.url) as client:
        yield client


async def test_metadata_of_the_last_successful_call(
    numbered_client: SageMakerRuntimeClient,
) -> None:
    client = numbered_client
    request = InvokeEndpointRequest(endpoint_name="ep", body=b"{}")
    assert client.get_cached_response_metadata(request) is None
    first = await client.invoke_endpoint(request)
    metadata = client.get_cached_response_metadata(request)
    assert metadata is first.response_metadata
    assert isinstance(metadata, ResponseMetadata)
    assert metadata.request_id == "rid-1"
    assert metadata.http_status_code == 200
    assert metadata.retry_attempts == 0
    assert metadata.http_headers["x-amzn-invoked-production-variant"] == "v1"
    assert all(key == key.lower() for key in metadata.http_headers)
    await client.invoke_endpoint(request)
    second = client.get_cached_response_metadata(request)
    assert second is not None and second.request_id == "rid-2"
    # An equal-looking but distinct request object is another key.
    twin = InvokeEndpointRequest(endpoint_name="ep", body=b"{}")
    assert client.get_cached_response_metadata(twin) is None


async def test_metadata_for_async_requests(numbered_client: SageMakerRuntimeClient) -> None:
    request = InvokeEndpointAsyncRequest(endpoint_name="ep", input_location="s3://b/k")
    result = await numbered_client.invoke_endpoint_async(request)
    assert isinstance(result, InvokeEndpointAsyncResult)
    metadata = numbered_client.get_cached_response_metadata(request)
    assert metadata is not None and metadata == result.response_metadata


@pytest.mark.parametrize(
    "unknown",
    [object(), "ep", 42, None],
    ids=lambda v: "object()" if type(v) is object else repr(v),
)
async def test_metadata_for_unknown_objects_is_none(
    numbered_client: SageMakerRuntimeClient, unknown: object
) -> None:
    await numbered_client.invoke_endpoint(endpoint_name="ep", body=b"")
    assert numbered_client.get_cached_response_metadata(unknown) is None


def test_metadata_for_an_unhashable_object_is_none() -> None:
    client = SageMakerRuntimeClient("us-east-1", **KEYS)
    assert client.get_cached_response_metadata({"endpoint_name": "ep"}) is None


async def test_keyword_calls_are_not_cached(numbered_client: SageMakerRuntimeClient) -> None:
    await numbered_client.invoke_endpoint(endpoint_name="ep", body=b"")
    assert len(numbered_client._metadata) == 0


async def test_failed_calls_are_not_cached(
    scripted_server: ScriptedServer, numbered_client: SageMakerRuntimeClient
) -> None:
    request = InvokeEndpointRequest(endpoint_name="ep", body=b"")
    scripted_server.script = [json_error(400, "ValidationError", "no")]
    with pytest.raises(ValidationError):
        await numbered_client.invoke_endpoint(request)
    assert numbered_client.get_cached_response_metadata(request) is None
    # A failure after a success keeps the last successful call's metadata.
    scripted_server.script = []
    await numbered_client.invoke_endpoint(request)
    kept = numbered_client.get_cached_response_metadata(request)
    assert kept is not None and kept.http_status_code == 200
    scripted_server.script = [json_error(503, "ServiceUnavailable", "busy")]
    with pytest.raises(ServiceError):
        await numbered_client.invoke_endpoint(request)
    assert numbered_client.get_cached_response_metadata(request) == kept


async def test_metadata_cache_size(scripted_server: ScriptedServer) -> None:
    scripted_server.default = numbered_handler()
    async with make_client(scripted_server.url, metadata_cache_size=2) as client:
        requests = [InvokeEndpointRequest(endpoint_name="ep", body=b"") for _ in range(3)]
        for request in requests:
            await client.invoke_endpoint(request)
        assert client.get_cached_response_metadata(requests[0]) is None  # the oldest went
        got = [client.get_cached_response_metadata(r) for r in requests[1:]]
        assert [m.request_id if m else None for m in got] == ["rid-2", "rid-3"]


async def test_metadata_cache_ttl(scripted_server: ScriptedServer) -> None:
    scripted_server.default = numbered_handler()
    now = [1000.0]
    async with make_client(scripted_server.url, metadata_cache_ttl=0.5) as client:
        client._metadata._clock = lambda: now[0]  # the cache's clock, driven rather than slept on
        request = InvokeEndpointRequest(endpoint_name="ep", body=b"")
        await client.invoke_endpoint(request)
        now[0] += 0.25
        assert client.get_cached_response_metadata(request) is not None
        now[0] += 0.25  # exactly the ttl (binary fractions: no rounding)
        assert client.get_cached_response_metadata(request) is None


# -- results ----------------------------------------------------------------------------------------


async def test_result_fields_and_json(numbered_client: SageMakerRuntimeClient) -> None:
    result = await numbered_client.invoke_endpoint(endpoint_name="ep", body=b"{}")
    assert isinstance(result, InvokeEndpointResult)
    assert result.json() == {"n": 1}
    assert result.content_type is not None and result.content_type.startswith("application/json")
    assert result.invoked_production_variant == "v1"
    assert result.response_metadata.request_id == "rid-1"
    assert result.new_session_id is None and result.closed_session_id is None


# -- the public surface -------------------------------------------------------------------------

API_NAMES = [
    "ENDPOINT_PREFIX",
    "SageMakerRuntimeClient",
    "InvokeEndpointRequest",
    "InvokeEndpointResult",
    "InvokeEndpointAsyncRequest",
    "InvokeEndpointAsyncResult",
    "PayloadPart",
    "ResponseMetadata",
    "RetryPolicy",
    "SageMakerRuntimeError",
    "ParamValidationError",
    "ClientClosedError",
    "EndpointConnectionError",
    "ReadTimeoutError",
    "ServiceError",
    "InternalFailure",
    "ServiceUnavailable",
    "ValidationError",
    "ModelError",
    "InternalDependencyException",
    "ModelNotReadyException",
    "ThrottlingException",
    "ModelStreamError",
    "InternalStreamFailure",
    "AsyncInferenceFailure",
    "AsyncInferenceTimeout",
]


@pytest.mark.parametrize("name", API_NAMES)
def test_api_names_are_exported(name: str) -> None:
    assert name in sagemaker_rt_aio.__all__
    assert getattr(sagemaker_rt_aio, name) is not None


def test_everything_in_all_exists() -> None:
    for name in sagemaker_rt_aio.__all__:
        assert hasattr(sagemaker_rt_aio, name), name
    assert len(set(sagemaker_rt_aio.__all__)) == len(sagemaker_rt_aio.__all__)


def test_errors_derive_from_the_base() -> None:
    for name in API_NAMES:
        obj = getattr(sagemaker_rt_aio, name)
        if isinstance(obj, type) and issubclass(obj, BaseException):
            assert issubclass(obj, sagemaker_rt_aio.SageMakerRuntimeError), name


def test_local_runtime_is_importable() -> None:
    from sagemaker_rt_aio.local import LocalRuntime

    assert inspect.isclass(LocalRuntime)


def test_constructor_and_methods_match_the_contract() -> None:
    parameters = inspect.signature(SageMakerRuntimeClient).parameters
    for name in [
        "region_name",
        "endpoint_url",
        "profile_name",
        "aws_access_key_id",
        "aws_secret_access_key",
        "aws_session_token",
        "credentials",
        "botocore_session",
        "http_session",
        "timeout",
        "retry_policy",
        "max_connections",
        "middlewares",
        "s3_endpoint_url",
    ]:
        assert name in parameters, name
    assert next(iter(parameters)) == "region_name"
    for method in ["invoke_endpoint", "invoke_endpoint_async", "shutdown", "close"]:
        assert inspect.iscoroutinefunction(getattr(SageMakerRuntimeClient, method)), method
    for method in [
        "invoke_endpoint_with_response_stream",
        "get_cached_response_metadata",
        "wait_for_async_result",
    ]:
        assert callable(getattr(SageMakerRuntimeClient, method)), method
    sync = inspect.signature(SageMakerRuntimeClient.invoke_endpoint).parameters
    assert sync["request"].kind is inspect.Parameter.POSITIONAL_ONLY
    for name in [
        "endpoint_name",
        "body",
        "content_type",
        "accept",
        "custom_attributes",
        "target_model",
        "target_variant",
        "target_container_hostname",
        "inference_id",
        "enable_explanations",
        "inference_component_name",
        "session_id",
    ]:
        assert sync[name].kind is inspect.Parameter.KEYWORD_ONLY, name
    async_params = inspect.signature(SageMakerRuntimeClient.invoke_endpoint_async).parameters
    for name in [
        "endpoint_name",
        "input_location",
        "body",
        "content_type",
        "accept",
        "custom_attributes",
        "inference_id",
        "request_ttl_seconds",
        "invocation_timeout_seconds",
        "s3_output_path_extension",
        "filename",
    ]:
        assert async_params[name].kind is inspect.Parameter.KEYWORD_ONLY, name


def test_request_and_result_dataclasses() -> None:
    request = InvokeEndpointRequest(endpoint_name="ep", body=b"x", content_type="text/plain")
    assert (request.endpoint_name, request.body, request.content_type) == ("ep", b"x", "text/plain")
    metadata = ResponseMetadata(
        request_id="r", http_status_code=200, http_headers={}, retry_attempts=0
    )
    result = InvokeEndpointResult(
        body=b'{"a": [1]}',
        content_type="application/json",
        invoked_production_variant=None,
        custom_attributes=None,
        new_session_id=None,
        closed_session_id=None,
        response_metadata=metadata,
    )
    assert result.json() == {"a": [1]}
