"""Soak: thousands of concurrent calls through one client against a loopback server that fails at
random, with a seeded random source.

What the server does to attempt ``n`` of call ``i`` depends only on ``(SEED, i, n)``, never on the
order in which requests happen to arrive, so the outcome of every call is known before the run: the
test simulates the retry policy over the same draws and compares, call by call. The server also
records, per call, every attempt it saw and how many times it ran the "model" (got past the
service's own refusals), which is how re-sends would show.

Faults, and why each is what it is:

- 503 ServiceUnavailable, 429 ModelNotReadyException, 400 ThrottlingException: refused before the
  model ran; retried (the first and last up to max_attempts, the cold start within its budget).
- reset before reading the request: the handler closes the connection without reading the body,
  so nothing was processed. The client cannot tell this from a reset after sending (both are a
  connection dropped after the request was written), so it must be ConnectionClosedError and not
  retried. A retryable "not sent" failure needs a refused connection, which one listening port
  cannot inject at random; tests/test_resilience.py covers refused connections.
- reset after reading the request: the model ran; ConnectionClosedError, never re-sent.
- 424 ModelError: the model ran and failed; never re-sent.
- a rare answer slower than sock_read: the model ran; ReadTimeoutError, never re-sent.
- slow answers (1-10 ms) and plain 200s.
"""

from __future__ import annotations

import asyncio
import gc
import random
import time
import warnings
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web

from sagemaker_rt_aio import (
    CallNext,
    ConnectionClosedError,
    HttpRequest,
    HttpResponse,
    InvokeEndpointResult,
    ModelError,
    ModelNotReadyException,
    ReadTimeoutError,
    RetryPolicy,
    SageMakerRuntimeClient,
    SageMakerRuntimeError,
    ServiceError,
    ServiceUnavailable,
    ThrottlingException,
)

SEED = 20261127
CALLS = 2000
CONCURRENCY = 200
MAX_CONNECTIONS = 64
MAX_ATTEMPTS = 3
# Wide margins both ways: an answer must not time out because a loaded machine ran the loop late,
# and a too-slow one must not squeeze in under the timer.
SOCK_READ = 2.0
TOO_SLOW = SOCK_READ + 1.5
TIME_LIMIT = 45.0  # a hang guard for the whole soak, not a speed check; it takes a few seconds

FAULTS: dict[str, float] = {
    "ok": 50.0,
    "slow": 12.0,
    "unavailable": 9.0,
    "not_ready": 8.0,
    "throttled": 7.0,
    "reset_before": 4.0,
    "reset_after": 4.0,
    "model_error": 3.0,
    "too_slow": 0.4,
}
ACTIONS = list(FAULTS)
WEIGHTS = list(FAULTS.values())
ANSWERED = {"ok", "slow"}
RETRYABLE = {"unavailable", "not_ready", "throttled"}
MODEL_RAN = {"ok", "slow", "reset_after", "model_error", "too_slow"}
EXPECTED_ERROR: dict[str, type[SageMakerRuntimeError]] = {
    "unavailable": ServiceUnavailable,
    "not_ready": ModelNotReadyException,
    "throttled": ThrottlingException,
    "reset_before": ConnectionClosedError,
    "reset_after": ConnectionClosedError,
    "model_error": ModelError,
    "too_slow": ReadTimeoutError,
}
ERROR_ANSWERS = {
    "unavailable": (503, "ServiceUnavailable"),
    "not_ready": (429, "ModelNotReadyException"),
    "throttled": (400, "ThrottlingException"),
    "model_error": (424, "ModelError"),
}

POLICY = RetryPolicy(
    max_attempts=MAX_ATTEMPTS,
    base_delay=0.001,
    max_delay=0.005,
    throttle_base_delay=0.001,
    model_not_ready_base_delay=0.001,
    model_not_ready_max_delay=0.005,
    model_not_ready_budget=120.0,  # never reached here: the run is bounded well below it
    quota_capacity=10**9,  # the quota is tested in test_resilience; here it must not decide
)


def draw(call_id: int, attempt: int) -> tuple[str, random.Random]:
    """The server's action for this attempt, and a random source for its details."""
    rand = random.Random(f"{SEED}/{call_id}/{attempt}")
    return rand.choices(ACTIONS, WEIGHTS)[0], rand


def expected(call_id: int) -> tuple[str, int]:
    """(action on the final attempt, number of attempts), by the policy's rules."""
    attempt = 1
    while True:
        action, _ = draw(call_id, attempt)
        if action == "not_ready" or (action in RETRYABLE and attempt < MAX_ATTEMPTS):
            attempt += 1
            continue
        return action, attempt


@dataclass
class FaultyServer:
    url: str = ""
    actions: dict[int, list[str]] = field(default_factory=lambda: defaultdict(list))
    model_runs: Counter[int] = field(default_factory=Counter)
    attempt_mismatches: list[tuple[int, int, str]] = field(default_factory=list)
    active: int = 0
    idle: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.active += 1
        self.idle.clear()
        try:
            return await self._handle(request)
        finally:
            self.active -= 1
            if not self.active:
                self.idle.set()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        call_id = int(request.headers["X-Amzn-SageMaker-Custom-Attributes"].removeprefix("id="))
        attempts = self.actions[call_id]
        attempt = len(attempts) + 1
        if request.headers.get("X-Test-Attempt") != str(attempt):
            self.attempt_mismatches.append(
                (call_id, attempt, request.headers.get("X-Test-Attempt", "-"))
            )
        action, rand = draw(call_id, attempt)
        attempts.append(action)
        assert request.transport is not None
        if action == "reset_before":
            request.transport.close()  # the body is never read: nothing was processed
            return web.Response()
        body = await request.read()
        if action in ("unavailable", "not_ready", "throttled"):
            status, code = ERROR_ANSWERS[action]
            return web.json_response(
                {"message": action}, status=status, headers={"x-amzn-ErrorType": code}
            )
        self.model_runs[call_id] += 1  # past the front door: the model runs
        if action == "reset_after":
            request.transport.close()
            return web.Response()
        if action == "model_error":
            status, code = ERROR_ANSWERS[action]
            return web.json_response(
                {"message": "boom", "OriginalStatusCode": 500},
                status=status,
                headers={"x-amzn-ErrorType": code},
            )
        if action == "slow":
            await asyncio.sleep(rand.uniform(0.001, 0.01))
        elif action == "too_slow":
            await asyncio.sleep(TOO_SLOW)
        return web.Response(body=body, headers={"x-amzn-RequestId": f"{call_id}/{attempt}"})


@pytest.fixture
async def faulty_server() -> AsyncIterator[tuple[FaultyServer, web.AppRunner]]:
    server = FaultyServer()
    server.idle.set()
    app = web.Application()
    app.router.add_route("POST", "/{tail:.*}", server.handle)
    runner = web.AppRunner(app, shutdown_timeout=2.0, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
    await site.start()
    host, port = runner.addresses[0][:2]
    server.url = f"http://{host}:{port}"
    try:
        yield server, runner
    finally:
        await runner.cleanup()


async def tag_attempt(request: HttpRequest, call_next: CallNext) -> HttpResponse:
    request.headers["X-Test-Attempt"] = str(request.attempt)
    return await call_next(request)


async def test_soak(faulty_server: tuple[FaultyServer, web.AppRunner]) -> None:
    server, runner = faulty_server
    plan = {call_id: expected(call_id) for call_id in range(CALLS)}
    outcomes: dict[int, InvokeEndpointResult | BaseException] = {}
    started = time.monotonic()

    client = SageMakerRuntimeClient(
        "us-east-1",
        endpoint_url=server.url,
        allow_http=True,
        aws_access_key_id="AKIDSOAK",
        aws_secret_access_key="soak-secret",
        max_connections=MAX_CONNECTIONS,
        timeout=aiohttp.ClientTimeout(sock_connect=5.0, sock_read=SOCK_READ),
        retry_policy=POLICY,
        middlewares=[tag_attempt],
    )
    ids = iter(range(CALLS))

    async def worker() -> None:
        for call_id in ids:
            try:
                outcomes[call_id] = await client.invoke_endpoint(
                    endpoint_name="soak",
                    body=f"payload-{call_id}".encode(),
                    custom_attributes=f"id={call_id}",
                )
            except SageMakerRuntimeError as exc:
                outcomes[call_id] = exc

    async with client:
        await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(CONCURRENCY))), TIME_LIMIT)
    elapsed = time.monotonic() - started

    # Every call accounted for, with the outcome its server-side history calls for.
    assert sorted(outcomes) == list(range(CALLS))
    assert server.attempt_mismatches == []
    counts: Counter[str] = Counter()
    for call_id, outcome in outcomes.items():
        final, attempts = plan[call_id]
        seen = server.actions[call_id]
        assert [draw(call_id, n)[0] for n in range(1, len(seen) + 1)] == seen
        assert (seen[-1], len(seen)) == (final, attempts), (call_id, seen, outcome)
        # Nothing was sent again after anything but the service's own refusals.
        assert all(action in RETRYABLE for action in seen[:-1]), (call_id, seen)
        assert server.model_runs[call_id] == (1 if final in MODEL_RAN else 0), call_id
        if final in ANSWERED:
            assert isinstance(outcome, InvokeEndpointResult), (call_id, seen, outcome)
            assert outcome.body == f"payload-{call_id}".encode()
            assert outcome.response_metadata.retry_attempts == attempts - 1
            assert outcome.response_metadata.request_id == f"{call_id}/{attempts}"
            counts["answered"] += 1
        else:
            assert isinstance(outcome, EXPECTED_ERROR[final]), (call_id, seen, outcome)
            if isinstance(outcome, ServiceError):
                assert outcome.response_metadata is not None
                assert outcome.response_metadata.retry_attempts == attempts - 1
            else:
                assert isinstance(outcome.__cause__, (aiohttp.ClientError, TimeoutError))
            counts[type(outcome).__name__ + ("/" + final if final.startswith("reset") else "")] += 1
    assert max(server.model_runs.values()) == 1  # no call ran the model twice
    requests = sum(len(seen) for seen in server.actions.values())
    retries = requests - CALLS
    # Every kind of fault happened, and calls both recovered from retries and exhausted them.
    assert {a for seen in server.actions.values() for a in seen} == set(FAULTS)
    assert sum(1 for _, n in plan.values() if n > 1) > 100

    # Nothing left open: no task, no connection, no handler; no warning on collection.
    await asyncio.wait_for(server.idle.wait(), 3 * TOO_SLOW)
    for _ in range(100):  # the server notices the client's closed sockets within a few ticks
        if not runner.server or not runner.server.connections:
            break
        await asyncio.sleep(0.01)
    assert runner.server is not None and runner.server.connections == []
    await asyncio.sleep(0)  # let the server's handler tasks of those connections finish
    assert asyncio.all_tasks() == {asyncio.current_task()}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gc.collect()
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []

    print(
        f"\nsoak: {CALLS} calls, {requests} requests ({retries} retries), "
        f"{CONCURRENCY} concurrent, {MAX_CONNECTIONS} connections, {elapsed:.1f} s; "
        f"outcomes {dict(sorted(counts.items()))}; "
        f"model runs {sum(server.model_runs.values())}"
    )
