"""Fault injection: hostile loopback servers, written at the socket level, against the client.

For each fault, through ``invoke_endpoint`` and a response stream read to its end, with and
without a total timeout or a middleware, with a second call queued for the slot the first holds,
and through the OpenAI route's ``chat_completions`` (``CALLS``): the typed error, no request sent
twice when the model may have run (retries are on, so a wrong retry decision would show as a
second request), no slot lost (a queued call would wait for it until the test's bound), nothing
left open (tasks, connections), and no secret reachable from the exception. The huge and
endless bodies and headers also bound the process's memory (resident set, from
/proc/self/statm): endless header lines are refused by aiohttp from 3.13.4 on (before, they
filled memory until the read timeout ended the call: 15 MiB in the 0.6 s these tests allow,
gigabytes in the default 70 s), hence the ``aiohttp>=3.13.5`` in pyproject.toml.

Two servers send bytes that never become the answer, for ever (a chunk's extension) or a byte at
a time, each sooner than ``sock_read`` (a header line): aiohttp's own timer, re-armed on every
read, would let them run until the total timeout (a ``DeadlineExceededError``). The client's read
watchdog counts only body bytes as progress, and nothing before the headers are complete, so it
ends them after ``sock_read``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from sagemaker_rt_aio import (
    ConnectionClosedError,
    EventStreamError,
    Middleware,
    ReadTimeoutError,
    ResponseTooLargeError,
    RetryPolicy,
    SageMakerRuntimeClient,
    SageMakerRuntimeError,
    TransportError,
)
from sagemaker_rt_aio.middleware import LoggingMiddleware
from tests.test_core import assert_no_secret

TOKEN = "HOSTILE-SESSION-TOKEN"
SECRET = "hostile-secret-access-key"
Behaviour = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def client_tasks() -> set[asyncio.Task[Any]]:
    """Running tasks, the hostile server's own handlers aside."""
    return {t for t in asyncio.all_tasks() if "Hostile._handle" not in repr(t.get_coro())}


def open_sockets() -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # an fd closed meanwhile
            count += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
    return count


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class Hostile:
    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.requests = 0
        self.url = ""
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            await self.behaviour(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def stop(self) -> None:
        assert self._server is not None
        for writer in self._writers:  # a handler still trickling holds its socket
            writer.transport.abort()
        self._server.close()
        await self._server.wait_closed()


async def read_request(server: Hostile, reader: asyncio.StreamReader) -> None:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    await reader.readexactly(length)
    server.requests += 1


def behaviours() -> dict[str, tuple[Callable[[Hostile], Behaviour], type[BaseException]]]:
    def reset_before_reading(server: Hostile) -> Behaviour:
        async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            server.requests += 1  # headers arrived: the request may be processed
            writer.transport.abort()

        return run

    def reset_after_reading(server: Hostile) -> Behaviour:
        async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await read_request(server, reader)
            writer.transport.abort()

        return run

    def reset_mid_headers(server: Hostile) -> Behaviour:
        async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await read_request(server, reader)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Ty")
            await writer.drain()
            writer.transport.abort()

        return run

    def reset_mid_body(server: Hostile) -> Behaviour:
        async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await read_request(server, reader)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhalf")
            await writer.drain()
            writer.transport.abort()

        return run

    def garbage_status(server: Hostile) -> Behaviour:
        async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await read_request(server, reader)
            writer.write(b"SMTP READY\r\n\r\n")
            await writer.drain()

        return run

    def trickling_headers(server: Hostile) -> Behaviour:
        async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await read_request(server, reader)
            for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 1000:
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(0.5)  # past sock_read (0.3 s)

        return run

    def trickling_body(server: Hostile) -> Behaviour:
        async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await read_request(server, reader)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
            for _ in range(1000):
                writer.write(b"a")
                await writer.drain()
                await asyncio.sleep(0.5)  # past sock_read (0.3 s)

        return run

    def flooding(head: bytes, chunk: bytes) -> Callable[[Hostile], Behaviour]:
        """A response that starts with ``head`` and then sends ``chunk`` for ever."""

        def make(server: Hostile) -> Behaviour:
            async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                await read_request(server, reader)
                writer.write(head)
                while True:
                    writer.write(chunk)
                    await writer.drain()

            return run

        return make

    huge_body = flooding(b"HTTP/1.1 200 OK\r\nContent-Length: 2000000000\r\n\r\n", b"h" * 65536)
    chunk = b"10000\r\n" + b"e" * 65536 + b"\r\n"  # one 64 KiB chunk of a chunked body
    endless_chunked = flooding(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", chunk)
    # A retryable status whose error body never ends: read as far as the bound, never retried.
    error_endless_body = flooding(
        b"HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n", chunk
    )
    # Header lines for ever, each one short; one header's value for ever.
    endless_headers = flooding(
        b"HTTP/1.1 200 OK\r\n",
        b"".join(b"X-Header-%d: %s\r\n" % (i, b"v" * 100) for i in range(512)),
    )
    endless_header_value = flooding(b"HTTP/1.1 200 OK\r\nX-Huge: ", b"v" * 65536)
    # Bytes for ever that are never body (one chunk's extension): see the module's docstring.
    endless_chunk_extension = flooding(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;ext=", b"x" * 65536
    )

    def trickling_headers_quickly(server: Hostile) -> Behaviour:
        """A header line a byte at a time, each sooner than sock_read, for ever."""

        async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await read_request(server, reader)
            writer.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
            while True:
                writer.write(b"a")
                await writer.drain()
                await asyncio.sleep(0.05)  # within sock_read (0.3 s)

        return run

    return {
        "endless-headers": (endless_headers, TransportError),
        "endless-header-value": (endless_header_value, TransportError),
        "reset-before-reading": (reset_before_reading, ConnectionClosedError),
        "reset-after-reading": (reset_after_reading, ConnectionClosedError),
        "reset-mid-headers": (reset_mid_headers, ConnectionClosedError),
        "reset-mid-body": (reset_mid_body, ConnectionClosedError),
        "garbage-status-line": (garbage_status, TransportError),
        "trickling-headers": (trickling_headers, ReadTimeoutError),
        "trickling-body": (trickling_body, ReadTimeoutError),
        "huge-body": (huge_body, ResponseTooLargeError),
        "endless-chunked": (endless_chunked, ResponseTooLargeError),
        "error-with-endless-body": (error_endless_body, ResponseTooLargeError),
        "endless-chunk-extension": (endless_chunk_extension, ReadTimeoutError),
        "trickling-headers-quickly": (trickling_headers_quickly, ReadTimeoutError),
    }


BEHAVIOURS = behaviours()
TOTAL = 10.0  # the clients' total timeout, where they have one; a hang's bound where they do not


@pytest.fixture
async def client_factory() -> AsyncIterator[Callable[..., SageMakerRuntimeClient]]:
    made: list[SageMakerRuntimeClient] = []

    def make(url: str, total: float | None = TOTAL, **kwargs: Any) -> SageMakerRuntimeClient:
        client = SageMakerRuntimeClient(
            "us-east-1",
            endpoint_url=url,
            aws_access_key_id="AKIDHOSTILE",
            aws_secret_access_key=SECRET,
            aws_session_token=TOKEN,
            retry_policy=RetryPolicy(max_attempts=3, base_delay=0.001, max_delay=0.002),
            timeout=aiohttp.ClientTimeout(total=total, sock_read=0.3),
            **kwargs,
        )
        made.append(client)
        return client

    yield make
    for client in made:
        await client.shutdown()


# Where a response stream ends otherwise than invoke_endpoint: a flood of bytes that are not an
# event stream is refused at its first prelude (a stream's length has no bound of its own: its
# reader takes the parts as they come).
STREAM_ERRORS: dict[str, type[BaseException]] = {
    "huge-body": EventStreamError,
    "endless-chunked": EventStreamError,
}
MAX_PARTS = 1000  # no hostile server here sends a part: a bound on the loop, not an expectation


async def invoke(client: SageMakerRuntimeClient) -> None:
    await client.invoke_endpoint(endpoint_name="ep", body=b"{}")


async def read_stream(client: SageMakerRuntimeClient) -> None:
    parts = 0
    async with client.invoke_endpoint_with_response_stream(
        endpoint_name="ep", body=b"{}"
    ) as stream:
        async for _ in stream:
            parts += 1
            assert parts < MAX_PARTS


async def chat(client: SageMakerRuntimeClient) -> None:
    await client.chat_completions(endpoint_name="ep", body={"messages": []})


Run = Callable[[SageMakerRuntimeClient], Awaitable[None]]


def queued(run: Run) -> Run:
    """Two of ``run`` at once on a client with one slot: the second waits for it until the first
    has failed (a stream's slot comes back with its connection), then meets the same server. On
    the flat path it waits in the pool, signed and built, on a slot taken on credit."""

    async def both(client: SageMakerRuntimeClient) -> None:
        first, second = await asyncio.gather(run(client), run(client), return_exceptions=True)
        assert isinstance(first, SageMakerRuntimeError), repr(first)
        assert type(second) is type(first), repr(second)
        assert_no_secret(first, TOKEN, SECRET, "Signature=", "Bearer ")
        assert client._pipeline._slots.free == 1  # both slots given back (the credit repaid)
        raise second

    return both


# Each way through the client, with its client's total timeout (none by default) and
# middlewares. They take different paths through the pipeline: a call, and a stream without a
# total, its flat path; a stream whose total bounds its start another; with a middleware (the
# package's own, logging every attempt), each attempt goes through the chain; the OpenAI route
# (bearer token) has a target of its own. Queued: a second call waits for the slot the first
# holds, on the flat path in the pool (on credit: signed and built) and in the chain in the slots
# (before the middlewares).
LOGGING = (LoggingMiddleware(level=logging.WARNING),)  # enabled: pytest captures its lines
CALLS: dict[str, tuple[Run, float | None, tuple[Middleware, ...]]] = {
    "invoke_endpoint": (invoke, None, ()),
    "invoke_endpoint-with-total": (invoke, TOTAL, ()),
    "invoke_endpoint-with-middleware": (invoke, None, LOGGING),
    "invoke_endpoint-queued": (queued(invoke), None, ()),
    "invoke_endpoint-queued-with-middleware": (queued(invoke), None, LOGGING),
    "stream": (read_stream, None, ()),
    "stream-with-total": (read_stream, TOTAL, ()),
    "stream-with-middleware": (read_stream, None, LOGGING),
    "stream-queued": (queued(read_stream), None, ()),
    "chat_completions": (chat, None, ()),
}


@pytest.mark.parametrize("call", sorted(CALLS))
@pytest.mark.parametrize("name", sorted(BEHAVIOURS))
async def test_hostile_server(
    name: str, call: str, client_factory: Callable[..., SageMakerRuntimeClient]
) -> None:
    make_behaviour, expected = BEHAVIOURS[name]
    run, total, middlewares = CALLS[call]
    if call.startswith("stream"):
        expected = STREAM_ERRORS.get(name, expected)
    calls = 2 if "queued" in call else 1
    fds_before = open_sockets()
    server = Hostile(lambda r, w: make_behaviour(server)(r, w))
    await server.start()
    tasks_before = client_tasks()
    rss_before = rss_bytes()
    try:
        client = client_factory(server.url, total, middlewares=middlewares, max_connections=1)
        with pytest.raises(SageMakerRuntimeError) as caught:
            # Without a total, a call the client failed to end would hang: an asyncio
            # TimeoutError here, not one of ours (a total's end is DeadlineExceededError).
            await asyncio.wait_for(run(client), TOTAL)
        assert isinstance(caught.value, expected), repr(caught.value)
        # The model may have run every time: never sent twice.
        assert server.requests == calls
        assert_no_secret(caught.value, TOKEN, SECRET, "Signature=", "Bearer ")
        # Bounded memory: the client read at most its bound (6 MiB and change), not the flood.
        assert rss_bytes() - rss_before < 64 * 1024 * 1024
        # Nothing left open: no task left behind once the client is shut down.
        await client.shutdown()
        await asyncio.sleep(0)
        assert client_tasks() <= tasks_before
    finally:
        await server.stop()
    await asyncio.sleep(0)
    assert open_sockets() <= fds_before  # no socket left open, the client's or the server's
