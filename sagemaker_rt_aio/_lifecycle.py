"""One lifecycle per client: what is running, and how it all ends.

Every public entry point registers here: calls (and waits, downloads, uploads) as the task running
them, open bodies (response streams, an S3 object being read) as resources that can be aborted.
``shutdown(grace)`` then means the same for all of them:

1. admission stops at once (``closing``): new calls raise ``ClientClosedError``, nothing is sent;
   calls sleeping between attempts or polls wake and end; waits for async results (polls of S3,
   and the output being read) end at once: they are not work in flight that grace could save;
2. what runs gets ``grace`` seconds to finish; after that, running calls are cancelled and raise
   ``ClientClosedError`` in their callers, and open bodies are aborted the same way;
3. the session is closed.

The work runs in one task, shared: a second concurrent ``shutdown()`` waits for the same one, and a
``shutdown()`` that is cancelled (an application's shutdown timeout) cuts the grace short but lets
the task finish closing, so the session is closed in the end whatever happens to its caller; calling
``shutdown()`` again waits for that end.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

from ._errors import ClientClosedError

if TYPE_CHECKING:
    from ._bidi import BidirectionalStream


class Abortable(Protocol):
    def _abort(self, error: BaseException) -> None: ...


class Lifecycle:
    def __init__(self) -> None:
        # Where the client waits (retry backoff, polls for async results), it asks the lifecycle,
        # so tests can drive time instead of sleeping: ``sleep`` (None: a real timer that
        # shutdown interrupts) and ``clock`` (the waits' deadlines). Private; never on a path
        # that does not wait.
        self.sleep: Callable[[float], Awaitable[object]] | None = None
        self.clock: Callable[[], float] = time.monotonic
        self.closing = False
        self.closed = False
        self._closing_event = asyncio.Event()
        self.inflight: set[asyncio.Task[Any]] = set()
        self._immediate: set[asyncio.Task[Any]] = set()  # ended at once by shutdown
        self.aborted: set[asyncio.Task[Any]] = set()
        # Set when no call is in flight. Only shutdown waits for it, so calls keep it only once
        # the client is closing (shutdown sets it right first): a call costs no Event work.
        self.idle = asyncio.Event()
        self.idle.set()
        self._resources: set[Abortable] = set()
        self._immediate_resources: set[Abortable] = set()
        # Set when no body is open. As ``idle``, kept only once the client is closing: a stream
        # costs no Event work.
        self._resources_idle = asyncio.Event()
        self._resources_idle.set()
        self._hurry = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._on_close: list[Callable[[], Awaitable[None]]] = []
        # The loop the client's calls run in (its session's), learned from the first: see
        # running_task.
        self.loop: asyncio.AbstractEventLoop | None = None

    # -- calls ------------------------------------------------------------------------------

    def running_task(self) -> asyncio.Task[Any] | None:
        """The running task. ``asyncio.current_task()`` looks for the running loop first, which
        on Python 3.10 and 3.11 makes a getpid() system call; given the loop, it is a dict lookup.
        A client's calls all run in one loop, its session's: the first call's. (A call from
        another loop, where the first is no longer running, finds no task in it and is looked
        up the long way; a client is not to be shared between threads' loops, as its session
        is not.)"""
        loop = self.loop
        if loop is not None:
            task = asyncio.current_task(loop)
            if task is not None:
                return task
        task = asyncio.current_task()
        if task is not None and loop is None:
            self.loop = task.get_loop()
        return task

    def enter(self, *, immediate: bool = False) -> asyncio.Task[Any] | None:
        """Register the running task; returns it if this registration is the outermost one.
        ``immediate``: shutdown cancels it at once rather than after the grace period."""
        if self.closing:
            raise ClientClosedError()
        task = self.running_task()
        if task is None or task in self.inflight:
            return None
        self.inflight.add(task)
        if immediate:
            self._immediate.add(task)
        return task

    def leave(self, task: asyncio.Task[Any] | None) -> None:
        if task is None:
            return
        self.inflight.discard(task)
        self._immediate.discard(task)
        self.aborted.discard(task)
        if not self.inflight and self.closing:
            self.idle.set()

    def closed_error(self, task: asyncio.Task[Any] | None = None) -> ClientClosedError | None:
        """For a task that got CancelledError: the error to raise instead if the cancellation was
        the shutdown's, not its caller's (None otherwise)."""
        task = task or self.running_task()
        if task is None or task not in self.aborted:
            return None
        self.aborted.discard(task)
        if sys.version_info >= (3, 11):
            task.uncancel()
        return ClientClosedError("the client shut down while the call was in flight")

    def track(self, *, immediate: bool = False) -> _Tracked:
        """``with lifecycle.track():`` around a public entry point that is not a pipeline call."""
        return _Tracked(self, immediate)

    # -- open bodies ------------------------------------------------------------------------

    def add_resource(self, resource: Abortable, *, immediate: bool = False) -> None:
        """Register an open body; ``immediate``: shutdown aborts it at once."""
        if self.closing and (immediate or (self._task is not None and self._task.done())):
            resource._abort(ClientClosedError("the client has been shut down"))
            return
        self._resources.add(resource)
        if immediate:
            self._immediate_resources.add(resource)
        if self.closing:
            self._resources_idle.clear()

    def discard_resource(self, resource: Abortable) -> None:
        self._resources.discard(resource)
        self._immediate_resources.discard(resource)
        if not self._resources and self.closing:
            self._resources_idle.set()

    def on_close(self, callback: Callable[[], Awaitable[None]]) -> None:
        """Run ``callback`` last in shutdown (closing the session)."""
        self._on_close.append(callback)

    # -- waiting ----------------------------------------------------------------------------

    async def sleep_unless_closing(self, seconds: float) -> bool:
        """Sleep between attempts or polls; True if the client began shutting down meanwhile."""
        if seconds <= 0:
            return self.closing
        if self.sleep is not None:
            await self.sleep(seconds)
            return self.closing
        try:
            await asyncio.wait_for(self._closing_event.wait(), seconds)
        except asyncio.TimeoutError:
            return False
        return True

    # -- shutdown ---------------------------------------------------------------------------

    async def shutdown(self, grace: float) -> None:
        # From now on the last call to leave sets idle, and the last body to close sets
        # _resources_idle: both are brought up to date here first.
        self.closing = True
        if self.inflight:
            self.idle.clear()
        else:
            self.idle.set()
        if self._resources:
            self._resources_idle.clear()
        else:
            self._resources_idle.set()
        self._closing_event.set()
        current = asyncio.current_task()
        if current in self.inflight:
            # shutdown() from inside a call (a middleware): waiting for that call would never end.
            self.leave(current)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(grace))
        try:
            await asyncio.shield(self._task)
        except asyncio.CancelledError:
            if not self._task.done():
                self._hurry.set()  # the grace ends now; the task still closes everything
            raise

    async def _run(self, grace: float) -> None:
        until = time.monotonic() + max(grace, 0.0)
        try:
            for task in list(self._immediate):
                self.aborted.add(task)
                task.cancel()
            for resource in list(self._immediate_resources):
                resource._abort(ClientClosedError("the client shut down while a body was read"))
            await self._wait(self.idle, until)
            for task in list(self.inflight):
                self.aborted.add(task)
                task.cancel()
            if self.inflight:
                await self.idle.wait()
            await self._wait(self._resources_idle, until)
            for resource in list(self._resources):
                resource._abort(ClientClosedError("the client shut down while a body was read"))
            self._resources.clear()
            self._resources_idle.set()
        finally:
            for callback in self._on_close:
                await callback()
            self.closed = True

    async def _wait(self, event: asyncio.Event, until: float) -> None:
        remaining = until - time.monotonic()
        if event.is_set() or remaining <= 0 or self._hurry.is_set():
            return
        waits = [asyncio.ensure_future(event.wait()), asyncio.ensure_future(self._hurry.wait())]
        try:
            await asyncio.wait(waits, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waits:
                waiter.cancel()
            await asyncio.gather(*waits, return_exceptions=True)


class _Tracked:
    """Registers the running task for the block; a cancellation by the shutdown becomes
    ``ClientClosedError``."""

    __slots__ = ("_immediate", "_lifecycle", "_task")

    def __init__(self, lifecycle: Lifecycle, immediate: bool) -> None:
        self._lifecycle = lifecycle
        self._immediate = immediate
        self._task: asyncio.Task[Any] | None = None

    def __enter__(self) -> None:
        self._task = self._lifecycle.enter(immediate=self._immediate)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        lifecycle, task = self._lifecycle, self._task
        try:
            if exc_type is not None and issubclass(exc_type, asyncio.CancelledError):
                error = lifecycle.closed_error(task)
                if error is not None:
                    raise error from None
        finally:
            lifecycle.leave(task)


class OpenBidiStreams:
    """A client's open bidirectional streams, for its shutdown. Here rather than in ``_bidi``
    (which it serves) so that a client can hold one without importing HTTP/2 support."""

    def __init__(self) -> None:
        self.streams: set[BidirectionalStream] = set()

    async def close_all(self, grace: float) -> None:
        """Streams whose input has ended get ``grace`` seconds to finish; the rest (still
        waiting for input that will never come) are reset at once."""
        pending = [stream for stream in self.streams if stream.input_ended]
        if pending and grace > 0:
            waiters = [asyncio.ensure_future(stream._done.wait()) for stream in pending]
            _, still = await asyncio.wait(waiters, timeout=grace)
            for waiter in still:
                waiter.cancel()
            await asyncio.gather(*waiters, return_exceptions=True)
        streams = list(self.streams)
        await asyncio.gather(*(stream._shutdown() for stream in streams), return_exceptions=True)
