"""``Slots``: at most N holders at a time, the others served in arrival order.

An ``asyncio.Semaphore`` would do, but every call pays its ``acquire`` coroutine even when a slot is
free; ``try_take`` is the synchronous fast path, and a call only awaits when it must queue.
"""

from __future__ import annotations

import asyncio
from collections import deque


class Slots:
    def __init__(self, limit: int) -> None:
        self._free = limit
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def queued(self) -> int:
        """Callers waiting in line (telemetry's gauge)."""
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
        """Take a slot, waiting in line for one if needed."""
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
