"""Async inference: queue a request, then await its result.

An asynchronous endpoint answers a request at once with where its result will appear in S3, and
writes the result there when the model is done (seconds or minutes later). The client waits for it
by polling S3 with signed requests; it needs no S3 client of its own.

Against the embedded local runtime and its demo ``summarize`` model (no AWS account needed)::

    python examples/async_inference.py --local

Against a real async endpoint::

    python examples/async_inference.py --endpoint-name my-async-endpoint --region us-east-1
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence

from _common import argument_parser, local_client

from sagemaker_rt_aio import SageMakerRuntimeClient, SageMakerRuntimeError
from sagemaker_rt_aio.local.demo_models import summarize

TEXT = "Async inference queues the request and writes the answer to S3 when it is ready."


async def run(
    client: SageMakerRuntimeClient, endpoint_name: str, timeout: float, poll_interval: float
) -> None:
    body = json.dumps({"inputs": TEXT})

    # 1. The common case in one call: queue, then wait. `timeout` bounds the whole of it.
    output = await client.invoke_endpoint_async_and_wait(
        endpoint_name=endpoint_name,
        body=body,
        content_type="application/json",
        timeout=timeout,
        poll_interval=poll_interval,
    )
    print(f"invoke_endpoint_async_and_wait: {output.decode()}")

    # 2. The same in two steps. What `invoke_endpoint_async` answers says where the result will
    # be, so it could be stored and awaited later, even by another process.
    queued = await client.invoke_endpoint_async(
        endpoint_name=endpoint_name, body=body, content_type="application/json"
    )
    print(f"queued {queued.inference_id}, output to come at {queued.output_location}")
    output = await client.wait_for_async_result(
        queued, timeout=timeout, poll_interval=poll_interval
    )
    print(f"wait_for_async_result: {output.decode()}")


async def amain(args: argparse.Namespace) -> None:
    if args.local or not args.endpoint_name:
        # A local runtime serving the demo `summarize` model; it also plays S3 for the results.
        async with local_client("summarizer", summarize, content_type="application/json") as client:
            # The demo model answers in 0.3 s; a real one may take minutes: poll it less often.
            await run(client, "summarizer", args.timeout, poll_interval=0.1)
    else:
        async with SageMakerRuntimeClient(region_name=args.region) as client:
            await run(client, args.endpoint_name, args.timeout, args.poll_interval)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argument_parser("Queue an async inference and await its result.", service=False)
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds (default: 300)")
    parser.add_argument("--poll-interval", type=float, default=5.0, help="seconds (default: 5)")
    args = parser.parse_args(argv)
    try:
        asyncio.run(amain(args))
    except SageMakerRuntimeError as error:  # the model failed, timed out, no credentials...
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
