"""GOAWAY and REFUSED_STREAM, from a scripted HTTP/2 server written with h2 directly.

A stream the server refused, or excluded by GOAWAY, never reached a model: it is retried on a new
connection (if nothing was sent yet). A GOAWAY that includes a stream in progress ends it with a
transport error, even a graceful one: h2 closes the connection on any GOAWAY (the stream was
accepted, so it is not retried).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import h2.config
import h2.connection
import h2.errors
import h2.events
import pytest

from sagemaker_rt_aio import (
    BidirectionalPart,
    ConnectionClosedError,
    EndpointConnectionError,
    ReadTimeoutError,
    RetryPolicy,
    SageMakerRuntimeClient,
)
from sagemaker_rt_aio._bidi_events import encode_part


class Scripted:
    """Connection ``n`` follows ``script[n]`` (the last entry repeats)."""

    def __init__(self, script: list[str]) -> None:
        self.script = script
        self.connections = 0
        self.url = ""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        mode = self.script[min(self.connections, len(self.script) - 1)]
        self.connections += 1
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
        conn.initiate_connection()
        writer.write(conn.data_to_send())
        try:
            while data := await reader.read(65536):
                for event in conn.receive_data(data):
                    if isinstance(event, h2.events.RequestReceived):
                        sid = event.stream_id
                        if mode == "goaway-before":
                            conn.close_connection(last_stream_id=0)
                        elif mode == "refuse":
                            conn.reset_stream(sid, h2.errors.ErrorCodes.REFUSED_STREAM)
                        else:
                            conn.send_headers(sid, [(":status", "200")])
                            conn.send_data(sid, encode_part(BidirectionalPart(b"first")))
                            if mode == "goaway-error":
                                conn.close_connection(h2.errors.ErrorCodes.INTERNAL_ERROR, 1)
                            elif mode == "goaway-graceful":
                                conn.close_connection(last_stream_id=1)
                    elif isinstance(event, h2.events.DataReceived):
                        conn.acknowledge_received_data(
                            event.flow_controlled_length, event.stream_id
                        )
                    elif isinstance(event, h2.events.StreamEnded) and mode == "ok":
                        conn.send_data(
                            event.stream_id,
                            encode_part(BidirectionalPart(b"last")),
                            end_stream=True,
                        )
                writer.write(conn.data_to_send())
                await writer.drain()
                if mode in ("goaway-before", "goaway-error"):
                    break
        except ConnectionError:
            pass
        finally:
            writer.close()


async def _server(script: list[str]) -> AsyncIterator[Scripted]:
    scripted = Scripted(script)
    server = await asyncio.start_server(scripted.handle, "127.0.0.1", 0)
    scripted.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        yield scripted
    finally:
        server.close()
        await server.wait_closed()


def _client(url: str) -> SageMakerRuntimeClient:
    return SageMakerRuntimeClient(
        "us-east-1",
        bidirectional_endpoint_url=url,
        aws_access_key_id="AKID",
        aws_secret_access_key="SECRET",
        retry_policy=RetryPolicy(max_attempts=3, base_delay=0.0, max_delay=0.0),
    )


async def _exchange(url: str) -> list[bytes]:
    async with (
        _client(url) as client,
        client.invoke_endpoint_with_bidirectional_stream(endpoint_name="e") as stream,
    ):
        answers = stream.__aiter__()
        got = [(await answers.__anext__()).bytes]  # read first: nothing sent yet
        await stream.send(b"x")
        await stream.end_input()
        got += [part.bytes async for part in answers]
        return got


@pytest.mark.parametrize("refusal", ["goaway-before", "refuse"])
async def test_refused_streams_are_retried_on_a_new_connection(refusal: str) -> None:
    async for server in _server([refusal, "ok"]):
        assert await _exchange(server.url) == [b"first", b"last"]
        assert server.connections == 2


async def test_refusals_run_out_as_endpoint_connection_error() -> None:
    async for server in _server(["refuse"]):
        with pytest.raises(EndpointConnectionError):
            await _exchange(server.url)
        assert server.connections == 3


async def test_goaway_with_error_mid_stream_is_connection_closed() -> None:
    async for server in _server(["goaway-error"]):
        with pytest.raises(ConnectionClosedError):
            await _exchange(server.url)
        assert server.connections == 1


async def test_graceful_goaway_mid_stream_is_connection_closed() -> None:
    async for server in _server(["goaway-graceful"]):
        with pytest.raises(ConnectionClosedError, match="GOAWAY"):
            await _exchange(server.url)
        assert server.connections == 1


async def test_a_vanished_server_is_found_by_ping() -> None:
    """A server that accepted the connection, then went silent (no FIN: a dead host, a dropped
    NAT mapping): a PING after ``ping_interval`` of silence, then a read timeout."""
    received: list[bytes] = []

    async def blackhole(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            received.append(data)
        writer.close()

    server = await asyncio.start_server(blackhole, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        client = _client(url)
        client._bidi_ping_interval = client._bidi_ping_timeout = 0.05
        async with client:
            with pytest.raises(ReadTimeoutError, match="PING"):
                async with client.invoke_endpoint_with_bidirectional_stream(
                    endpoint_name="e"
                ) as stream:
                    await stream.send(b"anyone there?")  # waits for the server's SETTINGS
        assert b"PRI * HTTP/2.0" in b"".join(received)
    finally:
        server.close()
        await server.wait_closed()


async def test_a_silent_but_live_server_answers_pings() -> None:
    async for server in _server(["ok"]):
        client = _client(server.url)
        client._bidi_ping_interval = 0.02
        async with (
            client,
            client.invoke_endpoint_with_bidirectional_stream(endpoint_name="e") as stream,
        ):
            answers = stream.__aiter__()
            assert (await answers.__anext__()).bytes == b"first"
            exchange = stream._exchange
            assert exchange is not None
            # ~5 silent intervals, each PING answered (a counter to poll; no event to wait on)
            while exchange.pings_sent < 5:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
            await stream.send(b"x")
            await stream.end_input()
            assert [part.bytes async for part in answers] == [b"last"]
