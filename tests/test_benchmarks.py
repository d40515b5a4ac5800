"""The benchmark scripts' own harnesses, where they stand in for a part of the client.

``bench_llm_text.py`` times ``iter_text()`` through a stand-in for a response stream: when the
stream mixin came to read its input from ``_text_input()`` rather than from ``async for``, the
stand-in did not follow, and the script failed in its third column. These tests run it small and
hold the stand-in to what the real decoder produces from the same parts.
"""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

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
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "bench_llm_text.py"), "--tokens", "20", "--rounds", "1"],
        capture_output=True,
        text=True,
        timeout=25,  # inside the test's own 30 s
    )
    assert done.returncode == 0, done.stderr
    rows = {line.split()[0]: line.split()[1:] for line in done.stdout.splitlines()[1:] if line}
    assert set(rows) == set(FORMATS)
    for columns in rows.values():
        assert len(columns) == 4
        assert all(float(value) > 0 for value in columns)
