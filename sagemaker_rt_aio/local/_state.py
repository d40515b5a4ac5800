"""The runtime's shared state: configuration, registered endpoints, sessions, call log, tasks."""

from __future__ import annotations

import asyncio
import datetime
import re
import time
import uuid
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import botocore.credentials  # type: ignore[import-untyped,unused-ignore]

from ._faults import FaultInjector
from ._invocation import Handler, Invocation
from ._s3 import ObjectStore, parse_s3_location
from ._sigv4_verify import SignatureVerifier

# EndpointName in the service model (max 63); anchored here, as the service applies it.
ENDPOINT_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9])*$")
ENDPOINT_NAME_PATTERN = "^[a-zA-Z0-9](-*[a-zA-Z0-9])*"
ENDPOINT_NAME_MAX = 63


def call_log(max_calls: int) -> deque[Invocation]:
    """The record of what handlers received, keeping the last ``max_calls``."""
    if max_calls < 0:
        raise ValueError("max_recorded_calls must be >= 0")
    return deque(maxlen=max_calls)


def valid_endpoint_name(name: str) -> bool:
    return len(name) <= ENDPOINT_NAME_MAX and ENDPOINT_NAME.match(name) is not None


@dataclass
class Endpoint:
    name: str
    handler: Handler
    variant: str = "AllTraffic"
    #: Response content type when the handler does not set one.
    content_type: str | None = None
    #: ``s3://bucket/prefix`` for async outputs and failures (None: the runtime's defaults).
    output_path: str | None = None
    failure_path: str | None = None
    #: Container endpoints: true once the model server is healthy (may check it now).
    in_service: Callable[[], Awaitable[bool]] | None = None


@dataclass
class Config:
    region: str
    account_id: str
    model_timeout: float
    max_body_bytes: int
    max_async_body_bytes: int
    max_object_bytes: int
    async_output_path: str
    async_failure_path: str
    async_delay: float
    session_ttl: float


@dataclass
class RuntimeState:
    config: Config
    credentials: botocore.credentials.Credentials | None = None
    endpoints: dict[str, Endpoint] = field(default_factory=dict)
    faults: FaultInjector = field(default_factory=FaultInjector)
    store: ObjectStore = field(default_factory=ObjectStore)
    #: session id -> (endpoint name, expiry as a wall-clock timestamp)
    sessions: dict[str, tuple[str, float]] = field(default_factory=dict)
    #: What handlers received, oldest first; bounded (the runtime's ``max_recorded_calls``).
    invocation_log: deque[Invocation] = field(default_factory=lambda: deque(maxlen=10_000))
    call_counts: Counter[str] = field(default_factory=Counter)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    clock: Callable[[], float] = time.time
    _verifier: SignatureVerifier | None = None

    def verifier(self) -> SignatureVerifier | None:
        if self.credentials is None:
            return None
        if self._verifier is None:
            self._verifier = SignatureVerifier(self.credentials, self.config.region)
        return self._verifier

    # Sessions ------------------------------------------------------------------------------

    def new_session(self, endpoint_name: str) -> tuple[str, str]:
        """A new session id and its ``Expires`` text (``2026-01-01T00:00:00Z``)."""
        session_id = str(uuid.uuid4())
        expires = self.clock() + self.config.session_ttl
        self.sessions[session_id] = (endpoint_name, expires)
        text = datetime.datetime.fromtimestamp(expires, datetime.timezone.utc).strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        )
        return session_id, text

    def session_valid(self, session_id: str, endpoint_name: str) -> bool:
        entry = self.sessions.get(session_id)
        if entry is None:
            return False
        owner, expires = entry
        if expires <= self.clock():
            del self.sessions[session_id]
            return False
        return owner == endpoint_name

    def rename_session(self, old_id: str, new_id: str) -> None:
        """A container chose its own id for the session the runtime opened (same expiry)."""
        entry = self.sessions.pop(old_id, None)
        if entry is not None:
            self.sessions[new_id] = entry

    def close_session(self, session_id: str) -> bool:
        return self.sessions.pop(session_id, None) is not None

    # Async inference locations -------------------------------------------------------------

    def output_base(self, endpoint: Endpoint) -> tuple[str, str]:
        return parse_prefix(endpoint.output_path or self.config.async_output_path)

    def failure_base(self, endpoint: Endpoint) -> tuple[str, str]:
        return parse_prefix(endpoint.failure_path or self.config.async_failure_path)


def parse_prefix(path: str) -> tuple[str, str]:
    """``(bucket, prefix)`` of ``s3://bucket/prefix`` (the prefix may be empty)."""
    if path.startswith("s3://") and "/" not in path[5:].strip("/"):
        return path[5:].strip("/"), ""
    bucket, key = parse_s3_location(path)
    return bucket, key.strip("/")


def join_key(*parts: str) -> str:
    return "/".join(part.strip("/") for part in parts if part.strip("/"))
