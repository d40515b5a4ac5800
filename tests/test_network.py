"""Proxies, CA bundles, client certificates and TLS errors, against real parts.

A CA and certificates from ``trustme``; the local runtime serving HTTPS; a real forward proxy
nobody here wrote (``proxy.py`` from PyPI, run as a subprocess on a free loopback port, with
Basic authentication); boto3 as the oracle in the same environment. boto3 is synchronous, so it
runs in a worker thread while the runtime serves in the test's event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import socket
import ssl
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import boto3
import boto3.session
import botocore.config
import botocore.utils
import pytest
import trustme
from aiohttp import web
from conftest import ScriptedServer
from real_proxy import USER, Proxy, running_proxy
from yarl import URL

from sagemaker_rt_aio import (
    CertificateVerificationError,
    ClientClosedError,
    EndpointConnectionError,
    HttpRequest,
    HttpResponse,
    ParamValidationError,
    RetryPolicy,
    SageMakerRuntimeClient,
    SSLError,
    TransportError,
)
from sagemaker_rt_aio._network import Network, _keepalive_socket, proxy_url_for
from sagemaker_rt_aio.local import Invocation, LocalRuntime

pytestmark = pytest.mark.timeout(60)

KEYS = {"aws_access_key_id": "AKIDNETWORK", "aws_secret_access_key": "network-secret"}
PROXY_ENV = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy")


async def echo(invocation: Invocation) -> bytes:
    return b"echo:" + invocation.body


# ------------------------------------------------------------------------------------- fixtures


@dataclass
class Pki:
    ca: trustme.CA
    ca_path: Path
    server: ssl.SSLContext
    client_cert: Path
    client_key: Path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    ca = trustme.CA()
    directory = tmp_path_factory.mktemp("pki")
    ca_path = directory / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(server)
    client = ca.issue_cert("client.example")
    client_cert, client_key = directory / "client.pem", directory / "client.key"
    client.cert_chain_pems[0].write_to_path(str(client_cert))
    client.private_key_pem.write_to_path(str(client_key))
    return Pki(ca, ca_path, server, client_cert, client_key)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in PROXY_ENV:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.fixture
async def tls_runtime(pki: Pki) -> AsyncIterator[LocalRuntime]:
    async with LocalRuntime(ssl_context=pki.server) as runtime:
        runtime.add_endpoint("echo", echo)
        yield runtime


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    with running_proxy(tmp_path_factory.mktemp("proxy")) as running:
        yield running


async def _wait_for_log(proxy: Proxy, port: int, count: int) -> int:
    return await _wait_for_lines(proxy, f"CONNECT 127.0.0.1:{port} ", count)


async def _wait_for_lines(proxy: Proxy, text: str, count: int) -> int:
    # proxy.py writes its access line when an exchange ends (a tunnel when it closes; the clients
    # are closed by now), from another process: poll its log file, in a thread, for a bounded time.
    def poll() -> int:
        give_up = time.monotonic() + 10
        while proxy.log.read_text().count(text) < count and time.monotonic() < give_up:
            time.sleep(0.02)
        return proxy.log.read_text().count(text)

    return await asyncio.to_thread(poll)


def boto3_invoke(url: str, **config: Any) -> bytes:
    client_kwargs = {k: config.pop(k) for k in ("verify",) if k in config}
    client = boto3.session.Session().client(  # a fresh session reads today's environment
        "sagemaker-runtime",
        region_name="us-east-1",
        endpoint_url=url,
        config=botocore.config.Config(retries={"total_max_attempts": 1}, **config),
        **client_kwargs,
        **KEYS,
    )
    try:
        return bytes(client.invoke_endpoint(EndpointName="echo", Body=b"boto3")["Body"].read())
    finally:
        client.close()


def client_for(runtime: LocalRuntime, **kwargs: Any) -> SageMakerRuntimeClient:
    return SageMakerRuntimeClient("us-east-1", endpoint_url=runtime.url, **KEYS, **kwargs)


# ----------------------------------------------------------------------------------------- TLS


async def test_local_runtime_serves_https_only(tls_runtime: LocalRuntime, pki: Pki) -> None:
    assert tls_runtime.url.startswith("https://127.0.0.1:")
    async with client_for(tls_runtime, ca_bundle=pki.ca_path) as client:
        result = await client.invoke_endpoint(endpoint_name="echo", body=b"hi")
    assert result.body == b"echo:hi"
    # Plain HTTP on the same port is not answered as HTTP.
    plain = str(URL(tls_runtime.url).with_scheme("http"))
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientError):
            async with session.post(f"{plain}/endpoints/echo/invocations", data=b"x") as resp:
                await resp.read()


async def test_untrusted_certificate_is_a_typed_error_and_not_retried(
    tls_runtime: LocalRuntime,
) -> None:
    attempts: list[int] = []

    async def count(request: HttpRequest, call_next: Any) -> HttpResponse:
        attempts.append(request.attempt)
        response: HttpResponse = await call_next(request)
        return response

    async with client_for(tls_runtime, middlewares=[count]) as client:
        with pytest.raises(CertificateVerificationError) as info:
            await client.invoke_endpoint(endpoint_name="echo", body=b"hi")
    error = info.value
    assert "certificate verification failed" in str(error)
    assert "could not connect" not in str(error)
    assert isinstance(error, SSLError) and isinstance(error, TransportError)
    assert not isinstance(error, EndpointConnectionError)
    assert error.request_sent is False and error.retryable is False
    assert attempts == [1]
    assert tls_runtime.call_count("echo") == 0


async def test_verify_false_and_verify_path(tls_runtime: LocalRuntime, pki: Pki) -> None:
    async with client_for(tls_runtime, verify=False) as client:
        assert (await client.invoke_endpoint(endpoint_name="echo", body=b"a")).body == b"echo:a"
    async with client_for(tls_runtime, verify=str(pki.ca_path)) as client:
        assert (await client.invoke_endpoint(endpoint_name="echo", body=b"b")).body == b"echo:b"
    # A verify path wins over ca_bundle, as in botocore (ca_bundle is read only without verify).
    async with client_for(tls_runtime, verify=pki.ca_path, ca_bundle="/nonexistent") as client:
        assert (await client.invoke_endpoint(endpoint_name="echo", body=b"c")).body == b"echo:c"


@pytest.mark.parametrize("source", ["env", "config"])
async def test_ca_bundle_from_environment_or_profile_like_boto3(
    tls_runtime: LocalRuntime,
    pki: Pki,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    source: str,
) -> None:
    if source == "env":
        monkeypatch.setenv("AWS_CA_BUNDLE", str(pki.ca_path))
    else:
        config = tmp_path / "config"
        config.write_text(f"[default]\nca_bundle = {pki.ca_path}\n")
        monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    async with client_for(tls_runtime) as client:
        assert (await client.invoke_endpoint(endpoint_name="echo", body=b"x")).body == b"echo:x"
    assert await asyncio.to_thread(boto3_invoke, tls_runtime.url) == b"echo:boto3"
    # verify=True ignores the configured bundle in botocore; so it does here.
    async with client_for(tls_runtime, verify=True) as client:
        with pytest.raises(CertificateVerificationError):
            await client.invoke_endpoint(endpoint_name="echo", body=b"x")


async def test_one_context_for_sagemaker_and_s3(tls_runtime: LocalRuntime, pki: Pki) -> None:
    """The async-result waiter's S3 requests go through the same TLS settings."""
    async with client_for(
        tls_runtime, ca_bundle=pki.ca_path, s3_endpoint_url=tls_runtime.url
    ) as client:
        output = await client.invoke_endpoint_async_and_wait(
            endpoint_name="echo", body=b"queued", content_type="text/plain", timeout=10,
            poll_interval=0.01,
        )  # fmt: skip
    assert output == b"echo:queued"


def _mtls_server(pki: Pki) -> ssl.SSLContext:
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    pki.ca.issue_cert("127.0.0.1").configure_cert(server)
    pki.ca.configure_trust(server)
    server.verify_mode = ssl.CERT_REQUIRED
    return server


async def test_client_certificate_like_boto3(pki: Pki) -> None:
    async with LocalRuntime(ssl_context=_mtls_server(pki)) as runtime:
        runtime.add_endpoint("echo", echo)
        cert = (str(pki.client_cert), str(pki.client_key))
        async with client_for(runtime, ca_bundle=pki.ca_path, client_cert=cert) as client:
            assert (await client.invoke_endpoint(endpoint_name="echo", body=b"m")).body == (
                b"echo:m"
            )
        got = await asyncio.to_thread(
            boto3_invoke, runtime.url, verify=str(pki.ca_path), client_cert=cert
        )
        assert got == b"echo:boto3"
        assert runtime.call_count("echo") == 2


# Python 3.10's asyncio leaves the transport of a handshake the server refused unclosed (its SSL
# layer was rewritten in 3.11); that warning only, and only there, is not this test's subject.
_PY310_SSL_LEAK = pytest.mark.filterwarnings(
    "ignore:Exception ignored in. <function _SSLProtocolTransport.__del__"
    ":pytest.PytestUnraisableExceptionWarning"
    if sys.version_info < (3, 11)
    else "error"
)


@_PY310_SSL_LEAK
async def test_without_the_client_certificate_the_server_refuses(pki: Pki) -> None:
    async with LocalRuntime(ssl_context=_mtls_server(pki)) as runtime:
        runtime.add_endpoint("echo", echo)
        async with client_for(runtime, ca_bundle=pki.ca_path) as client:
            with pytest.raises(TransportError):  # the server refuses the handshake
                await client.invoke_endpoint(endpoint_name="echo", body=b"m")
        assert runtime.call_count("echo") == 0
    # That transport sits in a reference cycle (the failed handshake's exception and traceback):
    # collect it here, under this test's filter, not in whichever test the collector runs next.
    gc.collect()


def test_unreadable_bundles_and_certificates_are_refused_at_construction(
    tmp_path: Path,
) -> None:
    missing = str(tmp_path / "missing.pem")
    with pytest.raises(ParamValidationError) as info:
        SageMakerRuntimeClient("us-east-1", ca_bundle=missing, **KEYS)
    assert info.value.field == "ca_bundle"
    with pytest.raises(ParamValidationError) as info:
        SageMakerRuntimeClient("us-east-1", verify=missing, **KEYS)
    assert info.value.field == "verify"
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate")
    with pytest.raises(ParamValidationError) as info:
        SageMakerRuntimeClient("us-east-1", client_cert=str(garbage), **KEYS)
    assert info.value.field == "client_cert"


# --------------------------------------------------------------------------------------- proxies


async def test_https_proxy_from_environment_like_boto3(
    tls_runtime: LocalRuntime, pki: Pki, proxy: Proxy, clean_env: pytest.MonkeyPatch
) -> None:
    """Same environment (HTTPS_PROXY with credentials, AWS_CA_BUNDLE): both clients succeed,
    and the proxy tunnelled both."""
    clean_env.setenv("HTTPS_PROXY", proxy.url)
    clean_env.setenv("AWS_CA_BUNDLE", str(pki.ca_path))
    port = tls_runtime.port
    before = proxy.tunnels_to(port)
    async with client_for(tls_runtime) as client:
        assert (await client.invoke_endpoint(endpoint_name="echo", body=b"p")).body == b"echo:p"
    assert await _wait_for_log(proxy, port, before + 1) == before + 1
    assert await asyncio.to_thread(boto3_invoke, tls_runtime.url) == b"echo:boto3"
    assert await _wait_for_log(proxy, port, before + 2) == before + 2
    assert tls_runtime.call_count("echo") == 2


async def test_s3_requests_take_the_proxy_too(
    tls_runtime: LocalRuntime, pki: Pki, proxy: Proxy, clean_env: pytest.MonkeyPatch
) -> None:
    clean_env.setenv("HTTPS_PROXY", proxy.url)
    clean_env.setenv("AWS_ENDPOINT_URL_S3", tls_runtime.url)
    port = tls_runtime.port
    before = proxy.tunnels_to(port)
    async with SageMakerRuntimeClient("us-east-1", ca_bundle=pki.ca_path, **KEYS) as client:
        location = await client.upload_async_input(b"input", "s3://sagemaker-rt-aio-local/in/1")
    assert location == "s3://sagemaker-rt-aio-local/in/1"
    assert tls_runtime.get_object("sagemaker-rt-aio-local", "in/1") == b"input"
    assert await _wait_for_log(proxy, port, before + 1) == before + 1


async def test_plain_http_through_an_authenticating_proxy_like_boto3(
    proxy: Proxy, clean_env: pytest.MonkeyPatch
) -> None:
    """No tunnel for http://: the request goes to the proxy with its Proxy-Authorization."""
    async with LocalRuntime() as runtime:
        runtime.add_endpoint("echo", echo)
        proxies = {"http": proxy.url}
        async with client_for(runtime, proxies=proxies) as client:
            assert (await client.invoke_endpoint(endpoint_name="echo", body=b"h")).body == (
                b"echo:h"
            )
        got = await asyncio.to_thread(boto3_invoke, runtime.url, proxies=proxies)
        assert got == b"echo:boto3"
        assert runtime.call_count("echo") == 2
        line = f"POST 127.0.0.1:{runtime.port}/endpoints/echo/invocations"
        assert await _wait_for_lines(proxy, line, 2) == 2


async def test_explicit_proxies_argument(
    tls_runtime: LocalRuntime, pki: Pki, proxy: Proxy, clean_env: pytest.MonkeyPatch
) -> None:
    # An explicit proxies= ignores NO_PROXY, as botocore does.
    clean_env.setenv("NO_PROXY", "127.0.0.1")
    port = tls_runtime.port
    before = proxy.tunnels_to(port)
    async with client_for(tls_runtime, ca_bundle=pki.ca_path, proxies={"https": proxy.url}) as c:
        assert (await c.invoke_endpoint(endpoint_name="echo", body=b"e")).body == b"echo:e"
    assert await _wait_for_log(proxy, port, before + 1) == before + 1


async def test_no_proxy_goes_direct(
    tls_runtime: LocalRuntime, pki: Pki, proxy: Proxy, clean_env: pytest.MonkeyPatch
) -> None:
    clean_env.setenv("HTTPS_PROXY", proxy.url)
    clean_env.setenv("NO_PROXY", f"example.com, 127.0.0.1:{tls_runtime.port}")
    before = proxy.log.read_text()
    async with client_for(tls_runtime, ca_bundle=pki.ca_path) as client:
        assert (await client.invoke_endpoint(endpoint_name="echo", body=b"d")).body == b"echo:d"
    assert f"127.0.0.1:{tls_runtime.port}" not in proxy.log.read_text()[len(before) :]


async def test_wrong_proxy_credentials_never_leak(
    tls_runtime: LocalRuntime, pki: Pki, proxy: Proxy, clean_env: pytest.MonkeyPatch
) -> None:
    attempts: list[int] = []

    async def count(request: HttpRequest, call_next: Any) -> HttpResponse:
        attempts.append(request.attempt)
        response: HttpResponse = await call_next(request)
        return response

    wrong = f"http://{USER}:hunter2-wrong@127.0.0.1:{proxy.port}"
    async with client_for(
        tls_runtime, ca_bundle=pki.ca_path, proxies={"https": wrong}, middlewares=[count]
    ) as c:
        with pytest.raises(EndpointConnectionError) as info:
            await c.invoke_endpoint(endpoint_name="echo", body=b"w")
        assert "hunter2" not in repr(c._network) and "hunter2" not in repr(c)
    error = info.value
    assert "407" in str(error)
    # aiohttp's exception holds the CONNECT request with its Proxy-Authorization: not kept.
    assert error.__cause__ is None and error.__context__ is None
    assert "hunter2" not in repr(error.__dict__)
    assert error.retryable is False and attempts == [1]
    assert tls_runtime.call_count("echo") == 0


@pytest.mark.parametrize("how", ["shutdown", "cancel"])
async def test_a_call_stuck_at_a_silent_proxy_ends_and_closes_its_socket(
    how: str, clean_env: pytest.MonkeyPatch
) -> None:
    """A proxy that accepts and never answers: shutdown() or cancelling the caller ends the call,
    and the socket to the proxy is closed."""
    accepted = asyncio.Event()
    closed = asyncio.Event()

    async def black_hole(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.set()
        while await reader.read(65536):
            pass
        closed.set()
        writer.close()

    server = await asyncio.start_server(black_hole, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        client = SageMakerRuntimeClient(
            "us-east-1",
            endpoint_url="https://127.0.0.1:9",
            proxies={"https": f"http://u:secret-pw@127.0.0.1:{port}"},
            **KEYS,
        )
        call = asyncio.ensure_future(client.invoke_endpoint(endpoint_name="e", body=b"x"))
        await accepted.wait()
        if how == "shutdown":
            await client.shutdown(grace=0)
            with pytest.raises(ClientClosedError):
                await call
        else:
            call.cancel()
            with pytest.raises(asyncio.CancelledError):
                await call
        await asyncio.wait_for(closed.wait(), 10)
        await client.shutdown()
    finally:
        server.close()
        await server.wait_closed()


def test_one_ssl_context_per_client_for_every_host(pki: Pki) -> None:
    client = SageMakerRuntimeClient("us-east-1", ca_bundle=pki.ca_path, **KEYS)
    network = client._network
    sagemaker = network.route(URL(client.endpoint_url))["ssl"]
    s3 = network.route(URL("https://bucket.s3.amazonaws.com/key"))["ssl"]
    assert isinstance(sagemaker, ssl.SSLContext) and sagemaker is s3
    # Decided once per host: the same mapping comes back, nothing is recomputed per call.
    assert network.route(URL(client.endpoint_url)) is network.route(URL(client.endpoint_url))



def test_own_session_holds_the_tls_setting_so_requests_pass_none(pki: Pki) -> None:
    # The session the client makes carries the TLS setting on its connector (the CA-bundle
    # tests above go through it); its requests pass only what differs per host: a proxy.
    network = Network(
        proxies={"https": "http://proxy.corp:3128"},
        ssl_setting=ssl.create_default_context(cafile=pki.ca_path),
    )
    direct = URL("http://127.0.0.1:8080/x")
    proxied = URL("https://runtime.sagemaker.us-east-1.amazonaws.com/x")
    assert network.route(direct)["ssl"] is network.ssl
    assert network.own_route(direct) == {}
    assert "ssl" not in network.own_route(proxied)
    assert network.own_route(proxied)["proxy"] == URL("http://proxy.corp:3128")
    assert network.own_route(proxied) is network.own_route(proxied)

PROXY_ANSWERS = {
    # a tunnel "opened", then closed before the TLS handshake
    "drop": b"HTTP/1.1 200 Connection established\r\n\r\n",
    # an answer too large for any header limit
    "huge": b"HTTP/1.1 200 OK\r\nX-Junk: " + b"j" * 200_000 + b"\r\n\r\n",
    "garbage": b"\x00\x01not http at all\r\n\r\n",
}


@pytest.mark.parametrize("answer", sorted(PROXY_ANSWERS))
async def test_hostile_proxy_answers_are_typed_and_leak_nothing(
    answer: str, clean_env: pytest.MonkeyPatch
) -> None:
    seen_auth: list[bytes] = []

    async def hostile(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        seen_auth.extend(line for line in head.split(b"\r\n") if line.startswith(b"Proxy-Auth"))
        writer.write(PROXY_ANSWERS[answer])
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        writer.close()

    attempts: list[int] = []

    async def count(request: HttpRequest, call_next: Any) -> HttpResponse:
        attempts.append(request.attempt)
        response: HttpResponse = await call_next(request)
        return response

    server = await asyncio.start_server(hostile, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with SageMakerRuntimeClient(
            "us-east-1",
            endpoint_url="https://127.0.0.1:9",
            proxies={"https": f"http://u:top-secret-pw@127.0.0.1:{port}"},
            retry_policy=RetryPolicy(base_delay=0),
            middlewares=[count],
            **KEYS,
        ) as client:
            with pytest.raises(EndpointConnectionError) as info:
                await client.invoke_endpoint(endpoint_name="e", body=b"x")
    finally:
        server.close()
        await server.wait_closed()
    error = info.value
    assert error.request_sent is False
    assert attempts == [1, 2, 3]  # never sent, so tried again as the policy allows
    assert seen_auth  # the credentials went to the proxy...
    # ...and nowhere else: not in the error, its cause, or their attributes.
    reachable = [str(error), repr(error), repr(error.__dict__), repr(error.__cause__)]
    if error.__cause__ is not None:
        reachable += [str(error.__cause__), repr(vars(error.__cause__))]
    assert not any("top-secret-pw" in text or "dTp0b3At" in text for text in reachable)


def test_malformed_proxy_is_refused_at_construction() -> None:
    with pytest.raises(ParamValidationError) as info:
        SageMakerRuntimeClient("us-east-1", proxies={"https": "http://:3128"}, **KEYS)
    assert info.value.field == "proxies"


# NO_PROXY forms: the decision must be exactly botocore's, for each form it knows.
NO_PROXY_CASES = [
    ("", "https://runtime.sagemaker.us-east-1.amazonaws.com"),
    ("*", "https://runtime.sagemaker.us-east-1.amazonaws.com"),
    ("amazonaws.com", "https://runtime.sagemaker.us-east-1.amazonaws.com"),
    (".amazonaws.com", "https://runtime.sagemaker.us-east-1.amazonaws.com"),
    ("sagemaker.us-east-1.amazonaws.com", "https://runtime.sagemaker.us-east-1.amazonaws.com"),
    ("other.com,.AMAZONAWS.COM", "https://runtime.sagemaker.us-east-1.amazonaws.com"),
    ("zonaws.com", "https://runtime.sagemaker.us-east-1.amazonaws.com"),
    ("10.0.0.1", "https://10.0.0.1:8443"),
    ("10.0.0.0/8", "https://10.0.0.1"),
    ("vpce.local:8443", "https://vpce.local:8443"),
    ("vpce.local:8443", "https://vpce.local"),
    ("vpce.local", "https://vpce.local:8443"),
    (" a.com , b.com ", "http://b.com"),
]


@pytest.mark.parametrize(("no_proxy", "url"), NO_PROXY_CASES)
def test_no_proxy_forms_match_botocore(
    no_proxy: str, url: str, clean_env: pytest.MonkeyPatch
) -> None:
    clean_env.setenv("HTTPS_PROXY", "http://proxy.corp:3128")
    clean_env.setenv("HTTP_PROXY", "proxy.corp:3128")  # without a scheme: http:// is meant
    if no_proxy:
        clean_env.setenv("NO_PROXY", no_proxy)
    expected = botocore.utils.get_environ_proxies(url).get(URL(url).scheme)
    if expected and "://" not in expected:
        expected = "http://" + expected
    assert proxy_url_for(URL(url), None) == expected


def test_proxy_credentials_become_a_header_and_leave_the_url() -> None:
    network = Network(proxies={"https": "http://us%3Aer:p%40ss@proxy.corp:3128"})
    route = network.route(URL("https://runtime.sagemaker.us-east-1.amazonaws.com/x"))
    assert route["proxy"] == URL("http://proxy.corp:3128")
    assert route["proxy_headers"]["Proxy-Authorization"] == "Basic dXM6ZXI6cEBzcw=="
    assert "p@ss" not in repr(network) and "p%40ss" not in repr(network)
    # botocore sends no header without a password.
    bare = Network(proxies={"https": "http://user@proxy.corp:3128"})
    assert "Proxy-Authorization" not in bare.route(URL("https://h/"))["proxy_headers"]


# ------------------------------------------------------------------------------- tcp keepalive


def test_tcp_keepalive_from_argument_or_config_like_boto3(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert SageMakerRuntimeClient("us-east-1", **KEYS)._network.tcp_keepalive is False
    assert SageMakerRuntimeClient("us-east-1", tcp_keepalive=True, **KEYS)._network.tcp_keepalive
    config = tmp_path / "config"
    config.write_text("[default]\ntcp_keepalive = true\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    ours = SageMakerRuntimeClient("us-east-1", **KEYS)._network.tcp_keepalive
    theirs = boto3.session.Session().client("sagemaker-runtime", region_name="us-east-1", **KEYS)
    options = theirs._endpoint.http_session._socket_options
    assert ours is True
    assert (socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1) in options
    theirs.close()
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("BOTOCORE_TCP_KEEPALIVE", "true")
    assert SageMakerRuntimeClient("us-east-1", **KEYS)._network.tcp_keepalive is True
    # An explicit argument wins.
    assert (
        SageMakerRuntimeClient("us-east-1", tcp_keepalive=False, **KEYS)._network.tcp_keepalive
        is False
    )


def test_keepalive_sockets_have_so_keepalive() -> None:
    info = socket.getaddrinfo("127.0.0.1", 80, type=socket.SOCK_STREAM)[0]
    with _keepalive_socket(info) as sock:
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1


async def test_keepalive_client_talks(scripted_server: Any) -> None:
    async with SageMakerRuntimeClient(
        "us-east-1", endpoint_url=scripted_server.url, tcp_keepalive=True, **KEYS
    ) as client:
        result = await client.invoke_endpoint(endpoint_name="e", body=b"k")
    assert result.body == b"k"


async def test_no_cookie_is_kept_or_sent_back(scripted_server: ScriptedServer) -> None:
    """botocore keeps no cookies; neither does the client's session. A server (or a proxy, a load
    balancer) that sets a new cookie on every answer does not make later calls carry it, nor grow
    the client. Through ``localhost``: aiohttp's default jar ignores cookies from an IP address."""
    from sagemaker_rt_aio._stream_events import encode_payload_part

    answered = 0

    def cookie() -> dict[str, str]:
        nonlocal answered
        answered += 1
        return {"Set-Cookie": f"c{answered}={'x' * 100}; Path=/", "x-amzn-RequestId": "r"}

    async def call(request: web.Request, body: bytes) -> web.StreamResponse:
        return web.Response(body=b"{}", content_type="application/json", headers=cookie())

    async def stream(request: web.Request, body: bytes) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "application/vnd.amazon.eventstream", **cookie()}
        )
        await response.prepare(request)
        await response.write(encode_payload_part(b"token"))
        await response.write_eof()
        return response

    url = scripted_server.url.replace("127.0.0.1", "localhost")
    async with SageMakerRuntimeClient(
        "us-east-1", endpoint_url=url, aws_access_key_id="AK", aws_secret_access_key="SK"
    ) as client:
        for index in range(6):
            scripted_server.default = stream if index % 2 else call
            if index % 2:
                async with client.invoke_endpoint_with_response_stream(
                    endpoint_name="ep", body=b"{}"
                ) as parts:
                    assert [part.bytes async for part in parts] == [b"token"]
            else:
                await client.invoke_endpoint(endpoint_name="ep", body=b"{}")
        assert len(client._get_session().cookie_jar) == 0
    assert answered == len(scripted_server.received) == 6
    assert [r.headers.get("Cookie") for r in scripted_server.received] == [None] * 6
