"""``Slots``: at most N holders at a time, the others served in arrival order.

An ``asyncio.Semaphore`` would do, but every call pays its ``acquire`` coroutine even when a slot is
free; ``try_take`` is the synchronous fast path, and a call only awaits when it must queue.

Invariant: ``free + holders == limit``. A waiter leaves the queue exactly once: either ``give_back``
pops it and hands it the slot (its future gets a result), or it gives up (cancelled) and removes
itself. A waiter cancelled after it was handed the slot passes the slot on.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque


class Slots:
    def __init__(self, limit: int) -> None:
        self._free = limit
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def free(self) -> int:
        """Slots nobody holds (for tests and diagnostics)."""
        return self._free

    @property
    def queued(self) -> int:
        """Callers waiting in line."""
        return len(self._waiters)

    def locked(self) -> bool:
        """True when a new caller would have to wait."""
        return self._free == 0 or bool(self._waiters)

    def try_take(self) -> bool:
        """Take a free slot now, if one is free and nobody is queued ahead."""
        if self._free and not self._waiters:
            self._free -= 1
            return True
        return False

    async def take(self) -> None:
        """Take a slot, waiting in line for one if needed.

        Cancellation (the caller's own, a ``wait_for`` timeout, a shutdown) propagates unchanged.
        """
        if self.try_take():
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.give_back()  # handed a slot just as we were cancelled: pass it on
            else:
                waiter.cancel()  # a give_back() from now on skips it
                # ValueError: already popped by give_back, which skipped it as done.
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
            raise

    def give_back(self) -> None:
        """Return a slot: straight to the first caller in line, if any."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._free += 1
