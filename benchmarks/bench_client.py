"""Client CPU cost per call: ``SageMakerRuntimeClient.invoke_endpoint`` against a raw aiohttp POST.

Run: ``python benchmarks/bench_client.py [--calls N] [--rounds R] [--profile]``.

A minimal aiohttp server runs in a separate process on 127.0.0.1 and answers every POST with 200 and
a small JSON body, so its CPU time is not counted here. This process then makes N sequential calls
per round, after a warm-up, and measures ``time.process_time()`` per call (best of R rounds, the
clients taking turns round by round so that a slow spell of the machine hits them alike) for:

  (a) raw aiohttp: one shared ClientSession, POST with the same body and headers (a fixed, already
      computed signature), read the body: the floor any aiohttp-based client pays;
  (b) sagemaker_rt_aio: ``invoke_endpoint`` with dummy keys and ``endpoint_url`` set to the server
      (validation, SigV4 signing, retry bookkeeping, parsing included);
  (c) aiobotocore ``invoke_endpoint`` (if installed), reading the body;
  (d) boto3 ``invoke_endpoint`` (synchronous, urllib3), reading the body.

The goal is (b) at most 1.25x (a). ``--profile`` runs cProfile over (b) and prints the top 25
functions by own time.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import multiprocessing
import os
import pstats
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

REQUEST_BODY = b'{"inputs": "The quick brown fox jumps over the lazy dog", "parameters": {"n": 1}}'
RESPONSE_BODY = b'{"generated_text": "ok", "score": 0.97}'
ACCESS_KEY = "AKIDBENCHMARK0000000"
SECRET_KEY = "benchmark/secret/key/0000000000000000000"
REGION = "us-east-1"
ENDPOINT = "bench-endpoint"
GOAL = 1.25


# -- the server (child process) -------------------------------------------------------------------


def _serve(port_queue: Any) -> None:
    from aiohttp import web

    async def invocations(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(
            body=RESPONSE_BODY,
            content_type="application/json",
            headers={
                "x-amzn-RequestId": "00000000-0000-0000-0000-000000000000",
                "x-Amzn-Invoked-Production-Variant": "AllTraffic",
            },
        )

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/{tail:.*}", invocations)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port_queue.put(runner.addresses[0][1])
        await asyncio.Event().wait()

    asyncio.run(main())


def start_server(
    serve: Callable[[Any], None] = _serve,
) -> tuple[multiprocessing.process.BaseProcess, str]:
    """Run ``serve(port_queue)`` in a fresh process; return it and the URL it serves on."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=serve, args=(queue,), daemon=True)
    process.start()
    try:
        port = queue.get(timeout=30)
    except BaseException:
        stop_server(process)
        raise
    return process, f"http://127.0.0.1:{port}"


def stop_server(process: multiprocessing.process.BaseProcess) -> None:
    process.terminate()
    process.join(5)
    if process.is_alive():
        process.kill()
        process.join(5)


# -- measurement ----------------------------------------------------------------------------------


def best_cpu_per_call(
    runs: dict[str, Callable[[int], None]], calls: int, rounds: int, warmup: int
) -> dict[str, tuple[float, float]]:
    """Best (CPU µs/call, wall µs/call) of each client over ``rounds`` rounds of ``calls`` calls.

    The clients take turns round by round, so a slow spell of the machine (this is a shared 2-core
    box) hits them alike instead of whichever happened to be running.
    """
    for run_round in runs.values():
        run_round(warmup)
    best = {label: (float("inf"), float("inf")) for label in runs}
    for _ in range(rounds):
        for label, run_round in runs.items():
            cpu0, wall0 = time.process_time(), time.perf_counter()
            run_round(calls)
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
            best_cpu, best_wall = best[label]
            best[label] = (min(best_cpu, cpu / calls * 1e6), min(best_wall, wall / calls * 1e6))
    return best


def run_async(
    loop: asyncio.AbstractEventLoop, call: Callable[[], Awaitable[Any]]
) -> Callable[[int], None]:
    async def many(n: int) -> None:
        for _ in range(n):
            await call()

    return lambda n: loop.run_until_complete(many(n))


async def make_raw(url: str) -> tuple[Callable[[], Awaitable[Any]], Callable[[], Awaitable[None]]]:
    """A POST with exactly the headers our client sends, signed once up front."""
    import aiohttp

    from sagemaker_rt_aio._signing import FrozenCredentials, payload_sha256, sign
    from sagemaker_rt_aio._transport import SKIP_AUTO_HEADERS

    target = f"{url}/endpoints/{ENDPOINT}/invocations"
    headers = {"Content-Type": "application/json"}
    sign(
        method="POST",
        host=target.split("/")[2],
        path=f"/endpoints/{ENDPOINT}/invocations",
        headers=headers,
        payload_hash=payload_sha256(REQUEST_BODY),
        credentials=FrozenCredentials(ACCESS_KEY, SECRET_KEY),
        region=REGION,
        service="sagemaker",
    )
    headers.update({"Accept-Encoding": "identity", "User-Agent": "bench"})
    session = aiohttp.ClientSession(auto_decompress=False)

    async def call() -> bytes:
        async with session.post(
            target,
            data=REQUEST_BODY,
            headers=headers,
            skip_auto_headers=SKIP_AUTO_HEADERS,
            allow_redirects=False,
        ) as response:
            body = await response.read()
            assert response.status == 200
            return body

    return call, session.close


async def make_ours(url: str) -> tuple[Callable[[], Awaitable[Any]], Callable[[], Awaitable[None]]]:
    from sagemaker_rt_aio import SageMakerRuntimeClient

    client = SageMakerRuntimeClient(
        REGION,
        endpoint_url=url,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )
    await client.__aenter__()

    async def call() -> bytes:
        result = await client.invoke_endpoint(
            endpoint_name=ENDPOINT, body=REQUEST_BODY, content_type="application/json"
        )
        return result.body

    return call, client.shutdown


async def make_aiobotocore(
    url: str,
) -> tuple[Callable[[], Awaitable[Any]], Callable[[], Awaitable[None]]] | None:
    try:
        from aiobotocore.session import get_session
    except ImportError:
        return None
    context = get_session().create_client(
        "sagemaker-runtime",
        region_name=REGION,
        endpoint_url=url,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )
    client = await context.__aenter__()

    async def call() -> bytes:
        response = await client.invoke_endpoint(
            EndpointName=ENDPOINT, Body=REQUEST_BODY, ContentType="application/json"
        )
        async with response["Body"] as stream:
            return bytes(await stream.read())

    async def close() -> None:
        await context.__aexit__(None, None, None)

    return call, close


def make_boto3(url: str) -> Callable[[int], None] | None:
    try:
        import boto3
    except ImportError:
        return None
    client = boto3.client(
        "sagemaker-runtime",
        region_name=REGION,
        endpoint_url=url,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )

    def run(n: int) -> None:
        for _ in range(n):
            response = client.invoke_endpoint(
                EndpointName=ENDPOINT, Body=REQUEST_BODY, ContentType="application/json"
            )
            response["Body"].read()

    return run


def profile_ours(
    loop: asyncio.AbstractEventLoop, call: Callable[[], Awaitable[Any]], n: int
) -> None:
    runner = run_async(loop, call)
    runner(200)
    profiler = cProfile.Profile()
    profiler.enable()
    runner(n)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(25)
    print(f"\ncProfile of (b), {n} calls, top 25 by tottime:")
    print(out.getvalue())
    # The same profile restricted to this package, by cumulative time: where our own cost is.
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats("sagemaker_rt_aio", 15)
    print("sagemaker_rt_aio functions, top 15 by cumtime:")
    print(out.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=500, help="calls per round (default 500)")
    parser.add_argument(
        "--rounds", type=int, default=20, help="rounds; the best is kept (default 20)"
    )
    parser.add_argument("--profile", action="store_true", help="cProfile (b) instead of timing")
    args = parser.parse_args()
    calls, rounds = args.calls, args.rounds
    warmup = max(50, calls // 10)

    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    process, url = start_server()
    loop = asyncio.new_event_loop()
    try:
        if args.profile:
            call, close = loop.run_until_complete(make_ours(url))
            profile_ours(loop, call, calls)
            loop.run_until_complete(close())
            return

        runs: dict[str, Callable[[int], None]] = {}
        closers = []
        for label, factory in [
            ("(a) raw aiohttp POST", make_raw),
            ("(b) sagemaker_rt_aio", make_ours),
            ("(c) aiobotocore", make_aiobotocore),
        ]:
            made = loop.run_until_complete(factory(url))
            if made is None:
                print(f"{label}: not installed, skipped")
                continue
            call, close = made
            runs[label] = run_async(loop, call)
            closers.append(close)
        boto3_run = make_boto3(url)
        if boto3_run is not None:
            runs["(d) boto3 (sync)"] = boto3_run
        best = best_cpu_per_call(runs, calls, rounds, warmup)
        rows = [(label, cpu, wall) for label, (cpu, wall) in best.items()]
        for close in closers:
            loop.run_until_complete(close())
    finally:
        loop.close()
        stop_server(process)

    import aiohttp
    import botocore

    print(
        f"{calls} sequential calls per round, best of {rounds} taken in turns; "
        f"Python {sys.version.split()[0]}, aiohttp {aiohttp.__version__}, botocore {botocore.__version__}"
    )
    print(
        f"request body {len(REQUEST_BODY)} B, response body {len(RESPONSE_BODY)} B, server in pid "
        f"{process.pid}"
    )
    base = rows[0][1]
    print(f"{'client':<24} {'CPU us/call':>12} {'wall us/call':>13} {'CPU vs (a)':>11}")
    for label, cpu, wall in rows:
        print(f"{label:<24} {cpu:>12.1f} {wall:>13.1f} {cpu / base:>10.2f}x")
    ratio = rows[1][1] / base
    verdict = "meets" if ratio <= GOAL else "MISSES"
    print(f"(b)/(a) CPU ratio: {ratio:.2f}x ({verdict} the {GOAL:.2f}x goal)")


if __name__ == "__main__":
    main()
