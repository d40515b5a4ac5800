"""One measured child process under valgrind's callgrind: its total user-space instructions, or
(with the cache simulator) every event callgrind counts. ``child_output`` runs one under any tool
that writes what it saw to a file (``bench_call_counts.py`` uses it with ``strace``)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

NOT_AVAILABLE = 3  # the exit code of a child whose client is not installed


def child_output(
    tool: Callable[[Path], list[str]], script: str | Path, args: list[str]
) -> str | None:
    """Run ``python script --child *args`` under ``tool(out)`` (the command before the
    interpreter, given the file it is to write) and return what it wrote there, or None if the
    child exited with ``NOT_AVAILABLE``."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "tool.out"
        command = [*tool(out), sys.executable, str(Path(script).resolve()), "--child", *args]
        # A fixed hash seed: string hashes, and so dict and set layouts, the same in every run.
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        done = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
        if done.returncode == NOT_AVAILABLE:
            return None
        if done.returncode != 0:
            raise RuntimeError(f"{args}: exit {done.returncode}\n{done.stderr[-2000:]}")
        return out.read_text()


def child_events(
    script: str | Path, args: list[str], options: tuple[str, ...] = ()
) -> dict[str, int] | None:
    """Run ``python script --child *args`` under callgrind (with extra valgrind ``options``) and
    return its totals by event (``Ir``, and with ``--cache-sim=yes`` ``I1mr``, ``DLmw``...), or
    None if the child exited with ``NOT_AVAILABLE``."""
    text = child_output(
        lambda out: ["valgrind", "--tool=callgrind", *options, f"--callgrind-out-file={out}"],
        script,
        args,
    )
    if text is None:
        return None
    events = re.search(r"^events: (.*)$", text, re.MULTILINE)
    totals = re.search(r"^(?:summary|totals): (.*)$", text, re.MULTILINE)
    if events is None or totals is None:
        raise RuntimeError(f"{args}: no totals in the callgrind output")
    return dict(zip(events.group(1).split(), map(int, totals.group(1).split()), strict=True))


def child_instructions(script: str | Path, args: list[str]) -> int | None:
    """Run ``python script --child *args`` under callgrind and return its instruction count
    (callgrind's ``Ir``), or None if the child exited with ``NOT_AVAILABLE``."""
    counts = child_events(script, args)
    return None if counts is None else counts["Ir"]
