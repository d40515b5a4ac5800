"""The HTTP/2 transport through a real HTTP CONNECT proxy (proxy.py, in its own process), with TLS
and ALPN ``h2`` inside the tunnel; and the tunnel's refusals as connection errors."""

from __future__ import annotations

import socket
import ssl
from collections.abc import AsyncIterator, Iterator
from typing import Any

import botocore.credentials
import pytest
import trustme
from real_proxy import USER, Proxy, running_proxy
from yarl import URL

from sagemaker_rt_aio import (
    BidirectionalPart,
    EndpointConnectionError,
    RetryPolicy,
    SageMakerRuntimeClient,
)
from sagemaker_rt_aio._h2_proxy import connect_request, connect_status, proxy_headers
from sagemaker_rt_aio.local import LocalRuntime


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    with running_proxy(tmp_path_factory.mktemp("proxy")) as running:
        yield running


async def echo(invocation: Any, inbound: AsyncIterator[BidirectionalPart]) -> Any:
    async for part in inbound:
        yield part


@pytest.fixture
async def tls_runtime() -> AsyncIterator[tuple[LocalRuntime, ssl.SSLContext]]:
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    credentials = botocore.credentials.Credentials("AKIDPROXY", "proxy-secret")
    async with LocalRuntime(credentials=credentials, ssl_context=server) as runtime:
        runtime.add_bidirectional_endpoint("echo", echo)
        yield runtime, client


def _client(runtime: LocalRuntime, context: ssl.SSLContext, proxy: str) -> SageMakerRuntimeClient:
    return SageMakerRuntimeClient(
        "us-east-1",
        bidirectional_endpoint_url=runtime.bidirectional_url,
        bidirectional_ssl_context=context,
        proxies={"https": proxy},
        aws_access_key_id="AKIDPROXY",
        aws_secret_access_key="proxy-secret",
        retry_policy=RetryPolicy.none(),
    )


async def test_stream_through_a_connect_proxy(
    proxy: Proxy, tls_runtime: tuple[LocalRuntime, ssl.SSLContext]
) -> None:
    runtime, context = tls_runtime
    async with (
        _client(runtime, context, proxy.url) as client,
        client.invoke_endpoint_with_bidirectional_stream(endpoint_name="echo") as stream,
    ):
        answers = stream.__aiter__()
        for word in ("through", "the", "tunnel"):
            await stream.send(word)
            assert (await answers.__anext__()).bytes == word.encode()
        await stream.end_input()
        assert [part async for part in answers] == []


async def test_proxy_refusing_the_tunnel(
    proxy: Proxy, tls_runtime: tuple[LocalRuntime, ssl.SSLContext]
) -> None:
    runtime, context = tls_runtime
    wrong = f"http://{USER}:not-the-password@127.0.0.1:{proxy.port}"
    async with _client(runtime, context, wrong) as client:
        with pytest.raises(EndpointConnectionError) as caught:
            async with client.invoke_endpoint_with_bidirectional_stream(endpoint_name="echo"):
                pass
    assert "407" in str(caught.value)
    assert "not-the-password" not in str(caught.value)
    assert runtime.call_count("echo") == 0


async def test_proxy_not_listening(tls_runtime: tuple[LocalRuntime, ssl.SSLContext]) -> None:
    runtime, context = tls_runtime
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with _client(runtime, context, f"http://u:secret@127.0.0.1:{port}") as client:
        with pytest.raises(EndpointConnectionError) as caught:
            async with client.invoke_endpoint_with_bidirectional_stream(endpoint_name="echo"):
                pass
    assert "secret" not in str(caught.value)


def test_connect_request_and_status() -> None:
    assert connect_request("example.com", 8443, {"Proxy-Authorization": "Basic x"}) == (
        b"CONNECT example.com:8443 HTTP/1.1\r\nHost: example.com:8443\r\n"
        b"Proxy-Authorization: Basic x\r\n\r\n"
    )
    assert connect_request("::1", 443, {}).startswith(b"CONNECT [::1]:443 HTTP/1.1\r\n")
    assert connect_status(b"HTTP/1.1 200 Connection established\r\n\r\n") == 200
    assert connect_status(b"HTTP/1.0 407 Proxy Authentication Required\r\n") == 407
    with pytest.raises(ValueError):
        connect_status(b"SSH-2.0-OpenSSH\r\n")
    assert proxy_headers(URL("http://a%40b:c%3Ad@proxy:3128")) == {
        "Proxy-Authorization": "Basic YUBiOmM6ZA=="
    }
    assert proxy_headers(URL("http://proxy:3128")) == {}
