"""Fault injection: per-endpoint counters that decide, call by call, what goes wrong.

Every request addressed to an endpoint name takes exactly one decision, synchronously and in arrival
order, so ``fail_next(name, 2)`` fails exactly the next two calls whatever their concurrency. Within
one call the order is: a pending connection reset, then a pending injected error, then a cold start
that has not yet ended. Latency applies on top of whatever the call does.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class InjectedError:
    """An error answer to send instead of calling the model."""

    code: str
    status: int
    message: str
    retry_after: float | None = None
    fields: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FaultDecision:
    reset_connection: bool = False
    error: InjectedError | None = None
    #: Seconds of cold start left: the call answers ModelNotReadyException.
    cold_start_remaining: float | None = None
    latency: float = 0.0


@dataclass
class _Pending:
    error: InjectedError
    remaining: int


@dataclass
class _EndpointFaults:
    resets: int = 0
    errors: deque[_Pending] = field(default_factory=deque)
    latency: float = 0.0
    cold_until: float | None = None


class FaultInjector:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._faults: dict[str, _EndpointFaults] = {}

    def _for(self, name: str) -> _EndpointFaults:
        return self._faults.setdefault(name, _EndpointFaults())

    def fail_next(self, name: str, n: int, error: InjectedError) -> None:
        if n < 0:
            raise ValueError("n must be >= 0")
        if n:
            self._for(name).errors.append(_Pending(error, n))

    def reset_connection_next(self, name: str, n: int) -> None:
        if n < 0:
            raise ValueError("n must be >= 0")
        self._for(name).resets += n

    def set_latency(self, name: str, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("seconds must be >= 0")
        self._for(name).latency = seconds

    def cold_start(self, name: str, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("seconds must be >= 0")
        self._for(name).cold_until = self._clock() + seconds

    def clear(self, name: str | None = None) -> None:
        if name is None:
            self._faults.clear()
        else:
            self._faults.pop(name, None)

    def decide(self, name: str) -> FaultDecision:
        """Take this call's decision (consumes at most one counted fault)."""
        faults = self._faults.get(name)
        if faults is None:
            return FaultDecision()
        if faults.resets:
            faults.resets -= 1
            return FaultDecision(reset_connection=True, latency=faults.latency)
        if faults.errors:
            pending = faults.errors[0]
            pending.remaining -= 1
            if pending.remaining <= 0:
                faults.errors.popleft()
            return FaultDecision(error=pending.error, latency=faults.latency)
        if faults.cold_until is not None:
            remaining = faults.cold_until - self._clock()
            if remaining > 0:
                return FaultDecision(cold_start_remaining=remaining, latency=faults.latency)
            faults.cold_until = None
        return FaultDecision(latency=faults.latency)
