"""The bidirectional client's HTTP/2 transport against a server nobody here wrote: hypercorn.

hypercorn serves an ASGI app over h2c (prior knowledge) and TLS (ALPN h2); the app answers each
request event as it arrives, while the request body is still open (full duplex), so these tests
exercise our h2 client, not our h2 server.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import trustme
from hypercorn.asyncio import serve
from hypercorn.config import Config

from sagemaker_rt_aio import (
    BidirectionalPart,
    ConnectionClosedError,
    RetryPolicy,
    SageMakerRuntimeClient,
    ServiceUnavailableError,
)
from sagemaker_rt_aio._bidi_events import encode_part
from sagemaker_rt_aio._eventstream import EventStreamDecoder

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class App:
    """Echoes every PayloadPart back at once, upper-cased; ``mode`` picks a misbehaviour."""

    def __init__(self) -> None:
        self.mode = "echo"
        self.requests: list[Scope] = []
        self.calls = 0
        self.retried = asyncio.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                event = (await receive())["type"]
                await send({"type": f"{event}.complete"})
                if event == "lifespan.shutdown":
                    return
        self.calls += 1
        if self.calls == 2:
            self.retried.set()
        self.requests.append(scope)
        if self.mode == "unavailable" and self.calls == 1:
            await send(
                {
                    "type": "http.response.start",
                    "status": 503,
                    "headers": [
                        (b"x-amzn-errortype", b"ServiceUnavailableError"),
                        (b"content-type", b"application/json"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": b'{"Message":"busy"}'})
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/vnd.amazon.eventstream")],
            }
        )
        decoder = EventStreamDecoder()
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return
            for envelope in decoder.feed(message.get("body", b"")):
                if not envelope.payload:
                    continue
                (inner,) = EventStreamDecoder().feed(envelope.payload)
                if self.mode == "die":
                    raise RuntimeError("app died mid-stream")
                answer = BidirectionalPart(inner.payload.upper(), "UTF8", "PARTIAL")
                await send(
                    {"type": "http.response.body", "body": encode_part(answer), "more_body": True}
                )
            if not message.get("more_body", False):
                break
        await send({"type": "http.response.body", "body": b""})


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _serve(
    app: App, certs: tuple[str, str] | None, keep_alive: float = 5.0
) -> AsyncIterator[str]:
    config = Config()
    config.keep_alive_timeout = keep_alive
    port = _free_port()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    config.errorlog = None
    if certs is not None:
        config.certfile, config.keyfile = certs
    stop = asyncio.Event()
    task = asyncio.create_task(
        serve(app, config, shutdown_trigger=stop.wait)  # type: ignore[arg-type]
    )
    for _ in range(200):  # until it listens
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.01)
            continue
        writer.close()
        await writer.wait_closed()
        break
    try:
        yield f"{'https' if certs else 'http'}://127.0.0.1:{port}"
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


@pytest.fixture
async def h2c_app() -> AsyncIterator[tuple[App, str]]:
    app = App()
    async for url in _serve(app, None):
        yield app, url


def _client(url: str, **kwargs: Any) -> SageMakerRuntimeClient:
    kwargs.setdefault("retry_policy", RetryPolicy(base_delay=0.0, max_delay=0.0))
    return SageMakerRuntimeClient(
        "us-east-1",
        bidirectional_endpoint_url=url,
        aws_access_key_id="AKID",
        aws_secret_access_key="SECRET",
        **kwargs,
    )


async def _ping_pong(client: SageMakerRuntimeClient, rounds: int) -> list[bytes]:
    async with client.invoke_endpoint_with_bidirectional_stream(endpoint_name="echo") as stream:
        answers = stream.__aiter__()
        got = []
        for index in range(rounds):
            await stream.send(f"word {index}")
            got.append((await answers.__anext__()).bytes)
        await stream.end_input()
        assert [part async for part in answers] == []
        return got


async def test_full_duplex_over_h2c(h2c_app: tuple[App, str]) -> None:
    app, url = h2c_app
    async with _client(url) as client:
        assert await _ping_pong(client, 10) == [f"WORD {i}".encode() for i in range(10)]
    (scope,) = app.requests
    assert scope["http_version"] == "2"
    assert scope["path"] == "/endpoints/echo/invocations-bidirectional-stream"
    headers = dict(scope["headers"])
    assert headers[b"x-amz-content-sha256"] == b"STREAMING-AWS4-HMAC-SHA256-EVENTS"
    assert headers[b"content-type"] == b"application/vnd.amazon.eventstream"
    assert b"Signature=" in headers[b"authorization"]
    assert headers[b"user-agent"].startswith(b"sagemaker-rt-aio/")


async def test_large_payload_both_ways_over_h2c(h2c_app: tuple[App, str]) -> None:
    _, url = h2c_app
    block = b"ab" * 100_000  # past hypercorn's 64 KiB windows, both ways
    async with (
        _client(url) as client,
        client.invoke_endpoint_with_bidirectional_stream(endpoint_name="echo") as stream,
    ):

        async def produce() -> None:
            for _ in range(20):
                await stream.send(block)
            await stream.end_input()

        producer = asyncio.create_task(produce())
        total = 0
        async for part in stream:
            assert part.bytes == block.upper()
            total += len(part.bytes)
        await producer
    assert total == 20 * len(block)


async def test_503_before_input_is_retried_over_h2c(h2c_app: tuple[App, str]) -> None:
    app, url = h2c_app
    app.mode = "unavailable"
    async with (
        _client(url) as client,
        client.invoke_endpoint_with_bidirectional_stream(endpoint_name="echo") as stream,
    ):
        # Reading first: the 503 is seen before any input went out, so it is retried. (Had
        # send() gone first, the input might have been taken: then the 503 is raised.)
        answers = stream.__aiter__()
        first = asyncio.create_task(answers.__anext__())
        await app.retried.wait()
        await stream.send("again")
        assert (await first).bytes == b"AGAIN"
        await stream.end_input()
        assert stream.response_metadata is not None
        assert stream.response_metadata.retry_attempts == 1
    assert app.calls == 2


async def test_503_error_shape_without_retries(h2c_app: tuple[App, str]) -> None:
    app, url = h2c_app
    app.mode = "unavailable"
    async with _client(url, retry_policy=RetryPolicy.none()) as client:
        with pytest.raises(ServiceUnavailableError) as caught:
            await _ping_pong(client, 1)
    assert caught.value.message == "busy"


async def test_server_dying_mid_stream_is_a_transport_error() -> None:
    app = App()
    app.mode = "die"
    # hypercorn drops the connection of a failed app when its keep-alive timeout expires.
    async for url in _serve(app, None, keep_alive=0.3):
        async with _client(url) as client:
            with pytest.raises(ConnectionClosedError):
                await _ping_pong(client, 1)
            assert not client._bidi_streams.streams


async def test_full_duplex_over_tls_alpn(tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    certfile, keyfile = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.cert_chain_pems[0].write_to_path(str(certfile))
    cert.private_key_pem.write_to_path(str(keyfile))
    context = ssl.create_default_context()
    ca.configure_trust(context)
    app = App()
    async for url in _serve(app, (str(certfile), str(keyfile))):
        async with _client(url, bidirectional_ssl_context=context) as client:
            assert await _ping_pong(client, 3) == [b"WORD 0", b"WORD 1", b"WORD 2"]
    assert app.requests[0]["scheme"] == "https"
    assert app.requests[0]["http_version"] == "2"
