"""Footprint: import time, client construction, and memory per call in flight.

Run: ``python benchmarks/bench_footprint.py [--inflight N]``.

- Import: ``import aiohttp`` and ``import aiohttp, sagemaker_rt_aio`` in fresh interpreters,
  ``time.perf_counter()`` around the import, best of 9 each (alternating); the difference is what this
  package adds (goal: at most 30 ms). Twice: as the environment is (with ``PYTHONDONTWRITEBYTECODE``
  set and a source checkout, this package is compiled on every import while aiohttp's installed
  bytecode is cached), and with a warm bytecode cache for both, as after a normal install.
- Construction: ``SageMakerRuntimeClient(region, endpoint_url=..., aws_access_key_id=...,
  aws_secret_access_key=...)`` in a fresh interpreter, best of 200 (goal: under 1 ms), and whether
  botocore got imported.
- Memory: each client (see ``floor.py``) in a fresh process makes warm-up calls, then N concurrent
  calls to an endpoint that the server holds until all N have arrived. Reported per call in flight:
  the process's peak RSS growth during its first such batch (``VmHWM`` after a reset through
  ``/proc/self/clear_refs``, connections opened included), and the Python heap's peak growth during
  a second batch on the open pool (``tracemalloc``: nearly deterministic, what each call itself
  holds). Goal: at most 17.5 KiB per call in flight (RSS).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import subprocess
import sys
import tempfile
import tracemalloc
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

from floor import (  # noqa: E402
    ACCESS_KEY,
    CALL_CLIENTS,
    REGION,
    REPO_ROOT,
    SECRET_KEY,
    quiet_environment,
    start_server,
    stop_server,
)

IMPORT_GOAL_MS = 30.0
CONSTRUCT_GOAL_MS = 1.0
MEMORY_GOAL_KIB = 17.5


def _python(code: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO_ROOT,
        env=env,
    )
    return done.stdout.strip()


def _bytecode_cache_env(directory: str) -> dict[str, str]:
    """An environment in which bytecode is written to (and then read from) ``directory``."""
    env = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = directory
    return env


def import_times(runs: int = 9, *, bytecode_cache: bool = False) -> tuple[float, float]:
    template = "import time; t = time.perf_counter(); {}; print((time.perf_counter() - t) * 1e3)"
    with tempfile.TemporaryDirectory() as cache:
        env = _bytecode_cache_env(cache) if bytecode_cache else None
        if env is not None:
            _python("import aiohttp, sagemaker_rt_aio", env)  # warms the cache
        base, ours = [], []
        for _ in range(runs):
            base.append(float(_python(template.format("import aiohttp"), env)))
            ours.append(float(_python(template.format("import aiohttp, sagemaker_rt_aio"), env)))
    return min(base), min(ours)


def construction() -> tuple[float, bool]:
    code = f"""
import sys, time
from sagemaker_rt_aio import SageMakerRuntimeClient
best = float("inf")
for _ in range(200):
    t = time.perf_counter()
    SageMakerRuntimeClient({REGION!r}, endpoint_url="http://127.0.0.1:9", allow_http=True,
                           aws_access_key_id={ACCESS_KEY!r}, aws_secret_access_key={SECRET_KEY!r})
    best = min(best, time.perf_counter() - t)
print(best * 1e3, any(m.startswith("botocore") for m in sys.modules))
"""
    ms, botocore = _python(code).split()
    return float(ms), botocore == "True"


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def child_memory(name: str, url: str, inflight: int) -> dict[str, float]:
    quiet_environment()
    loop = asyncio.new_event_loop()
    made = loop.run_until_complete(CALL_CLIENTS[name](url, inflight))
    if made is None:
        return {}
    call, close = made

    async def warm() -> None:
        for _ in range(20):
            await call()

    async def batch(tag: str) -> None:
        endpoint = f"hold-{inflight}-{tag}"
        await asyncio.gather(*(call(endpoint) for _ in range(inflight)))

    loop.run_until_complete(warm())
    gc.collect()
    # RSS first, on the process's first big batch (memory freed by an earlier one would be reused
    # without growing the RSS), so it includes opening the connections, as it does for every client.
    Path("/proc/self/clear_refs").write_text("5")
    before = _rss_kib("VmRSS")
    loop.run_until_complete(batch("rss"))
    rss = (_rss_kib("VmHWM") - before) / inflight
    gc.collect()
    # Then the Python heap of a batch on the open pool: what each call in flight itself holds.
    tracemalloc.start()
    start, _ = tracemalloc.get_traced_memory()
    loop.run_until_complete(batch("heap"))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    loop.run_until_complete(close())
    loop.close()
    return {"heap_kib": (peak - start) / 1024 / inflight, "rss_kib": rss}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _, _, name, url, inflight = sys.argv
        print(json.dumps(child_memory(name, url, int(inflight))))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inflight", type=int, default=1000)
    args = parser.parse_args()
    quiet_environment()

    for bytecode_cache in (False, True):
        base, ours = import_times(bytecode_cache=bytecode_cache)
        print(
            f"import aiohttp {base:.1f} ms; import aiohttp, sagemaker_rt_aio {ours:.1f} ms: "
            f"+{ours - base:.1f} ms (goal +{IMPORT_GOAL_MS:.0f} ms)"
            + ("; warm bytecode cache" if bytecode_cache else "")
        )
    ms, botocore = construction()
    print(
        f"client with static keys and endpoint_url: {ms * 1000:.0f} µs to construct "
        f"(goal {CONSTRUCT_GOAL_MS:.0f} ms); botocore imported: {botocore}"
    )

    process, url = start_server()
    try:
        print("\n| client | Python heap per call in flight | RSS per call in flight |")
        print("|---|---:|---:|")
        for name in CALL_CLIENTS:
            done = subprocess.run(
                [sys.executable, __file__, "--child", name, url, str(args.inflight)],
                capture_output=True,
                text=True,
                check=True,
            )
            result = json.loads(done.stdout.strip().splitlines()[-1])
            if not result:
                continue
            print(f"| {name} | {result['heap_kib']:.1f} KiB | {result['rss_kib']:.1f} KiB |")
    finally:
        stop_server(process)
    print(f"\n{args.inflight} calls in flight; goal: at most {MEMORY_GOAL_KIB} KiB per call (RSS)")



if __name__ == "__main__":
    main()
