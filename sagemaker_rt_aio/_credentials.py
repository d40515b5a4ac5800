"""Region and credentials, resolved the way boto3 resolves them, without blocking the event loop.

botocore's chain (environment, shared files, SSO, container and instance metadata) does file and
network I/O, so it runs in a worker thread, once. Expiring credentials are refreshed the same way,
one refresh at a time, shortly before they expire; every other call reuses a frozen snapshot.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from ._constants import CREDENTIAL_REFRESH_MARGIN
from ._errors import (
    CredentialsError,
    NoCredentialsError,
    ParamValidationError,
    SageMakerRuntimeError,
)
from ._signing import FrozenCredentials

if TYPE_CHECKING:  # imported by _load, in the worker thread, when the chain is first needed
    import botocore.credentials
    import botocore.session


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
        # Monotonic-free wall time: botocore's expiry times are wall-clock datetimes.
        self._refresh_at = float("inf")
        self._lock = asyncio.Lock()

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
        """The snapshot, if it needs no refresh: the every-call path, with no coroutine."""
        if time.time() < self._refresh_at:
            return self._frozen
        return None

    async def get(self) -> FrozenCredentials:
        frozen = self._frozen
        if frozen is not None and time.time() < self._refresh_at:
            return frozen
        async with self._lock:
            # Another caller may have refreshed while this one waited for the lock.
            if self._frozen is None or time.time() >= self._refresh_at:
                await asyncio.to_thread(self._load)
            assert self._frozen is not None
            return self._frozen

    def _load(self) -> None:
        """Runs in a worker thread: may read files or call a metadata service."""
        import botocore.credentials
        import botocore.exceptions
        import botocore.session

        try:
            if self._source is None:
                session = self._session or botocore.session.Session()
                self._source = session.get_credentials()
                if self._source is None:
                    raise NoCredentialsError()
            snapshot = self._source.get_frozen_credentials()
        except botocore.exceptions.ProfileNotFound as exc:
            raise ParamValidationError("profile_name", str(exc)) from None
        except SageMakerRuntimeError:
            raise
        except Exception as exc:
            # botocore's errors (and the RuntimeError of a failed refresh) would escape our tree.
            raise CredentialsError(
                f"could not load AWS credentials: {type(exc).__name__}: {exc}"
            ) from exc
        if not snapshot.access_key or not snapshot.secret_key:
            raise NoCredentialsError()
        self._frozen = FrozenCredentials(snapshot.access_key, snapshot.secret_key, snapshot.token)
        expiry = getattr(self._source, "_expiry_time", None)
        if isinstance(self._source, botocore.credentials.RefreshableCredentials) and expiry:
            # If the source hands out credentials already inside the margin, re-check every 30 s
            # rather than on every call.
            expires = expiry.timestamp()
            self._refresh_at = max(
                expires - CREDENTIAL_REFRESH_MARGIN, min(time.time() + 30.0, expires - 1.0)
            )
        else:
            self._refresh_at = float("inf")
