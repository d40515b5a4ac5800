"""What OpenTelemetry costs per call: off, on with no SDK (the API's no-op globals), on with an SDK.

Run: ``python benchmarks/bench_telemetry.py [--calls N] [--rounds R] [--micro N]``.

Two measurements:

1. micro (precise): the pipeline's per-call telemetry decision and, with SDK providers, a whole
   observation (span started and ended, duration/attempt/in-flight metrics recorded), without I/O:
   (a) ``opentelemetry-api`` not installed: ``pipeline.observe`` is None, one attribute check;
   (b) installed, no provider given, global providers still the API's defaults: ``observe`` returns
       None after checking the global providers (the budget: under 2 µs);
   (c) SDK ``TracerProvider`` (no exporter) and ``MeterProvider`` (in-memory reader) given.
2. end to end: CPU µs per ``invoke_endpoint`` against an aiohttp server in another process
   (its CPU not counted), with the same three settings, best of R rounds taken in turns.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from floor import start_server, stop_server

REQUEST_BODY = b'{"inputs": "The quick brown fox jumps over the lazy dog", "parameters": {"n": 1}}'
RESPONSE_BODY = b'{"generated_text": "ok", "score": 0.97}'
ACCESS_KEY = "AKIDBENCHMARK0000000"
SECRET_KEY = "benchmark/secret/key/0000000000000000000"
REGION = "us-east-1"
ENDPOINT = "bench-endpoint"


# -- the server (child process), so that its CPU time is not counted ---------------------------------


def _serve(port_queue: Any) -> None:
    from aiohttp import web

    async def invocations(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(
            body=RESPONSE_BODY,
            content_type="application/json",
            headers={"x-amzn-RequestId": "00000000-0000-0000-0000-000000000000"},
        )

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/endpoints/{name}/invocations", invocations)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port_queue.put(runner.addresses[0][1])
        await asyncio.Event().wait()

    asyncio.run(main())


def best_cpu_per_call(
    runs: dict[str, Callable[[int], None]], calls: int, rounds: int, warmup: int
) -> dict[str, tuple[float, float]]:
    """Best (CPU µs/call, wall µs/call) of each setting, the settings taking turns round by round
    so that a slow spell of this shared machine hits them alike."""
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


# -- the three settings ------------------------------------------------------------------------------


def sdk_providers() -> tuple[Any, Any]:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider

    return TracerProvider(), MeterProvider(metric_readers=[InMemoryMetricReader()])


def micro(n: int) -> dict[str, float]:
    """ns per call of the telemetry decision (and, with an SDK, of a whole observation)."""
    from multidict import CIMultiDict, CIMultiDictProxy

    from sagemaker_rt_aio._observe import load_telemetry
    from sagemaker_rt_aio._transport import HttpResponse

    kwargs: dict[str, Any] = {"region": REGION, "host": "127.0.0.1", "port": 8080}
    no_sdk = load_telemetry(None, None, gauges=lambda: (0, 0), **kwargs)
    with_sdk = load_telemetry(*sdk_providers(), gauges=lambda: (0, 0), **kwargs)
    assert no_sdk is not None and with_sdk is not None
    response = HttpResponse(200, CIMultiDictProxy(CIMultiDict({"x-amzn-RequestId": "r"})), b"")

    def decide(observe: Any, rounds: int) -> float:
        start = time.perf_counter_ns()
        for _ in range(rounds):
            obs = None if observe is None else observe("InvokeEndpoint", ENDPOINT, False)
            if obs is not None:
                obs.succeeded(response)
        return (time.perf_counter_ns() - start) / rounds

    results = {}
    for label, observe, rounds in (
        ("(a) otel not installed", None, n),
        ("(b) otel API, no SDK", no_sdk.observe, n),
        ("(c) SDK providers", with_sdk.observe, max(n // 20, 1000)),
    ):
        decide(observe, rounds // 10)  # warm-up
        results[label] = min(decide(observe, rounds) for _ in range(5))
    return results


async def make_client(
    url: str, mode: str
) -> tuple[Callable[[], Awaitable[Any]], Callable[[], Awaitable[None]]]:
    from sagemaker_rt_aio import SageMakerRuntimeClient

    tracer_provider, meter_provider = sdk_providers() if mode == "sdk" else (None, None)
    client = SageMakerRuntimeClient(
        REGION,
        endpoint_url=url,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
    )
    if mode == "off":
        client._pipeline.observe = None  # as without opentelemetry-api installed
    await client.__aenter__()

    async def call() -> bytes:
        result = await client.invoke_endpoint(
            endpoint_name=ENDPOINT, body=REQUEST_BODY, content_type="application/json"
        )
        return result.body

    return call, client.shutdown


def end_to_end(calls: int, rounds: int) -> dict[str, tuple[float, float]]:
    process, url = start_server(_serve)
    loop = asyncio.new_event_loop()
    closers = []
    try:
        runs = {}
        for label, mode in (
            ("(a) otel not installed", "off"),
            ("(b) otel API, no SDK", "api"),
            ("(c) SDK providers", "sdk"),
        ):
            call, close = loop.run_until_complete(make_client(url, mode))
            closers.append(close)
            runs[label] = run_async(loop, call)
        return best_cpu_per_call(runs, calls, rounds, warmup=max(calls // 5, 50))
    finally:
        for close in closers:
            loop.run_until_complete(close())
        loop.close()
        stop_server(process)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--micro", type=int, default=1_000_000)
    args = parser.parse_args()
    print("micro: per-call telemetry decision (c: a whole observation), ns")
    for label, ns in micro(args.micro).items():
        print(f"  {label:26} {ns:9.0f} ns")
    print(f"end to end: invoke_endpoint, best of {args.rounds} x {args.calls} calls")
    for label, (cpu, wall) in end_to_end(args.calls, args.rounds).items():
        print(f"  {label:26} {cpu:7.1f} µs CPU/call  {wall:7.1f} µs wall/call")


if __name__ == "__main__":
    main()
