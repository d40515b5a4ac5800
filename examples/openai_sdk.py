"""The ``openai`` SDK against a SageMaker endpoint's OpenAI-compatible route, with our bearer tokens.

SageMaker endpoints answer OpenAI Chat Completions at ``/endpoints/{name}/openai/v1`` and take a
short-lived ``sagemaker-api-key-...`` bearer token instead of a SigV4 signature. Our client mints
that token from your AWS credentials (as the SageMaker Python SDK does) and knows the URL; the
``openai`` SDK does the rest, streaming included. The same call through our own client is shown
last, for comparison: same route, same token, plus our retries, deadline and text decoding.

Against the embedded local runtime, which checks the token, and a canned vLLM-style container::

    python examples/openai_sdk.py --local

Against a real endpoint (its container must speak OpenAI Chat Completions: vLLM, SGLang, LMI,
TGI's Messages API; the caller needs sagemaker:CallWithBearerToken and sagemaker:InvokeEndpoint)::

    ENDPOINT_NAME=my-llm AWS_REGION=us-east-1 python examples/openai_sdk.py

Needs ``pip install openai``. Tokens are secrets: never log them; mint a new one before the old
expires (``expires_in``, at most 12 hours): a long-lived app recreates its ``AsyncOpenAI`` then.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import botocore.credentials
from _common import argument_parser

from sagemaker_rt_aio import SageMakerRuntimeClient, SageMakerRuntimeError
from sagemaker_rt_aio.local import LocalRuntime
from sagemaker_rt_aio.local.demo_models import CannedLLM

MESSAGES = [{"role": "user", "content": "Say something about streaming."}]
#: Seconds between the canned container's parts, so that the local stream is seen streaming.
LOCAL_DELAY = 0.005


@asynccontextmanager
async def local_endpoint() -> AsyncIterator[tuple[SageMakerRuntimeClient, str]]:
    """A local runtime that verifies bearer tokens for these credentials, serving a canned
    OpenAI-style container as ``chat-llm``; and a client with the same credentials."""
    credentials = botocore.credentials.Credentials("AKIDLOCALEXAMPLE", "local-example-secret")
    async with LocalRuntime(credentials=credentials) as runtime:
        runtime.add_endpoint("chat-llm", CannedLLM("openai-chat", delay=LOCAL_DELAY))
        async with SageMakerRuntimeClient(
            region_name=runtime.region,
            endpoint_url=runtime.url,
            allow_http=True,
            credentials=credentials,
        ) as client:
            yield client, "chat-llm"


async def run(client: SageMakerRuntimeClient, endpoint_name: str) -> None:
    import openai  # the `openai` package: pip install openai

    token = await client.generate_bearer_token(expires_in=3600)
    sdk = openai.AsyncOpenAI(base_url=client.openai_base_url(endpoint_name), api_key=token)
    try:
        # The container picks the model: SageMaker routes by endpoint name, not by `model`.
        answer = await sdk.chat.completions.create(model="", messages=MESSAGES)  # type: ignore[arg-type]
        print(f"openai, whole: {answer.choices[0].message.content!r}")
        stream = await sdk.chat.completions.create(model="", messages=MESSAGES, stream=True)  # type: ignore[arg-type]
        print("openai, streamed: ", end="", flush=True)
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                print(chunk.choices[0].delta.content, end="", flush=True)
        print()
    finally:
        await sdk.close()

    # The same route through our own client.
    async with client.chat_completions_stream(
        endpoint_name=endpoint_name, body={"messages": MESSAGES}
    ) as ours:
        print("sagemaker_rt_aio, streamed: ", end="", flush=True)
        async for text in ours.iter_text():
            print(text, end="", flush=True)
    print(f"\nfinish_reason={ours.finish_reason} usage={ours.usage}")


async def amain(argv: Sequence[str] | None) -> int:
    args = argument_parser("The openai SDK on a SageMaker endpoint.", service=False).parse_args(
        argv
    )
    try:
        if args.local or not args.endpoint_name:
            async with local_endpoint() as (client, name):
                await run(client, name)
        else:
            async with SageMakerRuntimeClient(region_name=args.region) as client:
                await run(client, args.endpoint_name)
    except SageMakerRuntimeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return asyncio.run(amain(argv))


if __name__ == "__main__":
    sys.exit(main())
