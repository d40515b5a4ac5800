"""Ctrl-C: how the commands' event loop runs, and two steps for commands that can stop gracefully.

``run`` is ``asyncio.run`` with Python 3.11's Ctrl-C on 3.10 as well: SIGINT cancels the main task,
so every ``finally`` and ``async with`` of the command runs, and then it raises
``KeyboardInterrupt``. On 3.10, ``asyncio.run`` lets SIGINT raise ``KeyboardInterrupt`` in
whatever code the loop is running, aiohttp's own tasks included: a server's connection task then
dies with it ("Task exception was never retrieved") and a shutdown can be left half done.

``TwoStepInterrupt`` is for commands that can stop gracefully (``batch``): the first SIGINT sets
``stop`` (finish what is in flight, start nothing new), the second sets ``abort`` (cancel what is
in flight) and gives SIGINT back to Python, so that a third one raises ``KeyboardInterrupt``
whatever the command is doing.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import threading
from collections.abc import Coroutine
from types import TracebackType
from typing import Any, TypeVar

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` with 3.11's Ctrl-C on every supported Python (see above)."""
    if sys.version_info >= (3, 11):
        return asyncio.run(main)
    interrupted = _Interrupted()
    try:
        return asyncio.run(interrupted.cancels(main))
    except asyncio.CancelledError:
        if interrupted.count:
            raise KeyboardInterrupt from None
        raise


class _Interrupted:
    """What 3.11's ``asyncio.Runner`` does with SIGINT: the first cancels the main task, a second
    (while the first's clean-up runs) raises ``KeyboardInterrupt`` out of the loop."""

    def __init__(self) -> None:
        self.count = 0

    async def cancels(self, main: Coroutine[Any, Any, T]) -> T:
        # Like the Runner: only from the main thread, and only where Ctrl-C is Python's own (a
        # SIGINT ignored by the parent stays ignored).
        if (
            threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler
        ):
            return await main
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None

        def on_sigint() -> None:
            self.count += 1
            if self.count > 1:
                raise KeyboardInterrupt
            task.cancel()

        try:
            loop.add_signal_handler(signal.SIGINT, on_sigint)
        except (NotImplementedError, RuntimeError):  # Windows: no add_signal_handler
            return await main
        try:
            return await main
        finally:
            loop.remove_signal_handler(signal.SIGINT)


class TwoStepInterrupt:
    def __init__(self, *, in_flight: str = "the calls in flight") -> None:
        self.stop = asyncio.Event()
        self.abort = asyncio.Event()
        self._in_flight = in_flight
        self._loop: asyncio.AbstractEventLoop | None = None

    def __enter__(self) -> TwoStepInterrupt:
        # Signal handlers can only be set from the main thread, and not on every platform (Windows
        # has no add_signal_handler): there, Ctrl-C keeps Python's behaviour (KeyboardInterrupt).
        if threading.current_thread() is threading.main_thread():
            loop = asyncio.get_running_loop()
            try:
                loop.add_signal_handler(signal.SIGINT, self._on_sigint)
            except (NotImplementedError, RuntimeError):
                pass
            else:
                self._loop = loop
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._release()

    @property
    def interrupted(self) -> bool:
        return self.stop.is_set()

    def _release(self) -> None:
        if self._loop is not None:
            self._loop.remove_signal_handler(signal.SIGINT)  # back to KeyboardInterrupt
            self._loop = None

    def _on_sigint(self) -> None:
        if not self.stop.is_set():
            self.stop.set()
            print(
                f"\ninterrupted: starting nothing new, waiting for {self._in_flight} to finish "
                "(Ctrl-C again to abort them)",
                file=sys.stderr,
                flush=True,
            )
        else:
            self.abort.set()
            self._release()
            print(
                f"aborting {self._in_flight}: recorded as of unknown outcome",
                file=sys.stderr,
                flush=True,
            )
