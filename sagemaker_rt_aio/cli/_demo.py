"""``demo``: the main job, on the embedded local runtime, through the real client and real HTTP.

It starts a ``LocalRuntime`` on 127.0.0.1 that checks every SigV4 signature, serves three small
built-in models, and shows: one invocation, a token stream, an async invocation awaited to its
result, and a batch through a cold start and injected 503s, ending with a summary table.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

import botocore.credentials

from .._client import SageMakerRuntimeClient
from .._retry import RetryPolicy
from ..local import LocalRuntime
from ..local.demo_models import (
    NEGATIVE_WORDS,
    POSITIVE_WORDS,
    STORY,
    CannedLLM,
    sentiment,
    summarize,
)
from ._batch import run_batch


def _say(text: str = "") -> None:
    print(text, flush=True)


async def run_demo(*, calls: int = 1000, concurrency: int = 64) -> int:
    started = time.monotonic()
    secret = botocore.credentials.Credentials("AKIDLOCALDEMO", "local-demo-secret")
    _say("sagemaker-rt-aio demo: the real client against the embedded local runtime")
    _say("(real HTTP on 127.0.0.1, every request SigV4-signed and verified; no AWS account)")
    async with LocalRuntime(credentials=secret) as runtime:
        runtime.add_endpoint("sentiment", sentiment, content_type="application/json")
        # A canned TGI container: its native token events over server-sent events.
        storyteller = CannedLLM("tgi", STORY, delay=0.012, mean_part_bytes=64)
        runtime.add_endpoint("storyteller", storyteller, content_type=storyteller.content_type)
        runtime.add_endpoint("summarizer", summarize, content_type="application/json")
        async with SageMakerRuntimeClient(
            region_name=runtime.region,
            endpoint_url=runtime.url,
            s3_endpoint_url=runtime.url,
            aws_access_key_id=secret.access_key,
            aws_secret_access_key=secret.secret_key,
            max_connections=concurrency,
            retry_policy=RetryPolicy(
                model_not_ready_base_delay=0.25, model_not_ready_max_delay=1.0
            ),
        ) as client:
            _say(f"\nlocal runtime at {runtime.url}\n")
            await _one_invocation(client)
            await _token_stream(client)
            await _async_invocation(client)
            await _batch(client, runtime, calls, concurrency)
    _say(f"\ndone in {time.monotonic() - started:.1f} s")
    return 0


async def _one_invocation(client: SageMakerRuntimeClient) -> None:
    _say("1. invoke_endpoint: one request, one answer")
    body = {"inputs": "I love how fast and pleasant this client is"}
    begun = time.monotonic()
    result = await client.invoke_endpoint(
        endpoint_name="sentiment", body=json.dumps(body), content_type="application/json"
    )
    elapsed = (time.monotonic() - begun) * 1000
    _say(f"   request   {json.dumps(body)}")
    _say(f"   answer    {result.body.decode()}  ({result.content_type})")
    _say(
        f"   variant   {result.invoked_production_variant}, request id "
        f"{result.response_metadata.request_id}, {elapsed:.1f} ms\n"
    )


async def _token_stream(client: SageMakerRuntimeClient) -> None:
    _say("2. invoke_endpoint_with_response_stream: tokens as they are generated")
    sys.stdout.write("   ")
    tokens = 0
    begun = time.monotonic()
    first = None
    async with client.invoke_endpoint_with_response_stream(
        endpoint_name="storyteller", body=json.dumps({"inputs": "tell me a story"})
    ) as stream:
        column = 3
        async for token in stream.iter_text():  # decoded from TGI's SSE token events
            first = first or time.monotonic() - begun
            tokens += 1
            if column + len(token) > 96:
                sys.stdout.write("\n   ")
                column = 3
            sys.stdout.write(token)
            sys.stdout.flush()
            column += len(token)
    elapsed = time.monotonic() - begun
    _say(
        f"\n   {tokens} tokens in {elapsed:.2f} s, first after {(first or 0) * 1000:.0f} ms "
        f"({stream.content_type}, TGI token events; finish reason {stream.finish_reason})\n"
    )


async def _async_invocation(client: SageMakerRuntimeClient) -> None:
    _say("3. invoke_endpoint_async, then wait_for_async_result (S3 polled with signed requests)")
    text = "Async inference queues the request and writes the answer to S3 when it is ready."
    begun = time.monotonic()
    queued = await client.invoke_endpoint_async(
        endpoint_name="summarizer",
        body=json.dumps({"inputs": text}),
        content_type="application/json",
    )
    _say(f"   queued    inference id {queued.inference_id}")
    _say(f"   output    {queued.output_location}")
    output = await client.wait_for_async_result(queued, timeout=10, poll_interval=0.1)
    _say(f"   result    {output.decode()}  (after {time.monotonic() - begun:.2f} s)\n")


async def _batch(
    client: SageMakerRuntimeClient, runtime: LocalRuntime, calls: int, concurrency: int
) -> None:
    cold_start, failures = 1.5, 40
    _say(
        f"4. batch: {calls} calls at concurrency {concurrency}, through a {cold_start:g} s cold "
        f"start (ModelNotReadyException) and {failures} injected 503s"
    )
    runtime.cold_start("sentiment", cold_start)
    runtime.fail_next("sentiment", failures, error="ServiceUnavailable", status=503)
    with tempfile.TemporaryDirectory() as folder:
        records = Path(folder, "records.jsonl")
        words = sorted(POSITIVE_WORDS | NEGATIVE_WORDS)
        lines = (
            json.dumps({"inputs": f"review {i}: {words[i % len(words)]}"}) for i in range(calls)
        )
        await asyncio.to_thread(records.write_text, "\n".join(lines) + "\n")
        summary = await run_batch(
            client,
            endpoint_name="sentiment",
            input_path=records,
            output_path=Path(folder, "results.jsonl"),
            concurrency=concurrency,
            progress=sys.stderr.isatty(),
        )
    _say(summary.describe())
