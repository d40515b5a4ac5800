"""The adaptive retry mode's rate limiter: the same numbers as botocore's, with an injected clock,
and in a client: it paces sends after throttling and never adds a retry."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import botocore.exceptions
import botocore.retries.adaptive as b_adaptive
import botocore.retries.bucket as b_bucket
import botocore.retries.throttling as b_throttling
import pytest
from aiohttp import web

from sagemaker_rt_aio import (
    ModelError,
    RetryPolicy,
    SageMakerRuntimeClient,
    ThrottlingException,
)
from sagemaker_rt_aio._ratelimit import (
    ClientRateLimiter,
    CubicCalculator,
    RateClocker,
    TokenBucket,
)

pytestmark = pytest.mark.timeout(30)

KEYS = {"aws_access_key_id": "AKIDADAPTIVE", "aws_secret_access_key": "adaptive-secret"}


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def current_time(self) -> float:  # botocore's Clock interface
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)  # yields, so that a runaway loop can still be timed out


def test_cubic_matches_botocore() -> None:
    ours = CubicCalculator(starting_max_rate=10, start_time=0)
    theirs = b_throttling.CubicCalculator(starting_max_rate=10, start_time=0)
    rand = random.Random(7)
    t = 0.0
    for _ in range(200):
        t += rand.uniform(0, 2)
        if rand.random() < 0.2:
            rate = rand.uniform(1, 50)
            assert ours.error_received(rate, t) == pytest.approx(theirs.error_received(rate, t))
        else:
            assert ours.success_received(t) == pytest.approx(theirs.success_received(t))


def test_token_bucket_matches_botocore() -> None:
    clock = FakeClock()
    ours = TokenBucket(max_rate=1, now=clock())
    theirs = b_bucket.TokenBucket(max_rate=1, clock=clock)
    rand = random.Random(3)
    for _ in range(300):
        clock.now += rand.uniform(0, 0.7)
        if rand.random() < 0.1:
            rate = rand.uniform(0.1, 20)
            ours.set_max_rate(rate, clock())
            theirs.max_rate = rate
        wait = ours.try_acquire(clock())
        try:
            theirs.acquire(block=False)
            got = True
        except botocore.exceptions.CapacityNotAvailableError:
            got = False
        assert (wait == 0) == got
        assert ours.capacity == pytest.approx(theirs.available_capacity)
        assert ours.max_rate == pytest.approx(theirs.max_rate)


class _Detector:
    throttled = False

    def is_throttling_error(self, **_: Any) -> bool:
        return self.throttled


def test_limiter_matches_botocore() -> None:
    clock = FakeClock()
    ours = ClientRateLimiter(clock=clock, sleep=clock.sleep)
    detector = _Detector()
    theirs = b_adaptive.ClientRateLimiter(
        rate_adjustor=b_throttling.CubicCalculator(starting_max_rate=0, start_time=clock()),
        rate_clocker=b_adaptive.RateClocker(clock),
        token_bucket=b_bucket.TokenBucket(max_rate=1, clock=clock),
        throttling_detector=detector,
        clock=clock,
    )
    rand = random.Random(11)
    for _ in range(300):
        clock.now += rand.uniform(0, 0.3)
        detector.throttled = rand.random() < 0.15
        ours.record(detector.throttled)
        theirs.on_receiving_response()
        assert ours.enabled == theirs._enabled
        assert ours.bucket.max_rate == pytest.approx(theirs._token_bucket.max_rate)
        assert ours.clocker.measured_rate == pytest.approx(theirs._rate_clocker.measured_rate)


async def test_limiter_waits_only_after_throttling() -> None:
    clock = FakeClock()
    limiter = ClientRateLimiter(clock=clock, sleep=clock.sleep)
    for _ in range(50):
        await limiter.acquire()
        limiter.record(False)
    assert clock.slept == []  # no pacing before the first throttle, as in botocore
    limiter.record(True)
    assert limiter.enabled
    for _ in range(5):
        await limiter.acquire()
    assert clock.slept and sum(clock.slept) > 0
    # Paced at the bucket's rate: five tokens at rate r take about 5 / r seconds, less a start.
    assert sum(clock.slept) <= 5 / limiter.bucket.max_rate + 1e-9


async def test_a_wait_below_the_clocks_resolution_ends() -> None:
    clock = FakeClock(1e9)  # a float this large cannot move by a nanosecond
    limiter = ClientRateLimiter(clock=clock, sleep=clock.sleep)
    limiter.record(True)
    limiter.bucket.capacity = 1 - 1e-12
    await asyncio.wait_for(limiter.acquire(), 5)
    assert limiter.bucket.capacity < 1e-9


def test_rate_clocker_smooths_like_botocore() -> None:
    clock = FakeClock(10.0)
    ours, theirs = RateClocker(clock()), b_adaptive.RateClocker(clock)
    for step in range(100):
        clock.now += 0.05 + (step % 7) * 0.03
        assert ours.record(clock()) == pytest.approx(theirs.record())


# ------------------------------------------------------------------------------- in a client


def throttled() -> web.Response:
    return web.json_response(
        {"message": "Rate exceeded"},
        status=400,
        headers={"x-amzn-ErrorType": "ThrottlingException:http://internal.amazon.com/"},
    )


def fast_adaptive(max_attempts: int = 3) -> RetryPolicy:
    return RetryPolicy(
        mode="adaptive", max_attempts=max_attempts, base_delay=0, throttle_base_delay=0
    )


async def test_adaptive_client_paces_after_throttling(scripted_server: Any) -> None:
    async def throttle(request: web.Request, body: bytes) -> web.StreamResponse:
        return throttled()

    async def ok(request: web.Request, body: bytes) -> web.StreamResponse:
        return web.Response(body=b"ok")

    scripted_server.script = [throttle, ok]
    client = SageMakerRuntimeClient(
        "us-east-1", endpoint_url=scripted_server.url, retry_policy=fast_adaptive(), **KEYS
    )
    limiter = client.rate_limiter
    assert limiter is not None
    clock = FakeClock(time.monotonic())  # going on from the limiter's own clock
    limiter.clock, limiter.sleep = clock, clock.sleep
    async with client:
        result = await client.invoke_endpoint(endpoint_name="e", body=b"x")
        assert result.body == b"ok"
        assert result.response_metadata.retry_attempts == 1
        assert limiter.enabled
        for _ in range(3):
            await client.invoke_endpoint(endpoint_name="e", body=b"x")
    assert clock.slept, "sends after a throttle are paced"
    assert len(scripted_server.received) == 5
    assert "cfg/retry-mode#adaptive" in scripted_server.received[0].headers["User-Agent"]


async def test_adaptive_mode_never_adds_retries(scripted_server: Any) -> None:
    async def throttle(request: web.Request, body: bytes) -> web.StreamResponse:
        return throttled()

    scripted_server.script = [throttle]
    client = SageMakerRuntimeClient(
        "us-east-1", endpoint_url=scripted_server.url, retry_policy=fast_adaptive(2), **KEYS
    )
    assert client.rate_limiter is not None
    clock = FakeClock(time.monotonic())
    client.rate_limiter.clock, client.rate_limiter.sleep = clock, clock.sleep
    async with client:
        with pytest.raises(ThrottlingException):
            await client.invoke_endpoint(endpoint_name="e", body=b"x")
        assert len(scripted_server.received) == 2  # max_attempts, not more

        async def model_error(request: web.Request, body: bytes) -> web.StreamResponse:
            return web.json_response(
                {"message": "boom", "OriginalStatusCode": 500},
                status=424,
                headers={"x-amzn-ErrorType": "ModelError:http://internal.amazon.com/"},
            )

        scripted_server.script = [model_error]
        with pytest.raises(ModelError):
            await client.invoke_endpoint(endpoint_name="e", body=b"x")
        assert len(scripted_server.received) == 3  # the model may have run: sent once


def test_other_modes_have_no_limiter() -> None:
    for mode in ("legacy", "standard"):
        policy = RetryPolicy(mode=mode)
        assert SageMakerRuntimeClient("us-east-1", retry_policy=policy, **KEYS).rate_limiter is None
    with pytest.raises(ValueError):
        RetryPolicy(mode="eager")
