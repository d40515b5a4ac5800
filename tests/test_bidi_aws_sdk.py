"""AWS's own SDK (aws-sdk-sagemaker-runtime-http2 on AWS CRT) against the local runtime over TLS.

The SDK needs Python 3.12+, so it runs in a subprocess (scripts/aws_sdk_bidi_probe.py) with the
interpreter named by ``SAGEMAKER_RT_AIO_AWS_SDK_PYTHON`` (as .ci/run does), or the first of a few
usual places that has the SDK installed. Set one up with::

    ~/.pyenv/versions/3.12.1/bin/python -m venv /tmp/v312
    /tmp/v312/bin/pip install aws-sdk-sagemaker-runtime-http2 awscrt

Without such an interpreter these tests are skipped (they say why).
"""

from __future__ import annotations

import asyncio
import glob
import json
import os
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import botocore.credentials
import pytest
import trustme

from sagemaker_rt_aio import BidirectionalPart
from sagemaker_rt_aio.local import ContainerError, LocalRuntime

PROBE = Path(__file__).resolve().parent.parent / "scripts" / "aws_sdk_bidi_probe.py"
ACCESS_KEY, SECRET_KEY = "AKIDSDK", "sdk-secret"


def _find_python() -> str | None:
    named = os.environ.get("SAGEMAKER_RT_AIO_AWS_SDK_PYTHON")
    if named:
        return named  # named on purpose (CI): a broken one must fail, not skip
    candidates = sorted(glob.glob("/tmp/v312*/bin/python"))
    candidates += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.1[2-9]*/bin/python")))
    for python in candidates:
        if python and os.path.exists(python):
            probe = subprocess.run(
                [python, "-c", "import aws_sdk_sagemaker_runtime_http2, awscrt"],
                capture_output=True,
                timeout=60,
            )
            if probe.returncode == 0:
                return python
    return None


PYTHON = _find_python()
pytestmark = pytest.mark.skipif(
    PYTHON is None,
    reason="no Python 3.12+ with aws-sdk-sagemaker-runtime-http2 and awscrt "
    "(set SAGEMAKER_RT_AIO_AWS_SDK_PYTHON)",
)


async def shout(invocation: Any, inbound: AsyncIterator[BidirectionalPart]) -> Any:
    async for part in inbound:
        yield BidirectionalPart(part.bytes.upper(), part.data_type, part.completion_state)
    yield "bye"


async def refuse(invocation: Any, inbound: AsyncIterator[BidirectionalPart]) -> Any:
    async for _ in inbound:
        raise ContainerError(400, "bad audio")
    yield b""


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, str]:
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(server)
    ca_file = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return server, str(ca_file)


async def _run_sdk(url: str, ca_file: str, jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    for job in jobs:
        job.setdefault("access_key", ACCESS_KEY)
        job.setdefault("secret_key", SECRET_KEY)
    assert PYTHON is not None
    process = await asyncio.create_subprocess_exec(
        PYTHON, str(PROBE), url, ca_file, env=env,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(process.communicate(json.dumps(jobs).encode()), 60)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, err.decode()[-2000:]
    return [json.loads(line) for line in out.decode().splitlines() if line.strip()]


async def test_aws_sdk_against_the_local_runtime_over_tls(
    certificates: tuple[ssl.SSLContext, str],
) -> None:
    """One SDK process: a full exchange, then every error shape it can see."""
    server_context, ca_file = certificates
    credentials = botocore.credentials.Credentials(ACCESS_KEY, SECRET_KEY)
    async with LocalRuntime(credentials=credentials, ssl_context=server_context) as runtime:
        runtime.add_bidirectional_endpoint("shout", shout)
        runtime.add_bidirectional_endpoint("refuse", refuse)
        runtime.fail_next("shout", 1, error="ServiceUnavailableError", status=503)
        jobs: list[dict[str, Any]] = [
            {"endpoint": "shout", "messages": ["x"]},  # the SDK does not retry a stream's 503
            {"endpoint": "shout", "messages": ["hello", "world"]},
            {"endpoint": "missing", "messages": ["x"]},
            {"endpoint": "refuse", "messages": ["x"]},
            {"endpoint": "shout", "messages": ["x"], "secret_key": "not-the-secret"},
        ]
        busy, ok, missing, model, forged = await _run_sdk(runtime.bidirectional_url, ca_file, jobs)
        assert busy["error"] == "ServiceUnavailableError"
        assert ok == {
            "events": [
                {"bytes": "HELLO", "data_type": "UTF8", "completion_state": "PARTIAL"},
                {"bytes": "WORLD", "data_type": "UTF8", "completion_state": "COMPLETE"},
                {"bytes": "bye", "data_type": "UTF8", "completion_state": None},
            ]
        }
        assert missing["error"] == "InputValidationError"
        assert model["error"] == "ModelError"
        assert "InvalidSignatureException" in forged["message"]
        assert runtime.call_count("shout") == 2  # the 503 and the exchange; forged: refused first
        assert len(runtime.invocations("shout")) == 1
        assert len(runtime.invocations("refuse")) == 1


def test_probe_script_is_valid_python() -> None:
    compile(PROBE.read_text(), str(PROBE), "exec")
    assert sys.version_info >= (3, 10)
