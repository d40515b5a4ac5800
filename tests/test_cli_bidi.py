"""``sagemaker-rt-aio invoke-bidi``: stdin to a bidirectional stream, answers to stdout.

The CLI runs in a subprocess against the local runtime (in this process, signatures verified).
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from typing import Any

import botocore.credentials
import pytest

from sagemaker_rt_aio import BidirectionalPart
from sagemaker_rt_aio.local import LocalRuntime

ACCESS_KEY, SECRET_KEY = "AKIDCLI", "cli-secret"
STEP = 30.0


async def upper(invocation: Any, inbound: AsyncIterator[BidirectionalPart]) -> Any:
    async for part in inbound:
        yield part.bytes.upper()


async def greeter(invocation: Any, inbound: AsyncIterator[BidirectionalPart]) -> Any:
    yield "hello, and goodbye"


@pytest.fixture
async def runtime() -> AsyncIterator[LocalRuntime]:
    credentials = botocore.credentials.Credentials(ACCESS_KEY, SECRET_KEY)
    async with LocalRuntime(credentials=credentials) as rt:
        rt.add_bidirectional_endpoint("upper", upper)
        rt.add_bidirectional_endpoint("greeter", greeter)
        yield rt


async def start_cli(runtime: LocalRuntime, *args: str) -> asyncio.subprocess.Process:
    env = dict(
        os.environ,
        AWS_ACCESS_KEY_ID=ACCESS_KEY,
        AWS_SECRET_ACCESS_KEY=SECRET_KEY,
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
    )
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sagemaker_rt_aio", "--region", "us-east-1",
        "--endpoint-url", runtime.url, "invoke-bidi", *args,
        "--bidirectional-endpoint-url", runtime.bidirectional_url,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip


async def finish(process: asyncio.subprocess.Process, stdin: bytes = b"") -> tuple[bytes, bytes]:
    try:
        return await asyncio.wait_for(process.communicate(stdin), STEP)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_answers_arrive_while_stdin_is_open(runtime: LocalRuntime) -> None:
    process = await start_cli(runtime, "upper")
    assert process.stdin is not None and process.stdout is not None
    for word in (b"one", b"two", b"three"):
        process.stdin.write(word + b"\n")
        await process.stdin.drain()
        answer = await asyncio.wait_for(process.stdout.readline(), STEP)
        assert answer == word.upper() + b"\n"  # before the next line is even written
    process.stdin.close()
    out, err = await finish(process)
    assert process.returncode == 0, err.decode()
    assert out == b""
    (invocation,) = runtime.invocations("upper")
    assert invocation.operation == "InvokeEndpointWithBidirectionalStream"


async def test_binary_chunks(runtime: LocalRuntime) -> None:
    process = await start_cli(runtime, "upper", "--binary", "--chunk-size", "4", "--no-newline")
    out, err = await finish(process, b"abcdefghij")
    assert process.returncode == 0, err.decode()
    assert out == b"ABCDEFGHIJ"


async def test_service_error_is_one_line(runtime: LocalRuntime) -> None:
    process = await start_cli(runtime, "missing")
    _, err = await finish(process, b"x\n")
    assert process.returncode == 254  # a service error, as the AWS CLI exits
    assert err.decode().startswith("error: InputValidationError (HTTP 400)"), err.decode()
    assert "Traceback" not in err.decode()


async def test_the_answer_ending_ends_the_command_with_stdin_open(runtime: LocalRuntime) -> None:
    process = await start_cli(runtime, "greeter")
    assert process.stdout is not None
    out = await asyncio.wait_for(process.stdout.read(), STEP)  # EOF: the command ended
    assert out == b"hello, and goodbye\n"
    _, err = await finish(process)
    assert process.returncode == 0, err.decode()
