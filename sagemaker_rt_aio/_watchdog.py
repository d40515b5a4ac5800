"""One coarse read watchdog per client, instead of aiohttp's ``sock_read`` timer re-armed per read.

aiohttp enforces ``sock_read`` by arming a timer once a request is written and cancelling and
re-creating it on every ``data_received``: for a small call that is two timer handles pushed on
the loop's heap and two cancelled (about a twelfth of the client's CPU per call), for a response
stream a timer per event. The client's calls and streams are watched here instead: one timer per
client, running while something is watched (and one tick after). Every tick (a sixteenth of the
shortest ``sock_read`` watched) the watchdog looks at each watch's progress and ends one that made
none for ``sock_read`` seconds (``on_expire``; a watch without one has its task cancelled, for
callers that turn that into ``ReadTimeoutError``).

Progress, as aiohttp's timer sees it: until the request is written, none is needed (aiohttp's
timer starts only then). A call's watch is told its connection's transport by the client's
connector (``connected``), and its idle time counts only from a tick that finds nothing of the
request left in that transport's buffer; before the connection, none counts (``sock_connect``
bounds that). From the headers on, body bytes received are the progress, and for a stream, bytes
received but not yet consumed by its reader (then the reader, not the server, is waiting).

Semantics: the same idle limit as ``sock_read``, detected up to two ticks late (70 s becomes at
most 78.75 s; before the headers, one more tick for noticing the request written): past the
limit a watch is suspect, and ended only if still so at the next tick, which leaves a loop starved
of CPU one tick to run the I/O that was waiting.

A call still waiting for its connection is not idle. One that waits in the client's own pool,
signed (its watch holds its ``wire`` request, see ``Slots.take_on_credit``), is marked ``late``
once the ticks have found it waiting longer than ``SIGN_AGAIN_AFTER`` (counted from the first
that found it, so up to a tick more): the client's connector signs it again before it is sent.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Protocol

from ._constants import SIGN_AGAIN_AFTER

if TYPE_CHECKING:
    from ._protocol import WireRequest

_TICKS_PER_LIMIT = 16


class _Reader(Protocol):
    total_bytes: int


class _Transport(Protocol):
    def get_write_buffer_size(self) -> int: ...


class _Connecting:
    """A call's transport until its connection is made: never done writing."""

    @staticmethod
    def get_write_buffer_size() -> int:
        return 1


_CONNECTING = _Connecting()

# The call watched while ``sending`` that the running task is making, or its last one (ended:
# no ``transport``): a context variable, so that the connector, which runs in that task, finds it
# without a lookup by task. (aiohttp's body-writer task, started during the call, inherits it but
# never connects; a task started later inherits an ended one.)
_SENDING: ContextVar[Watch | None] = ContextVar("sagemaker_rt_aio_sending", default=None)


class Watch:
    """One call being watched. ``reader`` is set once the response headers are in; ``transport``,
    for a call watched from before its request is written, is the connection's (see
    :meth:`ReadWatchdog.connected`).

    A started response stream is watched on its own (:meth:`ReadWatchdog.hand_over`): an idle
    stream is ended by ``on_expire`` (not by cancelling a task: whoever reads it may), and bytes
    received but not yet ``consumed`` by its reader count as progress, since then the reader,
    not the server, is the one waiting.
    """

    # Class-level defaults, no __slots__: a watch is made per call, and setting four attributes
    # costs a third of setting twelve.
    reader: _Reader | None = None
    seen = -1
    expired = False
    suspect = False  # past the limit at the last tick: ended if still so at the next
    # Ends the watched call: called with ``subject`` (the connection's protocol, then the
    # response) when the watch expires.
    on_expire: Callable[[Any], None] | None = None
    subject: Any = None
    consumed = -1  # a stream's bytes read by its consumer; -1 while not a stream
    # A call that may wait for its connection in the client's own pool: its request
    # (``WireRequest``), signed again once it has one if it waited long (``late``; see
    # ``WatchedConnector``); None otherwise.
    wire: WireRequest | None = None
    waiting_since = -1.0  # when a tick first found it waiting for its connection
    late = False  # it waited longer than SIGN_AGAIN_AFTER

    def __init__(
        self,
        owner: ReadWatchdog,
        task: asyncio.Task[object],
        idle: float,
        since: float,
        transport: _Transport | None,
    ) -> None:
        self.owner = owner
        self.task: asyncio.Task[object] | None = task  # None once unwatched (see unwatch)
        self.idle = idle
        self.since = since
        self.transport = transport  # None: idle time counts from the start

    def close(self) -> None:
        """Stop watching (a stream read to its end or closed)."""
        self.owner.unwatch(self)


class ReadWatchdog:
    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock  # the watches' time (tests drive it)
        self._watches: dict[Watch, None] = {}  # an ordered set
        self._handle: asyncio.TimerHandle | None = None
        self._tick = 0.0

    def __len__(self) -> int:
        return len(self._watches)

    def watch(
        self, idle: float, sending: bool = False, task: asyncio.Task[Any] | None = None
    ) -> Watch:
        """Watch the current task (``task``, if the caller has it at hand) until
        :meth:`unwatch`; it may be cancelled after ``idle`` s without progress (``watch.expired``
        is then True). ``sending``: the task is about to send its request, and its idle time
        counts only once the request is written (see :meth:`connected`)."""
        if task is None:
            task = asyncio.current_task()
            assert task is not None
        watch = Watch(self, task, idle, self.clock(), _CONNECTING if sending else None)
        if sending:
            _SENDING.set(watch)
        self._watches[watch] = None
        tick = idle / _TICKS_PER_LIMIT
        if self._handle is None or tick < self._tick:
            self._arm(task.get_loop(), tick)
        return watch

    def connected(
        self, transport: _Transport, on_expire: Callable[[Any], None], subject: object
    ) -> Watch | None:
        """The current task's connection is made (the client's connector calls this): if it is a
        call watched while ``sending``, its request goes out through ``transport``, and
        ``on_expire(subject)`` ends it if it then waits too long for its answer. Returns that
        call's watch, if any."""
        # Kept until the call ends: aiohttp may send an idempotent request again on a new
        # connection (the old one closed under it), and the watch must follow.
        watch = _SENDING.get()
        if watch is not None and watch.transport is not None and watch.owner is self:
            watch.transport = transport
            watch.on_expire = on_expire
            watch.subject = subject
            return watch
        return None

    def hand_over(
        self, watch: Watch, reader: _Reader, on_expire: Callable[[Any], None], subject: object
    ) -> None:
        """Keep watching a call's ``watch`` after its stream started: from now on its reader's
        bytes are the progress, and ``on_expire(subject)`` ends it if none come for the idle
        limit. A call watched while ``sending`` stops being the one its task is sending."""
        if watch.transport is not None and _SENDING.get() is watch:
            _SENDING.set(None)  # a later connection of the task's must not take this watch
        watch.wire = None  # its request is sent: not kept for the rest of the stream
        watch.reader = reader
        watch.on_expire = on_expire
        watch.subject = subject
        watch.consumed = 0

    def unwatch(self, watch: Watch) -> None:
        # The timer is left to run out: cancelling it here and arming it again on the next call
        # would cost each call the very timer operations the watchdog exists to save. A tick
        # that finds nothing to watch does not re-arm.
        self._watches.pop(watch, None)
        if watch.transport is not None:
            # A call watched while sending stays its task's _SENDING until that task's next call
            # (setting a context variable costs more than the rest of a watch): it forgets what
            # it refers to, so it keeps nothing alive, and ``connected`` ignores it. Its task
            # above all: the task holds its context, which holds the watch, and that cycle would
            # keep every finished task (its result, its exception and traceback's frames) until
            # the garbage collector came round, not free it when its last reference goes.
            watch.transport = watch.subject = watch.on_expire = watch.reader = None
            watch.task = watch.wire = None

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
        now = self.clock()
        tick = float("inf")
        for watch in list(self._watches):
            reader = watch.reader
            received = reader.total_bytes if reader is not None else -1
            transport = watch.transport
            if received < 0 and transport is not None and transport.get_write_buffer_size():
                # Still connecting or writing; the tick that first finds the request written
                # (seen -2, received -1) starts the clock.
                received = -2
                if transport is _CONNECTING and watch.wire is not None:
                    # Waiting in the pool, signed: to be signed again if it waits too long.
                    if watch.waiting_since < 0:
                        watch.waiting_since = now
                    elif now - watch.waiting_since > SIGN_AGAIN_AFTER:
                        watch.late = True
            if received != watch.seen or received == -2 or 0 <= watch.consumed < received:
                # New bytes, bytes its reader has yet to take, or a request being written.
                watch.seen = received
                watch.since = now
                watch.suspect = False
            elif now - watch.since >= watch.idle and not watch.expired:
                # The verdict is given at the next tick only: a loop that was starved of CPU gets
                # one tick to run the I/O and the task steps that were waiting (aiohttp's timer,
                # run after the I/O of its loop iteration, is immune to that too).
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
            if watch.task is not None:  # always, while watched
                watch.task.cancel()
        else:
            del self._watches[watch]
            watch.on_expire(watch.subject)
