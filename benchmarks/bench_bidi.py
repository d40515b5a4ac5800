"""Bidirectional streaming (HTTP/2) through the local runtime, both in this process.

Run: ``python benchmarks/bench_bidi.py [--mib 32] [--rounds 200]``.

- throughput: ``--mib`` MiB sent in 64 KiB events while the echo handler sends them back (full
  duplex, signed and verified events, flow control both ways), in MiB/s each way;
- ping-pong: ``--rounds`` sequential one-event round trips on one stream, median latency in µs.

Client and server share one event loop and one CPU core, so these are costs, not a network's
limits: what signing, framing and h2 take per byte and per event.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import AsyncIterator
from typing import Any

import botocore.credentials

from sagemaker_rt_aio import BidirectionalPart, SageMakerRuntimeClient
from sagemaker_rt_aio.local import LocalRuntime


async def echo(invocation: Any, inbound: AsyncIterator[BidirectionalPart]) -> Any:
    async for part in inbound:
        yield part


async def main(mib: int, rounds: int) -> None:
    credentials = botocore.credentials.Credentials("AKIDBENCH", "bench-secret")
    async with LocalRuntime(credentials=credentials) as runtime:
        runtime.add_bidirectional_endpoint("echo", echo)
        async with SageMakerRuntimeClient(
            "us-east-1",
            endpoint_url=runtime.url,
            bidirectional_endpoint_url=runtime.bidirectional_url,
            aws_access_key_id="AKIDBENCH",
            aws_secret_access_key="bench-secret",
        ) as client:
            block = bytes(64 * 1024)
            count = mib * 16
            async with client.invoke_endpoint_with_bidirectional_stream(endpoint_name="echo") as s:

                async def produce() -> None:
                    for _ in range(count):
                        await s.send(block)
                    await s.end_input()

                started = time.perf_counter()
                producer = asyncio.create_task(produce())
                received = 0
                async for part in s:
                    received += len(part.bytes)
                await producer
                elapsed = time.perf_counter() - started
            assert received == count * len(block)
            print(f"throughput: {mib} MiB each way in {elapsed:.2f} s = {mib / elapsed:.1f} MiB/s")

            latencies = []
            async with client.invoke_endpoint_with_bidirectional_stream(endpoint_name="echo") as s:
                answers = s.__aiter__()
                for _ in range(rounds):
                    started = time.perf_counter()
                    await s.send(b"ping")
                    await answers.__anext__()
                    latencies.append(time.perf_counter() - started)
                await s.end_input()
            print(f"ping-pong: median {statistics.median(latencies) * 1e6:.0f} µs over {rounds}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    asyncio.run(main(args.mib, args.rounds))
