"""Fault injection: one mechanism for every stage of a call.

A fault is a small frozen value saying what goes wrong; it is *armed* for an endpoint (or for the S3
interface) for the next ``times`` calls, for the next ``seconds``, or until cleared. Each fault acts
at one stage:

* before the model (every operation): :class:`ServiceErrorFault`, :class:`ConnectionResetFault`,
  :class:`ColdStartFault`, :class:`LatencyFault`;
* during a stream (InvokeEndpointWithResponseStream, InvokeEndpointWithBidirectionalStream):
  :class:`BreakStreamFault`, :class:`SlowFirstPartFault`, :class:`StallStreamFault`;
* on an async job (InvokeEndpointAsync): :class:`AsyncFailureFault`, :class:`AsyncDelayFault`;
* on the S3 interface: :class:`S3ErrorFault`.

Every call takes its faults synchronously, in arrival order, when the runtime accepts it, so a fault
armed for 2 calls hits exactly the next 2 calls of its stage whatever their concurrency. Before the
model, at most one fault answers the call (a connection reset first, then service errors in the
order they were armed, then a cold start) and latency adds to any of them. Waiting faults sleep
through the runtime's injectable ``sleep``, so tests can run them without real time passing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]

#: Service errors a fault can answer with (the SageMaker Runtime's own codes).
ServiceErrorCode = Literal[
    "ServiceUnavailable",
    "InternalFailure",
    "ThrottlingException",
    "ValidationError",
    "ModelError",
    "ModelNotReadyException",
    "InternalDependencyException",
    "AccessDeniedException",
]
#: S3 errors a fault can answer with, and their HTTP status.
S3ErrorCode = Literal[
    "NoSuchKey", "SlowDown", "AccessDenied", "InternalError", "ServiceUnavailable"
]
S3_ERROR_STATUS: Mapping[str, int] = {
    "NoSuchKey": 404,
    "SlowDown": 503,
    "AccessDenied": 403,
    "InternalError": 500,
    "ServiceUnavailable": 503,
}
_SERVICE_ERROR_STATUS: Mapping[str, int] = {
    "ServiceUnavailable": 503,
    "InternalFailure": 500,
    "ThrottlingException": 400,
    "ValidationError": 400,
    "ModelError": 424,
    "ModelNotReadyException": 429,
    "InternalDependencyException": 530,
    "AccessDeniedException": 403,
}
#: How a broken stream ends: an exception event, or the connection dropped without one.
StreamBreak = Literal["StreamBroken", "reset"]
#: The exception events that end a stream.
StreamErrorType = Literal["ModelStreamError", "InternalStreamFailure"]
S3Method = Literal["GET", "HEAD", "PUT", "DELETE"]


# The faults ----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ServiceErrorFault:
    """Answer this service error instead of calling the model (status from the code by default).

    ``retry_after`` (seconds) adds ``Retry-After`` and ``x-amz-retry-after``; ``fields`` adds
    members to the JSON body (e.g. ``OriginalStatusCode`` for a ``ModelError``).
    """

    code: ServiceErrorCode | str = "ServiceUnavailable"
    status: int | None = None
    message: str | None = None
    retry_after: float | None = None
    fields: Mapping[str, Any] = field(default_factory=dict)

    @property
    def http_status(self) -> int:
        return self.status if self.status is not None else _SERVICE_ERROR_STATUS.get(self.code, 500)

    @property
    def text(self) -> str:
        return (
            self.message
            if self.message is not None
            else f"{self.code}: injected by the local runtime"
        )


@dataclass(frozen=True, kw_only=True)
class ConnectionResetFault:
    """Close the connection without answering (after reading the request)."""


@dataclass(frozen=True, kw_only=True)
class ColdStartFault:
    """Answer 429 ``ModelNotReadyException`` (arm it with ``seconds`` for a cold start)."""


@dataclass(frozen=True, kw_only=True)
class LatencyFault:
    """Hold the call ``seconds`` before anything else happens to it."""

    seconds: float


@dataclass(frozen=True, kw_only=True)
class BreakStreamFault:
    """End a response or bidirectional stream after ``after_parts`` parts: with an exception
    event (by default ``ModelStreamError`` with ``ErrorCode`` ``StreamBroken``), or
    (``how="reset"``) by dropping the connection (the HTTP/2 stream, for a bidirectional one). A
    stream with no more than ``after_parts`` parts ends normally.

    ``error`` is the event's exception type (``ModelStreamError`` or ``InternalStreamFailure``),
    ``error_code`` its ``ErrorCode`` (None: none) and ``message`` its text (None: the service's
    text for a model that broke its stream).
    """

    after_parts: int = 0
    how: StreamBreak = "StreamBroken"
    error: StreamErrorType | str = "ModelStreamError"
    error_code: str | None = "StreamBroken"
    message: str | None = None


@dataclass(frozen=True, kw_only=True)
class SlowFirstPartFault:
    """Hold a response stream's first part back ``seconds`` (the 200 is already sent)."""

    seconds: float


@dataclass(frozen=True, kw_only=True)
class StallStreamFault:
    """After ``after_parts`` parts, send nothing for ``seconds`` (None: until the model timeout,
    which ends the stream with ``ModelInvocationTimeExceeded``). A stream with no more than
    ``after_parts`` parts is not stalled."""

    after_parts: int = 0
    seconds: float | None = None


@dataclass(frozen=True, kw_only=True)
class AsyncFailureFault:
    """The async job fails without running the model: ``message`` goes to the failure location."""

    message: str = "Injected failure of the asynchronous inference."


@dataclass(frozen=True, kw_only=True)
class AsyncDelayFault:
    """The async job's output (or failure) is written ``seconds`` later."""

    seconds: float


@dataclass(frozen=True, kw_only=True)
class S3ErrorFault:
    """The S3 interface answers this error (``NoSuchKey`` 404, ``SlowDown`` 503,
    ``AccessDenied`` 403, ...) for matching requests."""

    code: S3ErrorCode = "SlowDown"
    methods: frozenset[S3Method] = frozenset({"GET", "HEAD", "PUT", "DELETE"})
    message: str | None = None

    @property
    def status(self) -> int:
        return S3_ERROR_STATUS[self.code]


BeforeModelFault = ServiceErrorFault | ConnectionResetFault | ColdStartFault | LatencyFault
StreamFault = BreakStreamFault | SlowFirstPartFault | StallStreamFault
AsyncFault = AsyncFailureFault | AsyncDelayFault
Fault = BeforeModelFault | StreamFault | AsyncFault | S3ErrorFault

_STREAM_FAULTS = (BreakStreamFault, SlowFirstPartFault, StallStreamFault)
_ASYNC_FAULTS = (AsyncFailureFault, AsyncDelayFault)


# What one call gets -----------------------------------------------------------------------------


@dataclass(frozen=True)
class StreamPlan:
    #: The break this stream took (its ``after_parts`` counts the parts sent before it).
    broken: BreakStreamFault | None = None
    first_part_delay: float = 0.0
    stall_after: int | None = None
    #: None: stall until the model timeout.
    stall_seconds: float | None = None


@dataclass(frozen=True)
class AsyncPlan:
    failure: str | None = None
    delay: float = 0.0


@dataclass(frozen=True)
class FaultDecision:
    """The faults one call took, for every stage it will go through."""

    reset_connection: bool = False
    error: ServiceErrorFault | None = None
    #: Seconds of cold start left: the call answers ModelNotReadyException.
    cold_start_remaining: float | None = None
    latency: float = 0.0
    stream: StreamPlan = field(default_factory=StreamPlan)
    async_job: AsyncPlan = field(default_factory=AsyncPlan)


async def stall(sleep: Sleep, seconds: float | None) -> None:
    """An injected stall: ``seconds`` of the runtime's ``sleep``, or (None) until the model-timeout
    bound the caller puts around it ends it."""
    if seconds is None:
        await asyncio.Event().wait()
    else:
        await sleep(seconds)


# Arming ---------------------------------------------------------------------------------------


@dataclass
class _Armed:
    fault: Fault
    times: int | None
    until: float | None
    bucket: str | None = None
    key_prefix: str = ""

    def live(self, now: float) -> bool:
        return (self.times is None or self.times > 0) and (self.until is None or now < self.until)

    def take(self) -> None:
        if self.times is not None:
            self.times -= 1


S3_TARGET = "\x00s3"  # not a valid endpoint name: the S3 interface's faults


class FaultInjector:
    """Armed faults by target (an endpoint name, or the S3 interface)."""

    def __init__(
        self,
        clock: Clock | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.clock = clock if clock is not None else time.monotonic
        self.sleep = sleep
        self._armed: dict[str, list[_Armed]] = {}

    def arm(
        self,
        target: str,
        fault: Fault,
        *,
        times: int | None = None,
        seconds: float | None = None,
        bucket: str | None = None,
        key_prefix: str = "",
    ) -> None:
        """Arm ``fault`` for the next ``times`` calls and/or the next ``seconds`` (neither: until
        cleared)."""
        if not isinstance(fault, _ALL_FAULTS):
            raise TypeError(f"not a fault: {fault!r}")
        if times is not None and times < 0:
            raise ValueError("times must be >= 0")
        if seconds is not None and seconds < 0:
            raise ValueError("seconds must be >= 0")
        for name in ("seconds", "after_parts"):
            value = getattr(fault, name, None)
            if value is not None and value < 0:
                raise ValueError(f"{name} must be >= 0")
        if times == 0 or seconds == 0:
            return
        until = None if seconds is None else self.clock() + seconds
        self._armed.setdefault(target, []).append(
            _Armed(fault, times, until, bucket=bucket, key_prefix=key_prefix)
        )

    def disarm(self, target: str, kind: type[Any]) -> None:
        self._armed[target] = [
            a for a in self._armed.get(target, []) if not isinstance(a.fault, kind)
        ]

    def clear(self, target: str | None = None) -> None:
        if target is None:
            self._armed.clear()
        else:
            self._armed.pop(target, None)

    def _live(self, target: str) -> list[_Armed]:
        now = self.clock()
        armed = [a for a in self._armed.get(target, []) if a.live(now)]
        if armed:
            self._armed[target] = armed
        else:
            self._armed.pop(target, None)
        return armed

    # Decisions ------------------------------------------------------------------------------

    def decide(
        self, target: str, *, stream: bool = False, async_job: bool = False
    ) -> FaultDecision:
        """This call's faults (consumes one use of each fault it takes)."""
        armed = self._live(target)
        if not armed:
            return FaultDecision()
        latency = 0.0
        for item in armed:
            if isinstance(item.fault, LatencyFault):
                item.take()
                latency += item.fault.seconds
        answer = self._answer(armed)
        if answer is not None:
            return FaultDecision(
                reset_connection=isinstance(answer.fault, ConnectionResetFault),
                error=answer.fault if isinstance(answer.fault, ServiceErrorFault) else None,
                cold_start_remaining=(
                    None
                    if not isinstance(answer.fault, ColdStartFault)
                    else (answer.until - self.clock() if answer.until is not None else 0.0)
                ),
                latency=latency,
            )
        return FaultDecision(
            latency=latency,
            stream=self._stream_plan(armed) if stream else StreamPlan(),
            async_job=self._async_plan(armed) if async_job else AsyncPlan(),
        )

    @staticmethod
    def _answer(armed: list[_Armed]) -> _Armed | None:
        for kind in (ConnectionResetFault, ServiceErrorFault, ColdStartFault):
            for item in armed:
                if isinstance(item.fault, kind):
                    item.take()
                    return item
        return None

    @staticmethod
    def _stream_plan(armed: list[_Armed]) -> StreamPlan:
        plan: dict[str, Any] = {}
        for item in armed:
            fault = item.fault
            if not isinstance(fault, _STREAM_FAULTS):
                continue
            item.take()
            if isinstance(fault, BreakStreamFault):
                plan.setdefault("broken", fault)
            elif isinstance(fault, SlowFirstPartFault):
                plan["first_part_delay"] = plan.get("first_part_delay", 0.0) + fault.seconds
            elif "stall_after" not in plan:
                plan["stall_after"] = fault.after_parts
                plan["stall_seconds"] = fault.seconds
        return StreamPlan(**plan)

    @staticmethod
    def _async_plan(armed: list[_Armed]) -> AsyncPlan:
        failure: str | None = None
        delay = 0.0
        for item in armed:
            fault = item.fault
            if isinstance(fault, AsyncFailureFault) and failure is None:
                item.take()
                failure = fault.message
            elif isinstance(fault, AsyncDelayFault):
                item.take()
                delay += fault.seconds
        return AsyncPlan(failure=failure, delay=delay)

    def s3_fault(self, method: str, bucket: str, key: str) -> S3ErrorFault | None:
        """The S3 error this request gets, if any (consumes one use)."""
        for item in self._live(S3_TARGET):
            fault = item.fault
            if (
                isinstance(fault, S3ErrorFault)
                and method in fault.methods
                and (item.bucket is None or item.bucket == bucket)
                and key.startswith(item.key_prefix)
            ):
                item.take()
                return fault
        return None


_ALL_FAULTS = (
    ServiceErrorFault,
    ConnectionResetFault,
    ColdStartFault,
    LatencyFault,
    *_STREAM_FAULTS,
    *_ASYNC_FAULTS,
    S3ErrorFault,
)
