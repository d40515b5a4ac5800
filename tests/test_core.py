"""Issue 9's core behaviours through the public API: queued cancellation and shutdown, bounded
bodies, shutdown semantics, credentials bounded by the deadline, odd input, partial timeouts,
with_options, the metadata cache, concurrent downloads and waiter failures."""

from __future__ import annotations

import asyncio
import gc
import os
import threading
import tracemalloc
import weakref
from pathlib import Path
from typing import Any

import aiohttp
import botocore.credentials
import pytest
from aiohttp import web

from sagemaker_rt_aio import (
    AsyncInferenceTimeout,
    ClientClosedError,
    CredentialsTimeoutError,
    DeadlineExceededError,
    EndpointConnectionError,
    InvokeEndpointAsyncResult,
    InvokeEndpointRequest,
    ParamValidationError,
    ResponseMetadata,
    ResponseTooLargeError,
    RetryPolicy,
    SageMakerRuntimeClient,
    SageMakerRuntimeError,
    TextDecodeError,
)
from sagemaker_rt_aio._constants import POOL_QUEUE_PER_CONNECTION
from sagemaker_rt_aio._transport import abort_response, on_connection_released
from tests.conftest import HungProvider, Received, ScriptedServer

KEYS = {"aws_access_key_id": "AKIDCORE", "aws_secret_access_key": "core-secret-key"}


def make_client(url: str, **kwargs: Any) -> SageMakerRuntimeClient:
    kwargs.setdefault("retry_policy", RetryPolicy.none())
    if "credentials" not in kwargs:
        kwargs.update(KEYS)
    return SageMakerRuntimeClient("us-east-1", endpoint_url=url, **kwargs)


async def arrived(server: ScriptedServer, count: int) -> None:
    for _ in range(1000):
        if len(server.received) >= count:
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"only {len(server.received)} requests arrived")


def hanging(release: asyncio.Event) -> Any:
    async def handler(request: web.Request, body: bytes) -> web.StreamResponse:
        await release.wait()
        return web.Response(body=b"late")

    return handler


# -- 1. queued cancellation and shutdown -----------------------------------------------------------


async def test_shutdown_with_thousands_queued_gives_each_client_closed(
    scripted_server: ScriptedServer,
) -> None:
    release = asyncio.Event()
    scripted_server.default = hanging(release)
    client = make_client(scripted_server.url, max_connections=2)
    tasks = [
        asyncio.create_task(client.invoke_endpoint(endpoint_name="ep", body=b"x"))
        for _ in range(2000)
    ]
    await arrived(scripted_server, 2)
    await client.shutdown(grace=0)
    release.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert {type(r) for r in results} == {ClientClosedError}
    assert len(scripted_server.received) == 2  # nothing queued was sent


async def test_calls_queued_past_the_pools_bound_wait_in_the_slots_and_hold_little(
    scripted_server: ScriptedServer,
) -> None:
    """Calls without a deadline wait for their connection in the pool, each holding its built
    request (about 9 KiB), POOL_QUEUE_PER_CONNECTION per connection at most; the others wait in
    the slots before they are signed (about 2.5 KiB): queued memory stays near the latter."""
    release = asyncio.Event()
    scripted_server.default = hanging(release)
    queued = 1000
    async with make_client(scripted_server.url, max_connections=2) as client:
        slots = client._pipeline._slots
        first = [
            asyncio.create_task(client.invoke_endpoint(endpoint_name="ep", body=b"x"))
            for _ in range(2)
        ]
        await arrived(scripted_server, 2)
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            tasks = [
                asyncio.create_task(client.invoke_endpoint(endpoint_name="ep", body=b"x" * 100))
                for _ in range(queued)
            ]
            for _ in range(200):
                await asyncio.sleep(0)
                if slots.queued == queued:
                    break
            gc.collect()
            held = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        assert slots.queued == queued
        assert slots.free == -POOL_QUEUE_PER_CONNECTION * 2  # the rest wait in the slots
        assert held / queued < 5 * 1024, held / queued
        release.set()
        results = await asyncio.wait_for(asyncio.gather(*first, *tasks), 30)
        assert all(r.body == b"late" for r in results)
        assert slots.free == 2 and slots.queued == 0
    assert len(scripted_server.received) == queued + 2


async def test_wait_for_while_queued_is_the_callers_timeout(
    scripted_server: ScriptedServer,
) -> None:
    release = asyncio.Event()
    scripted_server.default = hanging(release)
    async with make_client(scripted_server.url, max_connections=1) as client:
        first = asyncio.create_task(client.invoke_endpoint(endpoint_name="ep", body=b"x"))
        await arrived(scripted_server, 1)
        outcomes = []
        for _ in range(20):
            try:
                await asyncio.wait_for(client.invoke_endpoint(endpoint_name="ep", body=b"x"), 0.001)
            except BaseException as exc:
                outcomes.append(type(exc))
        assert set(outcomes) == {asyncio.TimeoutError}
        release.set()
        assert (await first).body == b"late"
        # the slot came back: a later call goes through
        assert (await client.invoke_endpoint(endpoint_name="ep", body=b"y")).body == b"late"


# -- 2. bounded bodies ---------------------------------------------------------------------------


async def test_content_length_over_the_bound_is_refused_unread(
    scripted_server: ScriptedServer,
) -> None:
    done = asyncio.Event()

    async def huge(request: web.Request, body: bytes) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Length": str(1 << 30)})
        await response.prepare(request)
        await response.write(b"x" * 65536)
        await done.wait()  # never sends the rest
        return response

    scripted_server.default = huge
    policy = RetryPolicy(max_attempts=3, base_delay=0)
    async with make_client(
        scripted_server.url, max_response_bytes=1 << 20, retry_policy=policy
    ) as client:
        assert client.max_response_bytes == 1 << 20
        with pytest.raises(ResponseTooLargeError) as caught:
            await asyncio.wait_for(client.invoke_endpoint(endpoint_name="ep", body=b"x"), 3)
    done.set()
    assert caught.value.content_length == 1 << 30
    assert len(scripted_server.received) == 1  # never retried


async def test_chunked_body_without_end_stops_at_the_bound(scripted_server: ScriptedServer) -> None:
    released: list[bool] = []

    async def endless(request: web.Request, body: bytes) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        try:
            while True:
                await response.write(b"y" * 65536)
                await asyncio.sleep(0)
        except (ConnectionError, RuntimeError):
            released.append(True)  # the client closed the connection
        return response

    scripted_server.default = endless
    async with make_client(scripted_server.url, max_response_bytes=1 << 20) as client:
        with pytest.raises(ResponseTooLargeError) as caught:
            await asyncio.wait_for(client.invoke_endpoint(endpoint_name="ep", body=b"x"), 5)
        assert caught.value.content_length is None
        assert caught.value.limit == 1 << 20


async def test_default_bound_accepts_a_full_6_mib_answer(scripted_server: ScriptedServer) -> None:
    big = b"z" * (6 * 1024 * 1024)

    async def answer(request: web.Request, body: bytes) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()  # no Content-Length: the bounded reader's path
        await response.prepare(request)
        for i in range(0, len(big), 1 << 20):
            await response.write(big[i : i + (1 << 20)])
        return response

    scripted_server.default = answer
    async with make_client(scripted_server.url) as client:
        result = await client.invoke_endpoint(endpoint_name="ep", body=b"x")
        assert result.body == big


# -- 3. shutdown ---------------------------------------------------------------------------------


async def test_concurrent_shutdowns_wait_for_the_same_end(scripted_server: ScriptedServer) -> None:
    release = asyncio.Event()
    scripted_server.default = hanging(release)
    client = make_client(scripted_server.url)
    call = asyncio.create_task(client.invoke_endpoint(endpoint_name="ep", body=b"x"))
    await arrived(scripted_server, 1)
    first = asyncio.create_task(client.shutdown(grace=5))
    second = asyncio.create_task(client.shutdown(grace=5))
    await asyncio.sleep(0.05)
    assert not second.done()  # it waits, it does not return early
    release.set()
    await asyncio.gather(first, second)
    assert (await call).body == b"late"
    assert client.closed


async def test_cancelled_shutdown_still_closes_and_can_be_resumed(
    scripted_server: ScriptedServer,
) -> None:
    release = asyncio.Event()
    scripted_server.default = hanging(release)
    client = make_client(scripted_server.url)
    call = asyncio.create_task(client.invoke_endpoint(endpoint_name="ep", body=b"x"))
    await arrived(scripted_server, 1)
    session = client._get_session()
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(client.shutdown(grace=60), 0.05)
    await asyncio.wait_for(client.shutdown(), 2)  # resumes: waits for the same shutdown's end
    assert session.closed
    with pytest.raises(ClientClosedError):
        await call
    release.set()


# -- 4. credentials bounded by the deadline ------------------------------------------------------


async def test_hung_provider_bounded_by_each_callers_deadline(
    scripted_server: ScriptedServer,
) -> None:
    provider = HungProvider()
    credentials = botocore.credentials.RefreshableCredentials.create_from_metadata(
        {
            "access_key": "AKIDOLD",
            "secret_key": "old",
            "token": "old",
            "expiry_time": "2000-01-01T00:00:00Z",
        },
        provider,
        "test",
    )
    threads_before = threading.active_count()
    client = make_client(
        scripted_server.url,
        credentials=credentials,
        timeout=aiohttp.ClientTimeout(total=0.2),
    )
    try:
        results = await asyncio.gather(
            *(client.invoke_endpoint(endpoint_name="ep", body=b"x") for _ in range(20)),
            return_exceptions=True,
        )
        assert {type(r) for r in results} == {CredentialsTimeoutError}
        assert all(isinstance(r, TimeoutError) for r in results)
        again = await asyncio.gather(
            *(client.invoke_endpoint(endpoint_name="ep", body=b"x") for _ in range(5)),
            return_exceptions=True,
        )
        assert {type(r) for r in again} == {CredentialsTimeoutError}
        # one refresh in progress for all of them: one worker thread, not one per caller
        assert threading.active_count() - threads_before <= 1
        assert provider.calls == 1
        assert not scripted_server.received
        provider.gate.set()
        for _ in range(200):
            try:
                await client.invoke_endpoint(endpoint_name="ep", body=b"x")
                break
            except CredentialsTimeoutError:
                await asyncio.sleep(0.01)
        assert scripted_server.received
    finally:
        provider.gate.set()
        await client.shutdown()


# -- 5. secrets ----------------------------------------------------------------------------------


def reachable(exc: BaseException) -> list[object]:
    seen: dict[int, object] = {}
    stack: list[object] = [exc]
    while stack:
        obj = stack.pop()
        if id(obj) in seen or len(seen) > 5000:
            continue
        seen[id(obj)] = obj
        if isinstance(obj, BaseException):
            stack += [obj.__cause__, obj.__context__, *obj.args]
        if isinstance(obj, (list, tuple, set, frozenset)):
            stack += list(obj)
        elif isinstance(obj, dict):
            stack += list(obj.keys()) + list(obj.values())
        for name in getattr(type(obj), "__slots__", ()):
            stack.append(getattr(obj, name, None))
        if hasattr(obj, "__dict__") and not isinstance(obj, type):
            stack += list(vars(obj).values())
    return [o for o in seen.values() if o is not None]


def assert_no_secret(exc: BaseException, *secrets: str) -> None:
    for obj in reachable(exc):
        try:
            text = repr(obj) + str(obj)
        except Exception:
            continue
        for secret in secrets:
            assert secret not in text, f"{secret!r} reachable via {type(obj).__name__}"


async def test_no_secret_reachable_from_a_malformed_answer() -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nBad Header Line\r\n\r\nhello")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(garbage, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with make_client(
            f"http://127.0.0.1:{port}",
            aws_session_token="SESSION-TOKEN-SECRET",
        ) as client:
            with pytest.raises(SageMakerRuntimeError) as caught:
                await client.invoke_endpoint(endpoint_name="ep", body=b"x")
        assert_no_secret(caught.value, "SESSION-TOKEN-SECRET", "Signature=", "core-secret-key")
    finally:
        server.close()
        await server.wait_closed()


# -- 6. concurrent downloads ---------------------------------------------------------------------


async def test_concurrent_downloads_to_one_path(
    scripted_server: ScriptedServer, tmp_path: Path
) -> None:
    bodies = {"/b/one": b"1" * 300_000, "/b/two": b"2" * 200_000}

    async def s3(request: web.Request, body: bytes) -> web.StreamResponse:
        data = bodies.get(request.path)
        if data is None:
            return web.Response(status=404)
        if request.method == "HEAD":
            return web.Response(headers={"Content-Length": str(len(data))})
        response = web.StreamResponse()
        await response.prepare(request)
        for i in range(0, len(data), 16384):
            await response.write(data[i : i + 16384])
            await asyncio.sleep(0)
        return response

    scripted_server.default = s3
    target = tmp_path / "out.bin"
    async with make_client(scripted_server.url, s3_endpoint_url=scripted_server.url) as client:
        sizes = await asyncio.gather(
            *(
                client.download_async_result(
                    InvokeEndpointAsyncResult(
                        None, f"s3://b/{name}", None, ResponseMetadata(None, 202)
                    ),
                    target,
                    timeout=5,
                    poll_interval=0.01,
                )
                for name in ("one", "two")
            )
        )
    assert sorted(sizes) == [200_000, 300_000]
    assert target.read_bytes() in bodies.values()  # one whole object, never a mix
    assert os.listdir(tmp_path) == ["out.bin"]  # no temporary file left


# -- 7. metadata cache ---------------------------------------------------------------------------


async def test_metadata_cache_does_not_keep_requests_alive(scripted_server: ScriptedServer) -> None:
    async with make_client(scripted_server.url) as client:
        request = InvokeEndpointRequest(endpoint_name="ep", body=b"b" * 1_000_000)
        await client.invoke_endpoint(request)
        metadata = client.get_cached_response_metadata(request)
        assert metadata is not None and metadata.http_status_code == 200
        ref = weakref.ref(request)
        del request
        gc.collect()
        assert ref() is None
        assert client.get_cached_response_metadata(object()) is None
        assert client.get_cached_response_metadata([]) is None


# -- 8. odd input --------------------------------------------------------------------------------


async def test_odd_bodies_are_typed_and_nothing_is_sent(scripted_server: ScriptedServer) -> None:
    view = memoryview(b"abc")
    view.release()
    async with make_client(scripted_server.url) as client:
        for body in ("\ud800", view):
            with pytest.raises(ParamValidationError) as caught:
                await client.invoke_endpoint(endpoint_name="ep", body=body)
            assert caught.value.field == "body"
    assert not scripted_server.received


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("region_name", 123),
        ("timeout", "x"),
        ("max_connections", "8"),
        ("max_connections", 0),
        ("retry_policy", {"max_attempts": 2}),
        ("endpoint_url", 5),
        ("max_response_bytes", 1.5),
        ("middlewares", "abc"),
        ("allow_http", "yes"),
    ],
)
def test_constructor_arguments_of_the_wrong_type(name: str, value: object) -> None:
    kwargs: dict[str, Any] = {"region_name": "us-east-1", **KEYS, name: value}
    with pytest.raises(ParamValidationError) as caught:
        SageMakerRuntimeClient(**kwargs)
    assert caught.value.field == name


async def test_undecodable_line_is_a_typed_error(scripted_server: ScriptedServer) -> None:
    from sagemaker_rt_aio._stream_events import encode_payload_part

    async def stream(request: web.Request, body: bytes) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "application/vnd.amazon.eventstream"}
        )
        await response.prepare(request)
        await response.write(encode_payload_part(b"ok\n\xff\xfe\n"))
        return response

    scripted_server.default = stream
    async with make_client(scripted_server.url) as client:
        lines = []
        with pytest.raises(TextDecodeError):
            async with client.invoke_endpoint_with_response_stream(
                endpoint_name="ep", body=b"x"
            ) as s:
                async for line in s.iter_lines():
                    lines.append(line)
        assert lines == ["ok"]


# -- 9. partial ClientTimeout --------------------------------------------------------------------


async def test_partial_timeout_keeps_the_defaults() -> None:
    client = SageMakerRuntimeClient("us-east-1", timeout=aiohttp.ClientTimeout(total=30), **KEYS)
    assert client.timeout.total == 30
    assert client.timeout.sock_read == 70
    assert client.timeout.sock_connect == 10


async def test_trickling_server_is_bounded_by_sock_read(scripted_server: ScriptedServer) -> None:
    done = asyncio.Event()

    async def trickle(request: web.Request, body: bytes) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Length": "100"})
        await response.prepare(request)
        await response.write(b"a")
        await done.wait()
        return response

    scripted_server.default = trickle
    async with make_client(
        scripted_server.url, timeout=aiohttp.ClientTimeout(total=None, sock_read=0.1)
    ) as client:
        with pytest.raises(TimeoutError) as caught:
            await client.invoke_endpoint(endpoint_name="ep", body=b"x")
        done.set()
        assert isinstance(caught.value, SageMakerRuntimeError)


# -- 10. waiter failures surface ------------------------------------------------------------------


async def test_unreachable_s3_surfaces_as_a_typed_error_soon() -> None:
    with __import__("socket").socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    policy = RetryPolicy(max_attempts=2, base_delay=0.001, max_delay=0.001)
    async with make_client(
        "http://127.0.0.1:9", s3_endpoint_url=f"http://127.0.0.1:{port}", retry_policy=policy
    ) as client:
        result = InvokeEndpointAsyncResult(None, "s3://b/k", None, ResponseMetadata(None, 202))
        with pytest.raises(EndpointConnectionError):
            await client.wait_for_async_result(result, timeout=60, poll_interval=0.001)


async def test_s3_requests_go_through_the_middlewares(scripted_server: ScriptedServer) -> None:
    seen: list[str] = []

    async def spy(request: Any, call_next: Any) -> Any:
        seen.append(request.operation)
        return await call_next(request)

    async def s3(request: web.Request, body: bytes) -> web.StreamResponse:
        return web.Response(body=b"result" if request.method == "GET" else b"")

    scripted_server.default = s3
    async with make_client(
        scripted_server.url, s3_endpoint_url=scripted_server.url, middlewares=[spy]
    ) as client:
        result = InvokeEndpointAsyncResult(None, "s3://b/k", None, ResponseMetadata(None, 202))
        assert (
            await client.wait_for_async_result(result, timeout=5, poll_interval=0.01) == b"result"
        )
    assert seen == ["S3 HEAD", "S3 GET"]
    auth = [r.headers["Authorization"] for r in scripted_server.received]
    assert all("/s3/aws4_request" in a for a in auth)


async def test_wait_timeout_after_failed_polls_is_chained(scripted_server: ScriptedServer) -> None:
    async def flaky(request: web.Request, body: bytes) -> web.StreamResponse:
        return web.Response(status=503)

    scripted_server.default = flaky
    async with make_client(scripted_server.url, s3_endpoint_url=scripted_server.url) as client:
        result = InvokeEndpointAsyncResult(None, "s3://b/k", None, ResponseMetadata(None, 202))
        with pytest.raises(SageMakerRuntimeError) as caught:
            await client.wait_for_async_result(result, timeout=5, poll_interval=0.01)
    # three failed polls in a row: S3's own error, well before the timeout
    assert not isinstance(caught.value, AsyncInferenceTimeout)
    assert getattr(caught.value, "status_code", None) == 503


# -- 11. with_options ----------------------------------------------------------------------------


async def test_with_options_view(scripted_server: ScriptedServer) -> None:
    release = asyncio.Event()
    scripted_server.default = hanging(release)
    client = make_client(scripted_server.url)
    view = client.with_options(timeout=aiohttp.ClientTimeout(total=0.1))
    assert view.timeout.total == 0.1 and view.timeout.sock_read == 70
    assert client.timeout.total is None
    policy = RetryPolicy(max_attempts=5)
    assert client.with_options(retry_policy=policy).retry_policy is policy
    with pytest.raises(DeadlineExceededError):
        await view.invoke_endpoint(endpoint_name="ep", body=b"x")
    slow = asyncio.create_task(
        client.with_options(timeout=aiohttp.ClientTimeout(total=30)).invoke_endpoint(
            endpoint_name="ep", body=b"x"
        )
    )
    await arrived(scripted_server, 2)
    await client.shutdown(grace=0)
    with pytest.raises(ClientClosedError):
        await slow
    assert view.closed
    with pytest.raises(ClientClosedError):
        await view.invoke_endpoint(endpoint_name="ep", body=b"x")
    release.set()


# -- isolated aiohttp behaviour we rely on ---------------------------------------------------------


async def test_pinned_connection_release_callback(scripted_server: ScriptedServer) -> None:
    """``on_connection_released`` relies on aiohttp's ``Connection.add_callback``: the callback runs
    once the streamed body is read to its end (or the response closed), not before."""
    go_on = asyncio.Event()

    async def slow(request: web.Request, body: bytes) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        await response.write(b"first")
        await go_on.wait()
        await response.write(b"last")
        return response

    scripted_server.default = slow
    released: list[int] = []
    async with aiohttp.ClientSession() as session:
        for close_early in (False, True):
            go_on.clear()
            async with session.post(scripted_server.url + "/x", data=b"abc") as response:
                assert on_connection_released(response, lambda: released.append(1))
                assert await response.content.readany() == b"first"
                assert len(released) == int(close_early)
                if close_early:
                    response.close()
                    assert len(released) == 2
                    go_on.set()
                    break
                go_on.set()
                await response.read()
            assert len(released) == 1
    assert len(released) == 2


def _unused(received: Received) -> None:  # keeps the import used by type checkers
    del received


async def test_wait_arguments_of_the_wrong_type_are_typed() -> None:
    client = SageMakerRuntimeClient("us-east-1", **KEYS)
    result = InvokeEndpointAsyncResult(None, "s3://b/k", None, ResponseMetadata(None, 202))
    for kwargs in ({"timeout": "x"}, {"timeout": 5, "poll_interval": "1"}, {"timeout": -1}):
        with pytest.raises(ParamValidationError):
            await client.wait_for_async_result(result, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(ParamValidationError):
        await client.wait_for_async_result("s3://b/k", timeout=5)  # type: ignore[arg-type]
    await client.shutdown()


async def test_leaving_a_views_block_keeps_the_client_open(scripted_server: ScriptedServer) -> None:
    async with make_client(scripted_server.url) as client:
        async with client.with_options(retry_policy=RetryPolicy(max_attempts=2)) as view:
            assert (await view.invoke_endpoint(endpoint_name="ep", body=b"v")).body == b"v"
        assert not client.closed
        assert (await client.invoke_endpoint(endpoint_name="ep", body=b"c")).body == b"c"
    assert view.closed


async def test_pinned_abort_response_ends_a_pending_read(scripted_server: ScriptedServer) -> None:
    """``abort_response`` relies on aiohttp's ``StreamReader.set_exception``: a read waiting for
    bytes that will not come raises the given error at once."""
    done = asyncio.Event()

    async def stall(request: web.Request, body: bytes) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        await response.write(b"first")
        await done.wait()
        return response

    scripted_server.default = stall
    async with aiohttp.ClientSession() as session:
        response = await session.post(scripted_server.url + "/x", data=b"abc")
        assert await response.content.readany() == b"first"
        pending = asyncio.create_task(response.content.readany())
        await asyncio.sleep(0.01)
        abort_response(response, ClientClosedError("pinned"))
        with pytest.raises(ClientClosedError, match="pinned"):
            await asyncio.wait_for(pending, 2)
        assert response.closed
    done.set()


@pytest.mark.parametrize(
    "kwargs", [{"max_attempts": "3"}, {"base_delay": "0.1"}, {"quota_capacity": 1.5}]
)
def test_retry_policy_arguments_of_the_wrong_type(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ParamValidationError) as caught:
        RetryPolicy(**kwargs)
    assert caught.value.field == next(iter(kwargs))


def test_a_connection_error_naming_proxy_credentials_is_not_chained() -> None:
    from yarl import URL

    from sagemaker_rt_aio._transport import TransportCause, translate_error

    class Key:  # what aiohttp's ConnectionKey holds
        host = "runtime.example"
        port = 443
        ssl = True
        proxy = URL("http://user:proxy-password@127.0.0.1:3128")
        proxy_auth = None

    error = translate_error(aiohttp.ClientConnectorError(Key(), OSError(111, "refused")))  # type: ignore[arg-type]
    assert isinstance(error, EndpointConnectionError)
    assert isinstance(error.__cause__, TransportCause)
    assert_no_secret(error, "proxy-password")
