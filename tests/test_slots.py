"""The slot queue under random cancellation and release orders, with slots taken on credit among
them: no slot lost or duplicated, a cancelled waiter always sees its own CancelledError, and a
caller in line gets its slot only when no slot is out on credit (so a connection is free for it)."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from sagemaker_rt_aio._constants import POOL_QUEUE_PER_CONNECTION
from sagemaker_rt_aio._slots import Slots

# Each step: ("take", _) starts a caller; ("credit", _) starts one that takes its slot on credit
# if it may (it holds one at once), or queues; ("cancel", i) cancels caller i; ("release", i)
# makes caller i give its slot back if it holds one; ("tick", _) lets the loop run.
_STEPS = st.lists(
    st.tuples(st.sampled_from(["take", "credit", "cancel", "release", "tick"]), st.integers(0, 30)),
    max_size=60,
)


async def _scenario(limit: int, credit: int, steps: list[tuple[str, int]]) -> None:
    slots = Slots(limit, on_credit=credit)
    holding: set[int] = set()
    tasks: list[asyncio.Task[None]] = []
    released: set[int] = set()

    async def caller(i: int) -> None:
        await slots.take()
        assert slots.free >= 0  # nothing on credit: the connection it was handed is free
        assert i not in holding
        holding.add(i)

    async def on_credit() -> None:
        pass  # it holds its slot from the start

    for op, n in steps:
        if op == "take":
            tasks.append(asyncio.create_task(caller(len(tasks))))
        elif op == "credit":
            if slots.take_on_credit():
                holding.add(len(tasks))
                tasks.append(asyncio.create_task(on_credit()))
            else:  # callers in line, or handed slots on their way to them: it queues too
                tasks.append(asyncio.create_task(caller(len(tasks))))
        elif op == "cancel" and tasks:
            tasks[n % len(tasks)].cancel()
        elif op == "release" and tasks:
            i = n % len(tasks)
            if i in holding:
                holding.discard(i)
                released.add(i)
                slots.give_back()
        else:
            await asyncio.sleep(0)
        assert slots.free + len(holding) <= limit  # free is below zero by what is on credit
        assert slots.free >= -credit

    # Let everything settle, releasing what is held until every caller has finished.
    for _ in range(len(tasks) * 3 + 5):
        await asyncio.sleep(0)
        for i in list(holding):
            holding.discard(i)
            slots.give_back()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    for result in results:
        # Never a ValueError (or anything else) out of the queue: done, or the caller's own cancel.
        assert result is None or isinstance(result, asyncio.CancelledError), repr(result)
    for i in list(holding):
        holding.discard(i)
        slots.give_back()
    assert slots.queued == 0
    assert slots.free == limit  # no slot lost, none created


@settings(max_examples=150, deadline=None)
@given(limit=st.integers(1, 4), credit=st.integers(0, 3), steps=_STEPS)
def test_random_cancel_and_release_orders_keep_the_count(
    limit: int, credit: int, steps: list[tuple[str, int]]
) -> None:
    asyncio.run(_scenario(limit, credit, steps))


async def test_cancel_after_being_popped_raises_cancelled_not_valueerror() -> None:
    slots = Slots(1)
    assert slots.try_take()
    waiter = asyncio.create_task(slots.take())
    await asyncio.sleep(0)
    waiter.cancel()
    slots.give_back()  # pops the cancelled waiter before it runs its except block
    results = await asyncio.gather(waiter, return_exceptions=True)
    assert isinstance(results[0], asyncio.CancelledError)
    assert slots.free == 1


async def test_wait_for_timeout_while_queued_is_the_callers_timeout() -> None:
    slots = Slots(1)
    assert slots.try_take()
    outcomes = []
    for _ in range(50):
        try:
            await asyncio.wait_for(slots.take(), 0)
        except BaseException as exc:
            outcomes.append(type(exc))
    assert set(outcomes) == {asyncio.TimeoutError}
    slots.give_back()
    assert slots.free == 1 and slots.queued == 0


async def test_slots_given_back_repay_the_credit_before_a_caller_in_line_gets_one() -> None:
    slots = Slots(1)
    assert slots.try_take()
    assert slots.take_on_credit()  # none free: on credit, waiting for its connection in the pool
    assert (slots.free, slots.queued) == (-1, 1)
    waiter = asyncio.create_task(slots.take())
    await asyncio.sleep(0)
    assert slots.queued == 2
    assert not slots.take_on_credit()  # a caller in line: arrival order, so it queues too
    slots.give_back()  # the first holder's connection goes to the call on credit
    await asyncio.sleep(0)
    assert not waiter.done() and (slots.free, slots.queued) == (0, 1)
    slots.give_back()  # the call on credit is done: its connection is free for the caller in line
    await asyncio.wait_for(waiter, 1)
    assert (slots.free, slots.queued) == (0, 0)
    slots.give_back()
    assert slots.free == 1


async def test_no_credit_while_a_slot_handed_to_a_caller_in_line_is_on_its_way() -> None:
    slots = Slots(1)
    assert slots.try_take()
    waiter = asyncio.create_task(slots.take())
    await asyncio.sleep(0)
    slots.give_back()  # handed to the waiter, which has yet to run
    assert slots.queued == 0
    assert not slots.take_on_credit()  # it would take the connection the waiter was handed
    await asyncio.wait_for(waiter, 1)
    assert slots.take_on_credit()  # the waiter holds it now: a newcomer waits in the pool
    assert (slots.free, slots.queued) == (-1, 1)
    slots.give_back()
    slots.give_back()
    assert slots.free == 1


async def test_credit_stops_at_its_bound_and_later_calls_queue_here() -> None:
    slots = Slots(1, on_credit=2)
    assert slots.try_take()
    assert slots.take_on_credit() and slots.take_on_credit()
    assert not slots.take_on_credit()  # two requests wait in the pool: the next waits here
    waiter = asyncio.create_task(slots.take())
    await asyncio.sleep(0)
    assert (slots.free, slots.queued) == (-2, 3)
    for _ in range(3):  # the holder, then the two on credit
        slots.give_back()
    await asyncio.wait_for(waiter, 1)
    assert (slots.free, slots.queued) == (0, 0)
    slots.give_back()
    assert slots.free == 1
    by_default = Slots(2)  # POOL_QUEUE_PER_CONNECTION per slot
    taken = [by_default.take_on_credit() for _ in range(2 + 2 * POOL_QUEUE_PER_CONNECTION + 1)]
    assert taken == [True] * (2 + 2 * POOL_QUEUE_PER_CONNECTION) + [False]
