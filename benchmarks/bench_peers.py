"""sagemaker_rt_aio against its peers: CPU per call, calls per second, import time and memory.

Run: ``python benchmarks/bench_peers.py [--quick] [--calls-c1 N] [--calls-c64 N] [--rounds R]``.

One run, one local server: a plain aiohttp.web app in its own (spawned) process on 127.0.0.1 answers
``POST /endpoints/{name}/invocations`` with 200, a small JSON body and the ``x-amzn-RequestId`` and
``Content-Type`` headers, so its CPU is never counted. Four clients are measured against it:

  (a) raw aiohttp: one shared ClientSession, a POST with the same body and the same headers our
      client sends (signed once up front), body read: the floor any aiohttp-based client pays;
  (b) sagemaker_rt_aio ``SageMakerRuntimeClient.invoke_endpoint`` (dummy keys, ``endpoint_url`` set to
      the server, ``max_connections`` = concurrency; validation, SigV4, retry bookkeeping, parsing);
  (c) aiobotocore ``invoke_endpoint`` (``max_pool_connections`` = concurrency, one attempt), Body read;
  (d) boto3 ``invoke_endpoint`` run in a ThreadPoolExecutor (workers and ``max_pool_connections`` =
      concurrency, one attempt) through ``loop.run_in_executor``, as an asyncio app would, Body read.

Each client is measured in a fresh child process of its own (so one library's imports and heap do
not weigh on another's garbage collections); this process only orchestrates and stays idle meanwhile.

- CPU per call: ``time.process_time()`` of the client process (all its threads: for boto3 that
  includes the pool threads) over N calls after a warm-up, at concurrency 1 (one task calling in a
  loop) and 64 (64 tasks sharing the N calls). N is split into R rounds; the best round is kept, for
  CPU/call and for calls/s (wall) separately.
- Import time: ``import X`` in a fresh interpreter, ``time.perf_counter()`` around it, best of 3, for
  aiohttp, sagemaker_rt_aio, aiobotocore.session (``import aiobotocore`` alone loads next to nothing)
  and boto3.
- Memory with 1,000 calls in flight: a fresh client process makes a few warm-up calls, then starts
  1,000 concurrent calls to ``/endpoints/slow-1000-.../invocations``. The server holds those until all
  1,000 have arrived, then 1 s more, then answers them all (each answer says how many were held, so a
  run where they were not all in flight at once is flagged). Reported: the process's peak RSS while
  they are in flight (``VmHWM`` from /proc/self/status, reset through /proc/self/clear_refs just
  before) minus its RSS just before (``VmRSS``). For boto3 that means a 1,000-thread pool.

Goals for (b): CPU per call at most 1.25x (a)'s, and at least 4x (c)'s calls per second at
concurrency 64.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import importlib.metadata
import json
import os
import platform
import resource
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
for _path in (str(REPO_ROOT), str(BENCH_DIR)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from bench_client import (  # noqa: E402  (the paths above make it importable from anywhere)
    ACCESS_KEY,
    ENDPOINT,
    GOAL,
    REGION,
    REQUEST_BODY,
    RESPONSE_BODY,
    SECRET_KEY,
    start_server,
    stop_server,
)

CONTENT_TYPE = "application/json"
CONCURRENCIES = (1, 64)
THROUGHPUT_GOAL = 4.0
HOLD_SECONDS = 1.0  # how long the slow endpoint holds a full barrier before answering
BARRIER_TIMEOUT = 60.0  # answer anyway (with the count held) if the barrier never fills
CHILD_TIMEOUT = 600.0
RESULT_PREFIX = "RESULT "

CLIENTS = {
    "raw": "(a) raw aiohttp POST (floor)",
    "ours": "(b) sagemaker_rt_aio",
    "aiobotocore": "(c) aiobotocore",
    "boto3": "(d) boto3 in a thread pool",
}
# What each client needs imported to make a call (``import aiobotocore`` alone loads next to nothing).
LIBRARIES = {
    "raw": "aiohttp",
    "ours": "sagemaker_rt_aio",
    "aiobotocore": "aiobotocore.session",
    "boto3": "boto3",
}

Call = Callable[[str], Awaitable[bytes]]
Close = Callable[[], Awaitable[None]]


def raise_fd_limit() -> None:
    """1,000 connections in flight need more than the usual 1,024 file descriptors on some hosts."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 8192 if hard == resource.RLIM_INFINITY else min(hard, 8192)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


# -- the server (spawned process) -----------------------------------------------------------------


def _serve(port_queue: Any) -> None:
    from aiohttp import web

    raise_fd_limit()
    barriers: dict[str, tuple[asyncio.Event, list[int]]] = {}
    headers = {
        "x-amzn-RequestId": "00000000-0000-0000-0000-000000000000",
        "x-Amzn-Invoked-Production-Variant": "AllTraffic",
        "Content-Type": CONTENT_TYPE,
    }

    async def slow(name: str) -> bytes:
        # "slow-<N>-<tag>": hold each request until N have arrived, then HOLD_SECONDS more.
        target = int(name.split("-")[1])
        if name not in barriers:
            barriers[name] = (asyncio.Event(), [0])
        event, count = barriers[name]
        count[0] += 1
        if count[0] == target:
            asyncio.get_running_loop().call_later(HOLD_SECONDS, event.set)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(event.wait(), BARRIER_TIMEOUT)
        held = count[0]
        if barriers.get(name, (None,))[0] is event:
            del barriers[name]
        return json.dumps({"held": held}).encode()

    async def invocations(request: web.Request) -> web.Response:
        await request.read()
        name = request.match_info["name"]
        body = await slow(name) if name.startswith("slow-") else RESPONSE_BODY
        return web.Response(body=body, headers=headers)

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/endpoints/{name}/invocations", invocations)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=4096)
        await site.start()
        port_queue.put(runner.addresses[0][1])
        await asyncio.Event().wait()

    asyncio.run(main())


# -- the clients (child processes) ----------------------------------------------------------------


def signed_headers(url: str) -> dict[str, str]:
    """Exactly the headers (b) sends, signed once: the raw POST pays no signing, only the transport."""
    from sagemaker_rt_aio._signing import FrozenCredentials, payload_sha256, sign

    headers = {"Content-Type": CONTENT_TYPE}
    sign(
        method="POST",
        host=url.split("/")[2],
        path=f"/endpoints/{ENDPOINT}/invocations",
        headers=headers,
        payload_hash=payload_sha256(REQUEST_BODY),
        credentials=FrozenCredentials(ACCESS_KEY, SECRET_KEY),
        region=REGION,
        service="sagemaker",
    )
    headers.update({"Accept-Encoding": "identity", "User-Agent": "bench"})
    return headers


async def open_raw(url: str, pool: int, headers: dict[str, str]) -> tuple[Call, Close]:
    import aiohttp

    skip = frozenset({"Accept", "Content-Type", "Accept-Encoding", "User-Agent"})
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=pool), auto_decompress=False
    )

    async def call(name: str) -> bytes:
        async with session.post(
            f"{url}/endpoints/{name}/invocations",
            data=REQUEST_BODY,
            headers=headers,
            skip_auto_headers=skip,
            allow_redirects=False,
        ) as response:
            body = await response.read()
            if response.status != 200:
                raise RuntimeError(f"status {response.status}")
            return body

    return call, session.close


async def open_ours(url: str, pool: int, headers: dict[str, str]) -> tuple[Call, Close]:
    from sagemaker_rt_aio import SageMakerRuntimeClient

    client = SageMakerRuntimeClient(
        region_name=REGION,
        endpoint_url=url,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        max_connections=pool,
    )
    await client.__aenter__()

    async def call(name: str) -> bytes:
        result = await client.invoke_endpoint(
            endpoint_name=name, body=REQUEST_BODY, content_type=CONTENT_TYPE
        )
        return result.body

    return call, client.shutdown


async def open_aiobotocore(url: str, pool: int, headers: dict[str, str]) -> tuple[Call, Close]:
    from aiobotocore.config import AioConfig
    from aiobotocore.session import get_session

    context = get_session().create_client(
        "sagemaker-runtime",
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        config=AioConfig(max_pool_connections=pool, retries={"total_max_attempts": 1}),
    )
    client = await context.__aenter__()

    async def call(name: str) -> bytes:
        response = await client.invoke_endpoint(
            EndpointName=name, Body=REQUEST_BODY, ContentType=CONTENT_TYPE
        )
        async with response["Body"] as stream:
            return bytes(await stream.read())

    async def close() -> None:
        await context.__aexit__(None, None, None)

    return call, close


async def open_boto3(url: str, pool: int, headers: dict[str, str]) -> tuple[Call, Close]:
    from concurrent.futures import ThreadPoolExecutor

    import boto3
    from botocore.config import Config

    client = boto3.session.Session().client(
        "sagemaker-runtime",
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        config=Config(max_pool_connections=pool, retries={"total_max_attempts": 1}),
    )
    executor = ThreadPoolExecutor(max_workers=pool)
    loop = asyncio.get_running_loop()

    def blocking(name: str) -> bytes:
        response = client.invoke_endpoint(
            EndpointName=name, Body=REQUEST_BODY, ContentType=CONTENT_TYPE
        )
        return response["Body"].read()

    def call(name: str) -> Awaitable[bytes]:
        return loop.run_in_executor(executor, blocking, name)

    async def close() -> None:
        executor.shutdown(wait=True)
        client.close()

    return call, close


OPENERS: dict[str, Callable[[str, int, dict[str, str]], Awaitable[tuple[Call, Close]]]] = {
    "raw": open_raw,
    "ours": open_ours,
    "aiobotocore": open_aiobotocore,
    "boto3": open_boto3,
}


async def run_calls(call: Call, calls: int, concurrency: int) -> None:
    """``calls`` calls to the fast endpoint, from ``concurrency`` tasks sharing them."""
    remaining = calls

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await call(ENDPOINT)

    await asyncio.gather(*(worker() for _ in range(min(concurrency, calls))))


async def child_cpu(args: argparse.Namespace) -> dict[str, Any]:
    headers = json.loads(args.headers)
    out: dict[str, Any] = {}
    for concurrency, calls in ((1, args.calls_c1), (64, args.calls_c64)):
        call, close = await OPENERS[args.client](args.url, concurrency, headers)
        try:
            await run_calls(call, max(200, concurrency * 10), concurrency)  # warm-up
            per_round = max(1, calls // args.rounds)
            best_cpu, best_rate = float("inf"), 0.0
            for _ in range(args.rounds):
                cpu0, wall0 = time.process_time(), time.perf_counter()
                await run_calls(call, per_round, concurrency)
                cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
                best_cpu = min(best_cpu, cpu / per_round * 1e6)
                best_rate = max(best_rate, per_round / wall)
        finally:
            await close()
        out[str(concurrency)] = {"cpu_us": best_cpu, "calls_per_s": best_rate}
    return out


def proc_status(field: str) -> int:
    """A field of /proc/self/status, in bytes."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(field)


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux 4.0+); False where that is not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        return False
    return True


async def child_memory(args: argparse.Namespace) -> dict[str, Any]:
    raise_fd_limit()
    inflight = args.inflight
    call, close = await OPENERS[args.client](args.url, inflight, json.loads(args.headers))
    try:
        await run_calls(call, 20, 1)  # warm-up: lazy imports, first-call set-up
        gc.collect()
        hwm_reset = reset_peak_rss()
        before = proc_status("VmRSS")
        name = f"slow-{inflight}-{args.client}"
        t0 = time.perf_counter()
        bodies = await asyncio.gather(*(call(name) for _ in range(inflight)))
        wall = time.perf_counter() - t0
        peak = proc_status("VmHWM")
    finally:
        await close()
    held = min(json.loads(body)["held"] for body in bodies)
    return {
        "rss_before": before,
        "growth": peak - before,
        "held": held,
        "wall": wall,
        "hwm_reset": hwm_reset,
    }


def child_main(args: argparse.Namespace) -> None:
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    runner = child_cpu if args.child == "cpu" else child_memory
    result = asyncio.run(runner(args))
    print(RESULT_PREFIX + json.dumps(result), flush=True)


# -- orchestration (this process) -----------------------------------------------------------------


def run_child(mode: str, client: str, url: str, headers: dict[str, str], args: Any) -> Any:
    command = [
        sys.executable,
        "-W",
        "default",
        str(Path(__file__).resolve()),
        "--child",
        mode,
        "--client",
        client,
        "--url",
        url,
        "--headers",
        json.dumps(headers),
        "--calls-c1",
        str(args.calls_c1),
        "--calls-c64",
        str(args.calls_c64),
        "--rounds",
        str(args.rounds),
        "--inflight",
        str(args.inflight),
    ]
    completed = subprocess.run(
        command, stdout=subprocess.PIPE, text=True, timeout=CHILD_TIMEOUT, check=False
    )
    for line in completed.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX) :])
        print(line)
    raise RuntimeError(f"{mode} child for {client} failed with exit code {completed.returncode}")


def import_time(module: str) -> float:
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
    )
    best = float("inf")
    for _ in range(3):
        out = subprocess.run(
            [sys.executable, "-c", code],
            stdout=subprocess.PIPE,
            text=True,
            check=True,
            env=env,
            cwd=REPO_ROOT,
            timeout=120,
        ).stdout
        best = min(best, float(out.strip()))
    return best


def machine() -> str:
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    versions = ", ".join(
        f"{name} {importlib.metadata.version(name)}"
        for name in ("aiohttp", "botocore", "aiobotocore", "boto3")
    )
    return (
        f"{model}, {os.cpu_count()} cores ({usable} usable), {platform.system()} "
        f"{platform.release()}; Python {platform.python_version()}; {versions}"
    )


def load_average() -> str:
    try:
        return " / ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:
        return "n/a"


def print_report(
    args: Any, cpu: dict[str, Any], imports: dict[str, float], memory: dict[str, Any]
) -> None:
    def fmt_ratio(value: float) -> str:
        return f"{value:.2f}x"

    print(
        "| Client | Concurrency | CPU µs/call | Calls/s | CPU vs raw aiohttp | Calls/s vs aiobotocore |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for concurrency in CONCURRENCIES:
        key = str(concurrency)
        floor = cpu["raw"][key]["cpu_us"]
        peer = cpu.get("aiobotocore", {}).get(key, {}).get("calls_per_s")
        for client, label in CLIENTS.items():
            if client not in cpu:
                continue
            row = cpu[client][key]
            versus = fmt_ratio(row["calls_per_s"] / peer) if peer else "n/a"
            print(
                f"| {label} | {concurrency} | {row['cpu_us']:,.0f} | {row['calls_per_s']:,.0f} "
                f"| {fmt_ratio(row['cpu_us'] / floor)} | {versus} |"
            )
    print()
    print(
        f"| Client | Import time (ms) | RSS before (MiB) | RSS growth, {args.inflight:,} in flight "
        "(MiB) | Per call in flight (KiB) |"
    )
    print("|---|---:|---:|---:|---:|")
    for client, label in CLIENTS.items():
        imported = (
            f"{imports[client] * 1e3:,.0f} (`{LIBRARIES[client]}`)" if client in imports else "n/a"
        )
        mem = memory.get(client)
        if mem is None:
            print(f"| {label} | {imported} | n/a | n/a | n/a |")
            continue
        flag = "" if mem["held"] >= args.inflight else f" (only {mem['held']} held at once)"
        if not mem["hwm_reset"]:
            flag += " (VmHWM could not be reset: an upper bound)"
        print(
            f"| {label} | {imported} | {mem['rss_before'] / 2**20:,.1f} "
            f"| {mem['growth'] / 2**20:,.1f}{flag} | {mem['growth'] / args.inflight / 1024:,.1f} |"
        )
    print()
    if "ours" in cpu and "raw" in cpu:
        ratios = [
            (c, cpu["ours"][str(c)]["cpu_us"] / cpu["raw"][str(c)]["cpu_us"]) for c in CONCURRENCIES
        ]
        verdict = "met" if all(r <= GOAL for _, r in ratios) else "MISSED"
        shown = ", ".join(f"{r:.2f}x at c={c}" for c, r in ratios)
        print(f"- Goal, CPU per call at most {GOAL:.2f}x raw aiohttp: {shown}: **{verdict}**")
    if "ours" in cpu and "aiobotocore" in cpu:
        speedup = cpu["ours"]["64"]["calls_per_s"] / cpu["aiobotocore"]["64"]["calls_per_s"]
        verdict = "met" if speedup >= THROUGHPUT_GOAL else "MISSED"
        print(
            f"- Goal, calls/s at least {THROUGHPUT_GOAL:.0f}x aiobotocore's at c=64: "
            f"{speedup:.2f}x: **{verdict}**"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="a small run (a few seconds per client)"
    )
    parser.add_argument("--calls-c1", type=int, help="measured calls at concurrency 1 (2,000)")
    parser.add_argument("--calls-c64", type=int, help="measured calls at concurrency 64 (10,000)")
    parser.add_argument("--rounds", type=int, help="rounds the calls are split into, best kept (5)")
    parser.add_argument("--inflight", type=int, help="calls in flight for the memory test (1,000)")
    parser.add_argument("--child", choices=("cpu", "memory"), help=argparse.SUPPRESS)
    parser.add_argument("--client", choices=tuple(CLIENTS), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--headers", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_main(args)
        return

    command = shlex.join(
        ["python", os.path.relpath(Path(__file__).resolve(), Path.cwd()), *sys.argv[1:]]
    )
    defaults = (400, 1280, 3, 250) if args.quick else (2000, 10000, 5, 1000)
    for name, default in zip(
        ("calls_c1", "calls_c64", "rounds", "inflight"), defaults, strict=True
    ):
        if getattr(args, name) is None:
            setattr(args, name, default)

    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    # A SIGTERM unwinds like Ctrl-C, so the running child is killed and the server terminated.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    started = time.perf_counter()
    load_start = load_average()
    cpu: dict[str, Any] = {}
    memory: dict[str, Any] = {}
    imports = {client: import_time(module) for client, module in LIBRARIES.items()}
    server, url = start_server(_serve)
    try:
        headers = signed_headers(url)
        for client in CLIENTS:
            cpu[client] = run_child("cpu", client, url, headers, args)
        for client in CLIENTS:
            memory[client] = run_child("memory", client, url, headers, args)
    finally:
        stop_server(server)
    elapsed = time.perf_counter() - started

    print("## Benchmark: sagemaker_rt_aio against its peers")
    print()
    print(f"Command: `{command}`")
    print()
    print(f"Machine: {machine()}")
    print()
    print(
        f"Method: one local aiohttp.web server in its own process; each client in a fresh process. "
        f"CPU = `time.process_time()` of the client process per call (all its threads), calls/s = "
        f"wall; {args.calls_c1:,} calls at c=1 and {args.calls_c64:,} at c=64 after a warm-up, "
        f"in {args.rounds} rounds, best round kept. Request {len(REQUEST_BODY)} B, response "
        f"{len(RESPONSE_BODY)} B. Memory: peak RSS (`VmHWM`, reset just before) minus RSS before, "
        f"while {args.inflight:,} calls are held in flight by the server (boto3: a "
        f"{args.inflight:,}-thread pool). Import time: fresh interpreter, best of 3."
    )
    print()
    print_report(args, cpu, imports, memory)
    print()
    print(f"Load average (1/5/15 min) at start {load_start}, at end {load_average()}.")
    print(f"Wall time of the run: {elapsed:.1f} s.")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
