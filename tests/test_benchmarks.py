"""The benchmark scripts still run, and their harnesses stand in for the client faithfully.

``bench_llm_text.py`` times ``iter_text()`` through a stand-in for a response stream: when the
stream mixin came to read its input from ``_text_input()`` rather than from ``async for``, the
stand-in did not follow, and the script failed in its third column for a day before anyone ran
it. These tests hold that stand-in to what the real decoder produces from the same parts, and run
every script that can finish in about a second, small (a round or two, a few calls: their
numbers mean nothing, only that each part of the script still works against today's client).
The scripts that run valgrind, or take longer (``bench_client``, ``bench_peers``,
``bench_footprint``, ``bench_eventstream``, ``bench_instructions``, ``bench_call_counts``,
``bench_compiled_decoder``, whose mypyc build alone takes half a minute), are left to whoever
runs them; the loops ``bench_compiled_decoder`` compiles are held here, uncompiled, to the
package's.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib.util
import os
import signal
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from sagemaker_rt_aio import TextDecoder
from sagemaker_rt_aio.local.demo_models import CONTENT_TYPES, FORMATS

pytestmark = pytest.mark.timeout(30)

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@functools.cache
def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", BENCHMARKS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(script: str, *arguments: str) -> tuple[int, str, str]:
    """``python benchmarks/<script>.py <arguments>``: its exit code, stdout and stderr.

    In a process group of its own, killed whole on the way out: most scripts start a loopback
    server in a process of their own, which a script killed at the timeout (or failing before
    its ``finally``) would leave behind."""
    process = subprocess.Popen(
        [sys.executable, str(BENCHMARKS / f"{script}.py"), *arguments],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = process.communicate(timeout=25)  # inside the test's own 30 s
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    return process.returncode, out, err


@pytest.mark.parametrize("part_bytes", [0, 64, 2048])
@pytest.mark.parametrize("fmt", FORMATS)
def test_llm_text_stand_in_yields_what_the_decoder_does(fmt: str, part_bytes: int) -> None:
    bench = _load("bench_llm_text")
    _, parts, _ = bench.stream_of(fmt, 30, part_bytes)
    content_type = CONTENT_TYPES[fmt]

    decoder = TextDecoder(content_type)
    expected = [text for part in parts for text in decoder.feed(part)] + decoder.close()

    async def through_stand_in() -> list[str]:
        return [text async for text in bench._Stream(parts, content_type).iter_text()]

    got = asyncio.run(through_stand_in())
    assert got == expected
    assert got == [" " + word for word in (bench.TEXT * 4).split()][:30]  # the words rendered


def test_llm_text_script_runs_every_column() -> None:
    code, out, err = _run("bench_llm_text", "--tokens", "20", "--rounds", "1")
    assert code == 0, err
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()[1:] if line}
    assert set(rows) == set(FORMATS)
    for columns in rows.values():
        assert len(columns) == 4
        assert all(float(value) > 0 for value in columns)


# (script, small arguments, something its output must say): each finishes in about a second,
# on the test extra alone (asyncio's loop; uvloop and aiobotocore are the bench extra's).
SMALL_RUNS = [
    ("bench_bidi", ["--mib", "1", "--rounds", "3"], "ping-pong: median"),
    ("bench_bytecodes", ["--calls", "10", "--loops", "asyncio"], "asyncio: bytecodes per call"),
    ("bench_cold", ["--rounds", "1", "--streams", "2"], "| ours iter_text |"),
    ("bench_crc32", ["--rounds", "1", "--streams", "1"], "| event by event | `iter_text()` |"),
    ("bench_gc", ["--concurrency", "8", "--rounds", "1", "--calls", "32"], "| ours |"),
    (
        "bench_read_timeout",
        ["--concurrency", "1", "--rounds", "1", "--calls", "20"],
        "| ours without read timeout |",
    ),
    ("bench_sha256", ["--rounds", "1"], "| ours, OpenSSL |"),
    ("bench_telemetry", ["--calls", "20", "--rounds", "1", "--micro", "50"], "SDK providers"),
]


@pytest.mark.parametrize(
    ("script", "arguments", "says"), SMALL_RUNS, ids=[r[0] for r in SMALL_RUNS]
)
def test_benchmark_script_runs_small(script: str, arguments: list[str], says: str) -> None:
    code, out, err = _run(script, *arguments)
    assert code == 0, err
    assert "Traceback" not in err
    assert says in out


def _module_of(source: str) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": "_compiled_decoder_probe"}
    exec(compile(source, "<probe>", "exec"), namespace)
    return namespace


def test_compiled_decoder_probe_compiles_the_package_loop_and_an_equivalent_one() -> None:
    """What bench_compiled_decoder.py hands mypyc, run as Python: the package's loop as a module
    of its own (its imports complete), and the typed fast path, which must decode the same parts
    and stop, as the package's fast path does, at the first event that is not whole and sound."""
    bench = _load("bench_compiled_decoder")
    from sagemaker_rt_aio import _eventstream

    data = bench.chunk()
    plan = bench.plan()
    expected: list[Any] = []
    assert _eventstream._decode_messages(data, 0, expected, plan) == len(data)
    assert len(expected) == bench.STREAM_EVENTS

    as_written: list[Any] = []
    _module_of(bench.as_written_source())["_decode_messages"](data, 0, as_written, plan)
    assert [part.bytes for part in as_written] == [part.bytes for part in expected]

    known, known_length, _, _ = _eventstream._event_blocks["PayloadPart"]
    decode_known = _module_of(bench.TYPED_LOOP)["decode_known"]

    def typed(chunk: bytes) -> tuple[int, list[bytes]]:
        out: list[Any] = []
        stop = decode_known(chunk, 0, out, known, known_length, bench.PayloadPart, plan[3])
        return stop, [part.bytes for part in out]

    assert typed(data) == (len(data), [part.bytes for part in expected])
    # A byte changed in the 8th event's payload (the CRC), or in its header block: the run stops
    # at the 8th event, its seven parts before it.
    eighth = sum(len(bench.encode_payload_part(bench.token_line(i))) for i in range(7))
    for offset in (30, len(bench.encode_payload_part(bench.token_line(7))) - 10):
        damaged = bytearray(data)
        damaged[eighth + offset] ^= 0x01
        assert typed(bytes(damaged)) == (eighth, [part.bytes for part in expected[:7]])
    # The run stops, too, before a message that ends past the chunk.
    assert typed(data[:-1])[0] == len(data) - len(bench.encode_payload_part(bench.token_line(199)))
