"""Retries, timeouts, bounded concurrency, cancellation and shutdown, against real loopback faults.

Every server here is an aiohttp server on 127.0.0.1; nothing of aiohttp is mocked. Waits are driven
by events the servers and middlewares set, with a bound on each so that a bug fails instead of
hanging.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from calendar import timegm
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from conftest import FakeTime, Handler, Received, ScriptedServer, json_error

from sagemaker_rt_aio import (
    CallNext,
    ClientClosedError,
    ConnectionClosedError,
    DeadlineExceededError,
    EndpointConnectionError,
    HttpRequest,
    HttpResponse,
    InternalDependencyException,
    InternalFailure,
    ModelError,
    ModelNotReadyException,
    PoolTimeoutError,
    ReadTimeoutError,
    RetryPolicy,
    SageMakerRuntimeClient,
    ServiceError,
    ServiceUnavailable,
    ThrottlingException,
    ValidationError,
)
from sagemaker_rt_aio._constants import SIGN_AGAIN_AFTER
from sagemaker_rt_aio._watchdog import ReadWatchdog
from sagemaker_rt_aio.middleware import LoggingMiddleware

ACCESS_KEY = "AKIDRESILIENCE"
SECRET = "resilienceSECRETkey/9f8e7d6c5b4a"
TOKEN = "resilienceSESSIONtoken=="
BOUND = 5.0  # no single wait in these tests may take longer than this

# Tiny delays keep the tests fast; the decisions are the same as with the defaults.
FAST = RetryPolicy(
    base_delay=0.001,
    max_delay=0.01,
    throttle_base_delay=0.001,
    model_not_ready_base_delay=0.005,
    model_not_ready_max_delay=0.02,
)


def make_client(url: str, **kwargs: Any) -> SageMakerRuntimeClient:
    kwargs.setdefault("retry_policy", FAST)
    return SageMakerRuntimeClient(
        "us-east-1",
        endpoint_url=url,
        allow_http=True,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET,
        **kwargs,
    )


def ok(body: bytes = b"ok", **headers: str) -> Handler:
    async def handler(request: web.Request, received: bytes) -> web.StreamResponse:
        return web.Response(body=body, headers={"x-amzn-RequestId": "req-ok", **headers})

    return handler


def unavailable(**headers: str) -> Handler:
    async def handler(request: web.Request, body: bytes) -> web.StreamResponse:
        return web.json_response(
            {"message": "try later"},
            status=503,
            headers={"x-amzn-ErrorType": "ServiceUnavailable", **headers},
        )

    return handler


def reset_after_read() -> Handler:
    """The request was read (the model may have run it), then the connection dropped."""

    async def handler(request: web.Request, body: bytes) -> web.StreamResponse:
        assert request.transport is not None
        request.transport.close()
        return web.Response()

    return handler


def wait_then_ok(release: asyncio.Event, arrived: asyncio.Event | None = None) -> Handler:
    """Answers once ``release`` is set (or after BOUND seconds, so that no handler lingers)."""

    async def handler(request: web.Request, body: bytes) -> web.StreamResponse:
        if arrived is not None:
            arrived.set()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(release.wait(), BOUND)
        return web.Response(body=b"late")

    return handler


def free_port() -> int:
    """A port with nothing listening on it: connecting there is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@contextlib.asynccontextmanager
async def serve(
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]], **runner_kwargs: Any
) -> AsyncIterator[tuple[str, web.AppRunner]]:
    """A one-handler loopback server, for the tests that need runner options."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, shutdown_timeout=1.0, **runner_kwargs)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}", runner
    finally:
        await runner.cleanup()


class AttemptLog:
    """A middleware that records each attempt it sees and what came of it."""

    def __init__(self) -> None:
        self.attempts: list[int] = []
        self.outcomes: list[str] = []

    async def __call__(self, request: HttpRequest, call_next: CallNext) -> HttpResponse:
        self.attempts.append(request.attempt)
        try:
            response = await call_next(request)
        except Exception as exc:
            self.outcomes.append(type(exc).__name__)
            raise
        self.outcomes.append(str(response.status))
        return response


def signed_headers(received: Received) -> list[str]:
    return received.headers["Authorization"].split("SignedHeaders=")[1].split(",")[0].split(";")


def verify_signature(received: Received, url: str) -> None:
    """Recompute the request's SigV4 signature with botocore, from what the server received."""
    authorization = received.headers["Authorization"]
    request = AWSRequest(
        method=received.method,
        url=url + received.raw_path,
        headers={name: received.headers[name] for name in signed_headers(received)},
        data=received.body,
    )
    request.context["timestamp"] = received.headers["X-Amz-Date"]
    auth = SigV4Auth(Credentials(ACCESS_KEY, SECRET), "sagemaker", "us-east-1")
    string_to_sign = auth.string_to_sign(request, auth.canonical_request(request))
    assert authorization.endswith("Signature=" + auth.signature(string_to_sign, request))


def amz_epoch(received: Received) -> int:
    return timegm(time.strptime(received.headers["X-Amz-Date"], "%Y%m%dT%H%M%SZ"))


async def until(condition: Callable[[], bool]) -> None:
    """Let the loop run until ``condition`` holds (at most BOUND seconds)."""
    for _ in range(int(BOUND / 0.002)):
        if condition():
            return
        await asyncio.sleep(0.002)
    raise AssertionError("the condition never held")


def held_first(release: asyncio.Event) -> Handler:
    """Echoes each body; the one ``b"first"`` only once ``release`` is set (at most BOUND s)."""

    async def handler(request: web.Request, body: bytes) -> web.StreamResponse:
        if body == b"first":
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(release.wait(), BOUND)
        return web.Response(body=body)

    return handler


def tick(watchdog: ReadWatchdog) -> None:
    """One of the client's read watchdog's ticks, now (its timer is set again from here)."""
    watchdog.close()
    watchdog.check(asyncio.get_running_loop())


# -- what is retried ----------------------------------------------------------------------------


async def test_503_503_200_succeeds_after_two_retries(scripted_server: ScriptedServer) -> None:
    scripted_server.script = [unavailable(), unavailable(), ok(b"answer")]
    async with make_client(scripted_server.url) as client:
        result = await client.invoke_endpoint(endpoint_name="ep", body=b"{}")
    assert result.body == b"answer"
    assert result.response_metadata.retry_attempts == 2
    assert result.response_metadata.http_status_code == 200
    assert len(scripted_server.received) == 3
    assert {r.body for r in scripted_server.received} == {b"{}"}


async def test_503_until_attempts_run_out(scripted_server: ScriptedServer) -> None:
    scripted_server.script = [unavailable()]
    async with make_client(scripted_server.url) as client:
        with pytest.raises(ServiceUnavailable) as caught:
            await client.invoke_endpoint(endpoint_name="ep", body=b"{}")
    assert len(scripted_server.received) == FAST.max_attempts == 3
    assert caught.value.response_metadata is not None
    assert caught.value.response_metadata.retry_attempts == 2


@pytest.mark.parametrize("status", [400, 429])
async def test_throttling_is_retried(scripted_server: ScriptedServer, status: int) -> None:
    throttled = json_error(status, "ThrottlingException", "Rate exceeded")
    scripted_server.script = [throttled, throttled, ok()]
    async with make_client(scripted_server.url) as client:
        result = await client.invoke_endpoint(endpoint_name="ep", body=b"{}")
    assert result.response_metadata.retry_attempts == 2
    assert len(scripted_server.received) == 3


async def test_throttling_until_attempts_run_out(scripted_server: ScriptedServer) -> None:
    scripted_server.script = [json_error(400, "ThrottlingException", "Rate exceeded")]
    policy = RetryPolicy(max_attempts=2, base_delay=0.001, throttle_base_delay=0.001)
    async with make_client(scripted_server.url, retry_policy=policy) as client:
        with pytest.raises(ThrottlingException):
            await client.invoke_endpoint(endpoint_name="ep", body=b"{}")
    assert len(scripted_server.received) == 2


def cold_start(seconds: float) -> tuple[Handler, list[float]]:
    """429 ModelNotReadyException until ``seconds`` after the first request, then 200."""
    first: list[float] = []

    async def handler(request: web.Request, body: bytes) -> web.StreamResponse:
        now = time.monotonic()
        if not first:
            first.append(now)
        if now - first[0] < seconds:
            return await json_error(429, "ModelNotReadyException", "Model is loading")(
                request, body
            )
        return web.Response(body=b"warm")

    return handler, first


async def test_cold_start_outlasts_max_attempts(scripted_server: ScriptedServer) -> None:
    handler, _ = cold_start(0.3)
    scripted_server.script = [handler]
    policy = RetryPolicy(
        max_attempts=2,
        model_not_ready_base_delay=0.01,
        model_not_ready_max_delay=0.05,
        model_not_ready_budget=BOUND,
    )
    started = time.monotonic()
    async with make_client(scripted_server.url, retry_policy=policy) as client:
        result = await client.invoke_endpoint(endpoint_name="ep", body=b"{}")
    assert time.monotonic() - started >= 0.3
    assert result.body == b"warm"
    retries = result.response_metadata.retry_attempts
    assert retries + 1 > policy.max_attempts  # the budget, not max_attempts, bounded it
    assert len(scripted_server.received) == retries + 1


async def test_cold_start_longer_than_the_budget(scripted_server: ScriptedServer) -> None:
    handler, _ = cold_start(3600)
    scripted_server.script = [handler]
    policy = RetryPolicy(
        max_attempts=2,
        model_not_ready_base_delay=1.0,
        model_not_ready_max_delay=2.0,
        model_not_ready_budget=25.0,  # in fake seconds: the requests' real time is negligible
    )
    fake = FakeTime()
    async with fake.install(make_client(scripted_server.url, retry_policy=policy)) as client:
        started = fake.clock()
        with pytest.raises(ModelNotReadyException) as caught:
            await client.invoke_endpoint(endpoint_name="ep", body=b"{}")
        elapsed = fake.clock() - started
    assert elapsed >= 25.0  # the budget was spent...
    assert fake.slept < 25.0 + 2.0  # ...and no retry began after it (the waits asked for)
    assert all(0 < wait <= 2.0 for wait in fake.sleeps)
    assert len(scripted_server.received) == len(fake.sleeps) + 1 > policy.max_attempts
    assert caught.value.status_code == 429
    assert caught.value.response_metadata is not None
    assert caught.value.response_metadata.retry_attempts == len(scripted_server.received) - 1


async def test_many_callers_ride_out_one_cold_start(scripted_server: ScriptedServer) -> None:
    """300 concurrent calls through a cold start, with the default retry quota (500 tokens, 5 a
    retry, i.e. 100 charged retries): cold-start retries are not charged, so all succeed."""
    # The cold start lasts 450 requests, not a wall-clock time: on a loaded machine the callers
    # might otherwise all arrive after it ended.
    refused = 0

    async def handler(request: web.Request, body: bytes) -> web.StreamResponse:
        nonlocal refused
        if refused < 450:
            refused += 1
            return await json_error(429, "ModelNotReadyException", "Model is loading")(
                request, body
            )
        return web.Response(body=b"warm")

    scripted_server.script = [handler]
    policy = RetryPolicy(
        model_not_ready_base_delay=0.02,
        model_not_ready_max_delay=0.05,
        model_not_ready_budget=BOUND,
    )
    async with make_client(scripted_server.url, retry_policy=policy) as client:
        results = await asyncio.gather(
            *(client.invoke_endpoint(endpoint_name="ep", body=b"{}") for _ in range(300))
        )
    assert [r.body for r in results] == [b"warm"] * 300
    retries = sum(r.response_metadata.retry_attempts for r in results)
    assert retries > 100  # more retries than the quota would have paid for
    assert len(scripted_server.received) == 300 + retries


# -- what is never retried ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("handler", "error_type", "status"),
    [
        (
            json_error(424, "ModelError", "the model failed", OriginalStatusCode=500),
            ModelError,
            424,
        ),
        (json_error(400, "ValidationError", "bad input"), ValidationError, 400),
        (json_error(530, "InternalDependencyException", "dep"), InternalDependencyException, 530),
        (json_error(500, "InternalFailure", "oops"), InternalFailure, 500),
        (json_error(429, "SomethingElse", "not a cold start"), ServiceError, 429),
    ],
)
async def test_service_errors_outside_retry_on_are_not_retried(
    scripted_server: ScriptedServer, handler: Handler, error_type: type[ServiceError], status: int
) -> None:
    scripted_server.script = [handler, ok()]
    async with make_client(scripted_server.url, retry_policy=FAST) as client:
        with pytest.raises(error_type) as caught:
            await client.invoke_endpoint(endpoint_name="ep", body=b"{}")
    assert caught.value.status_code == status
    assert caught.value.response_metadata is not None
    assert caught.value.response_metadata.retry_attempts == 0
    assert len(scripted_server.received) == 1


@pytest.mark.parametrize("status", [502, 504])
async def test_bare_gateway_errors_are_not_retried(
    scripted_server: ScriptedServer, status: int
) -> None:
    async def bare(request: web.Request, body: bytes) -> web.StreamResponse:
        return web.Response(status=status, body=b"")

    scripted_server.script = [bare, ok()]
    async with make_client(scripted_server.url) as client:
        with pytest.raises(ServiceError) as caught:
            await client.invoke_endpoint(endpoint_name="ep", body=b"{}")
    assert caught.value.status_code == status
    assert len(scripted_server.received) == 1


async def test_read_timeout_is_not_resent(scripted_server: ScriptedServer) -> None:
    release = asyncio.Event()
    scripted_server.script = [wait_then_ok(release), ok()]
    timeout = aiohttp.ClientTimeout(sock_read=0.2)
    started = time.monotonic()
    async with make_client(scripted_server.url, timeout=timeout) as client:
        with pytest.raises(ReadTimeoutError) as caught:
            await client.invoke_endpoint(endpoint_name="ep", body=b"{}")
        elapsed = time.monotonic() - started
        assert len(scripted_server.received) == 1  # decided: a retry would already be on its way
        release.set()
    assert isinstance(caught.value, TimeoutError)
    assert isinstance(caught.value.__cause__, aiohttp.ServerTimeoutError)
    assert caught.value.request_sent
    assert elapsed >= 0.2  # it waited for sock_read; never resent (above)
    assert len(scripted_server.received) == 1


async def test_reset_after_the_request_was_read_is_not_resent(
    scripted_server: ScriptedServer,
) -> None:
    scripted_server.script = [reset_after_read(), ok()]
    async with make_client(scripted_server.url) as client:
        with pytest.raises(ConnectionClosedError) as caught:
            await client.invoke_endpoint(endpoint_name="ep", body=b"{}")
        assert isinstance(caught.value, ConnectionError)
        assert isinstance(caught.value.__cause__, aiohttp.ClientError)
        assert len(scripted_server.received) == 1
        # The client is fine afterwards: the broken connection was not put back in the pool.
        result = await client.invoke_endpoint(endpoint_name="ep", body=b"{}")
    assert result.body == b"ok"
    assert len(scripted_server.received) == 2


async def test_reset_in_the_middle_of_the_answer_is_not_resent(
    scripted_server: ScriptedServer,
) -> None:
    async def truncated(request: web.Request, body: bytes) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Length": "100"})
        await response.prepare(request)
        await response.write(b"0123456789")
        assert request.transport is not None
        request.transport.close()
        return response

    scripted_server.script = [truncated, ok()]
    async with make_client(scripted_server.url) as client:
        with pytest.raises(ConnectionClosedError) as caught:
            await client.invoke_endpoint(endpoint_name="ep", body=b"{}")
    assert isinstance(caught.value.__cause__, aiohttp.ClientError)
    assert len(scripted_server.received) == 1


# -- refused connections ------------------------------------------------------------------------


async def test_refused_connections_are_retried_then_raised() -> None:
    attempts = AttemptLog()
    policy = RetryPolicy(max_attempts=4, base_delay=0.001, max_delay=0.01)
    url = f"http://127.0.0.1:{free_port()}"
    async with make_client(url, retry_policy=policy, middlewares=[attempts]) as client:
        with pytest.raises(EndpointConnectionError) as caught:
            await client.invoke_endpoint(endpoint_name="ep", body=b"{}")
    assert attempts.attempts == [1, 2, 3, 4]
    assert attempts.outcomes == ["EndpointConnectionError"] * 4
    assert isinstance(caught.value, ConnectionError)
    assert not isinstance(caught.value, TimeoutError)
    assert not caught.value.request_sent
    assert isinstance(caught.value.__cause__, aiohttp.ClientConnectorError)
    assert isinstance(caught.value.__cause__.os_error, ConnectionRefusedError)


async def test_refused_connections_not_retried_when_turned_off() -> None:
    attempts = AttemptLog()
    policy = RetryPolicy(max_attempts=4, base_delay=0.001, retry_connection_errors=False)
    url = f"http://127.0.0.1:{free_port()}"
    async with make_client(url, retry_policy=policy, middlewares=[attempts]) as client:
        with pytest.raises(EndpointConnectionError):
            await client.invoke_endpoint(endpoint_name="ep", body=b"{}")
    assert attempts.attempts == [1]


# -- the retry quota ----------------------------------------------------------------------------


async def test_retry_quota_stops_retries_once_drained(scripted_server: ScriptedServer) -> None:
    policy = RetryPolicy(
        max_attempts=5,
        base_delay=0.001,
        model_not_ready_base_delay=0.001,
        quota_capacity=10,
        retry_cost=5,
    )
    received = scripted_server.received

    async def sent_by(call: Awaitable[Any], expect: type[BaseException] | None) -> int:
        before = len(received)
        if expect is None:
            await call
        else:
            with pytest.raises(expect):
                await call
        return len(received) - before

    scripted_server.script = [unavailable()]
    async with make_client(scripted_server.url, retry_policy=policy) as client:

        def call() -> Awaitable[Any]:
            return client.invoke_endpoint(endpoint_name="ep", body=b"{}")

        # 10 tokens pay for two retries; the third is refused although attempts remain.
        assert await sent_by(call(), ServiceUnavailable) == 3
        assert await sent_by(call(), ServiceUnavailable) == 1
        # Successes earn tokens back, one each: five of them pay for one more retry.
        scripted_server.script = [ok()]
        for _ in range(5):
            assert await sent_by(call(), None) == 1
        scripted_server.script = [unavailable()]
        assert await sent_by(call(), ServiceUnavailable) == 2
        assert await sent_by(call(), ServiceUnavailable) == 1
        # A retried success gives back what its retry took.
        scripted_server.script = [ok()] * 5
        for _ in range(5):
            assert await sent_by(call(), None) == 1
        scripted_server.script = [unavailable(), ok()]
        assert await sent_by(call(), None) == 2  # took 5, gave 5 back
        scripted_server.script = [unavailable()]
        assert await sent_by(call(), ServiceUnavailable) == 2
        # Cold-start retries are free, even with the bucket empty, and their success earns the
        # one token of any success.
        not_ready = json_error(429, "ModelNotReadyException", "loading")
        scripted_server.script = [not_ready, not_ready, ok()]
        assert await sent_by(call(), None) == 3
        scripted_server.script = [ok()] * 4
        for _ in range(4):
            assert await sent_by(call(), None) == 1
        scripted_server.script = [unavailable()]
        assert await sent_by(call(), ServiceUnavailable) == 2


# -- signing, middlewares, logging --------------------------------------------------------------


async def test_every_attempt_is_signed_after_the_middlewares(
    scripted_server: ScriptedServer,
) -> None:
    async def tag(request: HttpRequest, call_next: CallNext) -> HttpResponse:
        request.headers["X-Test-Attempt"] = str(request.attempt)
        return await call_next(request)

    scripted_server.script = [unavailable(), unavailable(), ok()]
    async with make_client(scripted_server.url, middlewares=[tag]) as client:
        await client.invoke_endpoint(endpoint_name="ep", body=b"{}")
    received = scripted_server.received
    assert [r.headers["X-Test-Attempt"] for r in received] == ["1", "2", "3"]
    signatures = set()
    for r in received:
        assert "x-test-attempt" in signed_headers(r)  # added by a middleware, then signed
        assert "x-amz-date" in signed_headers(r)
        verify_signature(r, scripted_server.url)
        signatures.add(r.headers["Authorization"].rsplit("Signature=", 1)[1])
    assert len(signatures) == 3


async def test_retry_after_is_honoured_and_the_retry_signed_anew(
    scripted_server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    scripted_server.script = [unavailable(**{"Retry-After": "1.1"}), ok()]
    policy = RetryPolicy(base_delay=0.001, max_delay=2.0)  # the cap on Retry-After
    fake = FakeTime()
    fake.patch_wall_clock(monkeypatch)
    async with fake.install(make_client(scripted_server.url, retry_policy=policy)) as client:
        result = await client.invoke_endpoint(endpoint_name="ep", body=b"{}")
    assert fake.sleeps == [1.1]  # the wait asked for: what the server said
    assert result.response_metadata.retry_attempts == 1
    first, second = scripted_server.received
    assert amz_epoch(second) >= amz_epoch(first) + 1  # a fresh X-Amz-Date, not a replay
    verify_signature(first, scripted_server.url)
    verify_signature(second, scripted_server.url)


async def test_middlewares_run_in_order_once_per_attempt(scripted_server: ScriptedServer) -> None:
    events: list[str] = []

    def recorder(name: str) -> Callable[[HttpRequest, CallNext], Awaitable[HttpResponse]]:
        async def middleware(request: HttpRequest, call_next: CallNext) -> HttpResponse:
            events.append(f"{name}>{request.attempt}")
            try:
                return await call_next(request)
            finally:
                events.append(f"{name}<{request.attempt}")

        return middleware

    scripted_server.script = [unavailable(), ok()]
    async with make_client(
        scripted_server.url, middlewares=[recorder("outer"), recorder("inner")]
    ) as client:
        await client.invoke_endpoint(endpoint_name="ep", body=b"{}")
    assert events == [
        "outer>1",
        "inner>1",
        "inner<1",
        "outer<1",
        "outer>2",
        "inner>2",
        "inner<2",
        "outer<2",
    ]


async def test_a_middleware_sees_error_answers_and_transport_failures(
    scripted_server: ScriptedServer,
) -> None:
    attempts = AttemptLog()
    scripted_server.script = [unavailable(), reset_after_read()]
    async with make_client(scripted_server.url, middlewares=[attempts]) as client:
        with pytest.raises(ConnectionClosedError):
            await client.invoke_endpoint(endpoint_name="ep", body=b"{}")
    assert attempts.attempts == [1, 2]
    assert attempts.outcomes == ["503", "ConnectionClosedError"]


async def test_logging_middleware_logs_each_attempt_without_secrets(
    scripted_server: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="sagemaker_rt_aio")
    scripted_server.script = [
        json_error(503, "ServiceUnavailable", "busy"),
        ok(b"the-answer", **{"x-amzn-RequestId": "req-42"}),
    ]
    async with SageMakerRuntimeClient(
        "us-east-1",
        endpoint_url=scripted_server.url,
        allow_http=True,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET,
        aws_session_token=TOKEN,
        retry_policy=FAST,
        middlewares=[LoggingMiddleware()],
    ) as client:
        await client.invoke_endpoint(
            endpoint_name="my-endpoint",
            body=b"private-payload",
            custom_attributes="private-attributes",
        )
    lines = [r.getMessage() for r in caplog.records if r.name == "sagemaker_rt_aio.requests"]
    assert len(lines) == 2
    assert all(r.levelno == logging.INFO for r in caplog.records if r.name.endswith("requests"))
    first, second = lines
    for line in lines:
        assert "InvokeEndpoint" in line and "endpoint=my-endpoint" in line
        assert "latency_ms=" in line
    assert "attempt=1" in first and "status=503" in first
    assert "request_id=req-ServiceUnavailable" in first
    assert "attempt=2" in second and "status=200" in second and "request_id=req-42" in second
    signatures = [
        r.headers["Authorization"].rsplit("Signature=", 1)[1] for r in scripted_server.received
    ]
    everything = "\n".join(r.getMessage() for r in caplog.records)
    assert "Signature=<redacted>" in everything  # the DEBUG header lines were there, redacted
    for secret in (SECRET, TOKEN, *signatures, "private-payload", "private-attributes"):
        assert secret not in everything


async def test_logging_middleware_logs_transport_failures(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="sagemaker_rt_aio.requests")
    policy = RetryPolicy(max_attempts=2, base_delay=0.001)
    url = f"http://127.0.0.1:{free_port()}"
    async with make_client(url, retry_policy=policy, middlewares=[LoggingMiddleware()]) as client:
        with pytest.raises(EndpointConnectionError):
            await client.invoke_endpoint(endpoint_name="ep", body=b"{}")
    lines = [r.getMessage() for r in caplog.records if r.name == "sagemaker_rt_aio.requests"]
    assert len(lines) == 2
    assert "attempt=1" in lines[0] and "attempt=2" in lines[1]
    assert all("error=EndpointConnectionError" in line for line in lines)


# -- deadlines ----------------------------------------------------------------------------------


async def test_deadline_bounds_retries_with_retry_after(scripted_server: ScriptedServer) -> None:
    scripted_server.script = [unavailable(**{"Retry-After": "10"})]
    policy = RetryPolicy(max_attempts=100, base_delay=0.001, max_delay=60.0)
    timeout = aiohttp.ClientTimeout(total=25, sock_read=5)  # fake seconds, but for the requests
    fake = FakeTime()
    client = fake.install(make_client(scripted_server.url, retry_policy=policy, timeout=timeout))
    async with client:
        with pytest.raises(ServiceUnavailable) as caught:
            await client.invoke_endpoint(endpoint_name="ep", body=b"{}")
    # Attempts at 0, 10, 20 s: a fourth at 30 s could not finish in time, so it is not made.
    assert fake.sleeps == [10, 10]
    assert len(scripted_server.received) == 3
    assert caught.value.response_metadata is not None
    assert caught.value.response_metadata.retry_attempts == 2


async def test_deadline_bounds_retries_with_backoff(scripted_server: ScriptedServer) -> None:
    scripted_server.script = [unavailable()]
    policy = RetryPolicy(max_attempts=1000, base_delay=2.0, max_delay=5.0)
    timeout = aiohttp.ClientTimeout(total=50, sock_read=5)  # fake seconds, but for the requests
    fake = FakeTime()
    client = fake.install(make_client(scripted_server.url, retry_policy=policy, timeout=timeout))
    async with client:
        started = fake.clock()
        with pytest.raises((ServiceUnavailable, DeadlineExceededError)):
            await client.invoke_endpoint(endpoint_name="ep", body=b"{}")
        elapsed = fake.clock() - started
    # Backoff until the deadline was one wait away, and no wait that would end past it.
    assert len(fake.sleeps) >= 5
    assert all(0 <= wait <= 5.0 for wait in fake.sleeps)
    assert elapsed >= 50 - 5.0
    assert fake.slept < 50
    assert len(scripted_server.received) == len(fake.sleeps) + 1


async def test_deadline_on_a_slow_answer(scripted_server: ScriptedServer) -> None:
    release = asyncio.Event()
    scripted_server.script = [wait_then_ok(release), ok()]
    timeout = aiohttp.ClientTimeout(total=0.5, sock_read=5)
    started = time.monotonic()
    async with make_client(scripted_server.url, timeout=timeout) as client:
        with pytest.raises(DeadlineExceededError) as caught:
            await client.invoke_endpoint(endpoint_name="ep", body=b"{}")
        elapsed = time.monotonic() - started
        release.set()
    assert isinstance(caught.value, TimeoutError)
    assert caught.value.request_sent
    assert elapsed >= 0.45  # it waited for the answer until the deadline
    assert len(scripted_server.received) == 1  # sent, maybe run: never re-sent


async def test_deadline_while_waiting_for_a_slot(scripted_server: ScriptedServer) -> None:
    holding = asyncio.Event()
    release = asyncio.Event()

    async def hold_first(request: HttpRequest, call_next: CallNext) -> HttpResponse:
        if request.headers.get("X-Amzn-SageMaker-Custom-Attributes") == "hold":
            holding.set()  # this attempt has the only slot
            await asyncio.wait_for(release.wait(), BOUND)
        return await call_next(request)

    timeout = aiohttp.ClientTimeout(total=0.5, sock_read=5)
    async with make_client(
        scripted_server.url, timeout=timeout, max_connections=1, middlewares=[hold_first]
    ) as client:
        first = asyncio.create_task(
            client.invoke_endpoint(endpoint_name="ep", body=b"1", custom_attributes="hold")
        )
        await asyncio.wait_for(holding.wait(), BOUND)
        started = time.monotonic()
        with pytest.raises(PoolTimeoutError) as caught:
            await client.invoke_endpoint(endpoint_name="ep", body=b"2")
        elapsed = time.monotonic() - started
        release.set()
        with contextlib.suppress(DeadlineExceededError):
            await first
    assert isinstance(caught.value, TimeoutError)
    assert not caught.value.request_sent
    assert elapsed >= 0.4  # it waited for a slot until the deadline
    assert b"2" not in [r.body for r in scripted_server.received]


def event_stream_server(
    release: asyncio.Event,
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """Answers a stream request with an open (empty) event stream until ``release`` is set, and
    anything else with 200."""

    async def handler(request: web.Request) -> web.StreamResponse:
        await request.read()
        if not request.path.endswith("invocations-response-stream"):
            return web.Response(body=request.headers.get("X-Amzn-SageMaker-Custom-Attributes"))
        response = web.StreamResponse(
            headers={"Content-Type": "application/vnd.amazon.eventstream"}
        )
        await response.prepare(request)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(release.wait(), BOUND)
        await response.write_eof()
        return response

    return handler


async def test_an_open_stream_holds_its_slot() -> None:
    """A started response stream keeps its connection, so it keeps its slot: with one connection,
    the next call waits for the stream, unsent and unsigned, instead of inside aiohttp's pool."""
    release = asyncio.Event()
    attempts = AttemptLog()
    timeout = aiohttp.ClientTimeout(total=0.5, sock_read=5)
    async with (
        serve(event_stream_server(release)) as (url, _),
        make_client(url, timeout=timeout, max_connections=1, middlewares=[attempts]) as client,
    ):
        async with client.invoke_endpoint_with_response_stream(endpoint_name="ep", body=b"{}"):
            with pytest.raises(PoolTimeoutError):
                await client.invoke_endpoint(endpoint_name="ep", body=b"{}")
            assert attempts.attempts == [1]  # the second call never reached a middleware
        release.set()
        # Leaving the block closed the stream and freed the slot.
        result = await client.invoke_endpoint(
            endpoint_name="ep", body=b"{}", custom_attributes="after"
        )
    assert result.body == b"after"


async def test_an_open_stream_on_the_flat_path_holds_its_slot() -> None:
    """Without middlewares or a deadline a stream takes call()'s flat path: its slot is still held
    until its connection is released, and a queued call goes once it is."""
    release = asyncio.Event()
    async with (
        serve(event_stream_server(release)) as (url, _),
        make_client(url, max_connections=1) as client,
    ):
        slots = client._pipeline._slots
        async with client.invoke_endpoint_with_response_stream(endpoint_name="ep", body=b"{}"):
            assert slots.free == 0
            queued = asyncio.ensure_future(
                client.invoke_endpoint(endpoint_name="ep", body=b"{}", custom_attributes="after")
            )
            for _ in range(20):
                await asyncio.sleep(0)
            assert not queued.done() and slots.queued == 1
        release.set()
        assert (await queued).body == b"after"
        # Read to its end, a stream gives its slot back too.
        async with client.invoke_endpoint_with_response_stream(
            endpoint_name="ep", body=b"{}"
        ) as stream:
            assert [part async for part in stream] == []
            assert slots.free == 1
    assert slots.free == 1


async def test_a_call_queued_behind_a_stream_goes_when_the_stream_ends() -> None:
    release = asyncio.Event()
    async with (
        serve(event_stream_server(release)) as (url, _),
        make_client(url, max_connections=1) as client,
        client.invoke_endpoint_with_response_stream(endpoint_name="ep", body=b"{}") as stream,
    ):
        queued = asyncio.create_task(
            client.invoke_endpoint(endpoint_name="ep", body=b"{}", custom_attributes="q")
        )
        done, _ = await asyncio.wait({queued}, timeout=0.2)
        assert not done  # waiting for the stream's slot
        release.set()
        assert [part async for part in stream] == []  # read to its end: that frees the slot
        result = await asyncio.wait_for(queued, BOUND)
    assert result.body == b"q"


# -- bounded concurrency ------------------------------------------------------------------------


async def test_max_connections_bounds_requests_in_flight_fifo(
    scripted_server: ScriptedServer,
) -> None:
    in_flight = 0
    peak = 0
    served: list[str] = []
    entered: list[str] = []

    async def slow(request: web.Request, body: bytes) -> web.StreamResponse:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        served.append(body.decode())
        await asyncio.sleep(0.02)
        in_flight -= 1
        return web.Response(body=body)

    async def record(request: HttpRequest, call_next: CallNext) -> HttpResponse:
        entered.append(request.body.decode())  # runs once the attempt has its slot
        return await call_next(request)

    scripted_server.default = slow
    async with make_client(scripted_server.url, max_connections=2, middlewares=[record]) as client:
        # Two connections, opened and pooled first, so that connecting adds no jitter.
        await asyncio.gather(
            *(client.invoke_endpoint(endpoint_name="ep", body=b"warm") for _ in range(2))
        )
        served.clear()
        entered.clear()
        peak = 0
        tasks = [
            asyncio.create_task(client.invoke_endpoint(endpoint_name="ep", body=str(i).encode()))
            for i in range(10)
        ]
        results = await asyncio.wait_for(asyncio.gather(*tasks), BOUND)
    ids = [str(i) for i in range(10)]
    assert [r.body.decode() for r in results] == ids
    assert peak == 2  # never more than max_connections at the server, and both used
    assert entered == ids  # slots handed out in order of submission
    # The server sees them in that order too, up to the two that travel side by side.
    assert sorted(served) == sorted(ids)
    for position, call_id in enumerate(served):
        assert abs(int(call_id) - position) <= 1, served


async def test_a_call_queued_for_its_connection_is_signed_before_it_waits(
    scripted_server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a deadline a call waits for its connection in the client's own pool, signed and
    built (a slot taken on credit): a wait shorter than SIGN_AGAIN_AFTER keeps that signature."""
    fake = FakeTime()
    fake.patch_wall_clock(monkeypatch)
    release_first = asyncio.Event()
    scripted_server.default = held_first(release_first)
    async with make_client(scripted_server.url, max_connections=1) as client:
        slots = client._pipeline._slots
        first = asyncio.create_task(client.invoke_endpoint(endpoint_name="ep", body=b"first"))
        await until(lambda: len(scripted_server.received) == 1)  # it holds the only slot
        queued_at = fake.wall()
        second = asyncio.create_task(client.invoke_endpoint(endpoint_name="ep", body=b"second"))
        await until(lambda: slots.queued == 1)
        assert slots.free == -1  # on credit: waiting in the pool
        fake.advance(5.0)  # the first call takes 5 s...
        release_first.set()
        await first
        result = await asyncio.wait_for(second, BOUND)
        assert slots.free == 1 and slots.queued == 0
    assert result.body == b"second"
    received = {r.body: r for r in scripted_server.received}
    assert amz_epoch(received[b"second"]) < int(queued_at) + 5  # dated when it was queued
    verify_signature(received[b"second"], scripted_server.url)


async def test_a_call_that_waited_long_for_its_connection_is_signed_again(
    scripted_server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeTime()
    fake.patch_wall_clock(monkeypatch)
    release_first = asyncio.Event()
    scripted_server.default = held_first(release_first)
    async with make_client(scripted_server.url, max_connections=1) as client:
        watchdog = client._pipeline.watchdog
        watchdog.clock = fake.clock
        slots = client._pipeline._slots
        first = asyncio.create_task(client.invoke_endpoint(endpoint_name="ep", body=b"first"))
        await until(lambda: len(scripted_server.received) == 1)
        queued_at = fake.wall()
        second = asyncio.create_task(client.invoke_endpoint(endpoint_name="ep", body=b"second"))
        await until(lambda: slots.queued == 1)
        tick(watchdog)  # finds it waiting for its connection
        fake.advance(SIGN_AGAIN_AFTER - 1)
        tick(watchdog)
        fake.advance(2)
        tick(watchdog)  # ... for longer than SIGN_AGAIN_AFTER now
        release_first.set()
        await first
        result = await asyncio.wait_for(second, BOUND)
    assert result.body == b"second"
    received = {r.body: r for r in scripted_server.received}
    assert amz_epoch(received[b"second"]) >= int(queued_at + SIGN_AGAIN_AFTER) + 1
    verify_signature(received[b"second"], scripted_server.url)
    assert len(scripted_server.received) == 2


async def test_shutdown_refuses_the_calls_waiting_for_their_connection(
    scripted_server: ScriptedServer,
) -> None:
    """Calls waiting in the pool are not work in flight: once shutdown begins they get
    ClientClosedError when a connection comes, and nothing of theirs is sent."""
    release_first = asyncio.Event()
    scripted_server.default = held_first(release_first)
    client = make_client(scripted_server.url, max_connections=1)
    slots = client._pipeline._slots
    first = asyncio.create_task(client.invoke_endpoint(endpoint_name="ep", body=b"first"))
    await until(lambda: len(scripted_server.received) == 1)
    queued = [
        asyncio.create_task(client.invoke_endpoint(endpoint_name="ep", body=b"queued"))
        for _ in range(3)
    ]
    await until(lambda: slots.queued == 3)
    shutdown = asyncio.create_task(client.shutdown(grace=BOUND))
    await asyncio.sleep(0)
    assert client.closed
    release_first.set()  # answers within the grace period
    assert (await asyncio.wait_for(first, BOUND)).body == b"first"
    for call in queued:
        with pytest.raises(ClientClosedError):
            await asyncio.wait_for(call, BOUND)
    await asyncio.wait_for(shutdown, BOUND)
    assert [r.body for r in scripted_server.received] == [b"first"]
    assert slots.free == 1 and slots.queued == 0


async def test_cancelling_a_call_waiting_for_its_connection_gives_up_its_place(
    scripted_server: ScriptedServer,
) -> None:
    release_first = asyncio.Event()
    scripted_server.default = held_first(release_first)
    async with make_client(scripted_server.url, max_connections=1) as client:
        slots = client._pipeline._slots
        first = asyncio.create_task(client.invoke_endpoint(endpoint_name="ep", body=b"first"))
        await until(lambda: len(scripted_server.received) == 1)
        queued = asyncio.create_task(client.invoke_endpoint(endpoint_name="ep", body=b"queued"))
        last = asyncio.create_task(client.invoke_endpoint(endpoint_name="ep", body=b"last"))
        await until(lambda: slots.queued == 2)
        queued.cancel()
        with pytest.raises(asyncio.CancelledError):
            await queued
        assert slots.queued == 1
        release_first.set()
        assert (await asyncio.wait_for(first, BOUND)).body == b"first"
        assert (await asyncio.wait_for(last, BOUND)).body == b"last"
        # One slot, one connection, neither lost: a later call still gets them.
        again = await asyncio.wait_for(
            client.invoke_endpoint(endpoint_name="ep", body=b"again"), BOUND
        )
        assert again.body == b"again"
        assert slots.free == 1
    assert [r.body for r in scripted_server.received] == [b"first", b"last", b"again"]


async def test_calls_with_and_without_a_deadline_keep_their_order_of_arrival(
    scripted_server: ScriptedServer,
) -> None:
    """A call with a deadline queues in the slots (it is signed when its turn comes, and its wait
    is bounded by its deadline); calls without one that arrive after it queue there behind it,
    rather than in the pool ahead of it."""
    release_first = asyncio.Event()
    scripted_server.default = held_first(release_first)
    async with make_client(scripted_server.url, max_connections=1) as client:
        bounded = client.with_options(timeout=aiohttp.ClientTimeout(total=BOUND * 4))
        slots = client._pipeline._slots
        first = asyncio.create_task(client.invoke_endpoint(endpoint_name="ep", body=b"first"))
        await until(lambda: len(scripted_server.received) == 1)
        calls = [asyncio.create_task(client.invoke_endpoint(endpoint_name="ep", body=b"pooled"))]
        await until(lambda: slots.queued == 1)
        calls.append(
            asyncio.create_task(bounded.invoke_endpoint(endpoint_name="ep", body=b"deadline"))
        )
        await until(lambda: slots.queued == 2)
        calls.append(asyncio.create_task(client.invoke_endpoint(endpoint_name="ep", body=b"after")))
        await until(lambda: slots.queued == 3)
        assert slots.free == -1  # only the first queued call is on credit
        release_first.set()
        await asyncio.wait_for(asyncio.gather(first, *calls), BOUND)
        assert slots.free == 1 and slots.queued == 0
    order = [r.body for r in scripted_server.received]
    assert order == [b"first", b"pooled", b"deadline", b"after"]


async def test_a_call_with_a_deadline_queues_behind_the_calls_on_credit_in_the_slots(
    scripted_server: ScriptedServer,
) -> None:
    """A slot given back repays a call on credit first (that call takes the connection): a call
    queued in the slots gets its slot only with a connection to take, so its deadline ends its
    wait there (PoolTimeoutError), never in the pool after it was signed."""
    releases = {b"first": asyncio.Event(), b"pooled": asyncio.Event()}

    async def handler(request: web.Request, body: bytes) -> web.StreamResponse:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(releases[body].wait(), BOUND)
        return web.Response(body=body)

    scripted_server.default = handler
    async with make_client(scripted_server.url, max_connections=1) as client:
        bounded = client.with_options(timeout=aiohttp.ClientTimeout(total=0.3))
        slots = client._pipeline._slots
        first = asyncio.create_task(client.invoke_endpoint(endpoint_name="ep", body=b"first"))
        await until(lambda: len(scripted_server.received) == 1)
        pooled = asyncio.create_task(client.invoke_endpoint(endpoint_name="ep", body=b"pooled"))
        await until(lambda: slots.queued == 1)
        deadline = asyncio.create_task(
            bounded.invoke_endpoint(endpoint_name="ep", body=b"deadline")
        )
        await until(lambda: slots.queued == 2)
        releases[b"first"].set()  # its connection goes to the call on credit, held in turn
        await until(lambda: len(scripted_server.received) == 2)
        with pytest.raises(PoolTimeoutError):
            await asyncio.wait_for(deadline, BOUND)
        releases[b"pooled"].set()
        await asyncio.wait_for(asyncio.gather(first, pooled), BOUND)
        assert slots.free == 1 and slots.queued == 0
    assert [r.body for r in scripted_server.received] == [b"first", b"pooled"]


# -- cancellation -------------------------------------------------------------------------------


async def test_cancelling_a_call_closes_its_connection() -> None:
    arrived = asyncio.Event()
    dropped = asyncio.Event()

    async def handler(request: web.Request) -> web.StreamResponse:
        await request.read()
        if request.headers.get("X-Amzn-SageMaker-Custom-Attributes") != "hang":
            return web.Response(body=b"fine")
        arrived.set()
        try:
            await asyncio.sleep(BOUND)
        except asyncio.CancelledError:
            dropped.set()  # aiohttp cancels the handler when the client drops the connection
            raise
        return web.Response(body=b"late")

    async with serve(handler, handler_cancellation=True) as (url, _), make_client(url) as client:
        task = asyncio.create_task(
            client.invoke_endpoint(endpoint_name="ep", body=b"{}", custom_attributes="hang")
        )
        await asyncio.wait_for(arrived.wait(), BOUND)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.wait_for(dropped.wait(), BOUND)  # the server saw the connection close
        result = await client.invoke_endpoint(endpoint_name="ep", body=b"{}")
        assert result.body == b"fine"


@pytest.mark.parametrize("total", [None, 5.0])
async def test_cancelling_a_queued_call_gives_up_its_place(
    scripted_server: ScriptedServer, total: float | None
) -> None:
    holding, release = asyncio.Event(), asyncio.Event()
    entered: list[bytes] = []

    async def hold_first(request: HttpRequest, call_next: CallNext) -> HttpResponse:
        entered.append(request.body)
        if request.body == b"first":
            holding.set()
            await asyncio.wait_for(release.wait(), BOUND)
        return await call_next(request)

    timeout = aiohttp.ClientTimeout(total=total, sock_read=5)
    async with make_client(
        scripted_server.url, timeout=timeout, max_connections=1, middlewares=[hold_first]
    ) as client:
        first = asyncio.create_task(client.invoke_endpoint(endpoint_name="ep", body=b"first"))
        await asyncio.wait_for(holding.wait(), BOUND)
        queued = asyncio.create_task(client.invoke_endpoint(endpoint_name="ep", body=b"queued"))
        last = asyncio.create_task(client.invoke_endpoint(endpoint_name="ep", body=b"last"))
        done, _ = await asyncio.wait({queued, last}, timeout=0.05)
        assert not done
        queued.cancel()
        with pytest.raises(asyncio.CancelledError):
            await queued
        release.set()
        assert (await asyncio.wait_for(first, BOUND)).body == b"first"
        assert (await asyncio.wait_for(last, BOUND)).body == b"last"
        # One slot, and it was not lost: a later call still gets it.
        assert (await client.invoke_endpoint(endpoint_name="ep", body=b"again")).body == b"again"
    assert entered == [b"first", b"last", b"again"]
    assert [r.body for r in scripted_server.received] == [b"first", b"last", b"again"]


# -- shutdown -----------------------------------------------------------------------------------


async def test_shutdown_lets_calls_finish_within_grace_then_ends_the_rest(
    scripted_server: ScriptedServer,
) -> None:
    quick_arrived, quick_release = asyncio.Event(), asyncio.Event()
    stuck_arrived, stuck_release = asyncio.Event(), asyncio.Event()

    async def route(request: web.Request, body: bytes) -> web.StreamResponse:
        if body == b"quick":
            return await wait_then_ok(quick_release, quick_arrived)(request, body)
        return await wait_then_ok(stuck_release, stuck_arrived)(request, body)

    scripted_server.default = route
    client = make_client(scripted_server.url)
    quick = asyncio.create_task(client.invoke_endpoint(endpoint_name="ep", body=b"quick"))
    stuck = asyncio.create_task(client.invoke_endpoint(endpoint_name="ep", body=b"stuck"))
    await asyncio.wait_for(asyncio.gather(quick_arrived.wait(), stuck_arrived.wait()), BOUND)

    started = time.monotonic()
    shutdown = asyncio.create_task(client.shutdown(grace=0.5))
    await asyncio.sleep(0)
    assert client.closed
    with pytest.raises(ClientClosedError):  # refused during the grace period, nothing sent
        await client.invoke_endpoint(endpoint_name="ep", body=b"refused")
    quick_release.set()  # answers within the grace period
    assert (await asyncio.wait_for(quick, BOUND)).body == b"late"
    await asyncio.wait_for(shutdown, BOUND)
    elapsed = time.monotonic() - started
    with pytest.raises(ClientClosedError):  # cancelled after the grace period: an error, not a
        await stuck  # CancelledError, in a caller that cancelled nothing
    assert not stuck.cancelled()
    assert elapsed >= 0.5  # the grace period was granted; the rest ended (above)
    with pytest.raises(ClientClosedError):
        await client.invoke_endpoint(endpoint_name="ep", body=b"after")
    stuck_release.set()
    assert sorted(r.body for r in scripted_server.received) == [b"quick", b"stuck"]


async def test_shutdown_wakes_a_call_waiting_to_retry(scripted_server: ScriptedServer) -> None:
    answered = asyncio.Event()

    async def note(request: HttpRequest, call_next: CallNext) -> HttpResponse:
        response = await call_next(request)
        answered.set()
        return response

    scripted_server.script = [unavailable(**{"Retry-After": "3600"})]
    policy = RetryPolicy(max_delay=7200.0)
    client = make_client(scripted_server.url, retry_policy=policy, middlewares=[note])
    call = asyncio.create_task(client.invoke_endpoint(endpoint_name="ep", body=b"{}"))
    await asyncio.wait_for(answered.wait(), BOUND)  # the call goes on to sleep for an hour
    # A grace of an hour too: only waking the sleeping call ends shutdown within BOUND.
    await asyncio.wait_for(client.shutdown(grace=3600), BOUND)
    with pytest.raises(ClientClosedError):
        await asyncio.wait_for(call, BOUND)
    assert len(scripted_server.received) == 1


async def test_shutdown_from_inside_a_call_does_not_hang(scripted_server: ScriptedServer) -> None:
    clients: list[SageMakerRuntimeClient] = []

    async def stop(request: HttpRequest, call_next: CallNext) -> HttpResponse:
        await clients[0].shutdown(grace=0.2)
        return await call_next(request)

    client = make_client(scripted_server.url, middlewares=[stop])
    clients.append(client)
    with pytest.raises(ClientClosedError):
        await asyncio.wait_for(client.invoke_endpoint(endpoint_name="ep", body=b"{}"), BOUND)
    assert client.closed
    assert scripted_server.received == []


async def test_calls_after_shutdown_send_nothing(scripted_server: ScriptedServer) -> None:
    client = make_client(scripted_server.url)
    await client.invoke_endpoint(endpoint_name="ep", body=b"{}")
    await client.shutdown()
    await client.shutdown()  # idempotent
    with pytest.raises(ClientClosedError):
        await client.invoke_endpoint(endpoint_name="ep", body=b"{}")
    with pytest.raises(ClientClosedError):
        async with client.invoke_endpoint_with_response_stream(endpoint_name="ep", body=b"{}"):
            pass
    assert len(scripted_server.received) == 1
