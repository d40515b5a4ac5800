"""Ctrl-C in two steps, for commands that can stop gracefully (``batch``).

The first SIGINT sets ``stop`` (finish what is in flight, start nothing new), the second sets
``abort`` (cancel what is in flight) and gives SIGINT back to Python, so that a third one raises
``KeyboardInterrupt`` whatever the command is doing.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import threading
from types import TracebackType


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
