"""Credentials: every source the client takes, refresh of expiring credentials (once, off the event
loop), and secrets kept out of reprs and logs. Signatures are checked with botocore's signer."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from aiohttp import web
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials, RefreshableCredentials
from conftest import FakeTime, Received, ScriptedServer

from sagemaker_rt_aio import (
    ClientClosedError,
    InvokeEndpointAsyncRequest,
    InvokeEndpointRequest,
    NoCredentialsError,
    ParamValidationError,
    RetryPolicy,
    SageMakerRuntimeClient,
    SageMakerRuntimeError,
)
from sagemaker_rt_aio._constants import SIGN_AGAIN_AFTER
from sagemaker_rt_aio._credentials import CredentialSource
from sagemaker_rt_aio._signing import FrozenCredentials
from sagemaker_rt_aio.middleware import LoggingMiddleware

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzzSECRETzz"
TOKEN = "FwoGZXIvYXdzEzzTOKENzzAaDLr2bOu1/sessiontoken=="


def make_client(url: str, **kwargs: Any) -> SageMakerRuntimeClient:
    kwargs.setdefault("retry_policy", RetryPolicy.none())
    return SageMakerRuntimeClient("us-east-1", endpoint_url=url, **kwargs)


@dataclass
class Signed:
    access_key: str
    token: str | None
    authorization: str


def signed(received: Received) -> Signed:
    authorization = received.headers["Authorization"]
    access_key = authorization.split("Credential=")[1].split("/")[0]
    return Signed(access_key, received.headers.get("X-Amz-Security-Token"), authorization)


def verify_signature(received: Received, url: str, secret: str) -> None:
    """Recompute the SigV4 signature with botocore: proves which secret key signed the request."""
    authorization = received.headers["Authorization"]
    access_key = authorization.split("Credential=")[1].split("/")[0]
    names = authorization.split("SignedHeaders=")[1].split(",")[0].split(";")
    request = AWSRequest(
        method=received.method,
        url=url + received.raw_path,
        headers={name: received.headers[name] for name in names},
        data=received.body,
    )
    request.context["timestamp"] = received.headers["X-Amz-Date"]
    token = received.headers.get("X-Amz-Security-Token")
    auth = SigV4Auth(Credentials(access_key, secret, token), "sagemaker", "us-east-1")
    string_to_sign = auth.string_to_sign(request, auth.canonical_request(request))
    assert authorization.endswith("Signature=" + auth.signature(string_to_sign, request))


async def one_call(server: ScriptedServer, **client_kwargs: Any) -> Signed:
    async with make_client(server.url, **client_kwargs) as client:
        await client.invoke_endpoint(endpoint_name="ep", body=b"{}")
    return signed(server.received[-1])


# -- sources ---------------------------------------------------------------------------------------


async def test_explicit_keys(scripted_server: ScriptedServer) -> None:
    got = await one_call(
        scripted_server, aws_access_key_id="AKIDEXPLICIT", aws_secret_access_key=SECRET
    )
    assert (got.access_key, got.token) == ("AKIDEXPLICIT", None)
    verify_signature(scripted_server.received[0], scripted_server.url, SECRET)
    with pytest.raises(AssertionError):  # the check is not vacuous
        verify_signature(scripted_server.received[0], scripted_server.url, "another secret")


async def test_explicit_keys_with_a_session_token(scripted_server: ScriptedServer) -> None:
    got = await one_call(
        scripted_server,
        aws_access_key_id="AKIDTEMP",
        aws_secret_access_key=SECRET,
        aws_session_token=TOKEN,
    )
    assert (got.access_key, got.token) == ("AKIDTEMP", TOKEN)
    assert "x-amz-security-token" in got.authorization.split("SignedHeaders=")[1]
    verify_signature(scripted_server.received[0], scripted_server.url, SECRET)


@pytest.mark.parametrize(
    "kwargs",
    [{"aws_access_key_id": "AKID"}, {"aws_secret_access_key": "secret"}],
    ids=["id-only", "secret-only"],
)
def test_half_a_key_pair_is_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ParamValidationError):
        SageMakerRuntimeClient("us-east-1", **kwargs)


async def test_botocore_credentials_object(scripted_server: ScriptedServer) -> None:
    got = await one_call(scripted_server, credentials=Credentials("AKIDOBJECT", SECRET, TOKEN))
    assert (got.access_key, got.token) == ("AKIDOBJECT", TOKEN)
    verify_signature(scripted_server.received[0], scripted_server.url, SECRET)


async def test_environment_keys(
    scripted_server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDENV")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_SESSION_TOKEN", TOKEN)
    got = await one_call(scripted_server)
    assert (got.access_key, got.token) == ("AKIDENV", TOKEN)
    verify_signature(scripted_server.received[0], scripted_server.url, SECRET)


async def test_explicit_keys_beat_the_environment(
    scripted_server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDENV")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "envsecret")
    got = await one_call(scripted_server, aws_access_key_id="AKIDARG", aws_secret_access_key=SECRET)
    assert got.access_key == "AKIDARG"


@pytest.fixture
def credentials_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "credentials"
    path.write_text(
        "[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = defaultsecret\n\n"
        f"[dev]\naws_access_key_id = AKIDPROFILE\naws_secret_access_key = {SECRET}\n"
        f"aws_session_token = {TOKEN}\n"
    )
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(path))
    yield path


async def test_named_profile_from_the_shared_credentials_file(
    scripted_server: ScriptedServer, credentials_file: Path
) -> None:
    got = await one_call(scripted_server, profile_name="dev")
    assert (got.access_key, got.token) == ("AKIDPROFILE", TOKEN)
    verify_signature(scripted_server.received[0], scripted_server.url, SECRET)


async def test_default_profile_from_the_shared_credentials_file(
    scripted_server: ScriptedServer, credentials_file: Path
) -> None:
    got = await one_call(scripted_server)
    assert (got.access_key, got.token) == ("AKIDDEFAULT", None)


async def test_an_explicit_profile_beats_environment_keys(
    scripted_server: ScriptedServer, credentials_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As in boto3: naming a profile means that profile, not whatever the environment holds.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDENV")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "envsecret")
    got = await one_call(scripted_server, profile_name="dev")
    assert got.access_key == "AKIDPROFILE"


async def test_unknown_profile_is_a_library_error(
    scripted_server: ScriptedServer, credentials_file: Path
) -> None:
    # The profile's settings (FIPS, endpoint URLs) are read at construction, so a missing profile
    # is refused there, before anything could be sent, with or without a region.
    with pytest.raises(ParamValidationError) as info:
        make_client(scripted_server.url, profile_name="nope")
    assert info.value.field == "profile_name"
    assert isinstance(info.value, SageMakerRuntimeError)
    with pytest.raises(ParamValidationError):
        SageMakerRuntimeClient(profile_name="nope")
    assert scripted_server.received == []


async def test_botocore_session(scripted_server: ScriptedServer) -> None:
    session = botocore.session.Session()
    session.set_credentials("AKIDSESSION", SECRET, TOKEN)
    got = await one_call(scripted_server, botocore_session=session)
    assert (got.access_key, got.token) == ("AKIDSESSION", TOKEN)
    verify_signature(scripted_server.received[0], scripted_server.url, SECRET)


async def test_no_credentials_anywhere(scripted_server: ScriptedServer) -> None:
    client = make_client(scripted_server.url)  # constructing needs no credentials
    async with client:
        for _ in range(2):
            with pytest.raises(NoCredentialsError) as info:
                await client.invoke_endpoint(endpoint_name="ep", body=b"{}")
            assert isinstance(info.value, SageMakerRuntimeError)
        with pytest.raises(NoCredentialsError):
            await client.invoke_endpoint_async(endpoint_name="ep", input_location="s3://b/k")
    assert scripted_server.received == []
    assert "AWS_ACCESS_KEY_ID" in str(info.value)


async def test_empty_credentials_are_no_credentials(scripted_server: ScriptedServer) -> None:
    async with make_client(scripted_server.url, credentials=Credentials("", "")) as client:
        with pytest.raises(NoCredentialsError):
            await client.invoke_endpoint(endpoint_name="ep", body=b"{}")
    assert scripted_server.received == []


# -- refreshable credentials ----------------------------------------------------------------------


def _iso(seconds_from_now: float) -> str:
    return (datetime.now(timezone.utc) + timedelta(seconds=seconds_from_now)).isoformat()


class CountingCredentials(RefreshableCredentials):  # type: ignore[misc]
    """Counts snapshot requests: botocore serialises refreshes itself, so the refresh count alone
    would not show whether the client also keeps concurrent callers from all asking at once."""

    snapshots = 0

    def get_frozen_credentials(self) -> Any:
        type(self).snapshots += 1
        return super().get_frozen_credentials()


@pytest.fixture(autouse=True)
def _reset_snapshot_count() -> None:
    CountingCredentials.snapshots = 0


@dataclass
class Refresher:
    """A refresh function that blocks its thread, counts its calls and hands out new keys."""

    sleep: float = 0.0
    lifetime: float = 3600.0
    calls: int = 0
    threads: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self) -> dict[str, str]:
        time.sleep(self.sleep)
        with self.lock:
            self.calls += 1
            self.threads.append(threading.get_ident())
            n = self.calls
        return {
            "access_key": f"AKIDREFRESHED{n}",
            "secret_key": f"{SECRET}-{n}",
            "token": f"{TOKEN}-{n}",
            "expiry_time": _iso(self.lifetime),
        }

    def credentials(
        self, *, expires_in: float, clock: FakeTime | None = None, **timeouts: int
    ) -> CountingCredentials:
        if clock is not None:  # botocore's own clock for these credentials, driven by the test
            wall = clock.wall
            return CountingCredentials(
                access_key="AKIDINITIAL",
                secret_key=f"{SECRET}-0",
                token=f"{TOKEN}-0",
                expiry_time=datetime.fromtimestamp(wall() + expires_in, timezone.utc),
                refresh_using=self,
                method="test-refresh",
                time_fetcher=lambda: datetime.fromtimestamp(wall(), timezone.utc),
                **timeouts,
            )
        credentials = CountingCredentials.create_from_metadata(
            metadata={
                "access_key": "AKIDINITIAL",
                "secret_key": f"{SECRET}-0",
                "token": f"{TOKEN}-0",
                "expiry_time": _iso(expires_in),
            },
            refresh_using=self,
            method="test-refresh",
            **timeouts,
        )
        assert isinstance(credentials, CountingCredentials)
        return credentials


async def test_concurrent_calls_refresh_once_without_blocking_the_loop(
    scripted_server: ScriptedServer,
) -> None:
    refresher = Refresher(sleep=0.2)
    credentials = refresher.credentials(expires_in=-60)  # already expired
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    ticking = asyncio.create_task(ticker())
    try:
        async with make_client(scripted_server.url, credentials=credentials) as client:
            before = ticks
            started = time.monotonic()
            await asyncio.gather(
                *(client.invoke_endpoint(endpoint_name="ep", body=b"{}") for _ in range(50))
            )
            elapsed = time.monotonic() - started
            during = ticks - before
            assert refresher.calls == 1
            # One caller loaded credentials in a worker thread; the other 49 waited for it.
            assert CountingCredentials.snapshots == 1
            # Credentials that expire in an hour are not refreshed again, call after call.
            for _ in range(30):
                await client.invoke_endpoint(endpoint_name="ep", body=b"{}")
            assert refresher.calls == 1
            assert CountingCredentials.snapshots == 1
    finally:
        ticking.cancel()
    assert elapsed >= 0.2
    # The 0.2 s refresh ran in a worker thread: the loop kept ticking meanwhile (about 20 ticks on
    # a quiet machine; a blocked loop gives at most one, and a loaded machine still gives several).
    assert during >= 3, f"only {during} ticks in {elapsed:.3f} s"
    assert refresher.threads[0] != threading.get_ident()
    keys = {signed(r).access_key for r in scripted_server.received}
    assert keys == {"AKIDREFRESHED1"}
    assert len(scripted_server.received) == 80
    verify_signature(scripted_server.received[0], scripted_server.url, f"{SECRET}-1")
    assert signed(scripted_server.received[-1]).token == f"{TOKEN}-1"


async def test_unexpired_refreshable_credentials_are_not_refreshed(
    scripted_server: ScriptedServer,
) -> None:
    refresher = Refresher()
    credentials = refresher.credentials(expires_in=3600)
    async with make_client(scripted_server.url, credentials=credentials) as client:
        await asyncio.gather(
            *(client.invoke_endpoint(endpoint_name="ep", body=b"{}") for _ in range(20))
        )
        for _ in range(20):
            await client.invoke_endpoint(endpoint_name="ep", body=b"{}")
    assert refresher.calls == 0
    assert {signed(r).access_key for r in scripted_server.received} == {"AKIDINITIAL"}


async def test_expired_credentials_refresh_and_the_signing_key_changes(
    scripted_server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # botocore refreshes these once less than 1 s is left; they start with 2 s.
    fake = FakeTime()
    fake.patch_wall_clock(monkeypatch)
    refresher = Refresher()
    credentials = refresher.credentials(
        expires_in=2.0, clock=fake, advisory_timeout=1, mandatory_timeout=1
    )
    async with make_client(scripted_server.url, credentials=credentials) as client:
        await client.invoke_endpoint(endpoint_name="ep", body=b"{}")
        await client.invoke_endpoint(endpoint_name="ep", body=b"{}")
        assert refresher.calls == 0
        fake.advance(1.2)
        await client.invoke_endpoint(endpoint_name="ep", body=b"{}")
        await client.invoke_endpoint(endpoint_name="ep", body=b"{}")
    assert refresher.calls == 1
    got = [signed(r) for r in scripted_server.received]
    assert [g.access_key for g in got] == ["AKIDINITIAL"] * 2 + ["AKIDREFRESHED1"] * 2
    assert [g.token for g in got] == [f"{TOKEN}-0"] * 2 + [f"{TOKEN}-1"] * 2
    verify_signature(scripted_server.received[0], scripted_server.url, f"{SECRET}-0")
    verify_signature(scripted_server.received[2], scripted_server.url, f"{SECRET}-1")


@dataclass
class HungRefresher(Refresher):
    """A refresh that hangs until ``gate`` is set (at most 5 s); ``entered`` once it has begun."""

    entered: threading.Event = field(default_factory=threading.Event)
    gate: threading.Event = field(default_factory=threading.Event)

    def __call__(self) -> dict[str, str]:
        self.entered.set()
        self.gate.wait(5)
        return super().__call__()


async def queue_late(
    client: SageMakerRuntimeClient,
    server: ScriptedServer,
    fake: FakeTime,
    release: asyncio.Event,
    body: bytes,
) -> tuple[asyncio.Future[Any], asyncio.Future[Any]]:
    """A first call held by ``server`` until ``release``, then a call with ``body`` waiting for
    the only connection in the pool, signed, until the watchdog's ticks find it late."""

    async def handler(request: web.Request, received: bytes) -> web.StreamResponse:
        if received == b"first":
            await asyncio.wait_for(release.wait(), 5)
        return web.Response(body=received)

    server.default = handler
    watchdog = client._pipeline.watchdog
    watchdog.clock = fake.clock
    first = asyncio.ensure_future(client.invoke_endpoint(endpoint_name="ep", body=b"first"))
    for _ in range(1000):  # until the first holds the only connection
        if server.received:
            break
        await asyncio.sleep(0.002)
    late = asyncio.ensure_future(client.invoke_endpoint(endpoint_name="ep", body=body))
    for _ in range(1000):  # until that one is signed and waiting for its connection
        if len(watchdog) == 2:
            break
        await asyncio.sleep(0.002)
    assert client._pipeline._slots.queued == 1
    for advance in (0.0, SIGN_AGAIN_AFTER + 1):  # the ticks that find it waiting, then late
        fake.advance(advance)
        watchdog.close()
        watchdog.check(asyncio.get_running_loop())
    return first, late


async def test_a_call_that_waited_long_for_its_connection_is_signed_with_refreshed_keys(
    scripted_server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A call waiting in the pool was signed before it waited; signed again once it has its
    connection (it waited longer than SIGN_AGAIN_AFTER), it takes the keys refreshed meanwhile."""
    fake = FakeTime()
    fake.patch_wall_clock(monkeypatch)
    refresher = Refresher()
    credentials = refresher.credentials(
        expires_in=SIGN_AGAIN_AFTER / 2, clock=fake, advisory_timeout=1, mandatory_timeout=1
    )
    release = asyncio.Event()
    async with make_client(
        scripted_server.url, credentials=credentials, max_connections=1
    ) as client:
        first, second = await queue_late(client, scripted_server, fake, release, b"second")
        assert refresher.calls == 0
        release.set()
        await asyncio.wait_for(asyncio.gather(first, second), 5)
    assert refresher.calls == 1
    got = {r.body: signed(r) for r in scripted_server.received}
    assert got[b"first"].access_key == "AKIDINITIAL"
    assert (got[b"second"].access_key, got[b"second"].token) == ("AKIDREFRESHED1", f"{TOKEN}-1")
    verify_signature(scripted_server.received[1], scripted_server.url, f"{SECRET}-1")


async def test_cancelling_a_call_whose_late_signing_waits_on_a_hung_refresh(
    scripted_server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Signed again once it has its connection, a call may wait there for a refresh that hangs:
    cancelled then, it gives the connection back unused, and its slot, and a later call goes."""
    fake = FakeTime()
    fake.patch_wall_clock(monkeypatch)
    refresher = HungRefresher()
    entered, gate = refresher.entered, refresher.gate
    credentials = refresher.credentials(
        expires_in=SIGN_AGAIN_AFTER / 2, clock=fake, advisory_timeout=1, mandatory_timeout=1
    )
    release = asyncio.Event()
    try:
        async with make_client(
            scripted_server.url, credentials=credentials, max_connections=1
        ) as client:
            slots = client._pipeline._slots
            first, late = await queue_late(client, scripted_server, fake, release, b"late")
            release.set()
            assert (await asyncio.wait_for(first, 5)).body == b"first"
            await asyncio.get_running_loop().run_in_executor(None, entered.wait, 5)
            assert not late.done()  # holding the connection, waiting for the refresh
            late.cancel()
            with pytest.raises(asyncio.CancelledError):
                await late
            assert slots.free == 1 and slots.queued == 0
            gate.set()
            again = await asyncio.wait_for(
                client.invoke_endpoint(endpoint_name="ep", body=b"again"), 5
            )
            assert again.body == b"again"
    finally:
        gate.set()
    assert [r.body for r in scripted_server.received] == [b"first", b"again"]
    assert signed(scripted_server.received[1]).access_key == "AKIDREFRESHED1"


async def test_shutdown_ends_a_call_whose_late_signing_waits_on_a_hung_refresh(
    scripted_server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A concurrent shutdown ends a call that has its connection and waits there for a refresh
    that hangs: ClientClosedError, its request never sent, its slot and connection given back."""
    fake = FakeTime()
    fake.patch_wall_clock(monkeypatch)
    refresher = HungRefresher()
    credentials = refresher.credentials(
        expires_in=SIGN_AGAIN_AFTER / 2, clock=fake, advisory_timeout=1, mandatory_timeout=1
    )
    release = asyncio.Event()
    client = make_client(scripted_server.url, credentials=credentials, max_connections=1)
    try:
        first, late = await queue_late(client, scripted_server, fake, release, b"late")
        release.set()
        assert (await asyncio.wait_for(first, 5)).body == b"first"
        await asyncio.get_running_loop().run_in_executor(None, refresher.entered.wait, 5)
        await asyncio.wait_for(client.shutdown(grace=0), 5)
        with pytest.raises(ClientClosedError):
            await asyncio.wait_for(late, 5)
        slots = client._pipeline._slots
        assert slots.free == 1 and slots.queued == 0
    finally:
        refresher.gate.set()
    assert [r.body for r in scripted_server.received] == [b"first"]


async def test_a_failing_mandatory_refresh_sends_nothing(scripted_server: ScriptedServer) -> None:
    def broken() -> dict[str, str]:
        raise RuntimeError("metadata service down")

    credentials = RefreshableCredentials.create_from_metadata(
        metadata={"access_key": "A", "secret_key": "s", "token": "t", "expiry_time": _iso(-1)},
        refresh_using=broken,
        method="test",
    )
    async with make_client(scripted_server.url, credentials=credentials) as client:
        with pytest.raises(Exception, match="metadata service down"):
            await client.invoke_endpoint(endpoint_name="ep", body=b"{}")
    assert scripted_server.received == []


# -- secrets ---------------------------------------------------------------------------------------


def find(obj: object, cls: type[Any]) -> Any:
    for value in vars(obj).values():
        if isinstance(value, cls):
            return value
        if hasattr(value, "__dict__") and not isinstance(value, type):
            for inner in vars(value).values():
                if isinstance(inner, cls):
                    return inner
    raise AssertionError(f"no {cls.__name__} in {obj!r}")


def assert_clean(text: str, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in text, f"secret leaked into {text!r}"


def test_reprs_hold_no_secrets() -> None:
    client = SageMakerRuntimeClient(
        "us-east-1",
        aws_access_key_id="AKIDREPR",
        aws_secret_access_key=SECRET,
        aws_session_token=TOKEN,
    )
    source = find(client, CredentialSource)
    frozen = FrozenCredentials("AKIDREPR", SECRET, TOKEN)
    requests = [
        InvokeEndpointRequest(endpoint_name="ep", body=SECRET, custom_attributes=TOKEN),
        InvokeEndpointAsyncRequest(
            endpoint_name="ep", body=SECRET.encode(), custom_attributes=TOKEN
        ),
    ]
    for obj in [client, source, frozen, *requests]:
        assert_clean(repr(obj), SECRET, TOKEN)
        assert_clean(str(obj), SECRET, TOKEN)
    assert "AKID" in repr(frozen)


def test_botocore_sourced_credential_source_repr() -> None:
    source = CredentialSource.from_arguments(
        aws_access_key_id=None,
        aws_secret_access_key=None,
        aws_session_token=None,
        credentials=Credentials("AKID", SECRET, TOKEN),
        botocore_session=None,
    )
    assert_clean(repr(source), SECRET, TOKEN)


async def _debug_call(
    server: ScriptedServer, caplog: pytest.LogCaptureFixture, **fields: Any
) -> list[str]:
    calls = 0

    async def flaky(request: web.Request, body: bytes) -> web.StreamResponse:
        nonlocal calls
        calls += 1
        if calls == 1:
            return web.json_response(
                {"message": "busy"}, status=503, headers={"x-amzn-ErrorType": "ServiceUnavailable"}
            )
        return web.json_response({"ok": True}, headers={"x-amzn-RequestId": "rid-1"})

    server.script = [flaky]
    caplog.set_level(logging.DEBUG, logger="sagemaker_rt_aio")
    async with make_client(
        server.url,
        aws_access_key_id="AKIDLOG",
        aws_secret_access_key=SECRET,
        aws_session_token=TOKEN,
        retry_policy=RetryPolicy(max_attempts=2, base_delay=0.0),
        middlewares=[LoggingMiddleware(level=logging.DEBUG)],
    ) as client:
        await client.invoke_endpoint(endpoint_name="ep", body=b"{}", **fields)
    formatter = logging.Formatter("%(name)s %(message)s")
    return [
        formatter.format(record)
        for record in caplog.records
        if record.name.startswith("sagemaker_rt_aio")
    ]


async def test_debug_logs_hold_no_secrets(
    scripted_server: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    lines = await _debug_call(scripted_server, caplog)
    assert len(scripted_server.received) == 2
    assert len(lines) >= 3  # the two attempts' headers, the retry, the middleware lines
    signatures = [signed(r).authorization.split("Signature=")[1] for r in scripted_server.received]
    for line in lines:
        assert_clean(line, SECRET, TOKEN, *signatures)
    header_lines = [line for line in lines if "Authorization" in line]
    assert header_lines, lines
    for line in header_lines:
        assert "Signature=<redacted>" in line
        assert "X-Amz-Security-Token': '<redacted>'" in line
        assert "AKIDLOG" in line  # the access key id is not secret, and helps debugging


async def test_debug_logs_hide_sensitive_custom_attributes(
    scripted_server: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    # The model marks CustomAttributes sensitive (the request repr hides it too).
    lines = await _debug_call(scripted_server, caplog, custom_attributes="user-ssn=123-45-6789")
    assert any("X-Amzn-SageMaker-Custom-Attributes': '<redacted>'" in line for line in lines)
    for line in lines:
        assert "123-45-6789" not in line
    headers = scripted_server.received[0].headers
    assert headers["X-Amzn-SageMaker-Custom-Attributes"] == "user-ssn=123-45-6789"
