"""RetryPolicy, should_retry, delay, parse_retry_after and RetryQuota: pure decisions, no I/O."""

from __future__ import annotations

import random
from typing import Any

import pytest

from sagemaker_rt_aio import (
    ConnectionClosedError,
    ConnectTimeoutError,
    DeadlineExceededError,
    EndpointConnectionError,
    InternalDependencyException,
    InternalFailure,
    ModelError,
    ModelNotReadyException,
    PoolTimeoutError,
    ReadTimeoutError,
    RetryPolicy,
    SageMakerRuntimeError,
    ServiceError,
    ServiceUnavailable,
    ThrottlingException,
    TransportError,
    ValidationError,
)
from sagemaker_rt_aio._retry import (
    DEFAULT_RETRY_ON,
    RetryQuota,
    delay,
    parse_retry_after,
    retry_cost,
    should_retry,
)

SEED = 20261127


def service_error(cls: type[ServiceError], status: int, code: str | None = None) -> ServiceError:
    return cls("boom", code=code or cls.__name__, status_code=status)


UNAVAILABLE = service_error(ServiceUnavailable, 503)
NOT_READY = service_error(ModelNotReadyException, 429)
THROTTLED = service_error(ThrottlingException, 400)


def ceilings(policy: RetryPolicy, base: float, attempts: int) -> list[float]:
    return [min(policy.max_delay, base * 2 ** (n - 1)) for n in range(1, attempts + 1)]


# -- the policy object --------------------------------------------------------------------------


def test_defaults_are_the_documented_ones() -> None:
    policy = RetryPolicy()
    assert policy.max_attempts == 3
    assert (policy.base_delay, policy.max_delay, policy.throttle_base_delay) == (0.1, 20.0, 0.5)
    assert (
        policy.retry_on
        == DEFAULT_RETRY_ON
        == {
            "ServiceUnavailable",
            "ModelNotReadyException",
            "ThrottlingException",
        }
    )
    assert policy.model_not_ready_budget == 180.0
    assert (policy.model_not_ready_base_delay, policy.model_not_ready_max_delay) == (1.0, 10.0)
    assert (policy.quota_capacity, policy.retry_cost) == (500, 5)
    assert policy.retry_connection_errors and policy.respect_retry_after


def test_retry_on_is_frozen_from_any_collection() -> None:
    policy = RetryPolicy(retry_on={"ServiceUnavailable"})  # type: ignore[arg-type]
    assert isinstance(policy.retry_on, frozenset)
    assert policy.retry_on == {"ServiceUnavailable"}
    assert hash(policy) == hash(RetryPolicy(retry_on=frozenset({"ServiceUnavailable"})))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_attempts": 0},
        {"max_attempts": -3},
        {"base_delay": -0.1},
        {"max_delay": -1.0},
        {"throttle_base_delay": -0.5},
        {"model_not_ready_budget": -1.0},
        {"model_not_ready_base_delay": -1.0},
        {"model_not_ready_max_delay": -1.0},
        {"quota_capacity": -1},
        {"retry_cost": -5},
    ],
)
def test_bad_policies_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)


def test_a_single_code_string_is_refused() -> None:
    # frozenset("ServiceUnavailable") would be a set of letters that retries nothing.
    with pytest.raises(TypeError):
        RetryPolicy(retry_on="ServiceUnavailable")  # type: ignore[arg-type]


def test_none_never_retries_anything() -> None:
    policy = RetryPolicy.none()
    assert policy.max_attempts == 1
    errors: list[SageMakerRuntimeError] = [
        UNAVAILABLE,
        NOT_READY,
        THROTTLED,
        EndpointConnectionError("refused"),
        ConnectTimeoutError("slow"),
    ]
    for error in errors:
        assert not should_retry(policy, error, attempt=1, elapsed=0.0), error


# -- should_retry -------------------------------------------------------------------------------


@pytest.mark.parametrize("error", [UNAVAILABLE, THROTTLED, service_error(ThrottlingException, 429)])
def test_retryable_codes_until_max_attempts(error: ServiceError) -> None:
    policy = RetryPolicy(max_attempts=4)
    assert [should_retry(policy, error, attempt=n, elapsed=0.0) for n in range(1, 6)] == [
        True,
        True,
        True,
        False,
        False,
    ]


@pytest.mark.parametrize(
    "error",
    [
        service_error(ModelError, 424),
        service_error(ValidationError, 400),
        service_error(InternalDependencyException, 530),
        service_error(InternalFailure, 500),
        service_error(ServiceError, 504, code="504"),
        service_error(ServiceError, 502, code="BadGateway"),
    ],
)
def test_other_service_errors_are_never_retried(error: ServiceError) -> None:
    assert not should_retry(RetryPolicy(max_attempts=10), error, attempt=1, elapsed=0.0)


def test_retry_on_decides_which_codes() -> None:
    failure = service_error(InternalFailure, 500)
    policy = RetryPolicy(retry_on=frozenset({"InternalFailure"}))
    assert should_retry(policy, failure, attempt=1, elapsed=0.0)
    assert not should_retry(policy, UNAVAILABLE, attempt=1, elapsed=0.0)
    assert not should_retry(policy, NOT_READY, attempt=1, elapsed=0.0)


@pytest.mark.parametrize(
    ("error", "retried"),
    [
        (EndpointConnectionError("refused"), True),
        (ConnectTimeoutError("no SYN-ACK"), True),
        (PoolTimeoutError("no free slot"), True),  # not sent; the deadline stops it anyway
        (ReadTimeoutError("silence"), False),
        (ConnectionClosedError("reset"), False),
        (DeadlineExceededError("too late"), False),
        (TransportError("something else"), False),
    ],
)
def test_transport_errors_retried_only_when_not_sent(error: TransportError, retried: bool) -> None:
    assert error.request_sent is not retried
    assert should_retry(RetryPolicy(), error, attempt=1, elapsed=0.0) is retried
    assert not should_retry(RetryPolicy(), error, attempt=3, elapsed=0.0)
    no_connection_retries = RetryPolicy(retry_connection_errors=False)
    assert not should_retry(no_connection_retries, error, attempt=1, elapsed=0.0)


def test_model_not_ready_has_a_time_budget_not_an_attempt_count() -> None:
    policy = RetryPolicy(max_attempts=2, model_not_ready_budget=30.0)
    # Far past max_attempts, still inside the budget: retried.
    assert should_retry(policy, NOT_READY, attempt=2, elapsed=0.0)
    assert should_retry(policy, NOT_READY, attempt=50, elapsed=29.9)
    # Budget spent: not retried, even on the first attempt.
    assert not should_retry(policy, NOT_READY, attempt=1, elapsed=30.0)
    assert not should_retry(policy, NOT_READY, attempt=1, elapsed=31.0)
    # Other errors keep counting attempts.
    assert not should_retry(policy, UNAVAILABLE, attempt=2, elapsed=0.0)


def test_model_not_ready_follows_retry_on() -> None:
    policy = RetryPolicy(retry_on=frozenset({"ServiceUnavailable"}))
    assert not should_retry(policy, NOT_READY, attempt=1, elapsed=0.0)


def test_cold_start_retries_are_not_charged_to_the_quota() -> None:
    policy = RetryPolicy(retry_cost=7)
    assert retry_cost(policy, NOT_READY) == 0
    assert retry_cost(policy, UNAVAILABLE) == 7
    assert retry_cost(policy, EndpointConnectionError("refused")) == 7


# -- delay --------------------------------------------------------------------------------------


def test_full_jitter_bounds_and_growth() -> None:
    policy = RetryPolicy(base_delay=0.1, max_delay=20.0)
    rand = random.Random(SEED)
    for attempt, ceiling in enumerate(ceilings(policy, 0.1, 12), start=1):
        waits = [delay(policy, UNAVAILABLE, attempt=attempt, rand=rand) for _ in range(400)]
        assert all(0.0 <= w <= ceiling for w in waits), (attempt, max(waits), ceiling)
        # Full jitter: the whole range [0, ceiling] is used, not just its top half.
        assert min(waits) < 0.1 * ceiling
        assert max(waits) > 0.9 * ceiling
    # The ceiling doubles, then stops at max_delay.
    assert ceilings(policy, 0.1, 12)[:3] == [0.1, 0.2, 0.4]
    assert ceilings(policy, 0.1, 12)[-1] == 20.0


def test_delay_is_reproducible_with_a_seeded_random() -> None:
    policy = RetryPolicy(base_delay=0.25, max_delay=3.0)
    first = [delay(policy, UNAVAILABLE, attempt=n, rand=random.Random(SEED)) for n in (1, 2, 5)]
    again = [delay(policy, UNAVAILABLE, attempt=n, rand=random.Random(SEED)) for n in (1, 2, 5)]
    assert first == again
    expected = [random.Random(SEED).uniform(0.0, c) for c in (0.25, 0.5, 3.0)]
    assert first == expected


def test_cap_applies() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=2.5)
    rand = random.Random(SEED)
    waits = [delay(policy, UNAVAILABLE, attempt=30, rand=rand) for _ in range(500)]
    assert max(waits) <= 2.5
    assert max(waits) > 2.0


def test_throttling_starts_from_its_own_base() -> None:
    policy = RetryPolicy(base_delay=0.001, throttle_base_delay=0.5, max_delay=20.0)
    rand = random.Random(SEED)
    throttled = [delay(policy, THROTTLED, attempt=1, rand=rand) for _ in range(300)]
    plain = [delay(policy, UNAVAILABLE, attempt=1, rand=rand) for _ in range(300)]
    assert max(plain) <= 0.001
    assert max(throttled) <= 0.5
    assert max(throttled) > 0.4
    second = [delay(policy, THROTTLED, attempt=2, rand=rand) for _ in range(300)]
    assert 0.8 < max(second) <= 1.0


def test_model_not_ready_uses_its_own_base_and_cap() -> None:
    policy = RetryPolicy(
        base_delay=0.001,
        max_delay=0.002,
        model_not_ready_base_delay=1.0,
        model_not_ready_max_delay=3.0,
    )
    rand = random.Random(SEED)
    first = [delay(policy, NOT_READY, attempt=1, rand=rand) for _ in range(300)]
    late = [delay(policy, NOT_READY, attempt=10, rand=rand) for _ in range(300)]
    assert 0.9 < max(first) <= 1.0
    assert 2.7 < max(late) <= 3.0  # model_not_ready_max_delay, not max_delay


def test_retry_after_is_a_floor() -> None:
    policy = RetryPolicy(base_delay=0.001, max_delay=20.0)
    rand = random.Random(SEED)
    waits = [delay(policy, UNAVAILABLE, attempt=1, retry_after=1.5, rand=rand) for _ in range(50)]
    assert waits == [1.5] * 50
    # A longer computed wait wins over a short Retry-After.
    slow = RetryPolicy(base_delay=10.0, max_delay=20.0)
    longer = [delay(slow, UNAVAILABLE, attempt=1, retry_after=0.5, rand=rand) for _ in range(200)]
    assert all(w >= 0.5 for w in longer)
    assert max(longer) > 5.0


def test_retry_after_is_capped() -> None:
    policy = RetryPolicy(base_delay=0.001, max_delay=2.0, model_not_ready_max_delay=4.0)
    rand = random.Random(SEED)
    assert delay(policy, UNAVAILABLE, attempt=1, retry_after=3600.0, rand=rand) == 2.0
    assert delay(policy, NOT_READY, attempt=1, retry_after=3600.0, rand=rand) == 4.0


def test_retry_after_can_be_ignored() -> None:
    policy = RetryPolicy(base_delay=0.001, respect_retry_after=False)
    rand = random.Random(SEED)
    assert delay(policy, UNAVAILABLE, attempt=1, retry_after=5.0, rand=rand) <= 0.001


def test_delay_works_without_a_random_source() -> None:
    policy = RetryPolicy(base_delay=0.01)
    assert 0.0 <= delay(policy, UNAVAILABLE, attempt=1) <= 0.01


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("3", 3.0),
        ("1.5", 1.5),
        ("0", 0.0),
        (" 2 ", 2.0),
        (None, None),
        ("", None),
        ("-1", None),
        ("soon", None),
        ("nan", None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", None),  # the HTTP-date form is not used by AWS
    ],
)
def test_parse_retry_after(value: str | None, seconds: float | None) -> None:
    assert parse_retry_after(value) == seconds


# -- the quota ----------------------------------------------------------------------------------


def test_quota_drains_and_refills_up_to_capacity() -> None:
    quota = RetryQuota(12)
    assert quota.acquire(5)
    assert quota.acquire(5)
    assert quota.available == 2
    assert not quota.acquire(5)  # exhausted: no retry
    assert quota.available == 2  # a refused acquire takes nothing
    quota.release(1)
    quota.release(1)
    assert quota.available == 4
    assert not quota.acquire(5)
    quota.release(1)
    assert quota.acquire(5)
    assert quota.available == 0
    for _ in range(100):
        quota.release(5)
    assert quota.available == quota.capacity == 12


def test_zero_quota_allows_no_charged_retry() -> None:
    quota = RetryQuota(0)
    assert not quota.acquire(1)
    assert quota.acquire(0)
