"""``Slots``: at most N holders at a time, the others served in arrival order.

An ``asyncio.Semaphore`` would do, but every call pays its ``acquire`` coroutine even when a slot is
free; ``try_take`` is the synchronous fast path, and a call only awaits when it must queue.

A call that can wait for its connection in the client's own pool, signed and built (the pipeline's
flat path without a deadline), takes its slot on credit when none is free (``take_on_credit``):
``free`` goes below zero, one for each such call, and the pool is their queue, in arrival order
too. Slots given back repay that credit before they go to the callers queued here, and none is
taken on credit while a slot handed to one of those is on its way: a slot handed to a caller in
line always comes with a connection to take. Nor past ``POOL_QUEUE_PER_CONNECTION`` per slot: a
request waiting in the pool holds about 9 KiB, a caller queued here 2.5.

Why not queue every call here: a call woken from this queue builds its request then, and the calls
woken in one loop iteration allocate together what the calls that ended in the last one freed
together; a free cannot take the young generation's count below zero, so young collections ran
three to four times as often as for an expert's aiohttp calls, which wait in the pool once built,
and cost a tenth of a call.

Invariant: ``free + holders == limit``, holders on credit included. A waiter leaves the queue
exactly once: either ``give_back`` pops it and hands it the slot (its future gets a result), or it
gives up (cancelled) and removes itself. A waiter cancelled after it was handed the slot passes the
slot on.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque

from ._constants import POOL_QUEUE_PER_CONNECTION


class Slots:
    def __init__(self, limit: int, on_credit: int | None = None) -> None:
        self._free = limit
        # The lowest ``free`` may go by slots taken on credit (``on_credit`` of them at most).
        self._floor = -(POOL_QUEUE_PER_CONNECTION * limit if on_credit is None else on_credit)
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._handed = 0  # slots handed to callers in line that have yet to run

    @property
    def free(self) -> int:
        """Slots nobody holds, or minus those taken on credit (for tests and diagnostics)."""
        return self._free

    @property
    def queued(self) -> int:
        """Callers waiting in line: here, or for a connection on credit."""
        return len(self._waiters) + max(-self._free, 0)

    def try_take(self) -> bool:
        """Take a free slot now, if one is free and nobody is queued ahead."""
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return True
        return False

    def take_on_credit(self) -> bool:
        """Take a slot now, on credit if none is free: the caller then waits for its connection
        in the pool. False if callers are queued here, or were just handed slots whose
        connections they have yet to take, or the credit is at its bound (the requests waiting in
        the pool hold more memory than callers queued here): queue with :meth:`take`."""
        if self._waiters or (self._free <= 0 and (self._handed or self._free <= self._floor)):
            return False
        self._free -= 1
        return True

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
                self._handed -= 1
                self.give_back()  # handed a slot just as we were cancelled: pass it on
            else:
                waiter.cancel()  # a give_back() from now on skips it
                # ValueError: already popped by give_back, which skipped it as done.
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
            raise
        self._handed -= 1

    def give_back(self) -> None:
        """Return a slot: to repay a slot taken on credit (its call takes the connection given
        back to the pool), otherwise straight to the first caller in line, if any."""
        if self._free < 0:
            self._free += 1
            return
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                self._handed += 1
                return
        self._free += 1
