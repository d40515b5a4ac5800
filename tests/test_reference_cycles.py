"""A finished call leaves no reference cycle behind: its task, frames, request and response are
freed when the last reference to them goes, not when the garbage collector next comes round.

A web service makes each call from a task of its own (one per request it serves). A cycle through
that task keeps it, its result or exception, the traceback's frames and everything they hold (the
request's body, the response's) until a collection; under load, that is memory nobody asked for
and collections that grow with it. Each scenario runs with the collector off, makes its call in a
task of its own, drops the task, and then asserts that the task is gone and that a collection
finds nothing of ours: no task, no frame, no object of this package. Two cycles are aiohttp's and
asyncio's, and are allowed for what they are (see ``assert_none_of_ours`` and the refused
connection's scenario); the task is in neither.
"""

from __future__ import annotations

import asyncio
import gc
import socket
import types
import weakref
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import aiohttp
import botocore.credentials
import pytest
from aiohttp import web
from conftest import HungProvider, ScriptedServer, json_error

from sagemaker_rt_aio import (
    ClientClosedError,
    ConnectionClosedError,
    CredentialsError,
    CredentialsTimeoutError,
    EventStreamError,
    ModelError,
    ModelStreamError,
    ReadTimeoutError,
    ResponseTooLargeError,
    RetryPolicy,
    SageMakerRuntimeClient,
    SageMakerRuntimeError,
    ServiceUnavailable,
    ValidationError,
)
from sagemaker_rt_aio._stream_events import encode_exception, encode_payload_part

pytestmark = pytest.mark.timeout(60)

KEYS = {"aws_access_key_id": "AKIDEXAMPLE", "aws_secret_access_key": "secret"}
EVENTSTREAM = "application/vnd.amazon.eventstream"
TOKEN = encode_payload_part(b'data: {"token": {"text": "x"}}\n\n')
FAST = RetryPolicy(max_attempts=2, base_delay=0.001, max_delay=0.001, throttle_base_delay=0.001)
CALLS = 3  # per scenario, each in a task of its own


async def answer(request: web.Request, body: bytes) -> web.StreamResponse:
    return web.Response(body=b'{"ok": 1}', content_type="application/json")


def stream_of(*chunks: bytes) -> Callable[[web.Request, bytes], Awaitable[web.StreamResponse]]:
    async def handler(request: web.Request, body: bytes) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": EVENTSTREAM})
        await response.prepare(request)
        for chunk in chunks:
            await response.write(chunk)
        await response.write_eof()
        return response

    return handler


async def drop_midway(request: web.Request, body: bytes) -> web.StreamResponse:
    """A stream whose connection drops after its first part."""
    response = web.StreamResponse(headers={"Content-Type": EVENTSTREAM})
    await response.prepare(request)
    await response.write(TOKEN)
    await asyncio.sleep(0.01)  # the part goes out on its own
    assert request.transport is not None
    request.transport.close()
    return response


async def stall(request: web.Request, body: bytes) -> web.StreamResponse:
    await asyncio.sleep(30)  # cancelled at the server's teardown
    raise AssertionError("unreachable")


@pytest.fixture
def refused_url() -> Iterator[str]:
    """A loopback address bound for the test but never listening: connections to it are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


async def invoke(client: SageMakerRuntimeClient) -> object:
    return await client.invoke_endpoint(endpoint_name="e", body=b"{}")


def read_stream(
    *, leave_early: bool = False, text: bool = False
) -> Callable[[Any], Awaitable[Any]]:
    async def read(client: SageMakerRuntimeClient) -> object:
        async with client.invoke_endpoint_with_response_stream(endpoint_name="e", body=b"{}") as s:
            if text:
                return "".join([piece async for piece in s.iter_text()])
            parts = []
            async for part in s:
                parts.append(part)
                if leave_early:
                    break
            return parts

    return read


async def chat(client: SageMakerRuntimeClient) -> object:
    return await client.chat_completions(endpoint_name="e", body={"messages": []})


async def chat_stream(client: SageMakerRuntimeClient) -> object:
    async with client.chat_completions_stream(endpoint_name="e", body={"messages": []}) as s:
        return [part async for part in s]


async def pass_through(request: Any, call_next: Any) -> Any:
    return await call_next(request)


# (server handler or None for a refused connection, call, error it ends with, client options)
Scenario = tuple[Any, Callable[[Any], Awaitable[Any]], type[BaseException] | None, dict[str, Any]]
SCENARIOS: dict[str, Scenario] = {
    "a call answered": (answer, invoke, None, {}),
    "a model error": (json_error(424, "ModelError", "boom"), invoke, ModelError, {}),
    "retries exhausted": (
        json_error(503, "ServiceUnavailable", "busy"),
        invoke,
        ServiceUnavailable,
        {"retry_policy": FAST},
    ),
    "a refused connection": (None, invoke, SageMakerRuntimeError, {"retry_policy": FAST}),
    "a read timeout": (
        stall,
        invoke,
        ReadTimeoutError,
        {
            "timeout": aiohttp.ClientTimeout(sock_read=0.05),
            "retry_policy": RetryPolicy(max_attempts=1),
        },
    ),
    "an answer over max_response_bytes": (
        answer,
        invoke,
        ResponseTooLargeError,
        {"max_response_bytes": 4},
    ),
    "a call through a middleware": (answer, invoke, None, {"middlewares": [pass_through]}),
    "a model error through a middleware": (
        json_error(424, "ModelError", "boom"),
        invoke,
        ModelError,
        {"middlewares": [pass_through]},
    ),
    "a chat completion": (answer, chat, None, {}),
    "a chat completion refused": (
        json_error(400, "ValidationError", "no"),
        chat,
        ValidationError,
        {},
    ),
    "a chat stream read whole": (
        stream_of(b"data: {}\n\n", b"data: [DONE]\n\n"),
        chat_stream,
        None,
        {},
    ),
    "a stream read whole": (stream_of(TOKEN, TOKEN, TOKEN), read_stream(), None, {}),
    "a stream left early": (
        stream_of(TOKEN, TOKEN, TOKEN),
        read_stream(leave_early=True),
        None,
        {},
    ),
    "a stream's text": (stream_of(TOKEN, TOKEN), read_stream(text=True), None, {}),
    "a stream's error event": (
        stream_of(TOKEN, encode_exception("ModelStreamError", "broken", error_code="X")),
        read_stream(),
        ModelStreamError,
        {},
    ),
    "a stream's connection dropped": (drop_midway, read_stream(), ConnectionClosedError, {}),
    "a stream cut inside a message": (stream_of(TOKEN[:-3]), read_stream(), EventStreamError, {}),
}


def is_ours(thing: object, only_tasks: bool) -> bool:
    """A task, a frame of this package's code, or an object of a class of this package's."""
    if isinstance(thing, asyncio.Task):
        return True
    if only_tasks:
        return False
    if isinstance(thing, types.FrameType):
        return "sagemaker_rt_aio" in thing.f_code.co_filename
    return type(thing).__module__.startswith("sagemaker_rt_aio")


def describe(thing: object) -> str:
    if isinstance(thing, types.FrameType):
        return f"frame of {thing.f_code.co_name}"
    return type(thing).__qualname__


@pytest.fixture
def collector_off() -> Iterator[None]:
    # Everything tracked so far, an earlier test's garbage included, is set aside (frozen), so
    # that a collection in the test walks only what the test made: quick whatever the worker
    # has imported, and no earlier garbage to tell from this test's. What exists before the test
    # stays alive through it (the loop, the server), so setting it aside hides no cycle of ours.
    gc.disable()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_debug(0)
        gc.enable()


@pytest.mark.parametrize("caught", [True, False], ids=["caught in the task", "ending the task"])
@pytest.mark.parametrize("scenario", list(SCENARIOS))
async def test_a_finished_call_leaves_no_reference_cycle(
    scripted_server: ScriptedServer,
    refused_url: str,
    collector_off: None,
    scenario: str,
    caught: bool,
) -> None:
    handler, call, error, options = SCENARIOS[scenario]
    url = scripted_server.url
    if handler is None:
        url = refused_url
    else:
        scripted_server.default = handler
    async with SageMakerRuntimeClient(
        "us-east-1", endpoint_url=url, allow_http=True, **KEYS, **options
    ) as client:
        tasks = await calls_in_tasks_of_their_own(client, call, error, caught)
        # A refused connection leaves a cycle of asyncio's and aiohttp's (the OSError kept in a
        # frame's locals as its traceback passes through), which holds every frame above it,
        # ours too, and what they hold: there, only tasks are checked. (A read timeout takes the
        # same path through this package's code, without that cycle.)
        ours = await garbage_of_ours(only_tasks=handler is None)
    assert [ref() for ref in tasks] == [None] * CALLS
    assert_none_of_ours(ours, reader_cycle=scenario == "a stream's connection dropped")


async def calls_in_tasks_of_their_own(
    client: SageMakerRuntimeClient,
    call: Callable[[Any], Awaitable[Any]],
    error: type[BaseException] | None,
    caught: bool,
) -> list[weakref.ref[asyncio.Task[object]]]:
    """``CALLS`` calls, each in a task of its own, one after the other; references to the tasks,
    which are dropped (and with them, with ``caught``, the errors the calls ended in)."""

    async def one() -> object:
        if not caught:
            return await call(client)  # an error ends the task, which then holds it
        try:
            return await call(client)
        except SageMakerRuntimeError as exc:
            return type(exc)  # the caller's handler let go of the error

    tasks = []
    for _ in range(CALLS):
        task = asyncio.create_task(one())
        await asyncio.wait([task])
        if error is None:
            assert not isinstance(task.result(), (BaseException, type))  # the call's result
        elif caught:
            assert issubclass(task.result(), error)
        else:
            assert isinstance(task.exception(), error)
        tasks.append(weakref.ref(task))
        del task
    return tasks


@pytest.mark.parametrize("caught", [True, False], ids=["caught in the task", "ending the task"])
@pytest.mark.parametrize("fails", [False, True], ids=["hung", "failing"])
async def test_a_call_without_credentials_leaves_no_reference_cycle(
    scripted_server: ScriptedServer, collector_off: None, fails: bool, caught: bool
) -> None:
    """A credential provider that hangs past the call's deadline, or fails: nothing is sent."""
    provider = HungProvider(fails)
    expired = {"access_key": "AKIDOLD", "secret_key": "old", "token": "old"}
    credentials = botocore.credentials.RefreshableCredentials.create_from_metadata(
        {**expired, "expiry_time": "2000-01-01T00:00:00Z"}, provider, "test"
    )
    error = CredentialsError if fails else CredentialsTimeoutError
    try:
        async with SageMakerRuntimeClient(
            "us-east-1",
            endpoint_url=scripted_server.url,
            allow_http=True,
            credentials=credentials,
            timeout=aiohttp.ClientTimeout(total=0.05),
        ) as client:
            tasks = await calls_in_tasks_of_their_own(client, invoke, error, caught)
            ours = await garbage_of_ours()
    finally:
        provider.gate.set()  # the worker thread returns
    assert not scripted_server.received
    assert [ref() for ref in tasks] == [None] * CALLS
    assert ours == [], ", ".join(sorted(ours))


@pytest.mark.parametrize("ending", ["cancelled by its caller", "ended by shutdown"])
@pytest.mark.parametrize("kind", ["call", "stream"])
async def test_a_call_ended_midway_leaves_no_reference_cycle(
    scripted_server: ScriptedServer, collector_off: None, kind: str, ending: str
) -> None:
    waiting = asyncio.Event()  # the call is in flight: its request in, or its first part read

    async def hang(request: web.Request, body: bytes) -> web.StreamResponse:
        if kind == "call":
            waiting.set()
        else:
            response = web.StreamResponse(headers={"Content-Type": EVENTSTREAM})
            await response.prepare(request)
            await response.write(TOKEN)
        await asyncio.sleep(30)  # cancelled at the server's teardown
        raise AssertionError("unreachable")

    async def read_one_then_wait(client: SageMakerRuntimeClient) -> object:
        async with client.invoke_endpoint_with_response_stream(endpoint_name="e", body=b"{}") as s:
            async for _ in s:
                waiting.set()
        raise AssertionError("the stream never ends")

    scripted_server.default = hang
    call = invoke if kind == "call" else read_one_then_wait
    calls = CALLS if ending == "cancelled by its caller" else 1  # shutdown ends the client
    tasks = []
    async with SageMakerRuntimeClient(
        "us-east-1", endpoint_url=scripted_server.url, allow_http=True, **KEYS
    ) as client:
        for _ in range(calls):
            waiting.clear()
            task = asyncio.create_task(call(client))
            await asyncio.wait_for(waiting.wait(), 10)
            if ending == "cancelled by its caller":
                task.cancel()
                await asyncio.wait([task])
                assert task.cancelled()
            else:
                await client.shutdown(grace=0)
                await asyncio.wait([task])
                assert isinstance(task.exception(), ClientClosedError)
            tasks.append(weakref.ref(task))
            del task
    ours = await garbage_of_ours()
    assert [ref() for ref in tasks] == [None] * calls
    assert_none_of_ours(ours, reader_cycle=kind == "stream" and ending == "ended by shutdown")


def assert_none_of_ours(ours: list[str], *, reader_cycle: bool) -> None:
    """Nothing of ours in the garbage; with ``reader_cycle``, nothing but a stream's read.

    A stream whose body ends in an error (its connection dropped, or shutdown ending it through
    set_exception) ends in aiohttp's reader raising the error it keeps, from a frame of its own:
    error, traceback, frame, reader, error is aiohttp's cycle, and the traceback holds the frame
    of the stream's read too (where it was caught). Not the task, nor an error of ours but the
    one shutdown set.
    """
    if reader_cycle:
        ours = [name for name in ours if name not in STREAM_READ]
    assert ours == [], ", ".join(sorted(ours))


# A stream's read, as a frame of it holds it: the stream, its decoder, its watch, a part, and
# the error shutdown gave aiohttp's reader.
STREAM_READ = (
    "ClientClosedError",
    "EventStreamDecoder",
    "PayloadPart",
    "ResponseStream",
    "Watch",
    "frame of _read",
)


async def garbage_of_ours(only_tasks: bool = False) -> list[str]:
    """What a collection finds of ours (see ``is_ours``), the collector being off until then."""
    for _ in range(3):
        await asyncio.sleep(0)  # the loop lets go of the done callbacks it had scheduled
    gc.set_debug(gc.DEBUG_SAVEALL)
    gc.collect()
    ours = [describe(thing) for thing in gc.garbage if is_ours(thing, only_tasks)]
    gc.garbage.clear()
    gc.set_debug(0)
    return ours
