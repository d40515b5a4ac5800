"""One coarse read watchdog per client, instead of aiohttp's ``sock_read`` timer re-armed per read.

aiohttp enforces ``sock_read`` by cancelling and re-creating a timer on every ``data_received``:
for a response stream, that is a timer per event. Once a stream's headers are in, the client
stops that timer and watches the stream here instead: one timer per client, running while
something is watched (and one tick after). Every tick (a sixteenth of the shortest ``sock_read``
watched) the watchdog looks at how many body bytes each watch's reader has received and ends one
that received nothing for ``sock_read`` seconds (``on_expire``; a watch without one has its task
cancelled, for callers that turn that into ``ReadTimeoutError``). Until the headers, and for calls
that are not streams, aiohttp's own timer applies: only it knows when a request has been written.

Semantics: the same idle limit as ``sock_read``, detected up to two ticks late (70 s becomes at
most 78.75 s): past the limit a call is suspect, and ended only if still so at the next tick, which
leaves a loop starved of CPU one tick to run the I/O that was waiting. Before the headers arrive,
the limit counts from when the call started, with one more tick of grace (aiohttp's timer starts
only once the request is written).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Protocol

_TICKS_PER_LIMIT = 16


class _Reader(Protocol):
    total_bytes: int


class Watch:
    """One call being watched. ``reader`` is set once the response headers are in.

    A started response stream is watched on its own (:meth:`ReadWatchdog.hand_over`): an idle
    stream is ended by ``on_expire`` (not by cancelling a task: whoever reads it may), and bytes
    received but not yet ``consumed`` by its reader count as progress, since then the reader,
    not the server, is the one waiting.
    """

    __slots__ = (
        "consumed",
        "expired",
        "idle",
        "on_expire",
        "owner",
        "reader",
        "seen",
        "since",
        "suspect",
        "task",
    )

    def __init__(
        self, owner: ReadWatchdog, task: asyncio.Task[object], idle: float, now: float
    ) -> None:
        self.owner = owner
        self.task = task
        self.idle = idle
        self.since = now
        self.reader: _Reader | None = None
        self.seen = -1
        self.expired = False
        self.suspect = False  # past the limit at the last tick: ended if still so at the next
        self.on_expire: Callable[[], None] | None = None
        self.consumed = -1  # a stream's bytes read by its consumer; -1 while not a stream

    def close(self) -> None:
        """Stop watching (a stream read to its end or closed)."""
        self.owner.unwatch(self)


class ReadWatchdog:
    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._watches: dict[Watch, None] = {}  # an ordered set
        self._handle: asyncio.TimerHandle | None = None
        self._tick = 0.0

    def __len__(self) -> int:
        return len(self._watches)

    def watch(self, idle: float) -> Watch:
        """Watch the current task until :meth:`unwatch`; it may be cancelled after ``idle`` s
        without progress (``watch.expired`` is then True)."""
        task = asyncio.current_task()
        assert task is not None
        watch = Watch(self, task, idle, self._clock())
        self._watches[watch] = None
        tick = idle / _TICKS_PER_LIMIT
        if self._handle is None or tick < self._tick:
            self._arm(task.get_loop(), tick)
        return watch

    def hand_over(self, watch: Watch, reader: _Reader, on_expire: Callable[[], None]) -> None:
        """Keep watching a call's ``watch`` after its stream started: from now on its reader's
        bytes are the progress, and ``on_expire`` ends it if none come for the idle limit."""
        watch.reader = reader
        watch.on_expire = on_expire
        watch.consumed = 0

    def unwatch(self, watch: Watch) -> None:
        # The timer is left to run out: cancelling it here and arming it again on the next call
        # would cost each call the very timer operations the watchdog exists to save. A tick
        # that finds nothing to watch does not re-arm.
        self._watches.pop(watch, None)

    def close(self) -> None:
        """Stop the timer now (the client shut down)."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _arm(self, loop: asyncio.AbstractEventLoop, tick: float) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._tick = tick
        self._handle = loop.call_later(tick, self.check, loop)

    def check(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """One tick: end the calls idle for too long; re-arm while any call is watched."""
        self._handle = None
        now = self._clock()
        tick = float("inf")
        for watch in list(self._watches):
            reader = watch.reader
            received = reader.total_bytes if reader is not None else -1
            if received != watch.seen or 0 <= watch.consumed < received:
                watch.seen = received
                watch.since = now
                watch.suspect = False
            elif (
                now - watch.since >= watch.idle + (watch.idle / _TICKS_PER_LIMIT if received < 0 else 0)
                and not watch.expired
            ):
                # Before the headers, one tick of grace: the watch started before the request was
                # even sent, where aiohttp's own timer starts once it is. And the verdict is given
                # at the next tick only: a loop that was starved of CPU gets one tick to run the
                # I/O and the task steps that were waiting (aiohttp's timer, run after the I/O of
                # its loop iteration, is immune to that too).
                if watch.suspect:
                    watch.expired = True
                    self._expire(watch)
                    if watch.on_expire is not None:
                        continue
                else:
                    watch.suspect = True
            tick = min(tick, watch.idle / _TICKS_PER_LIMIT)
        if self._watches and loop is not None:
            self._arm(loop, tick)

    def _expire(self, watch: Watch) -> None:
        if watch.on_expire is None:
            watch.task.cancel()
        else:
            del self._watches[watch]
            watch.on_expire()
