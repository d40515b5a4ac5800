"""The adaptive retry mode's client-side rate limiter: a port of botocore's
``retries/adaptive.py``, ``retries/bucket.py`` and ``retries/throttling.py``.

It only paces sends: before each attempt it takes a token from a bucket whose fill rate follows a
CUBIC curve (cut by ``beta`` on each throttling answer, growing back along the cubic afterwards).
It never decides what is retried; the :class:`~sagemaker_rt_aio.RetryPolicy` does that. Like
botocore's, it stays out of the way (no waiting at all) until the first throttling answer.

The arithmetic is pure and takes the time as an argument; :class:`ClientRateLimiter` adds the
waiting, with an injectable clock and sleep so that tests need no real time.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable

from ._errors import parse_error_response
from ._retry import THROTTLING_CODES
from ._transport import HttpRequest, HttpResponse

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[object]]

# botocore/retries/throttling.py
CUBIC_SCALE_CONSTANT = 0.4
CUBIC_BETA = 0.7
# botocore/retries/bucket.py
MIN_FILL_RATE = 0.5
# botocore/retries/adaptive.py
MAX_RATE_ADJUST_SCALE = 2.0
RATE_SMOOTHING = 0.8
RATE_TIME_BUCKET = 0.5


class CubicCalculator:
    """CUBIC congestion control applied to a send rate (botocore's ``CubicCalculator``)."""

    def __init__(
        self,
        starting_max_rate: float,
        start_time: float,
        scale_constant: float = CUBIC_SCALE_CONSTANT,
        beta: float = CUBIC_BETA,
    ) -> None:
        self.w_max = starting_max_rate
        self.scale_constant = scale_constant
        self.beta = beta
        self.k = self._zero_point()
        self.last_fail = start_time

    def _zero_point(self) -> float:
        return float(((self.w_max * (1 - self.beta)) / self.scale_constant) ** (1 / 3.0))

    def success_received(self, timestamp: float) -> float:
        dt = timestamp - self.last_fail
        return self.scale_constant * (dt - self.k) ** 3 + self.w_max

    def error_received(self, current_rate: float, timestamp: float) -> float:
        self.w_max = current_rate
        self.k = self._zero_point()
        self.last_fail = timestamp
        return current_rate * self.beta


class RateClocker:
    """The measured send rate, smoothed over half-second buckets (botocore's ``RateClocker``)."""

    def __init__(self, now: float) -> None:
        self.measured_rate = 0.0
        self._scale = 1 / RATE_TIME_BUCKET
        self._last_bucket = float(math.floor(now))
        self._count = 0

    def record(self, now: float) -> float:
        bucket = math.floor(now * self._scale) / self._scale
        self._count += 1
        if bucket > self._last_bucket:
            current_rate = self._count / (bucket - self._last_bucket)
            self.measured_rate = current_rate * RATE_SMOOTHING + self.measured_rate * (
                1 - RATE_SMOOTHING
            )
            self._count = 0
            self._last_bucket = bucket
        return self.measured_rate


class TokenBucket:
    """Tokens refilled at ``max_rate`` per second, at most ``max(max_rate, 1)`` of them
    (botocore's ``TokenBucket``, without its threads: :meth:`wait_time` says how long to wait)."""

    def __init__(self, max_rate: float, now: float) -> None:
        self.capacity = 0.0
        self._last: float | None = None
        self.fill_rate = MIN_FILL_RATE
        self.max_capacity = 1.0
        self.set_max_rate(max_rate, now)

    @property
    def max_rate(self) -> float:
        return self.fill_rate

    def set_max_rate(self, value: float, now: float) -> None:
        self._refill(now)
        self.fill_rate = max(value, MIN_FILL_RATE)
        self.max_capacity = value if value >= 1 else 1.0
        self.capacity = min(self.capacity, self.max_capacity)

    def try_acquire(self, now: float) -> float:
        """Take a token and return 0, or return the seconds until one is there (nothing taken)."""
        self._refill(now)
        # The tolerance: a wait shorter than the clock's resolution would never end.
        if self.capacity >= 1 - 1e-9:
            self.capacity -= 1
            return 0.0
        return (1 - self.capacity) / self.fill_rate

    def _refill(self, now: float) -> None:
        if self._last is None:
            self._last = now
            return
        self.capacity = min(self.max_capacity, self.capacity + (now - self._last) * self.fill_rate)
        self._last = now


class ClientRateLimiter:
    """One per client in adaptive mode. ``acquire()`` before each attempt, ``record(throttled)``
    after each answer; as a middleware (:meth:`middleware`) it does both. ``clock`` and ``sleep``
    may be replaced (tests drive them by hand)."""

    def __init__(self, *, clock: Clock = time.monotonic, sleep: Sleep = asyncio.sleep) -> None:
        now = clock()
        self.clock = clock
        self.sleep = sleep
        self.cubic = CubicCalculator(starting_max_rate=0, start_time=now)
        self.bucket = TokenBucket(max_rate=1, now=now)
        self.clocker = RateClocker(now)
        self.enabled = False  # until the first throttling answer, sends are not paced at all

    async def acquire(self) -> None:
        while self.enabled:
            wait = self.bucket.try_acquire(self.clock())
            if wait <= 0:
                return
            await self.sleep(wait)

    def record(self, throttled: bool) -> float:
        """Adjust the send rate after an answer; returns the bucket's new rate."""
        measured = self.clocker.record(self.clock())
        now = self.clock()
        if not throttled:
            new_rate = self.cubic.success_received(now)
        else:
            rate = measured if not self.enabled else min(measured, self.bucket.max_rate)
            new_rate = self.cubic.error_received(rate, now)
            self.enabled = True
        self.bucket.set_max_rate(min(new_rate, MAX_RATE_ADJUST_SCALE * measured), now)
        return self.bucket.max_rate

    async def middleware(
        self, request: HttpRequest, call_next: Callable[[HttpRequest], Awaitable[HttpResponse]]
    ) -> HttpResponse:
        await self.acquire()
        response = await call_next(request)
        self.record(is_throttling(response))
        return response


def is_throttling(response: HttpResponse) -> bool:
    """A throttling answer, by its error code as botocore's detector judges it (SageMaker's 429
    also means ``ModelNotReadyException``, which is not throttling)."""
    if response.status < 400:
        return False
    error = parse_error_response(response.status, response.headers, response.body)
    return error.code in THROTTLING_CODES
