"""What compiling the event-stream decoding loop would buy: mypyc against the pure-Python loop.

Run: ``python benchmarks/bench_compiled_decoder.py [--rounds R]`` (mypyc comes with mypy, in the
test extra; building needs a C compiler and setuptools).

What this client adds to a streamed event above raw aiohttp's read is mostly the decoding loop
(``_eventstream._decode_messages``), written so that each event costs a few C calls: an unpack,
a copy for the CRC, the CRC, a comparison, the payload's slice, the part. Would compiled code do
better? Two versions of the loop are compiled with mypyc in a temporary directory and timed
against the package's on the same chunk (200 TGI token events, as a read of a stream written in
one write brings them), best of R rounds each, the three taking turns:

- "as written": the package's ``_decode_messages``, its source compiled unchanged;
- "typed for mypyc": its fast path alone (a run of the known event), written as mypyc compiles
  best: the lengths and CRC read byte by byte as native ints (no unpack, no int objects), the
  copy, CRC, comparison, slice and part as in the package.

Each compiled loop's parts are checked against the package's before it is timed. Nanoseconds
per event; the loop alone, not a stream (``bench_client.py`` measures those).
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
for path in (str(ROOT), str(BENCH_DIR)):
    if path not in sys.path:
        sys.path.insert(0, path)

from floor import STREAM_EVENTS, token_line  # noqa: E402

from sagemaker_rt_aio import _eventstream  # noqa: E402
from sagemaker_rt_aio._stream_events import encode_payload_part  # noqa: E402
from sagemaker_rt_aio._types import PayloadPart  # noqa: E402

# The fast path typed for mypyc. decode_known(data, pos, out, known, known_length, cls, setter)
# appends the parts of the run of known events at ``pos`` and returns where the run stops (the
# end, or a message that is not the known event, whole and sound: the package's general path
# would take it from there). The package's bound on a chunk's length (a chunk over 1 MiB goes to
# the general path) would be its caller's; this benchmark's chunk is 42 KB.
TYPED_LOOP = """
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sagemaker_rt_aio._crc32 import crc32


def _u32(data: bytes, at: int) -> int:
    return (data[at] << 24) | (data[at + 1] << 16) | (data[at + 2] << 8) | data[at + 3]


def decode_known(
    data: bytes,
    pos: int,
    out: list[Any],
    known: bytes,
    known_length: int,
    cls: Any,
    setter: Callable[[Any, Any], object],
) -> int:
    end = len(data)
    lowest = 16 + known_length
    skip = lowest - 4
    new = object.__new__
    while pos + 12 <= end:
        total = _u32(data, pos)
        if _u32(data, pos + 4) != known_length or total < lowest or pos + total > end:
            break
        crc_at = pos + total - 4
        message = data[pos:crc_at]
        if crc32(message) != _u32(data, crc_at) or message[12:skip] != known:
            break
        part = new(cls)
        setter(part, message[skip:])
        out.append(part)
        pos += total
    return pos
"""

PART_FORM = ("PayloadPart", PayloadPart, "bytes")


def chunk() -> bytes:
    return b"".join(encode_payload_part(token_line(i)) for i in range(STREAM_EVENTS))


def as_written_source() -> str:
    """The package's loop as a module of its own: its source, and the names it reads."""
    function = _eventstream._decode_messages
    names = sorted(
        name
        for name in function.__code__.co_names
        if hasattr(_eventstream, name) and name != "_decode_messages"
    )
    return (
        "from __future__ import annotations\n\n"
        "from collections.abc import Callable\n"
        "from typing import Any\n\n"
        f"from sagemaker_rt_aio._eventstream import _Plan, {', '.join(names)}\n\n\n"
        + inspect.getsource(function)
    )


def plan() -> Any:
    """The package's plan for PayloadPart events, its known header block learned."""
    decoder = _eventstream.EventStreamDecoder(event=PART_FORM)
    decoder.feed_events(encode_payload_part(b"warm-up"))
    return decoder._event


def compile_modules(directory: Path) -> dict[str, Any]:
    """Both loops compiled by mypyc in ``directory``, imported from there."""
    missing = [name for name in ("mypyc", "setuptools") if importlib.util.find_spec(name) is None]
    if missing:
        sys.exit(f"needs {' and '.join(missing)} (pip install mypy setuptools)")
    sources = {"as_written": as_written_source(), "typed": TYPED_LOOP}
    for name, source in sources.items():
        (directory / f"{name}.py").write_text(source)
    env = {**os.environ, "MYPYPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "mypyc", *(f"{name}.py" for name in sources)],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        sys.exit(f"mypyc failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    sys.path.insert(0, str(directory))
    modules = {name: __import__(name) for name in sources}
    for name, module in modules.items():
        if not module.__file__.endswith((".so", ".pyd")):
            sys.exit(f"{name} was not compiled: {module.__file__}")
    return modules


def loops(modules: dict[str, Any], data: bytes) -> dict[str, Callable[[], list[Any]]]:
    the_plan = plan()
    known, known_length, _, _ = _eventstream._event_blocks[the_plan[0]]
    setter = the_plan[3]
    pure = _eventstream._decode_messages
    as_written = modules["as_written"]._decode_messages
    typed = modules["typed"].decode_known

    def run_pure() -> list[Any]:
        out: list[Any] = []
        pure(data, 0, out, the_plan)
        return out

    def run_as_written() -> list[Any]:
        out: list[Any] = []
        as_written(data, 0, out, the_plan)
        return out

    def run_typed() -> list[Any]:
        out: list[Any] = []
        typed(data, 0, out, known, known_length, PayloadPart, setter)
        return out

    return {"pure Python": run_pure, "as written": run_as_written, "typed for mypyc": run_typed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--repeat", type=int, default=200, help="chunks decoded per round")
    args = parser.parse_args()
    data = chunk()
    with tempfile.TemporaryDirectory() as tmp:
        runs = loops(compile_modules(Path(tmp)), data)
        expected = [part.bytes for part in runs["pure Python"]()]
        for name, run in runs.items():
            if [part.bytes for part in run()] != expected:
                raise AssertionError(f"{name}: not the package's parts")
        best = dict.fromkeys(runs, float("inf"))
        for round_ in range(args.rounds):
            names = list(runs)
            names = names[round_ % len(names) :] + names[: round_ % len(names)]
            for name in names:
                run = runs[name]
                start = time.perf_counter()
                for _ in range(args.repeat):
                    run()
                best[name] = min(best[name], time.perf_counter() - start)
    events = args.repeat * STREAM_EVENTS
    pure_ns = best["pure Python"] / events * 1e9
    print(
        f"Decoding loop, {STREAM_EVENTS} TGI token events a chunk: ns per event, best of {args.rounds}"
    )
    print(f"Python {sys.version.split()[0]}\n")
    print("| loop | ns per event | vs pure Python |")
    print("|---|---:|---:|")
    for name, seconds in best.items():
        ns = seconds / events * 1e9
        print(f"| {name} | {ns:.0f} | {ns / pure_ns:.2f}x |")


if __name__ == "__main__":
    main()
