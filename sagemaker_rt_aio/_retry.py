"""When to try a call again, and how long to wait first: pure decisions, plus the retry quota.

The rule that shapes everything here: a request the model may have run is never sent again.
Inference is not idempotent (it costs money, and a model may act on its input), so only failures
that prove the request did not run are retried: the service's own "not now" answers
(``ServiceUnavailable``, ``ModelNotReadyException``, throttling) and connections that failed before
the request was written. A read timeout, a connection dropped after the request went out,
``ModelError`` and other 5xx answers are returned to the caller, who knows whether a re-run is safe.
(botocore retries read timeouts and dropped connections; with inference that can run the model
twice.)
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from ._errors import (
    ModelNotReadyException,
    ParamValidationError,
    SageMakerRuntimeError,
    ServiceError,
    TransportError,
)

DEFAULT_RETRY_ON = frozenset(
    {"ServiceUnavailable", "ModelNotReadyException", "ThrottlingException"}
)
# botocore's retry modes (botocore.config.Config retries={"mode": ...}).
RETRY_MODES = ("legacy", "standard", "adaptive")
THROTTLING_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestThrottled",
        "RequestThrottledException",
        "SlowDown",
    }
)


@dataclass(frozen=True)
class RetryPolicy:
    """How a client retries. Every attempt is signed afresh just before it is sent.

    - ``max_attempts``: attempts in all, the first included, for ordinary retryable errors.
    - ``base_delay``/``max_delay``: full-jitter exponential backoff, ``uniform(0, min(max_delay,
      base_delay * 2**retry))``; throttling starts from ``throttle_base_delay``.
    - ``retry_on``: service error codes to retry.
    - ``model_not_ready_budget``: ``ModelNotReadyException`` (a serverless cold start, a multi-model
      endpoint loading its model) is retried until this many seconds have passed since the first
      attempt, regardless of ``max_attempts``: such a load takes minutes, not milliseconds (AWS
      documents up to 360 s for a multi-model load), so it gets a longer, slower budget than a
      brown-out. Its waits grow from ``model_not_ready_base_delay`` up to ``model_not_ready_max_delay``.
    - ``respect_retry_after``: wait at least a ``Retry-After`` the service sent (capped by
      ``max_delay`` or ``model_not_ready_max_delay``).
    - ``quota_capacity``/``retry_cost``: a token bucket per client, as botocore's standard mode
      keeps: each retry takes ``retry_cost`` tokens, each success gives one back, and with the bucket
      empty errors are returned at once, so an outage does not multiply the traffic.
    - ``mode``: botocore's retry mode name (``AWS_RETRY_MODE``/``retry_mode``). ``"adaptive"``
      also paces the client's sends with botocore's client-side rate limiter, which slows down
      when the service throttles; ``"legacy"`` and ``"standard"`` change nothing else here (what is
      retried is always this policy's choice, never what the model may have run).
    """

    max_attempts: int = 3
    base_delay: float = 0.1
    max_delay: float = 20.0
    throttle_base_delay: float = 0.5
    retry_on: frozenset[str] = field(default=DEFAULT_RETRY_ON)
    retry_connection_errors: bool = True
    model_not_ready_budget: float = 180.0
    model_not_ready_base_delay: float = 1.0
    model_not_ready_max_delay: float = 10.0
    respect_retry_after: bool = True
    quota_capacity: int = 500
    retry_cost: int = 5
    mode: str = "standard"

    def __post_init__(self) -> None:
        for name in ("max_attempts", "quota_capacity", "retry_cost"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ParamValidationError(name, f"must be an int, got {type(value).__name__}")
        for name in (
            "base_delay",
            "max_delay",
            "throttle_base_delay",
            "model_not_ready_budget",
            "model_not_ready_base_delay",
            "model_not_ready_max_delay",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ParamValidationError(name, f"must be a number, got {type(value).__name__}")
        if self.mode not in RETRY_MODES:
            raise ValueError(f"mode must be one of {', '.join(RETRY_MODES)}, not {self.mode!r}")
        if self.max_attempts < 1:
            raise ValueError("max_attempts counts the first attempt: it must be at least 1")
        delays = (
            self.base_delay,
            self.max_delay,
            self.throttle_base_delay,
            self.model_not_ready_budget,
            self.model_not_ready_base_delay,
            self.model_not_ready_max_delay,
        )
        if min(delays) < 0:
            raise ValueError("delays and budgets must not be negative")
        if self.quota_capacity < 0 or self.retry_cost < 0:
            raise ValueError("quota_capacity and retry_cost must not be negative")
        if isinstance(self.retry_on, str):
            # frozenset("ServiceUnavailable") would be a set of letters, retrying nothing.
            raise TypeError("retry_on takes a collection of error codes, not a single string")
        object.__setattr__(self, "retry_on", frozenset(self.retry_on))

    @classmethod
    def none(cls) -> RetryPolicy:
        """One attempt, never a retry."""
        return cls(
            max_attempts=1,
            retry_on=frozenset(),
            retry_connection_errors=False,
            model_not_ready_budget=0.0,
        )


def should_retry(
    policy: RetryPolicy,
    error: SageMakerRuntimeError,
    *,
    attempt: int,
    elapsed: float,
    idempotent: bool = False,
    retry_statuses: frozenset[int] = frozenset(),
) -> bool:
    """Whether ``error``, raised by attempt number ``attempt`` (1-based), may be tried again.

    ``elapsed`` is the time since the call's first attempt started. ``idempotent`` requests (S3's
    GET, HEAD and PUT) may also retry a failure after the request was sent, and any answer whose
    status is in ``retry_statuses``: running them twice does no harm, unlike an inference.
    """
    if isinstance(error, ModelNotReadyException) and "ModelNotReadyException" in policy.retry_on:
        return elapsed < policy.model_not_ready_budget
    if attempt >= policy.max_attempts:
        return False
    if isinstance(error, ServiceError):
        return error.code in policy.retry_on or error.status_code in retry_statuses
    if isinstance(error, TransportError):
        return (
            policy.retry_connection_errors
            and error.retryable
            and (idempotent or not error.request_sent)
        )
    return False


def delay(
    policy: RetryPolicy,
    error: SageMakerRuntimeError,
    *,
    attempt: int,
    retry_after: float | None = None,
    rand: random.Random | None = None,
) -> float:
    """Seconds to wait before attempt ``attempt + 1``: full jitter over an exponential ceiling."""
    uniform = (rand or random).uniform
    if isinstance(error, ModelNotReadyException):
        base, cap = policy.model_not_ready_base_delay, policy.model_not_ready_max_delay
    elif isinstance(error, ServiceError) and error.code in THROTTLING_CODES:
        base, cap = policy.throttle_base_delay, policy.max_delay
    else:
        base, cap = policy.base_delay, policy.max_delay
    wait = uniform(0.0, min(cap, base * 2 ** (attempt - 1)))
    if retry_after is not None and policy.respect_retry_after:
        wait = max(wait, min(retry_after, cap))
    return wait


def retry_cost(policy: RetryPolicy, error: SageMakerRuntimeError) -> int:
    """Tokens a retry of ``error`` takes from the quota.

    A cold start is not an outage: its retries are already spread out by the ModelNotReady budget's
    slow backoff, and charging them would let one endpoint's cold start drain the quota and turn
    every other call's retries off. Everything else costs ``retry_cost``.
    """
    return 0 if isinstance(error, ModelNotReadyException) else policy.retry_cost


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds (the HTTP-date form is not used by AWS and is ignored)."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


class RetryQuota:
    """botocore's standard-mode retry token bucket, one per client."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.available = capacity

    def acquire(self, cost: int) -> bool:
        if cost > self.available:
            return False
        self.available -= cost
        return True

    def release(self, amount: int) -> None:
        self.available = min(self.capacity, self.available + amount)
