"""The ``sagemaker-rt-aio`` command, run as a real process against a ``LocalRuntime`` on loopback.

Each test starts the runtime in its own event loop and the CLI with
``asyncio.create_subprocess_exec`` (so the runtime keeps serving while the CLI runs). The runtime
checks SigV4 signatures against the dummy credentials the CLI gets from its environment, so every
call shows the CLI signed with the credentials it was given. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import botocore.credentials
import pytest

from sagemaker_rt_aio import SageMakerRuntimeClient, ValidationError
from sagemaker_rt_aio.cli._main import build_parser
from sagemaker_rt_aio.local import ContainerError, Invocation, LocalRuntime
from sagemaker_rt_aio.local import demo_models as demo

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parent.parent
ACCESS_KEY, SECRET_KEY = "AKIDCLITEST", "cli-test-secret"
REGION = "us-east-1"
STEP = 20.0  # seconds: the bound on any single wait of these tests
COMMANDS = (
    "invoke",
    "invoke-stream",
    "invoke-async",
    "batch",
    "serve-local",
    "demo",
    "invoke-bidi",
)
REQUEST_ID = re.compile(
    r"\[request id ([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\]"
)


def cli_env() -> dict[str, str]:
    """The CLI's environment: this repository importable, dummy credentials, no AWS config."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    env.update(
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        AWS_ACCESS_KEY_ID=ACCESS_KEY,
        AWS_SECRET_ACCESS_KEY=SECRET_KEY,
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
    )
    return env


def default_sigint() -> None:
    # A child inherits an ignored SIGINT (e.g. from a non-interactive shell's background job), and
    # Python then never raises KeyboardInterrupt: give the CLI the disposition a terminal gives it.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def cli_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "sagemaker_rt_aio", *args]


def at(runtime: LocalRuntime, *, s3: bool = False) -> list[str]:
    """The global options that point the CLI at ``runtime``."""
    options = ["--region", REGION, "--endpoint-url", runtime.url]
    return [*options, "--s3-endpoint-url", runtime.url] if s3 else options


@dataclass
class Ran:
    code: int
    stdout: bytes
    stderr: bytes

    @property
    def err(self) -> str:
        return self.stderr.decode("utf-8", "replace")


async def run_cli(
    *args: str, stdin: bytes | None = None, cwd: Path | None = None, timeout: float = STEP
) -> Ran:
    process = await asyncio.create_subprocess_exec(
        *cli_argv(*args),
        stdin=asyncio.subprocess.DEVNULL if stdin is None else asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=cli_env(),
        cwd=cwd,
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(stdin), timeout)
    except asyncio.TimeoutError:
        process.kill()
        await process.wait()
        raise AssertionError(f"the CLI did not finish within {timeout} s: {args}") from None
    assert process.returncode is not None
    return Ran(process.returncode, stdout, stderr)


def error_line(ran: Ran) -> str:
    """The CLI failed with exit code 1 and exactly one ``error: ...`` line (no traceback)."""
    assert ran.code == 1, ran.err
    assert "Traceback" not in ran.err
    lines = ran.err.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: "), lines[0]
    return lines[0]


def read_records(path: Path) -> list[dict[str, Any]]:
    """Every line of a batch output file, each of which must be a whole JSON object."""
    raw = path.read_bytes()
    assert raw == b"" or raw.endswith(b"\n"), raw[-200:]
    records = [json.loads(line) for line in raw.splitlines()]
    assert all(isinstance(record, dict) for record in records)
    return records


def by_line(records: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    lines = [record["line"] for record in records]
    assert len(lines) == len(set(lines)), "a line has more than one record"
    return {record["line"]: record for record in records}


def write_numbered_input(path: Path, count: int) -> None:
    """``count`` JSON lines; line ``i`` (from 1) is ``{"n": i}``."""
    path.write_text("".join(json.dumps({"n": i}) + "\n" for i in range(1, count + 1)))


# -- models behind the local runtime ------------------------------------------------------------


def echo(invocation: Invocation) -> str:
    """What reached the model: body, content type and accept."""
    return json.dumps(
        {"body": invocation.text(), "ct": invocation.content_type, "accept": invocation.accept}
    )


def raw_echo(invocation: Invocation) -> bytes:
    return invocation.body


def double(invocation: Invocation) -> str:
    n = invocation.json()["n"]
    return json.dumps({"n": n, "double": 2 * n})


class Flaky:
    """``double``, but a container error for every line whose ``n`` is in ``failing``; tracks the
    largest number of calls in flight at once."""

    def __init__(self, failing: set[int]) -> None:
        self.failing = failing
        self.in_flight = 0
        self.max_in_flight = 0

    async def __call__(self, invocation: Invocation) -> str:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0.005)
        finally:
            self.in_flight -= 1
        n = invocation.json()["n"]
        if n in self.failing:
            raise ContainerError(500, f"cannot do line {n}")
        return json.dumps({"n": n, "double": 2 * n})


def called_with(runtime: LocalRuntime, name: str) -> list[int]:
    """The ``n`` of every body the model ``name`` received, in order."""
    return [inv.json()["n"] for inv in runtime.invocations(name)]


@pytest.fixture
async def runtime() -> AsyncIterator[LocalRuntime]:
    credentials = botocore.credentials.Credentials(ACCESS_KEY, SECRET_KEY)
    async with LocalRuntime(credentials=credentials, region=REGION, async_delay=0.0) as local:
        local.add_endpoint("echo", echo, content_type="application/json")
        local.add_endpoint("raw", raw_echo, content_type="application/octet-stream")
        local.add_endpoint("sentiment", demo.sentiment, content_type="application/json")
        local.add_endpoint("storyteller", demo.generate, content_type="application/jsonlines")
        local.add_endpoint("summarizer", demo.summarize, content_type="application/json")
        local.add_endpoint("double", double, content_type="application/json")
        yield local


# -- help and usage -------------------------------------------------------------------------------


async def test_help_lists_every_command() -> None:
    ran = await run_cli("--help")
    assert ran.code == 0, ran.err
    text = ran.stdout.decode()
    subparsers = next(action for action in build_parser()._actions if action.dest == "command")
    assert subparsers.choices is not None
    assert set(subparsers.choices) == set(COMMANDS)
    for command in COMMANDS:
        assert re.search(rf"^\s+{re.escape(command)}\s", text, re.MULTILINE), (command, text)


@pytest.mark.parametrize(
    "args",
    [
        ["invoke", "echo"],  # --body is required
        ["no-such-command"],
        ["batch", "echo", "--input", "in.jsonl", "--output", "out.jsonl", "--concurrency", "0"],
        ["demo", "--concurrency", "many"],
    ],
    ids=["missing-body", "unknown-command", "zero-concurrency", "non-int-concurrency"],
)
async def test_usage_errors_exit_2(args: list[str], tmp_path: Path) -> None:
    ran = await run_cli("--region", REGION, *args, cwd=tmp_path)
    assert ran.code == 2, ran.err
    assert "usage:" in ran.err
    assert "Traceback" not in ran.err
    assert ran.stdout == b""


# -- invoke -------------------------------------------------------------------------------------


async def test_invoke_text_body_to_stdout(runtime: LocalRuntime) -> None:
    ran = await run_cli(
        *at(runtime),
        "invoke",
        "echo",
        "--body",
        "hello, world",
        "--content-type",
        "text/plain",
        "--accept",
        "application/json",
    )
    assert ran.code == 0, ran.err
    answer = {"body": "hello, world", "ct": "text/plain", "accept": "application/json"}
    assert ran.stdout == json.dumps(answer).encode() + b"\n"
    [invocation] = runtime.invocations("echo")
    assert invocation.body == b"hello, world"
    assert invocation.content_type == "text/plain"
    assert invocation.accept == "application/json"
    assert invocation.operation == "InvokeEndpoint"


async def test_invoke_fileb_body_to_output_file(runtime: LocalRuntime, tmp_path: Path) -> None:
    body = bytes(range(256)) * 40 + b"\r\n\x00 not utf-8: \xff\xfe"
    (tmp_path / "request.bin").write_bytes(body)
    answer = tmp_path / "answer.bin"
    ran = await run_cli(
        *at(runtime),
        "invoke",
        "raw",
        "--body",
        f"fileb://{tmp_path / 'request.bin'}",
        "--content-type",
        "application/x-custom",
        "--output",
        str(answer),
    )
    assert ran.code == 0, ran.err
    assert ran.stdout == b""  # the answer went to the file, byte for byte (no newline added)
    assert answer.read_bytes() == body
    [invocation] = runtime.invocations("raw")
    assert invocation.body == body
    assert invocation.content_type == "application/x-custom"


async def test_invoke_body_from_stdin(runtime: LocalRuntime) -> None:
    request = json.dumps({"inputs": "I love how fast and good this is"}).encode()
    ran = await run_cli(
        *at(runtime),
        "invoke",
        "sentiment",
        "--body",
        "-",
        "--content-type",
        "application/json",
        stdin=request,
    )
    assert ran.code == 0, ran.err
    assert json.loads(ran.stdout) == {"label": "POSITIVE", "score": 0.95}
    [invocation] = runtime.invocations("sentiment")
    assert invocation.body == request
    assert invocation.content_type == "application/json"


# -- invoke-stream ------------------------------------------------------------------------------


def story_parts() -> bytes:
    """What ``demo.generate`` streams: one JSON line per token of the story."""
    tokens = re.findall(r"\S+\s*", demo.STORY)
    return b"".join(json.dumps({"token": {"text": t}}).encode() + b"\n" for t in tokens)


async def test_invoke_stream_raw_parts(runtime: LocalRuntime) -> None:
    ran = await run_cli(
        *at(runtime), "invoke-stream", "storyteller", "--body", '{"inputs": "a story"}'
    )
    assert ran.code == 0, ran.err
    assert ran.stdout == story_parts() + b"\n"
    [invocation] = runtime.invocations("storyteller")
    assert invocation.operation == "InvokeEndpointWithResponseStream"
    assert invocation.body == b'{"inputs": "a story"}'


async def test_invoke_stream_lines(runtime: LocalRuntime) -> None:
    ran = await run_cli(
        *at(runtime),
        "invoke-stream",
        "storyteller",
        "--body",
        "{}",
        "--lines",
        "--content-type",
        "application/json",
        "--accept",
        "application/jsonlines",
    )
    assert ran.code == 0, ran.err
    lines = ran.stdout.decode().split("\n")
    assert lines[-1] == ""  # every line ends with a newline
    tokens = [json.loads(line)["token"]["text"] for line in lines[:-1]]
    assert "".join(tokens) == demo.STORY
    assert len(tokens) == len(demo.STORY.split())
    [invocation] = runtime.invocations("storyteller")
    assert (invocation.content_type, invocation.accept) == (
        "application/json",
        "application/jsonlines",
    )


# -- invoke-async -------------------------------------------------------------------------------


def locations(stderr: str) -> dict[str, str]:
    found = dict(re.findall(r"^(\w+):\s+(\S+)$", stderr, re.MULTILINE))
    assert {"inference_id", "output_location", "failure_location"} <= set(found), stderr
    return found


async def test_invoke_async_wait_prints_result(runtime: LocalRuntime) -> None:
    text = "Async inference queues the request and writes the answer to S3"
    ran = await run_cli(
        *at(runtime, s3=True),
        "invoke-async",
        "summarizer",
        "--body",
        json.dumps({"inputs": text}),
        "--content-type",
        "application/json",
        "--wait",
        "--poll-interval",
        "0.05",
        "--timeout",
        "15",
    )
    assert ran.code == 0, ran.err
    assert json.loads(ran.stdout) == {"words": len(text.split()), "summary": text[:40] + "..."}
    found = locations(ran.err)
    assert runtime.get_location(found["output_location"]) == ran.stdout.rstrip(b"\n")
    [invocation] = runtime.invocations("summarizer")
    assert invocation.operation == "InvokeEndpointAsync"
    assert invocation.inference_id == found["inference_id"]


async def test_invoke_async_without_wait_prints_locations(runtime: LocalRuntime) -> None:
    ran = await run_cli(
        *at(runtime, s3=True),
        "invoke-async",
        "summarizer",
        "--body",
        '{"inputs": "one two three"}',
        "--inference-id",
        "cli-test-1",
    )
    assert ran.code == 0, ran.err
    assert ran.stdout == b""
    found = locations(ran.err)
    assert found["inference_id"] == "cli-test-1"
    assert found["output_location"].startswith("s3://")
    assert found["failure_location"].startswith("s3://")
    # The CLI returned at once; the inference still runs and writes where the CLI said it would.
    await runtime.wait_async_idle(STEP)
    output = runtime.get_location(found["output_location"])
    assert output is not None
    assert json.loads(output)["words"] == 3


# -- errors -------------------------------------------------------------------------------------


async def test_unknown_endpoint_is_one_error_line(runtime: LocalRuntime) -> None:
    ran = await run_cli(*at(runtime), "invoke", "no-such-endpoint", "--body", "x")
    line = error_line(ran)
    assert "ValidationError" in line
    assert "no-such-endpoint" in line
    assert REQUEST_ID.search(line), line
    assert ran.stdout == b""


async def test_bad_argument_is_one_param_validation_line(runtime: LocalRuntime) -> None:
    ran = await run_cli(*at(runtime), "invoke", "bad name", "--body", "x")
    line = error_line(ran)
    assert line.startswith("error: ParamValidationError")
    assert "endpoint_name" in line
    assert runtime.invocations() == []
    assert runtime.call_count("bad name") == 0  # refused before sending


async def test_multi_line_model_error_is_still_one_line(runtime: LocalRuntime) -> None:
    def broken(invocation: Invocation) -> bytes:
        raise ContainerError(500, "first line\nTraceback (most recent call last):\n  File x")

    runtime.add_endpoint("broken", broken)
    ran = await run_cli(*at(runtime), "invoke", "broken", "--body", "x")
    assert ran.code == 1
    lines = ran.err.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: ModelError (HTTP 424)")
    assert "first line Traceback (most recent call last): File x" in lines[0]
    assert REQUEST_ID.search(lines[0]), lines[0]


async def test_connection_refused_is_one_error_line(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ran = await run_cli(
        "--region",
        REGION,
        "--endpoint-url",
        f"http://127.0.0.1:{port}",
        "invoke",
        "e",
        "--body",
        "x",
    )
    assert "EndpointConnectionError" in error_line(ran)


# -- batch --------------------------------------------------------------------------------------


def batch_args(
    runtime: LocalRuntime, name: str, source: Path, results: Path, *more: str
) -> list[str]:
    return [
        *at(runtime),
        "batch",
        name,
        "--input",
        str(source),
        "--output",
        str(results),
        "--no-progress",
        *more,
    ]


async def test_batch_one_record_per_line(runtime: LocalRuntime, tmp_path: Path) -> None:
    model = Flaky(failing=set())
    runtime.add_endpoint("flaky", model, content_type="application/json")
    source, results = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_numbered_input(source, 200)
    ran = await run_cli(*batch_args(runtime, "flaky", source, results, "--concurrency", "16"))
    assert ran.code == 0, ran.err
    records = by_line(read_records(results))
    assert sorted(records) == list(range(1, 201))
    for line, record in records.items():
        assert record["status"] == "ok", record
        assert record["output"] == {"n": line, "double": 2 * line}
        assert isinstance(record["request_id"], str) and record["request_id"]
        assert record["retries"] == 0
    assert sorted(called_with(runtime, "flaky")) == list(range(1, 201))
    assert 1 < model.max_in_flight <= 16  # concurrent, and never more than --concurrency
    assert re.search(r"succeeded\s+200\b", ran.err), ran.err
    assert re.search(r"failed\s+0\b", ran.err), ran.err


async def test_batch_failures_recorded_then_resume_retries_only_them(
    runtime: LocalRuntime, tmp_path: Path
) -> None:
    failing = {n for n in range(1, 201) if n % 9 == 4}
    model = Flaky(failing=set(failing))
    runtime.add_endpoint("flaky", model, content_type="application/json")
    source, results = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_numbered_input(source, 200)
    args = batch_args(runtime, "flaky", source, results, "--concurrency", "16")

    first = await run_cli(*args)
    assert first.code == 1, first.err
    assert "Traceback" not in first.err
    assert re.search(rf"failed\s+{len(failing)}\b", first.err), first.err
    records = by_line(read_records(results))
    assert sorted(records) == list(range(1, 201))
    for line, record in records.items():
        if line in failing:
            assert record["status"] == "error", record
            error = record["error"]
            assert error["type"] == "ModelError"
            assert error["code"] == "ModelError"
            assert error["status_code"] == 424
            assert f"cannot do line {line}" in error["message"]
            assert isinstance(error["request_id"], str) and error["request_id"]
        else:
            assert record["status"] == "ok", record
            assert record["output"] == {"n": line, "double": 2 * line}

    # The model is fixed; the re-run calls it only for the lines that failed.
    model.failing.clear()
    runtime.clear_invocations()
    second = await run_cli(*args)
    assert second.code == 0, second.err
    assert sorted(called_with(runtime, "flaky")) == sorted(failing)
    assert re.search(rf"\({200 - len(failing)} already done\)", second.err), second.err
    records = by_line(read_records(results))
    assert sorted(records) == list(range(1, 201))
    assert all(record["status"] == "ok" for record in records.values())
    assert all(record["output"]["double"] == 2 * line for line, record in records.items())

    # A third run has nothing left to do.
    runtime.clear_invocations()
    third = await run_cli(*args)
    assert third.code == 0, third.err
    assert runtime.invocations("flaky") == []
    assert len(read_records(results)) == 200


async def test_batch_resume_drops_a_torn_last_line(runtime: LocalRuntime, tmp_path: Path) -> None:
    source, results = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_numbered_input(source, 30)
    args = batch_args(runtime, "double", source, results, "--concurrency", "4")
    assert (await run_cli(*args)).code == 0
    # As if killed while writing the last record: keep only the first half of it.
    lines = results.read_bytes().splitlines(keepends=True)
    torn = json.loads(lines[-1])["line"]
    results.write_bytes(b"".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2])
    runtime.clear_invocations()

    ran = await run_cli(*args)
    assert ran.code == 0, ran.err
    assert called_with(runtime, "double") == [torn]  # only the torn line runs again
    records = by_line(read_records(results))  # and the half record is gone
    assert sorted(records) == list(range(1, 31))
    assert all(record["status"] == "ok" for record in records.values())


async def test_batch_skips_blank_lines_and_keeps_line_numbers(
    runtime: LocalRuntime, tmp_path: Path
) -> None:
    source, results = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_bytes(b'{"n": 1}\n\n{"n": 3}\r\n   \n\t\r\n{"n": 6}\n\n{"n": 8}')
    ran = await run_cli(*batch_args(runtime, "double", source, results))
    assert ran.code == 0, ran.err
    records = by_line(read_records(results))
    assert sorted(records) == [1, 3, 6, 8]
    assert all(
        record["output"] == {"n": line, "double": 2 * line} for line, record in records.items()
    )
    assert sorted(called_with(runtime, "double")) == [1, 3, 6, 8]
    assert runtime.call_count("double") == 4


async def test_batch_oversized_line_is_recorded_not_fatal(
    runtime: LocalRuntime, tmp_path: Path
) -> None:
    source, results = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    big = json.dumps({"n": 2, "pad": "x" * (6 * 1024 * 1024)})
    source.write_text(f'{{"n": 1}}\n{big}\n{{"n": 3}}\n')
    ran = await run_cli(*batch_args(runtime, "double", source, results, "--concurrency", "1"))
    assert ran.code == 1, ran.err
    assert "Traceback" not in ran.err
    records = by_line(read_records(results))
    assert sorted(records) == [1, 2, 3]
    assert records[1]["status"] == records[3]["status"] == "ok"
    assert records[2]["status"] == "error"
    assert records[2]["error"]["type"] == "ParamValidationError"
    assert sorted(called_with(runtime, "double")) == [1, 3]


async def test_batch_refuses_output_that_is_the_input(
    runtime: LocalRuntime, tmp_path: Path
) -> None:
    source = tmp_path / "in.jsonl"
    write_numbered_input(source, 5)
    before = source.read_bytes()
    ran = await run_cli(*batch_args(runtime, "double", source, source))
    assert "--output must not be the --input file" in error_line(ran)
    assert source.read_bytes() == before
    assert runtime.invocations() == []


async def test_batch_ctrl_c_keeps_finished_lines_and_resumes(
    runtime: LocalRuntime, tmp_path: Path
) -> None:
    total = 2000
    runtime.set_latency("double", 0.05)
    source, results = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_numbered_input(source, total)
    process = await asyncio.create_subprocess_exec(
        *cli_argv(
            *at(runtime), "batch", "double", "--input", str(source), "--output", str(results)
        ),
        *("--concurrency", "8"),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=cli_env(),
        preexec_fn=default_sigint,
    )
    try:
        deadline = time.monotonic() + STEP
        while not results.exists() or results.read_bytes().count(b"\n") < 20:
            assert process.returncode is None, "the batch ended before it was interrupted"
            assert time.monotonic() < deadline, "no 20 records within the time limit"
            await asyncio.sleep(0.02)
        process.send_signal(signal.SIGINT)
        snapshot = results.read_bytes()
        stdout, stderr = await asyncio.wait_for(process.communicate(), STEP)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    err = stderr.decode("utf-8", "replace")
    assert process.returncode == 130, err
    assert "Traceback" not in err
    assert err.rstrip().splitlines()[-1] == "interrupted"
    assert stdout == b""

    finished = results.read_bytes()
    snapshot = snapshot[: snapshot.rfind(b"\n") + 1]  # whole records seen before the signal
    assert finished.startswith(snapshot)  # every one of them is still there
    records = by_line(read_records(results))  # every line is whole, valid JSON
    assert 20 <= len(records) < total
    assert all(record["status"] == "ok" for record in records.values())
    done_before = set(records)

    runtime.clear_invocations()
    ran = await run_cli(
        *batch_args(runtime, "double", source, results, "--concurrency", "100"), timeout=40
    )
    assert ran.code == 0, ran.err
    again = called_with(runtime, "double")
    assert not done_before & set(again)  # finished lines are not called again
    assert sorted(again) == sorted(set(range(1, total + 1)) - done_before)
    records = by_line(read_records(results))
    assert sorted(records) == list(range(1, total + 1))
    assert all(record["status"] == "ok" for record in records.values())
    assert all(record["output"]["double"] == 2 * line for line, record in records.items())


# -- serve-local ------------------------------------------------------------------------------

HANDLER_MODULE = """
import json


def handler(invocation):
    return json.dumps({"got": invocation.text(), "ct": invocation.content_type})
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def wait_listening(port: int, process: asyncio.subprocess.Process) -> None:
    deadline = time.monotonic() + STEP
    while True:
        assert process.returncode is None, "serve-local exited early"
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            assert time.monotonic() < deadline, f"nothing listens on port {port}"
            await asyncio.sleep(0.05)
        else:
            writer.close()
            await writer.wait_closed()
            return


@pytest.mark.parametrize("form", ["module", "file"])
async def test_serve_local_runs_a_users_handler(tmp_path: Path, form: str) -> None:
    (tmp_path / "cli_test_handlers.py").write_text(HANDLER_MODULE)
    spec = (
        "cli_test_handlers:handler"
        if form == "module"
        else f"{tmp_path / 'cli_test_handlers.py'}:handler"
    )
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        *cli_argv("serve-local", spec, "--name", "m", "--port", str(port)),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=cli_env(),
        cwd=tmp_path if form == "module" else ROOT,
        preexec_fn=default_sigint,
    )
    try:
        await wait_listening(port, process)
        async with SageMakerRuntimeClient(
            REGION,
            endpoint_url=f"http://127.0.0.1:{port}",
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        ) as client:
            result = await client.invoke_endpoint(
                endpoint_name="m", body="hi there", content_type="text/plain"
            )
            assert json.loads(result.body) == {"got": "hi there", "ct": "text/plain"}
            with pytest.raises(ValidationError):  # only the --name endpoint is served
                await client.invoke_endpoint(endpoint_name="local", body="x")
        process.send_signal(signal.SIGINT)
        _, stderr = await asyncio.wait_for(process.communicate(), STEP)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    err = stderr.decode()
    assert process.returncode == 130, err
    assert "Traceback" not in err
    assert f"serving endpoint 'm' at http://127.0.0.1:{port}" in err
    assert f"--region {REGION} --endpoint-url http://127.0.0.1:{port} invoke m" in err
    with pytest.raises(OSError):  # and it stopped listening
        await asyncio.open_connection("127.0.0.1", port)


# -- demo ---------------------------------------------------------------------------------------


def squash(text: str) -> str:
    return " ".join(text.split())


async def test_demo_runs_in_under_20_seconds() -> None:
    started = time.monotonic()
    ran = await run_cli("demo", timeout=60)
    elapsed = time.monotonic() - started
    out = ran.stdout.decode()
    assert ran.code == 0, ran.err + out
    assert elapsed < 20, f"the demo took {elapsed:.1f} s"
    assert "Traceback" not in ran.err
    sections = [
        "1. invoke_endpoint: one request, one answer",
        "2. invoke_endpoint_with_response_stream: tokens as they are generated",
        "3. invoke_endpoint_async, then wait_for_async_result",
        "4. batch: 1000 calls at concurrency 64",
    ]
    positions = [out.find(section) for section in sections]
    assert -1 not in positions, out
    assert positions == sorted(positions)  # in order
    assert '"label": "POSITIVE"' in out
    assert squash(demo.STORY) in squash(out)  # the stream, re-wrapped to the terminal
    assert re.search(r"^\s+result\s+\{\"words\": \d+", out, re.MULTILINE), out
    summary = out[positions[-1] :]
    assert re.search(r"^\s+calls\s+1000$", summary, re.MULTILINE), summary
    assert re.search(r"^\s+succeeded\s+1000$", summary, re.MULTILINE), summary
    assert re.search(r"^\s+failed\s+0$", summary, re.MULTILINE), summary
    retries = re.search(r"^\s+retries\s+(\d+)$", summary, re.MULTILINE)
    assert retries is not None and int(retries.group(1)) >= 40  # the 503s and the cold start
    assert re.search(r"^\s+latency p99\s+[\d.]+ ms$", summary, re.MULTILINE), summary
    assert re.search(r"^done in \d+\.\d s$", out, re.MULTILINE), out
