"""The read watchdog that keeps ``sock_read`` for calls that are not streams: unit tests with an
injected clock, and end to end against loopback servers that stall or trickle."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from conftest import ScriptedServer

from sagemaker_rt_aio import ReadTimeoutError, SageMakerRuntimeClient
from sagemaker_rt_aio._constants import SIGN_AGAIN_AFTER
from sagemaker_rt_aio._watchdog import _SENDING, ReadWatchdog, Watch


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Reader:
    def __init__(self) -> None:
        self.total_bytes = 0


async def _watched(watchdog: ReadWatchdog, idle: float, started: asyncio.Event) -> str:
    watch = watchdog.watch(idle)
    started.set()
    try:
        await asyncio.get_running_loop().create_future()  # waits until cancelled
    except asyncio.CancelledError:
        return "expired" if watch.expired else "cancelled"
    finally:
        watchdog.unwatch(watch)
    return "unreachable"


async def test_a_call_without_progress_is_cancelled_after_the_idle_limit() -> None:
    clock = Clock()
    watchdog = ReadWatchdog(clock=clock)
    started = asyncio.Event()
    task = asyncio.ensure_future(_watched(watchdog, 70.0, started))
    await started.wait()
    tick = 70.0 / 16
    clock.now += 70.0 - 0.05
    watchdog.check()
    await asyncio.sleep(0)
    assert not task.done()
    clock.now += 0.05
    watchdog.check()
    await asyncio.sleep(0)
    assert not task.done()  # past the limit: suspect, and ended only if still so a tick later
    clock.now += tick
    watchdog.check()
    assert await task == "expired"
    assert len(watchdog) == 0


class Transport:
    def __init__(self) -> None:
        self.buffered = 0

    def get_write_buffer_size(self) -> int:
        return self.buffered


async def test_idle_time_counts_only_once_the_request_is_written() -> None:
    clock = Clock()
    watchdog = ReadWatchdog(clock=clock)
    expired: list[object] = []
    watch = watchdog.watch(70.0, sending=True)
    for _ in range(10):  # 600 s connecting: sock_connect's business, not sock_read's
        clock.now += 60.0
        watchdog.check()
    transport = Transport()
    transport.buffered = 5_000_000
    watchdog.connected(transport, expired.append, "protocol")
    for _ in range(10):  # 600 s writing a large body to a slow server
        clock.now += 60.0
        transport.buffered -= 100
        watchdog.check()
    assert not expired and not watch.expired
    transport.buffered = 0  # written: from the next tick on, waiting for the answer is idleness
    clock.now += 1.0
    watchdog.check()
    clock.now += 70.0 - 0.05
    watchdog.check()
    assert not expired
    clock.now += 0.05
    watchdog.check()
    assert not expired  # suspect
    clock.now += 70.0 / 16
    watchdog.check()
    assert expired == ["protocol"] and watch.expired  # ended through the connection's protocol
    assert len(watchdog) == 0


async def test_only_the_task_that_sends_is_told_its_connection() -> None:
    watchdog = ReadWatchdog(clock=Clock())
    transport = Transport()
    watchdog.connected(transport, print, None)  # a task with no watch (a stream, S3): nothing
    go = asyncio.Event()

    async def other() -> None:  # another task, started before the call
        await go.wait()
        watchdog.connected(transport, print, None)

    elsewhere = asyncio.ensure_future(other())
    watch = watchdog.watch(70.0, sending=True)
    go.set()
    await elsewhere
    assert watch.transport is not transport
    ReadWatchdog(clock=Clock()).connected(transport, print, None)  # another client's connector
    assert watch.transport is not transport
    watchdog.connected(transport, print, "mine")
    assert watch.transport is transport and watch.subject == "mine"
    again = Transport()  # aiohttp sent an idempotent request again on a new connection
    watchdog.connected(again, print, "new")
    assert watch.transport is again and watch.subject == "new"
    watchdog.unwatch(watch)
    assert len(watchdog) == 0 and ended(_SENDING.get())
    watchdog.connected(Transport(), print, "late")  # after the call: nothing to tell
    assert ended(watch)
    never = watchdog.watch(70.0, sending=True)  # failed before connecting: forgotten as well
    watchdog.unwatch(never)
    assert ended(_SENDING.get())
    # A task started later inherits the ended watch, and its connections are not taken for it.
    async def later() -> None:
        watchdog.connected(Transport(), print, "later")

    await asyncio.ensure_future(later())
    assert ended(never)


async def test_a_call_waiting_long_for_its_connection_is_found_late() -> None:
    """A call that waits for its connection in the pool, signed (its watch holds its request),
    is marked ``late`` once a tick finds it has waited longer than SIGN_AGAIN_AFTER: the client's
    connector then signs it again before sending it. Its wait is not idleness."""
    clock = Clock()
    watchdog = ReadWatchdog(clock=clock)
    waiting: dict[str, Watch] = {}

    async def call(name: str, wire: object, connect: bool) -> None:
        watch = waiting[name] = watchdog.watch(70.0, sending=True)
        watch.wire = wire
        if connect:
            watchdog.connected(Transport(), print, name)

    for name, wire, connect in [("pooled", object(), False), ("no request", None, False)]:
        await asyncio.ensure_future(call(name, wire, connect))
    await asyncio.ensure_future(call("connected", object(), True))
    watchdog.check()  # finds them waiting
    clock.now += SIGN_AGAIN_AFTER
    watchdog.check()
    assert not any(watch.late for watch in waiting.values())  # not longer than it yet
    clock.now += 1.0
    watchdog.check()
    assert {name for name, watch in waiting.items() if watch.late} == {"pooled"}
    assert not any(watch.expired or watch.suspect for watch in waiting.values())
    for watch in waiting.values():
        watchdog.unwatch(watch)
        assert watch.wire is None  # an ended call's watch keeps nothing alive
    assert len(watchdog) == 0


def ended(watch: Watch | None) -> bool:
    """An ended call's watch, left in its task's context: it keeps nothing alive."""
    return watch is None or (
        watch.transport is None
        and watch.subject is None
        and watch.on_expire is None
        and watch.reader is None
    )


async def test_progress_resets_the_idle_limit() -> None:
    clock = Clock()
    watchdog = ReadWatchdog(clock=clock)
    started = asyncio.Event()
    task = asyncio.ensure_future(_watched(watchdog, 70.0, started))
    await started.wait()
    (watch,) = watchdog._watches
    reader = Reader()
    watch.reader = reader  # headers in: that is progress
    for _ in range(10):  # 600 s in all, never 70 s without a byte
        clock.now += 60.0
        reader.total_bytes += 1
        watchdog.check()
    clock.now += 69.0
    watchdog.check()
    await asyncio.sleep(0)
    assert not task.done()
    clock.now += 1.0
    watchdog.check()
    await asyncio.sleep(0)
    assert not task.done()  # suspect
    clock.now += 70.0 / 16
    watchdog.check()
    assert await task == "expired"


async def test_timer_runs_only_while_calls_are_watched() -> None:
    clock = Clock()
    watchdog = ReadWatchdog(clock=clock)
    first = watchdog.watch(70.0)
    second = watchdog.watch(0.8)
    assert watchdog._handle is not None and watchdog._tick == pytest.approx(0.8 / 16)
    watchdog.unwatch(first)
    watchdog.unwatch(second)
    assert watchdog._handle is not None  # calls come and go without timer work...
    watchdog.check(asyncio.get_running_loop())
    assert watchdog._handle is None and len(watchdog) == 0  # ...and an idle tick stops it
    watchdog.watch(1.0)
    assert watchdog._handle is not None
    watchdog.close()
    assert watchdog._handle is None


def _client(
    url: str, sock_read: float, http_session: aiohttp.ClientSession | None = None
) -> SageMakerRuntimeClient:
    return SageMakerRuntimeClient(
        "us-east-1",
        endpoint_url=url,
        allow_http=True,
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="secret",
        timeout=aiohttp.ClientTimeout(sock_read=sock_read),
        http_session=http_session,
    )


@contextlib.asynccontextmanager
async def _client_on(url: str, own_session: bool) -> AsyncIterator[SageMakerRuntimeClient]:
    """A client with sock_read 0.2 s on its own session, or on the caller's (aiohttp's timer)."""
    timeout = aiohttp.ClientTimeout(sock_read=0.2)
    session = None if own_session else aiohttp.ClientSession(timeout=timeout)
    try:
        async with _client(url, 0.2, session) as client:
            yield client
    finally:
        if session is not None:
            await session.close()


async def test_a_body_trickling_faster_than_sock_read_is_read_to_its_end(
    scripted_server: ScriptedServer,
) -> None:
    async def trickle(request: web.Request, body: bytes) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        for _ in range(8):  # 8 x 0.05 s: twice the 0.2 s limit in all, never 0.2 s idle
            await response.write(b"x")
            await asyncio.sleep(0.05)
        await response.write_eof()
        return response

    scripted_server.script = [trickle]
    async with _client(scripted_server.url, 0.2) as client:
        result = await client.invoke_endpoint(endpoint_name="ep", body=b"{}")
        assert result.body == b"x" * 8
        assert len(client._pipeline._watchdog) == 0


async def test_a_body_that_stalls_raises_read_timeout_and_frees_the_connection(
    scripted_server: ScriptedServer,
) -> None:
    release = asyncio.Event()

    async def stall(request: web.Request, body: bytes) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Length": "10"})
        await response.prepare(request)
        await response.write(b"12345")
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(release.wait(), 5)
        return response

    async def fine(request: web.Request, body: bytes) -> web.StreamResponse:
        return web.Response(body=b"fine")

    scripted_server.script = [stall, fine]
    async with _client(scripted_server.url, 0.2) as client:
        with pytest.raises(ReadTimeoutError) as caught:
            await client.invoke_endpoint(endpoint_name="ep", body=b"{}")
        assert isinstance(caught.value.__cause__, aiohttp.ServerTimeoutError)
        release.set()
        assert (await client.invoke_endpoint(endpoint_name="ep", body=b"{}")).body == b"fine"
        assert len(client._pipeline._watchdog) == 0


async def test_the_callers_cancellation_stays_a_cancellation(
    scripted_server: ScriptedServer,
) -> None:
    arrived = asyncio.Event()
    release = asyncio.Event()

    async def slow(request: web.Request, body: bytes) -> web.StreamResponse:
        arrived.set()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(release.wait(), 5)
        return web.Response(body=b"late")

    scripted_server.script = [slow]
    async with _client(scripted_server.url, 30.0) as client:
        task = asyncio.ensure_future(client.invoke_endpoint(endpoint_name="ep", body=b"{}"))
        await arrived.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        release.set()
        assert len(client._pipeline._watchdog) == 0


def _stream_part(data: bytes) -> bytes:
    from sagemaker_rt_aio._stream_events import encode_payload_part

    return encode_payload_part(data)


async def test_bytes_waiting_for_a_slow_reader_are_not_idleness(
    scripted_server: ScriptedServer,
) -> None:
    release = asyncio.Event()

    async def then_hold(request: web.Request, body: bytes) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/vnd.amazon.eventstream"})
        await response.prepare(request)
        await response.write(_stream_part(b"p0"))
        await asyncio.sleep(0.05)
        await response.write(_stream_part(b"p1") + _stream_part(b"p2"))  # read much later
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(release.wait(), 5)
        await response.write_eof()
        return response

    scripted_server.script = [then_hold]
    async with _client(scripted_server.url, 0.3) as client:
        watchdog = client._pipeline._watchdog
        async with client.invoke_endpoint_with_response_stream(
            endpoint_name="ep", body=b"{}"
        ) as stream:
            assert len(watchdog) == 1  # the stream took over its call's watch
            parts = stream.__aiter__()
            got = [(await parts.__anext__()).bytes]
            # The server goes quiet for longer than sock_read, but p1 and p2 wait unread in the
            # buffer all that time: the reader is the one late, and the stream is not ended.
            await asyncio.sleep(0.8)
            got.append((await parts.__anext__()).bytes)
            got.append((await parts.__anext__()).bytes)
            release.set()
            got.extend([part.bytes async for part in parts])
        assert got == [b"p0", b"p1", b"p2"]
        assert len(watchdog) == 0


async def test_a_stream_left_early_is_unwatched(scripted_server: ScriptedServer) -> None:
    async def endless(request: web.Request, body: bytes) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/vnd.amazon.eventstream"})
        await response.prepare(request)
        with contextlib.suppress(ConnectionError):
            for i in range(200):
                await response.write(_stream_part(b"x%d" % i))
                await asyncio.sleep(0.01)
        return response

    scripted_server.script = [endless]
    async with _client(scripted_server.url, 5.0) as client:
        async with client.invoke_endpoint_with_response_stream(
            endpoint_name="ep", body=b"{}"
        ) as stream:
            async for _part in stream:
                break
        assert len(client._pipeline._watchdog) == 0


@pytest.mark.parametrize("own_session", [True, False], ids=["client-session", "users-session"])
async def test_an_answer_that_never_starts_raises_read_timeout(
    scripted_server: ScriptedServer, own_session: bool
) -> None:
    release = asyncio.Event()

    async def silent(request: web.Request, body: bytes) -> web.StreamResponse:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(release.wait(), 5)
        return web.Response(body=b"late")

    async def fine(request: web.Request, body: bytes) -> web.StreamResponse:
        return web.Response(body=b"fine")

    scripted_server.script = [silent, fine]
    async with _client_on(scripted_server.url, own_session) as client:
        with pytest.raises(ReadTimeoutError) as caught:
            await client.invoke_endpoint(endpoint_name="ep", body=b"{}")
        # The same error as aiohttp's own timer (which a session of the caller's keeps), and
        # not retried (the model may have run): the second answer is left for the next call.
        assert isinstance(caught.value.__cause__, aiohttp.ServerTimeoutError)
        release.set()
        assert (await client.invoke_endpoint(endpoint_name="ep", body=b"{}")).body == b"fine"
        watchdog = client._pipeline._watchdog
        assert len(watchdog) == 0 and ended(_SENDING.get())


@pytest.mark.parametrize("own_session", [True, False], ids=["client-session", "users-session"])
async def test_a_stream_that_never_starts_raises_read_timeout(
    scripted_server: ScriptedServer, own_session: bool
) -> None:
    """With the client's session a stream is watched from its request on, as a call is (aiohttp's
    timer is never armed for it); with the caller's, aiohttp's timer keeps sock_read until the
    headers. Either way, the same error."""
    release = asyncio.Event()

    async def silent(request: web.Request, body: bytes) -> web.StreamResponse:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(release.wait(), 5)
        return web.Response(body=b"late")

    async def fine(request: web.Request, body: bytes) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/vnd.amazon.eventstream"})
        await response.prepare(request)
        await response.write(_stream_part(b"p0"))
        await asyncio.sleep(0.05)
        await response.write(_stream_part(b"p1"))
        await response.write_eof()
        return response

    scripted_server.script = [silent, fine]
    async with _client_on(scripted_server.url, own_session) as client:
        with pytest.raises(ReadTimeoutError) as caught:
            async with client.invoke_endpoint_with_response_stream(
                endpoint_name="ep", body=b"{}"
            ):
                pytest.fail("the block must not be entered")
        assert isinstance(caught.value.__cause__, aiohttp.ServerTimeoutError)
        release.set()
        watchdog = client._pipeline._watchdog
        async with client.invoke_endpoint_with_response_stream(
            endpoint_name="ep", body=b"{}"
        ) as stream:
            # Watched from its headers on either way; no longer the watch of a request being
            # sent, which a later connection of this task would take over.
            assert len(watchdog) == 1 and _SENDING.get() is None
            got = [part.bytes async for part in stream]
        assert got == [b"p0", b"p1"]
        assert len(watchdog) == 0 and _SENDING.get() is None


async def test_a_route_stream_that_stalls_raises_read_timeout_and_every_one_is_unwatched(
    scripted_server: ScriptedServer,
) -> None:
    """The OpenAI route's streams too: a stall after the first bytes ends the stream (its read
    timer was stopped when it started), and each stream leaves the watchdog when it ends."""
    release = asyncio.Event()

    def chunk(text: str) -> bytes:
        return b'data: {"choices": [{"delta": {"content": "%s"}}]}\n\n' % text.encode()

    async def stalls(request: web.Request, body: bytes) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(chunk("a"))
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(release.wait(), 5)
        return response

    async def fine(request: web.Request, body: bytes) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(chunk("b"))
        await asyncio.sleep(0.05)
        await response.write(chunk("c"))
        await response.write_eof()
        return response

    scripted_server.script = [stalls, fine]
    async with _client(scripted_server.url, 0.3) as client:
        watchdog = client._pipeline._watchdog
        received: list[str] = []
        with pytest.raises(ReadTimeoutError):
            async with client.chat_completions_stream(endpoint_name="ep", body={}) as stream:
                async for text in stream.iter_text():
                    received.append(text)
        assert received == ["a"]
        release.set()
        assert len(watchdog) == 0
        async with client.chat_completions_stream(endpoint_name="ep", body={}) as stream:
            assert len(watchdog) == 1
            assert [text async for text in stream.iter_text()] == ["b", "c"]
        assert len(watchdog) == 0
