"""InvokeEndpointWithBidirectionalStream: the client against the local runtime over HTTP/2.

Real sockets on 127.0.0.1 both ways (h2c, and TLS with a trustme CA), signatures verified by the
runtime. No sleeps: waits are on events, or on the event loop turning until the sockets go quiet.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ssl
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import botocore.credentials
import pytest
import trustme

from sagemaker_rt_aio import (
    BidirectionalPart,
    CertificateVerificationError,
    ClientClosedError,
    ConnectionClosedError,
    EndpointConnectionError,
    InputValidationError,
    InternalServerError,
    InternalStreamFailure,
    ModelError,
    ModelStreamError,
    ParamValidationError,
    ReadTimeoutError,
    RetryPolicy,
    SageMakerRuntimeClient,
    ServiceError,
    ServiceUnavailableError,
    SSLError,
    ValidationError,
)
from sagemaker_rt_aio._constants import DEFAULT_BIDI_RECEIVE_WINDOW
from sagemaker_rt_aio._signing import FrozenCredentials
from sagemaker_rt_aio.local import ContainerError, LocalRuntime

ACCESS_KEY, SECRET_KEY = "AKIDBIDI", "bidi-secret"
FAST_RETRIES = RetryPolicy(max_attempts=3, base_delay=0.0, max_delay=0.0)


async def echo(invocation: Any, inbound: AsyncIterator[BidirectionalPart]) -> Any:
    async for part in inbound:
        yield part


def client_for(runtime: LocalRuntime, **kwargs: Any) -> SageMakerRuntimeClient:
    kwargs.setdefault("retry_policy", FAST_RETRIES)
    return SageMakerRuntimeClient(
        "us-east-1",
        endpoint_url=runtime.url,
        bidirectional_endpoint_url=runtime.bidirectional_url,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        **kwargs,
    )


@pytest.fixture
async def runtime() -> AsyncIterator[LocalRuntime]:
    credentials = botocore.credentials.Credentials(ACCESS_KEY, SECRET_KEY)
    async with LocalRuntime(credentials=credentials, bidirectional_window=16 * 1024) as rt:
        rt.add_bidirectional_endpoint("echo", echo)
        yield rt


def open_connections(runtime: LocalRuntime) -> int:
    server = runtime._bidi._server
    return 0 if server is None else len(server._tasks)


async def settle(predicate: Callable[[], bool], turns: int = 2000) -> bool:
    """Turn the event loop (and its selector) until ``predicate`` holds. A busy machine may need
    more than ``turns`` turns: then poll every millisecond, for 10 s at most."""
    for _ in range(turns):
        if predicate():
            return True
        await asyncio.sleep(0)
    for _ in range(10_000):
        if predicate():
            return True
        await asyncio.sleep(0.001)
    return predicate()


async def quiet(value: Callable[[], int], turns: int = 300) -> int:
    """Turn the loop until ``value()`` stops changing for ``turns`` turns in a row."""
    last, same = value(), 0
    while same < turns:
        await asyncio.sleep(0)
        now = value()
        same = same + 1 if now == last else 0
        last = now
    return last


# ------------------------------------------------------------------------------- happy paths


async def test_ping_pong_full_duplex(runtime: LocalRuntime) -> None:
    async with client_for(runtime) as client:
        call = client.invoke_endpoint_with_bidirectional_stream(
            endpoint_name="echo",
            model_invocation_path="v1/audio",
            model_query_string="lang=en&rate=16000",
            target_variant="blue",
        )
        async with call as stream:
            answers = stream.__aiter__()
            for index in range(30):
                await stream.send(f"ping {index}", completion_state="PARTIAL")
                part = await answers.__anext__()
                assert part == BidirectionalPart(f"ping {index}".encode(), "UTF8", "PARTIAL")
            await stream.send(b"\x00\xff", data_type="BINARY", completion_state="COMPLETE")
            assert await answers.__anext__() == BidirectionalPart(b"\x00\xff", "BINARY", "COMPLETE")
            await stream.end_input()
            assert [part async for part in answers] == []
            assert stream.invoked_production_variant == "AllTraffic"
            assert stream.response_metadata is not None
            assert stream.response_metadata.http_status_code == 200
    (invocation,) = runtime.invocations("echo")
    assert invocation.operation == "InvokeEndpointWithBidirectionalStream"
    assert invocation.model_invocation_path == "v1/audio"  # type: ignore[attr-defined]
    assert invocation.model_query_string == "lang=en&rate=16000"  # type: ignore[attr-defined]
    assert invocation.target_variant == "blue"
    assert await settle(lambda: open_connections(runtime) == 0)


async def test_eight_mib_each_way_through_small_windows(runtime: LocalRuntime) -> None:
    """16 KiB server window: send() waits for WINDOW_UPDATEs; the answer is 8 MiB too."""
    block = bytes(range(256)) * 256  # 64 KiB
    blocks = 128
    digest = hashlib.sha256()
    async with (
        client_for(runtime) as client,
        client.invoke_endpoint_with_bidirectional_stream(endpoint_name="echo") as s,
    ):

        async def produce() -> None:
            for _ in range(blocks):
                await s.send(block)
            await s.end_input()

        producer = asyncio.create_task(produce())
        received = 0
        async for part in s:
            received += len(part.bytes)
            digest.update(part.bytes)
        await producer
    assert received == blocks * len(block)
    assert digest.hexdigest() == hashlib.sha256(block * blocks).hexdigest()


async def test_twenty_concurrent_streams(runtime: LocalRuntime) -> None:
    async with client_for(runtime) as client:

        async def one(n: int) -> list[bytes]:
            call = client.invoke_endpoint_with_bidirectional_stream(endpoint_name="echo")
            async with call as stream:
                got = []
                answers = stream.__aiter__()
                for i in range(5):
                    await stream.send(f"{n}:{i}".encode())
                    got.append((await answers.__anext__()).bytes)
                await stream.end_input()
                return got

        results = await asyncio.gather(*(one(n) for n in range(20)))
    assert results == [[f"{n}:{i}".encode() for i in range(5)] for n in range(20)]
    assert len(runtime.invocations("echo")) == 20
    assert await settle(lambda: open_connections(runtime) == 0)


async def test_handler_output_types_and_empty_answer(runtime: LocalRuntime) -> None:
    async def kinds(invocation: Any, inbound: AsyncIterator[BidirectionalPart]) -> Any:
        yield b"raw"
        yield "text"
        yield BidirectionalPart(b"part", "BINARY", "COMPLETE")
        async for _ in inbound:
            pass

    async def silent(invocation: Any, inbound: AsyncIterator[BidirectionalPart]) -> Any:
        async for _ in inbound:
            pass
        return
        yield  # an async generator that yields nothing

    runtime.add_bidirectional_endpoint("kinds", kinds)
    runtime.add_bidirectional_endpoint("silent", silent, variant="v2")
    async with client_for(runtime) as client:
        async with client.invoke_endpoint_with_bidirectional_stream(endpoint_name="kinds") as s:
            await s.end_input()
            parts = [part async for part in s]
        assert parts == [
            BidirectionalPart(b"raw"),
            BidirectionalPart(b"text", "UTF8"),
            BidirectionalPart(b"part", "BINARY", "COMPLETE"),
        ]
        async with client.invoke_endpoint_with_bidirectional_stream(endpoint_name="silent") as s:
            await s.send(b"")
            await s.end_input()
            assert [part async for part in s] == []
            assert s.invoked_production_variant == "v2"


# ------------------------------------------------------------------------------ flow control


async def test_slow_consumer_bounds_buffering(runtime: LocalRuntime) -> None:
    """A client that does not read stops the handler after about one receive window."""
    produced = 0

    async def firehose(invocation: Any, inbound: AsyncIterator[BidirectionalPart]) -> Any:
        nonlocal produced
        for _ in range(256):  # 16 MiB if nobody stopped it
            produced += 65536
            yield bytes(65536)

    runtime.add_bidirectional_endpoint("firehose", firehose)
    async with client_for(runtime) as client:
        call = client.invoke_endpoint_with_bidirectional_stream(endpoint_name="firehose")
        async with call as stream:
            await stream.end_input()
            answers = stream.__aiter__()
            first = await answers.__anext__()  # response started; now stop reading
            stalled = await quiet(lambda: produced)
            exchange = stream._exchange
            assert exchange is not None
            assert exchange.buffered <= DEFAULT_BIDI_RECEIVE_WINDOW
            # The window, plus a part in flight and one being produced.
            assert stalled <= DEFAULT_BIDI_RECEIVE_WINDOW + 3 * 65536
            total = len(first.bytes) + sum([len(part.bytes) async for part in answers])
    assert total == 256 * 65536


async def test_slow_server_makes_send_wait(runtime: LocalRuntime) -> None:
    release = asyncio.Event()

    async def sluggish(invocation: Any, inbound: AsyncIterator[BidirectionalPart]) -> Any:
        await release.wait()
        async for part in inbound:
            yield str(len(part.bytes))

    runtime.add_bidirectional_endpoint("sluggish", sluggish)
    async with client_for(runtime) as client:
        call = client.invoke_endpoint_with_bidirectional_stream(endpoint_name="sluggish")
        async with call as stream:
            sender = asyncio.create_task(stream.send(bytes(200 * 1024)))  # > the 16 KiB window
            await quiet(lambda: 0, turns=500)
            assert not sender.done()  # waiting for the server's window
            release.set()
            await sender
            await stream.end_input()
            assert [part.bytes async for part in stream] == [b"204800"]


# ------------------------------------------------------------------------------------ errors


async def test_unknown_endpoint_is_input_validation_error(runtime: LocalRuntime) -> None:
    async with client_for(runtime) as client:
        with pytest.raises(InputValidationError) as caught:
            async with client.invoke_endpoint_with_bidirectional_stream(endpoint_name="nope") as s:
                await s.send(b"x")
                await s.end_input()
                [part async for part in s]
    error = caught.value
    assert isinstance(error, ValidationError)
    assert error.status_code == 400
    assert error.code == "InputValidationError"
    assert "nope" in (error.message or "")
    assert error.request_id


async def test_container_error_before_first_yield_is_model_error(runtime: LocalRuntime) -> None:
    async def refuses(invocation: Any, inbound: AsyncIterator[BidirectionalPart]) -> Any:
        async for _ in inbound:
            raise ContainerError(415, "unsupported audio")
        yield b""

    runtime.add_bidirectional_endpoint("refuses", refuses)
    async with client_for(runtime) as client:
        with pytest.raises(ModelError) as caught:
            async with client.invoke_endpoint_with_bidirectional_stream(
                endpoint_name="refuses"
            ) as s:
                await s.send(b"audio")
                [part async for part in s]
    error = caught.value
    assert error.status_code == 424
    assert error.original_status_code == 415
    assert error.original_message == "unsupported audio"
    assert error.log_stream_arn and "refuses" in error.log_stream_arn
    assert error.error_code == "ModelError"


async def test_container_error_after_first_yield_is_model_stream_error(
    runtime: LocalRuntime,
) -> None:
    async def breaks(invocation: Any, inbound: AsyncIterator[BidirectionalPart]) -> Any:
        async for part in inbound:
            yield part
            raise ContainerError(500, "decoder crashed")

    runtime.add_bidirectional_endpoint("breaks", breaks)
    async with client_for(runtime) as client:
        call = client.invoke_endpoint_with_bidirectional_stream(endpoint_name="breaks")
        async with call as stream:
            await stream.send(b"one")
            answers = stream.__aiter__()
            assert (await answers.__anext__()).bytes == b"one"
            with pytest.raises(ModelStreamError) as caught:
                await answers.__anext__()
    assert caught.value.error_code == "StreamBroken"
    assert "decoder crashed" in (caught.value.message or "")
    assert await settle(lambda: open_connections(runtime) == 0)


async def test_service_unavailable_before_input_is_retried(runtime: LocalRuntime) -> None:
    runtime.fail_next("echo", 2, error="ServiceUnavailableError", status=503)
    async with (
        client_for(runtime) as client,
        client.invoke_endpoint_with_bidirectional_stream(endpoint_name="echo") as s,
    ):
        answers = s.__aiter__()
        first = asyncio.create_task(answers.__anext__())  # sees the 503s, retries
        assert await settle(lambda: runtime.call_count("echo") == 3)
        await s.send(b"after retries")
        assert (await first).bytes == b"after retries"
        await s.end_input()
        assert s.response_metadata is not None
        assert s.response_metadata.retry_attempts == 2
    assert runtime.call_count("echo") == 3


async def test_service_unavailable_retries_run_out(runtime: LocalRuntime) -> None:
    runtime.fail_next("echo", 5, error="ServiceUnavailableError", status=503)
    async with client_for(runtime) as client:
        with pytest.raises(ServiceUnavailableError) as caught:
            async with client.invoke_endpoint_with_bidirectional_stream(endpoint_name="echo") as s:
                [part async for part in s]
    assert caught.value.status_code == 503
    assert runtime.call_count("echo") == 3


async def test_internal_server_error_is_not_retried(runtime: LocalRuntime) -> None:
    runtime.fail_next("echo", 1, error="InternalServerError", status=500)
    async with client_for(runtime) as client:
        with pytest.raises(InternalServerError):
            async with client.invoke_endpoint_with_bidirectional_stream(endpoint_name="echo") as s:
                await s.send(b"x")
                [part async for part in s]
    assert runtime.call_count("echo") == 1


async def test_error_after_input_was_sent_is_not_retried(runtime: LocalRuntime) -> None:
    runtime.fail_next("echo", 1, error="ServiceUnavailableError", status=503)
    async with client_for(runtime) as client:
        with pytest.raises(ServiceUnavailableError):
            async with client.invoke_endpoint_with_bidirectional_stream(endpoint_name="echo") as s:
                # Sent before the answer could be seen: the input may have reached a model.
                s._sent_any = True
                [part async for part in s]
    assert runtime.call_count("echo") == 1


async def test_bad_request_signature_is_403(runtime: LocalRuntime) -> None:
    client = SageMakerRuntimeClient(
        "us-east-1",
        bidirectional_endpoint_url=runtime.bidirectional_url,
        endpoint_url=runtime.url,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key="wrong",
        retry_policy=FAST_RETRIES,
    )
    async with client:
        with pytest.raises(ServiceError) as caught:
            async with client.invoke_endpoint_with_bidirectional_stream(endpoint_name="echo") as s:
                await s.send(b"x")
                [part async for part in s]
    assert caught.value.status_code == 403
    assert caught.value.code == "InvalidSignatureException"
    assert "wrong" not in str(caught.value)


async def test_bad_event_signature_is_refused(runtime: LocalRuntime) -> None:
    async with client_for(runtime) as client:
        with pytest.raises(ServiceError) as caught:
            async with client.invoke_endpoint_with_bidirectional_stream(endpoint_name="echo") as s:
                assert s._signer is not None
                s._signer._credentials = FrozenCredentials(ACCESS_KEY, "not-the-secret")
                await s.send(b"forged")
                [part async for part in s]
    assert caught.value.status_code == 403
    assert caught.value.code == "InvalidSignatureException"
    assert runtime.invocations("echo")  # the request was fine; its event was not


async def test_credentials_rotating_mid_stream_keep_the_chain(runtime: LocalRuntime) -> None:
    async with (
        client_for(runtime) as client,
        client.invoke_endpoint_with_bidirectional_stream(endpoint_name="echo") as s,
    ):
        await s.send(b"before")
        # A rotation: new calls would sign with the new key; this stream keeps its snapshot.
        client._credentials._frozen = FrozenCredentials("AKIDOTHER", "other-secret")
        await s.send(b"after")
        await s.end_input()
        assert [part.bytes async for part in s] == [b"before", b"after"]


async def test_connection_refused_is_endpoint_connection_error() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again below: nothing listens there
    client = SageMakerRuntimeClient(
        "us-east-1",
        endpoint_url=f"http://127.0.0.1:{port}",
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        retry_policy=FAST_RETRIES,
    )
    async with client:
        assert client.bidirectional_endpoint_url == f"http://127.0.0.1:{port}"
        with pytest.raises(EndpointConnectionError):
            async with client.invoke_endpoint_with_bidirectional_stream(endpoint_name="echo"):
                pass


async def test_reset_stream_is_connection_closed_error(runtime: LocalRuntime) -> None:
    runtime.reset_connection_next("echo")
    async with client_for(runtime) as client:
        with pytest.raises(ConnectionClosedError):
            async with client.invoke_endpoint_with_bidirectional_stream(endpoint_name="echo") as s:
                [part async for part in s]
    assert runtime.call_count("echo") == 1  # a reset after the request arrived is not retried


async def test_parameters_are_validated_before_sending(runtime: LocalRuntime) -> None:
    async with client_for(runtime) as client:
        for kwargs in (
            {"endpoint_name": ""},
            {"endpoint_name": "-bad"},
            {"endpoint_name": "x" * 64},
            {"endpoint_name": "ok", "model_invocation_path": "/lead"},
            {"endpoint_name": "ok", "model_query_string": "q" * 2049},
            {"endpoint_name": "ok", "target_variant": "v" * 64},
        ):
            with pytest.raises(ParamValidationError):
                client.invoke_endpoint_with_bidirectional_stream(**kwargs)
        async with client.invoke_endpoint_with_bidirectional_stream(endpoint_name="echo") as s:
            with pytest.raises(ParamValidationError):
                await s.send(b"x", data_type="TEXT")
            with pytest.raises(ParamValidationError):
                await s.send(b"x", completion_state="DONE")
            with pytest.raises(ParamValidationError):
                await s.send(123)  # type: ignore[arg-type]
            await s.end_input()
            await s.end_input()  # idempotent
            with pytest.raises(RuntimeError):
                await s.send(b"late")
            assert [part async for part in s] == []
    assert runtime.invocations("echo")[0].endpoint_name == "echo"


# ------------------------------------------------------------------- cancellation and shutdown


async def test_cancellation_at_every_step_resets_the_stream(runtime: LocalRuntime) -> None:
    ended: list[str] = []
    gate = asyncio.Event()

    async def watched(invocation: Any, inbound: AsyncIterator[BidirectionalPart]) -> Any:
        try:
            await gate.wait()
            async for part in inbound:
                yield part
        finally:
            ended.append(invocation.request_id)

    runtime.add_bidirectional_endpoint("watched", watched)
    async with client_for(runtime) as client:

        async def waiting_for_answer() -> None:
            call = client.invoke_endpoint_with_bidirectional_stream(endpoint_name="watched")
            async with call as s:
                await s.send(b"x")
                [part async for part in s]

        async def waiting_for_window() -> None:
            call = client.invoke_endpoint_with_bidirectional_stream(endpoint_name="watched")
            async with call as s:
                await s.send(bytes(1024 * 1024))

        async def entering() -> None:
            call = client.invoke_endpoint_with_bidirectional_stream(endpoint_name="watched")
            async with call:
                await asyncio.Event().wait()

        for number, step in enumerate((waiting_for_answer, waiting_for_window, entering), 1):
            before = len(ended)
            task = asyncio.create_task(step())
            assert await settle(lambda n=number: len(runtime.invocations("watched")) == n)
            await quiet(lambda: 0, turns=300)  # let the step get to where it waits
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert not client._bidi_streams.streams
            assert await settle(lambda n=before + 1: len(ended) == n), step.__name__
            assert await settle(lambda: open_connections(runtime) == 0), step.__name__


async def test_shutdown_with_streams_open(runtime: LocalRuntime) -> None:
    client = client_for(runtime)
    reader_errors: list[BaseException] = []

    async def reader() -> None:
        try:
            async with client.invoke_endpoint_with_bidirectional_stream(endpoint_name="echo") as s:
                await s.send(b"hello")
                async for _ in s:
                    pass
        except BaseException as exc:
            reader_errors.append(exc)

    tasks = [asyncio.create_task(reader()) for _ in range(3)]
    assert await settle(lambda: len(runtime.invocations("echo")) == 3)
    await client.shutdown(grace=0)
    await asyncio.gather(*tasks)
    assert len(reader_errors) == 3
    assert all(isinstance(exc, ClientClosedError) for exc in reader_errors)
    assert await settle(lambda: open_connections(runtime) == 0)
    with pytest.raises(ClientClosedError):
        client.invoke_endpoint_with_bidirectional_stream(endpoint_name="echo")


async def test_leaving_the_block_early_resets_and_closes(runtime: LocalRuntime) -> None:
    async with client_for(runtime) as client:
        async with client.invoke_endpoint_with_bidirectional_stream(endpoint_name="echo") as s:
            await s.send(b"only this")
            async for _ in s:
                break
        assert not client._bidi_streams.streams
        with pytest.raises(ClientClosedError):
            await s.send(b"after close")
    assert await settle(lambda: open_connections(runtime) == 0)


# ----------------------------------------------------------------------------------------- TLS


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, ssl.SSLContext, str]:
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(server)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    ca_file = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return server, client, str(ca_file)


async def test_tls_with_alpn_h2(
    tls: tuple[ssl.SSLContext, ssl.SSLContext, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    server_context, client_context, ca_file = tls
    credentials = botocore.credentials.Credentials(ACCESS_KEY, SECRET_KEY)
    async with LocalRuntime(credentials=credentials, ssl_context=server_context) as rt:
        rt.add_bidirectional_endpoint("echo", echo)
        assert rt.bidirectional_url.startswith("https://")
        client = client_for(rt, bidirectional_ssl_context=client_context)
        async with (
            client,
            client.invoke_endpoint_with_bidirectional_stream(endpoint_name="echo") as s,
        ):
            await s.send("secure")
            await s.end_input()
            assert [part.bytes async for part in s] == [b"secure"]
        # Without the CA the handshake fails: a connection error, never a plaintext fallback.
        untrusting = client_for(rt, retry_policy=RetryPolicy.none())
        async with untrusting:
            with pytest.raises(CertificateVerificationError) as caught:
                async with untrusting.invoke_endpoint_with_bidirectional_stream(
                    endpoint_name="echo"
                ):
                    pass
            assert "certificate" in str(caught.value)
        # The client's TLS settings apply: verify=<CA bundle>, verify=False, AWS_CA_BUNDLE.
        for kwargs in ({"verify": ca_file}, {"verify": False}, {"ca_bundle": ca_file}):
            async with (
                client_for(rt, **kwargs) as configured,
                configured.invoke_endpoint_with_bidirectional_stream(endpoint_name="echo") as s,
            ):
                await s.send("configured")
                await s.end_input()
                assert [part.bytes async for part in s] == [b"configured"]
        monkeypatch.setenv("AWS_CA_BUNDLE", ca_file)
        async with (
            client_for(rt) as bundled,
            bundled.invoke_endpoint_with_bidirectional_stream(endpoint_name="echo") as s,
        ):
            await s.send("bundled")
            await s.end_input()
            assert [part.bytes async for part in s] == [b"bundled"]
        # The HTTP/1.1 operations of the same client still work over the same TLS settings.
        rt.add_endpoint("plain", lambda invocation: b"http/1.1")
        async with client_for(rt, verify=ca_file) as both:
            result = await both.invoke_endpoint(endpoint_name="plain", body=b"x")
            assert result.body == b"http/1.1"


# -------------------------------------------------------------------------- the optional extra


def test_missing_h2_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from sagemaker_rt_aio import _h2

    monkeypatch.setitem(sys.modules, "h2", None)
    monkeypatch.setitem(sys.modules, "h2.config", None)
    with pytest.raises(ImportError, match=r"\[bidi\]"):
        _h2.import_h2()


# -------------------------------------------------------------- faults inside a stream, timeouts


async def test_internal_stream_failure_after_some_parts(runtime: LocalRuntime) -> None:
    runtime.fail_bidirectional_stream_next("echo", after_parts=2, message="the stream broke")
    async with (
        client_for(runtime) as client,
        client.invoke_endpoint_with_bidirectional_stream(endpoint_name="echo") as stream,
    ):
        for word in (b"a", b"b", b"c"):
            await stream.send(word)
        got = []
        with pytest.raises(InternalStreamFailure) as caught:
            async for part in stream:
                got.append(part.bytes)
    assert got == [b"a", b"b"]
    assert caught.value.message == "the stream broke"
    runtime.fail_bidirectional_stream_next("echo", error="ModelStreamError", error_code="X1")
    async with (
        client_for(runtime) as client,
        client.invoke_endpoint_with_bidirectional_stream(endpoint_name="echo") as stream,
    ):
        with pytest.raises(ModelStreamError) as model_caught:
            [part async for part in stream]
    assert model_caught.value.error_code == "X1"


async def test_read_timeout_applies_once_input_ended(runtime: LocalRuntime) -> None:
    async def mute(invocation: Any, inbound: AsyncIterator[BidirectionalPart]) -> Any:
        async for _ in inbound:
            pass
        await asyncio.Event().wait()  # never answers
        yield b""

    runtime.add_bidirectional_endpoint("mute", mute)
    timeout = aiohttp.ClientTimeout(sock_connect=5, sock_read=0.05)
    async with client_for(runtime, timeout=timeout) as client:
        with pytest.raises(ReadTimeoutError):
            async with client.invoke_endpoint_with_bidirectional_stream(
                endpoint_name="mute"
            ) as stream:
                await stream.end_input()
                [part async for part in stream]
    assert await settle(lambda: open_connections(runtime) == 0)


async def test_shutdown_interrupts_a_hung_credential_provider(runtime: LocalRuntime) -> None:
    client = client_for(runtime)
    entered = asyncio.Event()

    async def hang() -> FrozenCredentials:
        entered.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    client._credentials.get = hang  # type: ignore[method-assign]

    async def call() -> None:
        async with client.invoke_endpoint_with_bidirectional_stream(endpoint_name="echo"):
            pass

    # Cancelled by its caller while the provider hangs: a plain cancellation, nothing left open.
    task = asyncio.create_task(call())
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not client._bidi_streams.streams
    # Interrupted by shutdown: ClientClosedError.
    entered.clear()
    task = asyncio.create_task(call())
    await entered.wait()
    await client.shutdown(grace=0)
    with pytest.raises(ClientClosedError):
        await task
    assert not client._bidi_streams.streams


async def test_server_going_away_mid_stream_is_connection_closed() -> None:
    credentials = botocore.credentials.Credentials(ACCESS_KEY, SECRET_KEY)
    rt = LocalRuntime(credentials=credentials)
    await rt.start()
    try:
        rt.add_bidirectional_endpoint("echo", echo)
        async with client_for(rt) as client:
            with pytest.raises(ConnectionClosedError):
                async with client.invoke_endpoint_with_bidirectional_stream(
                    endpoint_name="echo"
                ) as stream:
                    await stream.send(b"one")
                    answers = stream.__aiter__()
                    assert (await answers.__anext__()).bytes == b"one"
                    await rt.stop()  # the runtime (and its connections) go away
                    await answers.__anext__()
            assert not client._bidi_streams.streams
    finally:
        await rt.stop()


async def test_send_cancelled_partway_through_an_event_breaks_only_that_stream(
    runtime: LocalRuntime,
) -> None:
    gate = asyncio.Event()

    async def gated(invocation: Any, inbound: AsyncIterator[BidirectionalPart]) -> Any:
        await gate.wait()
        async for part in inbound:
            yield part

    runtime.add_bidirectional_endpoint("gated", gated)
    async with client_for(runtime) as client:
        async with client.invoke_endpoint_with_bidirectional_stream(endpoint_name="gated") as s:
            sender = asyncio.create_task(s.send(bytes(256 * 1024)))  # > the 16 KiB window
            await quiet(lambda: 0, turns=300)
            sender.cancel()
            with pytest.raises(asyncio.CancelledError):
                await sender
            # Half an event went out: the stream cannot carry another one.
            with pytest.raises(ConnectionClosedError, match="partway"):
                await s.send(b"next")
        # The client and other streams are fine.
        gate.set()
        async with client.invoke_endpoint_with_bidirectional_stream(endpoint_name="echo") as s:
            await s.send(b"still fine")
            await s.end_input()
            assert [part.bytes async for part in s] == [b"still fine"]
    assert await settle(lambda: open_connections(runtime) == 0)


async def test_model_that_answers_without_reading(runtime: LocalRuntime) -> None:
    async def greeter(invocation: Any, inbound: AsyncIterator[BidirectionalPart]) -> Any:
        yield "hello, I do not listen"

    runtime.add_bidirectional_endpoint("greeter", greeter)
    async with (
        client_for(runtime) as client,
        client.invoke_endpoint_with_bidirectional_stream(endpoint_name="greeter") as s,
    ):
        assert [part.bytes async for part in s] == [b"hello, I do not listen"]
        await s.end_input()  # nothing left to end: not an error
        with pytest.raises(RuntimeError):
            await s.send(b"too late")
    assert await settle(lambda: open_connections(runtime) == 0)


async def test_mutual_tls_with_the_clients_certificate(tmp_path: Any) -> None:
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server)
    server.verify_mode = ssl.CERT_REQUIRED
    ca.configure_trust(server)
    ca_file, cert_file = tmp_path / "ca.pem", tmp_path / "client.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    ca.issue_cert("client@example.com").private_key_and_cert_chain_pem.write_to_path(str(cert_file))
    credentials = botocore.credentials.Credentials(ACCESS_KEY, SECRET_KEY)
    async with LocalRuntime(credentials=credentials, ssl_context=server) as rt:
        rt.add_bidirectional_endpoint("echo", echo)
        client = client_for(rt, verify=str(ca_file), client_cert=str(cert_file))
        async with (
            client,
            client.invoke_endpoint_with_bidirectional_stream(endpoint_name="echo") as s,
        ):
            await s.send("mutual")
            await s.end_input()
            assert [part.bytes async for part in s] == [b"mutual"]
        # Without the certificate the server ends the handshake: a typed error, not retried.
        anonymous = client_for(rt, verify=str(ca_file))
        async with anonymous:
            with pytest.raises((SSLError, ConnectionClosedError, EndpointConnectionError)):
                async with anonymous.invoke_endpoint_with_bidirectional_stream(
                    endpoint_name="echo"
                ) as s:
                    await s.send("anonymous")
                    [part async for part in s]
        assert len(rt.invocations("echo")) == 1


async def _raw_request(runtime: LocalRuntime, headers: dict[str, str], body: bytes) -> int:
    """Send one request as given (no signing of ours beyond what ``headers`` hold); the status."""
    from yarl import URL

    from sagemaker_rt_aio._h2 import H2Exchange

    url = URL(runtime.bidirectional_url)
    exchange = await H2Exchange.open(
        url, ssl_context=None, connect_timeout=5, read_timeout=5, receive_window=65535
    )
    try:
        path = "/endpoints/echo/invocations-bidirectional-stream"
        pseudo = [(":method", "POST"), (":scheme", "http"), (":authority", url.authority)]
        exchange.send_headers([*pseudo, (":path", path), *headers.items()])
        with contextlib.suppress(ConnectionClosedError):  # refused on the headers alone
            await exchange.send(body, end_stream=True)
        status, _ = await exchange.response()
        return status
    finally:
        await exchange.close()


async def test_runtime_refuses_unsigned_and_wrongly_hashed_requests(runtime: LocalRuntime) -> None:
    from sagemaker_rt_aio._signing import sign

    assert (
        await _raw_request(runtime, {"content-type": "application/vnd.amazon.eventstream"}, b"")
        == 403
    )
    headers = {
        "content-type": "application/vnd.amazon.eventstream",
        "x-amz-content-sha256": "UNSIGNED-PAYLOAD",
    }
    sign(
        method="POST",
        host=runtime.bidirectional_url.split("//", 1)[1],
        path="/endpoints/echo/invocations-bidirectional-stream",
        headers=headers,
        payload_hash="UNSIGNED-PAYLOAD",
        credentials=FrozenCredentials(ACCESS_KEY, SECRET_KEY),
        region="us-east-1",
        service="sagemaker",
    )
    lowered = {name.lower(): value for name, value in headers.items()}
    assert await _raw_request(runtime, lowered, b"") == 403  # events must be signed
    assert runtime.invocations("echo") == []


@pytest.mark.parametrize("order", ["read-first", "send-first"])
async def test_both_directions_see_the_same_error_answer(runtime: LocalRuntime, order: str) -> None:
    """The error answer is in before either direction acts; then the sender and the reader race
    to read it (and to decide whether to retry): both get the same typed error."""
    async with client_for(runtime) as client:
        for _ in range(3):
            async with client.invoke_endpoint_with_bidirectional_stream(
                endpoint_name="missing"
            ) as stream:
                exchange = stream._exchange
                assert exchange is not None
                assert await settle(lambda ex=exchange: ex.status is not None)

                async def read() -> None:
                    [part async for part in stream]

                async def send() -> None:
                    await stream.send(b"x")
                    await stream.end_input()

                if order == "read-first":
                    reader = asyncio.create_task(read())
                    sender = asyncio.create_task(send())
                else:
                    sender = asyncio.create_task(send())
                    reader = asyncio.create_task(read())
                results = await asyncio.gather(reader, sender, return_exceptions=True)
                for result in results:
                    assert isinstance(result, InputValidationError), repr(result)


async def test_a_view_streams_and_ends_with_its_client(runtime: LocalRuntime) -> None:
    client = client_for(runtime)
    view = client.with_options(timeout=aiohttp.ClientTimeout(sock_read=5))
    async with view.invoke_endpoint_with_bidirectional_stream(endpoint_name="echo") as stream:
        await stream.send(b"via a view")
        answers = stream.__aiter__()
        assert (await answers.__anext__()).bytes == b"via a view"
        pending = asyncio.create_task(answers.__anext__())
        await client.shutdown(grace=0)  # the view's stream ends with its client
        with pytest.raises(ClientClosedError):
            await pending
    assert not client._bidi_streams.streams
    assert await settle(lambda: open_connections(runtime) == 0)


async def test_a_cancelled_shutdown_still_resets_streams(runtime: LocalRuntime) -> None:
    client = client_for(runtime)
    async with client.invoke_endpoint_with_bidirectional_stream(endpoint_name="echo") as stream:
        await stream.send(b"x")
        await stream.end_input()  # input ended: this stream would get the grace
        shutdown = asyncio.create_task(client.shutdown(grace=60))
        assert await settle(lambda: client.closed)
        shutdown.cancel()  # an application's own shutdown deadline
        with pytest.raises(asyncio.CancelledError):
            await shutdown
        assert await settle(lambda: not client._bidi_streams.streams)
    assert await settle(lambda: open_connections(runtime) == 0)
