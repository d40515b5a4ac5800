"""The SAGEMAKER_RT_AIO_LOG switch, and log lines free of secrets over whole calls."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from botocore.credentials import Credentials

from sagemaker_rt_aio import (
    LOG_ENV_VAR,
    ModelError,
    RetryPolicy,
    SageMakerRuntimeClient,
    configure_logging_from_env,
)
from sagemaker_rt_aio._logging import _EnvHandler
from sagemaker_rt_aio.local import ContainerError, Invocation, LocalRuntime

ACCESS_KEY = "AKIDLOGGINGTEST"
SECRET_KEY = "logging-secret-key-DO-NOT-LEAK"
SESSION_TOKEN = "logging-session-token-DO-NOT-LEAK"
BODY = b"logged-body-DO-NOT-LEAK"
CUSTOM = "logged-custom-attributes-DO-NOT-LEAK"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def library_logger() -> Iterator[logging.Logger]:
    logger = logging.getLogger("sagemaker_rt_aio")
    level, handlers = logger.level, list(logger.handlers)
    yield logger
    logger.setLevel(level)
    logger.handlers[:] = handlers


@pytest.mark.parametrize(
    ("value", "level"),
    [("debug", logging.DEBUG), ("1", logging.DEBUG), ("INFO", logging.INFO), ("error", 40)],
)
def test_switch_sets_level_and_one_handler(
    library_logger: logging.Logger, value: str, level: int
) -> None:
    assert configure_logging_from_env({LOG_ENV_VAR: value}) == level
    assert configure_logging_from_env({LOG_ENV_VAR: value}) == level  # again: still one handler
    assert library_logger.level == level
    assert sum(isinstance(h, _EnvHandler) for h in library_logger.handlers) == 1


@pytest.mark.parametrize("value", ["", "0", "off", "false"])
def test_switch_off(library_logger: logging.Logger, value: str) -> None:
    assert configure_logging_from_env({LOG_ENV_VAR: value}) is None
    assert not any(isinstance(h, _EnvHandler) for h in library_logger.handlers)


def test_switch_with_a_wrong_value_warns(
    library_logger: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, "sagemaker_rt_aio"):
        assert configure_logging_from_env({LOG_ENV_VAR: "loud"}) is None
    assert "is not a log level" in caplog.text
    assert not any(isinstance(h, _EnvHandler) for h in library_logger.handlers)


def test_switch_at_import_logs_to_stderr() -> None:
    code = (
        "import logging, sagemaker_rt_aio\n"
        "logging.getLogger('sagemaker_rt_aio.x').debug('debug line from the library')\n"
    )
    env = {**os.environ, LOG_ENV_VAR: "debug", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "DEBUG sagemaker_rt_aio.x: debug line from the library" in done.stderr
    env.pop(LOG_ENV_VAR)
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert "debug line" not in done.stderr


async def test_debug_log_of_whole_calls_has_no_secret(caplog: pytest.LogCaptureFixture) -> None:
    async def echo(invocation: Invocation) -> bytes:
        return invocation.body

    async def broken(invocation: Invocation) -> bytes:
        raise ContainerError(500, "the model fell over")

    credentials = Credentials(ACCESS_KEY, SECRET_KEY, SESSION_TOKEN)
    caplog.set_level(logging.DEBUG, "sagemaker_rt_aio")
    async with LocalRuntime(credentials=credentials, async_delay=0.05) as runtime:
        runtime.add_endpoint("echo", echo)
        runtime.add_endpoint("broken", broken)
        runtime.fail_next("echo", 1)  # a retry is logged too
        sent: list[str] = []  # the signatures sent (handlers never see the caller's Authorization)

        async def on_start(_: Any, __: Any, params: aiohttp.TraceRequestStartParams) -> None:
            sent.append(params.headers.get("Authorization", ""))

        trace = aiohttp.TraceConfig()
        trace.on_request_start.append(on_start)
        async with (
            aiohttp.ClientSession(trace_configs=[trace]) as session,
            SageMakerRuntimeClient(
                "us-east-1",
                endpoint_url=runtime.url,
                s3_endpoint_url=runtime.url,
                allow_http=True,
                aws_access_key_id=ACCESS_KEY,
                aws_secret_access_key=SECRET_KEY,
                aws_session_token=SESSION_TOKEN,
                retry_policy=RetryPolicy(base_delay=0.001, max_delay=0.002),
                http_session=session,
            ) as client,
        ):
            await client.invoke_endpoint(endpoint_name="echo", body=BODY, custom_attributes=CUSTOM)
            with pytest.raises(ModelError):
                await client.invoke_endpoint(endpoint_name="broken", body=BODY)
            async with client.invoke_endpoint_with_response_stream(
                endpoint_name="echo", body=BODY, custom_attributes=CUSTOM
            ) as stream:
                async for _ in stream:
                    pass
            queued = await client.invoke_endpoint_async(endpoint_name="echo", body=BODY)
            await client.wait_for_async_result(queued, timeout=5, poll_interval=0.02)
        signatures = {auth.split("Signature=")[1] for auth in sent if "Signature=" in auth}
        assert signatures
    lines = [record.getMessage() for record in caplog.records]
    assert any("retrying InvokeEndpoint" in line for line in lines)
    assert any("Signature=<redacted>" in line for line in lines)  # headers are logged, redacted
    text = "\n".join(lines) + caplog.text
    for secret in (SECRET_KEY, SESSION_TOKEN, BODY.decode(), CUSTOM, *signatures):
        assert secret not in text
