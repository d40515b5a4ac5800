"""Credentials resolved the way boto3 resolves them, without blocking the event loop, and never
holding a call past its deadline.

botocore's chain (environment, shared files, SSO, container and instance metadata, a
``credential_process``) does file and network I/O, and a provider can hang. So a load or refresh
runs in a thread of its own, one at a time: every caller that needs credentials meanwhile waits for
that same load, each no longer than its own deadline (``CredentialsTimeoutError``). A caller that
gives up starts nothing new; the next one waits for the load still under way. A dedicated daemon
thread, not the default executor: a hung provider must not starve unrelated work that runs there
(DNS resolution does), nor keep the interpreter from exiting.

Expiring credentials (``RefreshableCredentials``) are checked with botocore's public
``refresh_needed()`` every ``_CHECK_INTERVAL`` seconds at most (more often when they are
short-lived); every other call reuses a frozen
snapshot with no coroutine.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time

import botocore.credentials
import botocore.exceptions
import botocore.session

from ._constants import CREDENTIAL_REFRESH_MARGIN
from ._errors import (
    CredentialsError,
    CredentialsTimeoutError,
    NoCredentialsError,
    ParamValidationError,
    SageMakerRuntimeError,
    SanitizedCause,
)
from ._signing import FrozenCredentials

# The wall clock botocore's expiry times are compared with: a module global, so tests can drive
# it (monkeypatch) together with a botocore ``time_fetcher``.
_wall_clock = time.time

# How often a refreshable source is asked whether it needs a refresh (a cheap, I/O-free check).
_CHECK_INTERVAL = 30.0


class CredentialSource:
    """Hands out a current :class:`FrozenCredentials` snapshot; cheap on every call."""

    def __init__(
        self,
        *,
        static: FrozenCredentials | None = None,
        botocore_credentials: botocore.credentials.Credentials | None = None,
        botocore_session: botocore.session.Session | None = None,
    ) -> None:
        self._static = static
        self._source = botocore_credentials
        self._session = botocore_session
        self._frozen: FrozenCredentials | None = static
        # Wall time (botocore's expiry times are wall-clock) until which the snapshot is used
        # without asking the source.
        self._check_at = float("inf") if static is not None else float("-inf")
        self._loading: asyncio.Future[FrozenCredentials] | None = None

    @classmethod
    def from_arguments(
        cls,
        *,
        aws_access_key_id: str | None,
        aws_secret_access_key: str | None,
        aws_session_token: str | None,
        credentials: botocore.credentials.Credentials | None,
        botocore_session: botocore.session.Session | None,
    ) -> CredentialSource:
        if aws_access_key_id or aws_secret_access_key:
            if not (aws_access_key_id and aws_secret_access_key):
                raise ParamValidationError(
                    "aws_access_key_id",
                    "aws_access_key_id and aws_secret_access_key must be given together",
                )
            return cls(
                static=FrozenCredentials(
                    aws_access_key_id, aws_secret_access_key, aws_session_token
                )
            )
        if credentials is not None:
            return cls(botocore_credentials=credentials)
        return cls(botocore_session=botocore_session)

    def __repr__(self) -> str:
        return f"<CredentialSource {'static' if self._static else 'botocore'}>"

    def current(self) -> FrozenCredentials | None:
        """The snapshot, if it needs no check: the every-call path, with no coroutine."""
        if _wall_clock() < self._check_at:
            return self._frozen
        return None

    async def get(self, deadline: float | None = None) -> FrozenCredentials:
        """Current credentials, loading or refreshing them if needed; waits no later than
        ``deadline`` (``time.monotonic()``)."""
        frozen = self._frozen
        if frozen is not None and _wall_clock() < self._check_at:
            return frozen
        source = self._source
        if (
            frozen is not None
            and isinstance(source, botocore.credentials.RefreshableCredentials)
            and not source.refresh_needed()  # botocore's own window: it would not refresh now
        ):
            self._check_at = _next_check(source)
            return frozen
        loading = self._loading
        if loading is None or loading.done():
            loading = self._loading = self._start_load()
        if deadline is None:
            return await asyncio.shield(loading)
        remaining = deadline - time.monotonic()
        try:
            if remaining <= 0:
                raise asyncio.TimeoutError
            return await asyncio.wait_for(asyncio.shield(loading), remaining)
        except asyncio.TimeoutError:
            pass
        raise CredentialsTimeoutError(
            "AWS credentials could not be loaded before the call's deadline (the credential "
            "provider is still working)"
        )

    def _start_load(self) -> asyncio.Future[FrozenCredentials]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[FrozenCredentials] = loop.create_future()

        def settle(result: FrozenCredentials | None, error: BaseException | None) -> None:
            if self._loading is future:
                self._loading = None
            if future.done():
                return
            if error is not None:
                future.set_exception(error)
            else:
                assert result is not None
                future.set_result(result)

        def run() -> None:
            result: FrozenCredentials | None = None
            error: BaseException | None = None
            try:
                result = self._load()
            except BaseException as exc:  # handed to the loop; nothing escapes the thread
                error = exc
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
                loop.call_soon_threadsafe(settle, result, error)

        # Waiters that gave up leave the future unobserved: mark a failure as seen.
        future.add_done_callback(lambda f: f.cancelled() or f.exception())
        threading.Thread(target=run, name="sagemaker-rt-aio-credentials", daemon=True).start()
        return future

    def _load(self) -> FrozenCredentials:
        """Runs in a worker thread: may read files or call a metadata service."""
        error: SageMakerRuntimeError | None = None
        try:
            if self._source is None:
                session = self._session or botocore.session.Session()
                self._source = session.get_credentials()
                if self._source is None:
                    raise NoCredentialsError()
            snapshot = self._source.get_frozen_credentials()
        except botocore.exceptions.ProfileNotFound as exc:
            error = ParamValidationError("profile_name", str(exc))
        except SageMakerRuntimeError as exc:
            error = exc
        except Exception as exc:
            # botocore's errors (and the RuntimeError of a failed refresh) would escape our tree.
            # Not chained: a provider's exception may hold what it was handed.
            error = CredentialsError(f"could not load AWS credentials: {type(exc).__name__}: {exc}")
            error.__cause__ = SanitizedCause.of(exc)
        if error is not None:
            raise error
        if not snapshot.access_key or not snapshot.secret_key:
            raise NoCredentialsError()
        frozen = FrozenCredentials(snapshot.access_key, snapshot.secret_key, snapshot.token)
        self._frozen = frozen
        source = self._source
        if isinstance(source, botocore.credentials.RefreshableCredentials):
            self._check_at = _next_check(source)
        else:
            self._check_at = float("inf")
        return frozen


def _next_check(source: botocore.credentials.RefreshableCredentials) -> float:
    """When to ask ``source`` again whether it needs a refresh: every ``_CHECK_INTERVAL`` seconds
    for long-lived credentials; for short-lived ones, a quarter of the time they have left (found
    with the public ``refresh_needed(refresh_in)``, which says whether less than ``refresh_in``
    seconds are left), so a refresh is never late by more than that."""
    now = _wall_clock()
    if not source.refresh_needed(CREDENTIAL_REFRESH_MARGIN):
        return now + _CHECK_INTERVAL
    left = 0.0
    probe = 0.125
    while probe < CREDENTIAL_REFRESH_MARGIN and not source.refresh_needed(probe):
        left = probe  # at least this much is left
        probe *= 2
    return now + min(_CHECK_INTERVAL, max(left / 4, 0.05))
