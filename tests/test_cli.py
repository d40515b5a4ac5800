"""The ``sagemaker-rt-aio`` command against a ``LocalRuntime`` on loopback.

Each test starts the runtime in its own event loop. The CLI runs in-process where that shows the
same thing (``main(argv)`` on a worker thread, with its own event loop and the standard streams
swapped for buffers; fast), and as a real process (``asyncio.create_subprocess_exec``) where the
test is about the process: signals, the exit status Python reports, the entry point. The runtime
checks SigV4 signatures against the dummy credentials the CLI gets from its environment, so every
call shows the CLI signed with the credentials it was given. Every wait is bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import io
import json
import os
import queue
import re
import signal
import socket
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import botocore.credentials
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sagemaker_rt_aio import (
    InvokeEndpointAsyncRequest,
    InvokeEndpointRequest,
    InvokeEndpointWithResponseStreamRequest,
    SageMakerRuntimeClient,
    ValidationError,
)
from sagemaker_rt_aio.cli import main
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


@pytest.fixture(autouse=True)
def cli_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The in-process CLI gets the environment a spawned one gets (``cli_env``)."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    for name, value in cli_env().items():
        if name.startswith("AWS_"):
            monkeypatch.setenv(name, value)


class _ThisThread(io.TextIOBase):
    """A standard stream for the CLI's thread only: what other threads write (the runtime's
    loggers, say) goes to the stream it replaced, not into the CLI's captured output."""

    def __init__(self, mine: io.TextIOWrapper, other: Any) -> None:
        self.mine, self.other, self.owner = mine, other, threading.get_ident()

    def _target(self) -> Any:
        # Once closed, the CLI's run is over: anything still holding this stream (a log handler,
        # a pooled thread that once was the CLI's) writes to the stream it replaced.
        mine = not self.closed and threading.get_ident() == self.owner
        return self.mine if mine else self.other

    def write(self, text: str) -> int:
        written: int = self._target().write(text)
        return written

    def flush(self) -> None:
        self._target().flush()

    def read(self, size: int | None = -1) -> str:
        text: str = self._target().read(size)
        return text

    def isatty(self) -> bool:
        return False

    @property
    def buffer(self) -> Any:
        return self._target().buffer


def _run_main(args: tuple[str, ...], stdin: bytes) -> Ran:
    out, err = io.BytesIO(), io.BytesIO()
    streams = (
        io.TextIOWrapper(io.BytesIO(stdin)),
        io.TextIOWrapper(out, write_through=True),
        io.TextIOWrapper(err, write_through=True),
    )
    saved = sys.stdin, sys.stdout, sys.stderr
    shared = [_ThisThread(mine, other) for mine, other in zip(streams, saved, strict=True)]
    sys.stdin, sys.stdout, sys.stderr = shared
    try:
        code = main(list(args))
    finally:
        sys.stdin, sys.stdout, sys.stderr = saved
        # Closed now, while the wrappers underneath are attached: otherwise the garbage collector
        # closes (and so flushes) them later, through a wrapper that has been detached.
        for stream in shared:
            stream.flush()
            stream.close()
        for stream in streams:
            stream.flush()
            stream.detach()  # closing the wrapper would close the buffer
    return Ran(code, out.getvalue(), err.getvalue())


async def run_cli(*args: str, stdin: bytes = b"", timeout: float = STEP) -> Ran:
    """``main(args)`` in this process, on a thread (the runtime keeps serving on this loop)."""
    try:
        return await asyncio.wait_for(asyncio.to_thread(_run_main, args, stdin), timeout)
    except asyncio.TimeoutError:
        raise AssertionError(f"the CLI did not finish within {timeout} s: {args}") from None


async def run_process(
    *args: str, stdin: bytes | None = None, cwd: Path | None = None, timeout: float = STEP
) -> Ran:
    """The CLI as a real process (``python -m sagemaker_rt_aio``)."""
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


def error_line(ran: Ran, code: int) -> str:
    """The CLI failed with exit ``code`` and exactly one ``error: ...`` line (no traceback)."""
    assert ran.code == code, ran.err
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


async def fast_story(invocation: Invocation) -> AsyncIterator[bytes]:
    """``demo.generate``'s stream (one JSON line per token), without its pauses between tokens."""
    for token in re.findall(r"\S+\s*", demo.STORY):
        await asyncio.sleep(0)
        yield json.dumps({"token": {"text": token}}).encode() + b"\n"


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
        local.add_endpoint("storyteller", fast_story, content_type="application/jsonlines")
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


def test_help_documents_exit_codes_and_global_options() -> None:
    parser = build_parser()
    texts = [parser.format_help()]
    subparsers = next(action for action in parser._actions if action.dest == "command")
    assert subparsers.choices is not None
    texts += [sub.format_help() for sub in subparsers.choices.values()]
    for text in texts:
        for code in ("252", "253", "254", "255", "130"):
            assert re.search(rf"^\s+{code}\s+\w", text, re.MULTILINE), (code, text)
        for option in ("--region", "--profile", "--endpoint-url", "--debug", "--ca-bundle"):
            assert option in text
        for option in ("--no-verify-ssl", "--cli-read-timeout", "--cli-connect-timeout"):
            assert option in text


async def test_version() -> None:
    from sagemaker_rt_aio import __version__

    ran = await run_cli("--version")
    assert ran.code == 0, ran.err
    assert ran.stdout.decode().startswith(f"sagemaker-rt-aio/{__version__} Python/")
    after = await run_cli("invoke", "--version")  # a global option: after the command too
    assert after.stdout == ran.stdout


def usage_table(tmp: Path) -> list[tuple[list[str], int, str]]:
    """Bad command lines: (arguments after the global options, exit code, text of the one line)."""
    body = ["--body", "x"]
    (tmp / "in.jsonl").write_text('{"n": 1}\n')
    (tmp / "cli_table_handlers.py").write_text("not_callable = 3\n")
    (tmp / "raising.py").write_text("raise RuntimeError('at import\\nsecond line')\n")
    (tmp / "importing.py").write_text("import no_such_dep_xyz\n")
    batch = ["batch", "double", "--input", str(tmp / "in.jsonl"), "--output", str(tmp / "o")]
    return [
        ([], 252, "required: COMMAND"),
        (["no-such-command"], 252, "invalid choice: 'no-such-command'"),
        (["invoke", "echo"], 252, "required: --body"),
        (["invoke", *body], 252, "an endpoint name is required"),
        (["invoke", "echo", "--endpoint-name", "double", *body], 252, "two endpoints given"),
        (["invoke", "echo", *body, "--no-such-flag"], 252, "unrecognized arguments"),
        (["invoke", *body, "--endpoint-n", "echo"], 252, "unrecognized"),  # no abbreviations
        (["invoke", "echo", "--body", f"file://{tmp}/missing"], 252, "--body: cannot read"),
        (["invoke", "echo", "--body", f"fileb://{tmp}"], 252, "--body: cannot read"),
        (["invoke", "echo", *body, "-o", str(tmp)], 252, "is a directory"),
        (["invoke", "echo", *body, "-o", f"{tmp}/no/such"], 252, "no such directory"),
        (["invoke", "bad name", *body], 252, "ParamValidationError"),
        (["invoke", "echo", *body, "--inference-id", "i" * 65], 252, "inference_id"),
        (["invoke", "echo", *body, "--content-type", "a\nb"], 252, "content_type"),
        (["invoke-async", "echo"], 252, "exactly one of --body and --input-location"),
        (
            ["invoke-async", "echo", *body, "--input-location", "s3://b/k"],
            252,
            "exactly one of --body and --input-location",
        ),
        (["invoke-async", "echo", *body, "--timeout", "0"], 252, "more than 0 seconds"),
        (["invoke-async", "echo", *body, "--poll-interval", "nan"], 252, "--poll-interval"),
        (["invoke-async", "echo", *body, "--request-ttl-seconds", "soon"], 252, "invalid int"),
        (["invoke-async", "echo", *body, "--request-ttl-seconds", "1"], 252, "request_ttl"),
        (["invoke", "echo", *body, "--cli-read-timeout", "-1"], 252, "--cli-read-timeout"),
        (["invoke", "echo", *body, "--cli-connect-timeout", "inf"], 252, "--cli-connect-tim"),
        (["--ca-bundle", f"{tmp}/none.pem", "invoke", "echo", *body], 252, "--ca-bundle"),
        (
            ["invoke", "echo", *body, "--ca-bundle", str(tmp / "in.jsonl"), "--no-verify-ssl"],
            252,
            "cannot be used together",
        ),
        (["--endpoint-url", "ftp://x", "invoke", "echo", *body], 252, "endpoint_url"),
        (["batch", "double", "--input", f"{tmp}/none", "--output", "o"], 252, "--input"),
        ([*batch, "--concurrency", "0"], 252, "at least 1"),
        ([*batch, "--output", str(tmp / "in.jsonl")], 252, "must not be the --input file"),
        ([*batch, "--output", "-"], 252, "a batch needs a file"),
        (["demo", "--concurrency", "many"], 252, "invalid int value: 'many'"),
        (["demo", "--calls", "-1"], 252, "must be 0 or more"),
        (["serve-local", "nocolon"], 252, "module:function"),
        (["serve-local", "no_such_module_for_cli_tests:h"], 252, "no module named"),
        (["serve-local", f"{tmp}/none.py:h"], 252, "no such file"),
        (["serve-local", "json:no_such_attribute"], 252, "has no attribute"),
        (["serve-local", "json:loads", "--port", "70000"], 252, "port number"),
        (["serve-local", f"{tmp}/cli_table_handlers.py:not_callable"], 252, "is not callable"),
        (["serve-local", f"{tmp}/raising.py:h"], 255, "importing raising failed: RuntimeError"),
        (["serve-local", f"{tmp}/importing.py:h"], 255, "No module named 'no_such_dep_xyz'"),
        (["--profile", "no-such-profile", "invoke", "echo", *body], 253, "profile"),
    ]


async def test_every_bad_command_line_is_one_line_and_an_exit_code(
    runtime: LocalRuntime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A table of bad argument combinations: each ends with one ``error:`` line on stderr and the
    AWS CLI's exit code, nothing on stdout, and nothing sent."""
    monkeypatch.setattr(sys, "path", list(sys.path))  # serve-local adds the handler's folder
    monkeypatch.delitem(sys.modules, "cli_table_handlers", raising=False)
    table = usage_table(tmp_path)
    for args, code, text in table:
        ran = await run_cli(*at(runtime), *args)
        line = error_line(ran, code)
        assert text in line, (args, line)
        assert ran.stdout == b"", args
    assert runtime.invocations() == []


@pytest.fixture(scope="module")
def threaded_runtime() -> Iterator[LocalRuntime]:
    """A runtime serving from a thread of its own, for tests that call ``main`` synchronously."""
    started: queue.Queue[tuple[LocalRuntime, asyncio.Event] | BaseException] = queue.Queue()
    loop = asyncio.new_event_loop()

    async def serve() -> None:
        credentials = botocore.credentials.Credentials(ACCESS_KEY, SECRET_KEY)
        try:
            async with LocalRuntime(credentials=credentials, region=REGION) as local:
                local.add_endpoint("echo", echo, content_type="application/json")
                local.add_endpoint("stream", fast_story, content_type="application/jsonlines")
                stop = asyncio.Event()
                started.put((local, stop))
                await stop.wait()
        except BaseException as error:
            started.put(error)
            raise

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    ready = started.get(timeout=STEP)
    assert isinstance(ready, tuple), ready
    runtime, stop = ready
    try:
        yield runtime
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(STEP)
        assert not thread.is_alive()
        loop.close()


def command_lines(
    tmp: Path, url: str, refused: str
) -> st.SearchStrategy[tuple[str, list[str]]]:
    """(command, command line): good values mostly, bad ones often, options of the command and
    global options after it, global options before it, now and then an option that is not one.
    ``refused`` is a URL nothing answers on."""
    (tmp / "body.bin").write_bytes(b"\x00\xff body")
    (tmp / "in.jsonl").write_text('{"n": 1}\n\n{"n": 2}\n')
    (tmp / "folder").mkdir(exist_ok=True)

    def some(good: str | None, *bad: str) -> st.SearchStrategy[str] | None:
        # The good value twice as likely as all the bad ones together.
        return None if good is None else st.sampled_from([good] * max(2 * len(bad), 1) + list(bad))

    values: dict[str, st.SearchStrategy[str] | None] = {
        "--body": some("x", "", "-", f"fileb://{tmp}/body.bin", f"file://{tmp}/none", "\udcff"),
        "--content-type": some("text/plain", "a\nb", ""),
        "--accept": some("application/json", "\x7f"),
        "--custom-attributes": some("c=1", "\x01"),
        "--target-model": some("m.tar.gz", "x" * 1025),
        "--target-variant": some("v1", ""),
        "--target-container-hostname": some("box", " "),
        "--inference-id": some("i-1", "i" * 65),
        "--enable-explanations": some("`true`"),
        "--inference-component-name": some("comp", "bad name"),
        "--session-id": some("NEW_SESSION", "no-such-session"),
        "--prefix-aware-id": some("p", " p", "p" * 65),
        "--input-location": some("s3://b/k", "not-s3"),
        "--request-ttl-seconds": some("120", "0", "x"),
        "--invocation-timeout-seconds": some("30", "-1"),
        "--s3-output-path-extension": some("out"),
        "--filename": some("f.json"),
        "--wait": None,
        "--timeout": some("2", "0", "nan"),
        "--poll-interval": some("0.02", "-1"),
        "--lines": None,
        "--output": some(f"{tmp}/out", "-", f"{tmp}/folder", f"{tmp}/none/x"),
        "--input": some(f"{tmp}/in.jsonl", f"{tmp}/none"),
        "--concurrency": some("2", "0", "x"),
        "--retry-unknown": None,
        "--no-progress": None,
        "--endpoint-name": some("echo", "other"),
        "--region": some(REGION, "", "us east"),
        "--profile": some("no-such-profile"),
        "--cli-read-timeout": some("5", "0", "-1", "x"),
        "--cli-connect-timeout": some("5", "inf"),
        "--no-verify-ssl": None,
        "--ca-bundle": some(f"{tmp}/body.bin", f"{tmp}/none.pem"),
        "--allow-http": None,
        "--endpoint-url": some(url, "ftp://x", "http://example.invalid", refused),
        "--no-such-option": None,
    }
    global_options = ["--region", "--profile", "--cli-read-timeout", "--cli-connect-timeout",
                      "--no-verify-ssl", "--ca-bundle", "--allow-http", "--endpoint-url"]
    request = ["--content-type", "--accept", "--custom-attributes", "--inference-id",
               "--endpoint-name"]
    command_options = {
        "invoke": [*request, "--body", "--target-model", "--target-variant", "--session-id",
                   "--target-container-hostname", "--enable-explanations", "--prefix-aware-id",
                   "--inference-component-name", "--output"],
        "invoke-stream": [*request, "--body", "--target-variant", "--lines", "--prefix-aware-id",
                          "--target-container-hostname", "--inference-component-name"],
        "invoke-async": [*request, "--body", "--input-location", "--request-ttl-seconds",
                         "--invocation-timeout-seconds", "--s3-output-path-extension",
                         "--filename", "--wait", "--timeout", "--poll-interval"],
        "batch": [*request, "--input", "--output", "--concurrency", "--retry-unknown",
                  "--no-progress", "--target-variant"],
    }  # fmt: skip

    def option(name: str) -> st.SearchStrategy[list[str]]:
        value = values[name]
        return st.just([name]) if value is None else value.map(lambda v: [name, v])

    def some_of(names: list[str], size: int) -> st.SearchStrategy[list[str]]:
        odd = ["--no-such-option"] if size > 3 else []
        chosen = st.lists(st.sampled_from(names + odd).flatmap(option), max_size=size)
        return chosen.map(lambda parts: [word for part in parts for word in part])

    def line(command: str) -> st.SearchStrategy[tuple[str, list[str]]]:
        required = {
            "invoke": ["--body", "x"],
            "invoke-stream": ["--body", "x"],
            "invoke-async": ["--body", "x", "--wait", "--poll-interval", "0.02"],
            "batch": ["--input", f"{tmp}/in.jsonl", "--output", f"{tmp}/out.jsonl"],
        }[command]
        base = ["--region", REGION, "--endpoint-url", url, "--s3-endpoint-url", url]
        return st.tuples(
            some_of(global_options, 2),
            st.sampled_from([["echo"], ["echo"], ["no-such"], []]),
            st.sampled_from([required, required, []]),
            some_of(command_options[command] + global_options, 4),
        ).map(
            lambda parts: (command, [*base, *parts[0], command, *parts[1], *parts[2], *parts[3]])
        )

    return st.sampled_from(sorted(command_options)).flatmap(line)


@pytest.mark.filterwarnings("ignore:mypy_extensions.TypedDict is deprecated:DeprecationWarning")
def test_no_command_line_ends_in_a_traceback(
    threaded_runtime: LocalRuntime, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Random command lines (good and bad values of every option, before and after the command):
    whatever happens, an exit code of the table and, on failure, one ``error:`` line last."""
    tmp = tmp_path_factory.mktemp("fuzz")
    codes: set[int] = set()
    closed = socket.socket()  # bound, never listening: connections to it are refused
    closed.bind(("127.0.0.1", 0))
    refused = f"http://127.0.0.1:{closed.getsockname()[1]}"

    @settings(
        max_examples=60,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(command_lines(tmp, threaded_runtime.url, refused))
    def check(example: tuple[str, list[str]]) -> None:
        command, argv = example
        ran = _run_main(tuple(argv), b"stdin body")
        codes.add(ran.code)
        assert ran.code in (0, 1, 252, 253, 254, 255), (argv, ran)
        assert "Traceback" not in ran.err, (argv, ran.err)
        if ran.code != 0:
            lines = ran.err.splitlines()
            assert (lines and lines[-1].startswith("error: ")) or ran.code == 1, (argv, ran.err)
            assert sum(line.startswith("error: ") for line in lines) <= 1, (argv, ran.err)
            if ran.code >= 252 and command in ("invoke", "invoke-stream"):
                assert len(lines) == 1, (argv, ran.err)

    with closed:
        check()
    # The lines got past the parser: successes, usage errors, and failures further on.
    assert {0, 252} <= codes and codes & {253, 254, 255}, codes


async def test_serve_local_on_a_busy_port_is_one_line() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        ran = await run_cli("serve-local", "json:loads", "--port", str(port))
    assert f"error: cannot serve on 127.0.0.1:{port}: " in error_line(ran, 255)


async def test_no_region_no_credentials_broken_config_are_configuration_errors(
    runtime: LocalRuntime, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ran = await run_cli("--endpoint-url", runtime.url, "invoke", "echo", "--body", "x")
    assert "NoRegionError" in error_line(ran, 253)
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    ran = await run_cli(*at(runtime), "invoke", "echo", "--body", "x")
    assert "NoCredentialsError" in error_line(ran, 253)
    broken = tmp_path / "config"
    broken.write_text("[default\nregion = us-east-1\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(broken))
    ran = await run_cli(*at(runtime), "invoke", "echo", "--body", "x")
    assert "Unable to parse config file" in error_line(ran, 253)
    assert runtime.invocations() == []


async def test_exit_codes_of_the_real_process(runtime: LocalRuntime, tmp_path: Path) -> None:
    usage = await run_process("invoke", "echo", "--body", "x", "--bod", "y")
    assert error_line(usage, 252).startswith("error: unrecognized arguments: --bod y")
    service = await run_process(*at(runtime), "invoke", "no-such-endpoint", "--body", "x")
    assert "ValidationError (HTTP 400)" in error_line(service, 254)


# -- global options -------------------------------------------------------------------------------


async def test_global_options_after_the_command(runtime: LocalRuntime) -> None:
    ran = await run_cli(
        "invoke", "echo", "--body", "hi", "--region", REGION, "--endpoint-url", runtime.url
    )
    assert ran.code == 0, ran.err
    assert json.loads(ran.stdout)["body"] == "hi"
    # Given on both sides, the one after the command wins (the runtime checks the signature's
    # region, so a call signed for the first would be refused).
    ran = await run_cli(
        "--region", "eu-west-3", "--endpoint-url", "http://127.0.0.1:9", "invoke", "echo",
        "--body", "again", "--region", REGION, "--endpoint-url", runtime.url,
    )  # fmt: skip
    assert ran.code == 0, ran.err
    assert [inv.text() for inv in runtime.invocations("echo")] == ["hi", "again"]


async def test_endpoint_name_option(runtime: LocalRuntime) -> None:
    ran = await run_cli(*at(runtime), "invoke", "--endpoint-name", "echo", "--body", "named")
    assert ran.code == 0, ran.err
    assert runtime.invocations("echo")[0].body == b"named"


async def test_cli_timeouts(runtime: LocalRuntime) -> None:
    from sagemaker_rt_aio.cli._main import make_client
    from sagemaker_rt_aio.cli._options import NO_TIMEOUT

    parser = build_parser()
    args = parser.parse_args(["--region", REGION, "--cli-read-timeout", "0.25", "invoke", "e", "--body", "x"])
    client = make_client(args)
    assert (client.timeout.sock_read, client.timeout.sock_connect) == (0.25, 10.0)
    assert client.timeout.total is None
    args = parser.parse_args(["--region", REGION, "invoke", "e", "--body", "x", "--cli-connect-timeout", "0"])
    client = make_client(args)
    assert (client.timeout.sock_read, client.timeout.sock_connect) == (70.0, NO_TIMEOUT)
    assert NO_TIMEOUT > 365 * 24 * 3600

    runtime.set_latency("echo", 0.3)
    # 0 means no timeout (not an immediate one).
    ran = await run_cli(*at(runtime), "--cli-read-timeout", "0", "invoke", "echo", "--body", "x")
    assert ran.code == 0, ran.err
    # A read timeout is a transport error: 255, and never re-sent (the model may have run).
    ran = await run_cli(*at(runtime), "invoke", "echo", "--body", "x", "--cli-read-timeout", "0.05")
    assert "ReadTimeoutError" in error_line(ran, 255)
    assert runtime.call_count("echo") == 2


async def test_debug_logs_requests_with_secrets_redacted(
    runtime: LocalRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    ran = await run_cli(*at(runtime), "--debug", "invoke", "echo", "--body", "x")
    assert ran.code == 0, ran.err
    assert "DEBUG" in ran.err
    assert "/endpoints/echo/invocations" in ran.err  # the request, logged
    assert "Signature=<redacted>" in ran.err
    assert SECRET_KEY not in ran.err
    assert not re.search(r"Signature=[0-9a-f]{64}", ran.err)
    # Without --debug: not a word of it.
    quiet = await run_cli(*at(runtime), "invoke", "echo", "--body", "x")
    assert quiet.err == ""
    # --debug after the command, and an error: the traceback, then the one error line.
    failed = await run_cli(*at(runtime), "invoke", "nope", "--body", "x", "--debug")
    assert failed.code == 254
    assert "Traceback" in failed.err
    assert failed.err.rstrip().splitlines()[-1].startswith("error: ValidationError (HTTP 400)")
    assert SECRET_KEY not in failed.err
    # A session token is sent (signed) with every request, and never shown.
    token = "IQoJb3JpZ2luX2VjEJr-session-token-of-the-cli-test"
    monkeypatch.setenv("AWS_SESSION_TOKEN", token)
    refused = await run_cli(
        "--region", REGION, "--endpoint-url", f"http://127.0.0.1:{free_port()}", "--debug",
        "invoke", "echo", "--body", "x",
    )  # fmt: skip
    assert refused.code == 255
    assert "x-amz-security-token" in refused.err.lower()
    assert token not in refused.err
    assert SECRET_KEY not in refused.err


def test_debug_output_redacts_what_the_library_might_leak() -> None:
    from sagemaker_rt_aio.cli._options import redact

    line = (
        "headers={'Authorization': 'AWS4-HMAC-SHA256 Credential=AKID/x, SignedHeaders=host, "
        "Signature=" + "ab" * 32 + "', 'X-Amz-Security-Token': 'FQoGZXIvYXdzEJr//token'} "
        "Bearer sagemaker-api-key-abcdefgh12345678"
    )
    shown = redact(line)
    assert "ab" * 32 not in shown
    assert "FQoGZXIvYXdzEJr" not in shown
    assert "abcdefgh12345678" not in shown
    assert "Credential=AKID/x" in shown  # what is not secret stays readable


# -- TLS: --ca-bundle, --no-verify-ssl -------------------------------------------------------------

@pytest.fixture
async def tls_runtime(tmp_path: Path) -> AsyncIterator[tuple[LocalRuntime, Path]]:
    """The local runtime over HTTPS with a certificate from a CA of the test's own (trustme); the
    CA's bundle is written to ``ca.pem``."""
    import ssl

    import trustme

    authority = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1", "localhost").configure_cert(server)
    bundle = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(bundle))
    credentials = botocore.credentials.Credentials(ACCESS_KEY, SECRET_KEY)
    async with LocalRuntime(credentials=credentials, region=REGION, ssl_context=server) as local:
        local.add_endpoint("echo", echo, content_type="application/json")
        yield local, bundle


async def test_ca_bundle_and_no_verify_ssl(
    tls_runtime: tuple[LocalRuntime, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime, bundle = tls_runtime
    assert runtime.url.startswith("https://")
    call = [*at(runtime), "invoke", "echo", "--body", "x"]
    untrusted = await run_cli(*call)
    assert "certificate" in error_line(untrusted, 255).lower()
    assert runtime.invocations() == []
    trusted = await run_cli(*call, "--ca-bundle", str(bundle))  # after the command, too
    assert trusted.code == 0, trusted.err
    unverified = await run_cli("--no-verify-ssl", *call)
    assert unverified.code == 0, unverified.err
    monkeypatch.setenv("AWS_CA_BUNDLE", str(bundle))  # what boto3 honours, the CLI does too
    from_environment = await run_cli(*call)
    assert from_environment.code == 0, from_environment.err
    assert len(runtime.invocations("echo")) == 3


# -- a flag for every request member ---------------------------------------------------------------

def subcommand(name: str) -> argparse.ArgumentParser:
    subparsers = next(action for action in build_parser()._actions if action.dest == "command")
    assert subparsers.choices is not None
    parser: argparse.ArgumentParser = subparsers.choices[name]
    return parser


@pytest.mark.parametrize(
    ("command", "request_type"),
    [
        ("invoke", InvokeEndpointRequest),
        ("invoke-stream", InvokeEndpointWithResponseStreamRequest),
        ("invoke-async", InvokeEndpointAsyncRequest),
        ("batch", InvokeEndpointRequest),
    ],
)
def test_a_flag_for_every_request_member(command: str, request_type: type[Any]) -> None:
    flags = {
        option for action in subcommand(command)._actions for option in action.option_strings
    }
    members = {f.name for f in dataclasses.fields(request_type)} - {"endpoint_name", "body"}
    if request_type is not InvokeEndpointAsyncRequest:
        assert "prefix_aware_id" in members  # the newest model's member (issue 10)
    missing = {name for name in members if "--" + name.replace("_", "-") not in flags}
    assert not missing, f"{command} has no flag for {sorted(missing)}"
    assert {"--endpoint-name"} <= flags
    if command != "batch":
        assert "--body" in flags


def test_a_member_added_later_gets_its_flag() -> None:
    from sagemaker_rt_aio.cli._members import add_member_flags, member_values

    @dataclasses.dataclass
    class Future:
        endpoint_name: str
        body: bytes
        shiny_new_id: str | None = None
        max_tokens_seconds: int | None = None

    parser = argparse.ArgumentParser()
    add_member_flags(parser, Future)
    args = parser.parse_args(["--shiny-new-id", "7", "--max-tokens-seconds", "7"])
    assert member_values(args) == {"shiny_new_id": "7", "max_tokens_seconds": 7}
    assert member_values(parser.parse_args([])) == {}  # not given: not passed


async def test_invoke_sends_every_member(runtime: LocalRuntime) -> None:
    ran = await run_cli(
        *at(runtime), "invoke", "echo", "--body", "x",
        "--content-type", "text/plain", "--accept", "application/json",
        "--custom-attributes", "c=1", "--target-model", "m.tar.gz", "--target-variant", "v1",
        "--target-container-hostname", "box", "--inference-id", "inf-1",
        "--enable-explanations", "`true`", "--inference-component-name", "comp",
        "--session-id", "NEW_SESSION",
    )  # fmt: skip
    assert ran.code == 0, ran.err
    [invocation] = runtime.invocations("echo")
    assert (invocation.content_type, invocation.accept) == ("text/plain", "application/json")
    assert invocation.custom_attributes == "c=1"
    assert (invocation.target_model, invocation.target_variant) == ("m.tar.gz", "v1")
    assert invocation.target_container_hostname == "box"
    assert invocation.inference_id == "inf-1"
    assert invocation.enable_explanations == "`true`"
    assert invocation.inference_component_name == "comp"
    assert invocation.session_id == "NEW_SESSION"


async def test_invoke_stream_sends_every_member(runtime: LocalRuntime) -> None:
    ran = await run_cli(
        *at(runtime), "invoke-stream", "storyteller", "--body", "{}",
        "--custom-attributes", "c=2", "--target-variant", "v2",
        "--target-container-hostname", "box2", "--inference-id", "inf-2",
        "--inference-component", "comp2",  # the earlier name of --inference-component-name
    )  # fmt: skip
    assert ran.code == 0, ran.err
    [invocation] = runtime.invocations("storyteller")
    assert invocation.custom_attributes == "c=2"
    assert invocation.target_variant == "v2"
    assert invocation.target_container_hostname == "box2"
    assert invocation.inference_id == "inf-2"
    assert invocation.inference_component_name == "comp2"


async def test_invoke_async_sends_every_member(runtime: LocalRuntime) -> None:
    ran = await run_cli(
        *at(runtime, s3=True), "invoke-async", "--endpoint-name", "summarizer",
        "--body", '{"inputs": "a b"}', "--custom-attributes", "c=3", "--inference-id", "inf-3",
        "--request-ttl-seconds", "120", "--invocation-timeout-seconds", "30",
        "--s3-output-path-extension", "outputs", "--filename", "answer.json",
    )  # fmt: skip
    assert ran.code == 0, ran.err
    found = locations(ran.err)
    assert found["inference_id"] == "inf-3"
    assert found["output_location"].endswith("/outputs/answer.json")
    await runtime.wait_async_idle(STEP)
    [invocation] = runtime.invocations("summarizer")
    headers = invocation.headers
    assert headers["X-Amzn-SageMaker-RequestTTLSeconds"] == "120"
    assert headers["X-Amzn-SageMaker-InvocationTimeoutSeconds"] == "30"
    assert invocation.custom_attributes == "c=3"


@pytest.mark.parametrize("command", ["invoke", "invoke-stream"])
async def test_prefix_aware_id(runtime: LocalRuntime, command: str) -> None:
    ran = await run_cli(
        *at(runtime), command, "storyteller", "--body", "{}", "--prefix-aware-id", "chat-42"
    )
    assert ran.code == 0, ran.err
    [invocation] = runtime.invocations("storyteller")
    assert invocation.headers["X-Amzn-SageMaker-Prefix-Aware-Id"] == "chat-42"
    too_long = await run_cli(
        *at(runtime), command, "storyteller", "--body", "{}", "--prefix-aware-id", "p" * 65
    )
    assert "prefix_aware_id" in error_line(too_long, 252)


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


async def test_invoke_stream_text(runtime: LocalRuntime) -> None:
    tgi = demo.CannedLLM("tgi", seed=2)
    runtime.add_endpoint("tgi", tgi)
    ran = await run_cli(*at(runtime), "invoke-stream", "tgi", "--body", "{}", "--text")
    assert ran.code == 0, ran.err
    assert ran.stdout == tgi.text.encode() + b"\n"  # decoded from TGI's SSE token events


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
    line = error_line(ran, 254)
    assert "ValidationError" in line
    assert "no-such-endpoint" in line
    assert REQUEST_ID.search(line), line
    assert ran.stdout == b""


async def test_bad_argument_is_one_param_validation_line(runtime: LocalRuntime) -> None:
    ran = await run_cli(*at(runtime), "invoke", "bad name", "--body", "x")
    line = error_line(ran, 252)
    assert line.startswith("error: ParamValidationError")
    assert "endpoint_name" in line
    assert runtime.invocations() == []
    assert runtime.call_count("bad name") == 0  # refused before sending


async def test_multi_line_model_error_is_still_one_line(runtime: LocalRuntime) -> None:
    def broken(invocation: Invocation) -> bytes:
        raise ContainerError(500, "first line\nTraceback (most recent call last):\n  File x")

    runtime.add_endpoint("broken", broken)
    ran = await run_cli(*at(runtime), "invoke", "broken", "--body", "x")
    assert ran.code == 254
    lines = ran.err.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: ModelError (HTTP 424)")
    assert "first line Traceback (most recent call last): File x" in lines[0]
    assert REQUEST_ID.search(lines[0]), lines[0]


class ClosedPipe(io.RawIOBase):
    """Standard output whose reader went away (``sagemaker-rt-aio ... | head -1``)."""

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        raise BrokenPipeError(32, "Broken pipe")


async def test_output_closed_early_is_one_line(runtime: LocalRuntime) -> None:
    def run() -> tuple[int, str]:
        err = io.StringIO()
        out = io.TextIOWrapper(io.BufferedWriter(ClosedPipe()), write_through=True)
        saved = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = out, err
        try:
            return main([*at(runtime), "invoke-stream", "storyteller", "--body", "{}"]), err.getvalue()
        finally:
            sys.stdout, sys.stderr = saved
            for _ in range(2):  # the first close fails flushing into the closed pipe
                with contextlib.suppress(BrokenPipeError):
                    out.close()
            assert out.closed

    code, err = await asyncio.to_thread(run)
    assert code == 255
    assert err == "error: the output was closed early (broken pipe)\n"


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
    assert "EndpointConnectionError" in error_line(ran, 255)


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
    assert "--output must not be the --input file" in error_line(ran, 252)
    assert source.read_bytes() == before
    assert runtime.invocations() == []


class Counted:
    """``double`` that counts how often it ran each line (a run is a paid inference), and holds
    the lines in ``held`` until ``gate`` is set (so a test knows what is in flight, without
    sleeping)."""

    def __init__(self, held: Any = lambda n: False) -> None:
        self.runs: dict[int, int] = {}
        self.gate = asyncio.Event()
        self.waiting: set[int] = set()
        self.held = held

    async def __call__(self, invocation: Invocation) -> str:
        n = invocation.json()["n"]
        self.runs[n] = self.runs.get(n, 0) + 1
        if self.held(n):
            self.waiting.add(n)
            try:
                await self.gate.wait()
            finally:
                self.waiting.discard(n)
        return json.dumps({"n": n, "double": 2 * n})

    async def until_waiting(self, count: int) -> None:
        deadline = time.monotonic() + STEP
        while len(self.waiting) < count:
            assert time.monotonic() < deadline, f"{self.waiting} in the model, not {count}"
            await asyncio.sleep(0.01)


async def test_batch_unknown_outcomes_are_recorded_and_not_sent_again(
    runtime: LocalRuntime, tmp_path: Path
) -> None:
    model = Counted(held=lambda n: n == 5)
    runtime.add_endpoint("counted", model, content_type="application/json")
    source, results = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_numbered_input(source, 8)
    args = batch_args(runtime, "counted", source, results, "--concurrency", "1")
    # Line 1: the connection drops after the request went out (the model did not run, but the
    # client cannot know). Line 5: no answer within the read timeout (the model ran).
    runtime.reset_connection_next("counted", 1)
    try:
        first = await run_cli(*args, "--cli-read-timeout", "0.5")
    finally:
        model.gate.set()
    assert first.code == 1, first.err
    assert re.search(r"unknown outcome\s+2\b", first.err), first.err
    records = by_line(read_records(results))
    assert sorted(records) == list(range(1, 9))
    assert records[1]["status"] == records[5]["status"] == "unknown"
    assert records[1]["error"]["type"] == "ConnectionClosedError"
    assert records[5]["error"]["type"] == "ReadTimeoutError"
    assert all(records[n]["status"] == "ok" for n in (2, 3, 4, 6, 7, 8))
    assert model.runs == dict.fromkeys(range(2, 9), 1)

    # Resumed: nothing is sent again, and the lines still without an answer say so.
    runtime.clear_invocations()
    second = await run_cli(*args)
    assert second.code == 1, second.err
    assert "(6 already done, 2 unknown, not re-sent)" in second.err
    assert runtime.invocations() == []
    assert by_line(read_records(results)) == records

    # Asked to, it sends them again: line 5 is then run twice, knowingly.
    third = await run_cli(*args, "--retry-unknown")
    assert third.code == 0, third.err
    assert sorted(called_with(runtime, "counted")) == [1, 5]
    records = by_line(read_records(results))
    assert all(record["status"] == "ok" for record in records.values())
    assert model.runs == {**dict.fromkeys(range(1, 9), 1), 5: 2}


def test_batch_outcome_of_each_error() -> None:
    from sagemaker_rt_aio import (
        ConnectionClosedError,
        EndpointConnectionError,
        EventStreamError,
        ModelError,
        NoCredentialsError,
        ParamValidationError,
        PoolTimeoutError,
        ReadTimeoutError,
    )
    from sagemaker_rt_aio.cli._batch import outcome_of

    # Nothing sent, or the service said the call failed: an error, sent again on resume.
    assert outcome_of(ModelError("boom", code="ModelError", status_code=424)) == "error"
    assert outcome_of(ParamValidationError("body", "too large")) == "error"
    assert outcome_of(EndpointConnectionError("refused")) == "error"
    assert outcome_of(PoolTimeoutError("no slot")) == "error"
    assert outcome_of(NoCredentialsError()) == "error"
    # Sent, and no usable answer: the model may have run.
    assert outcome_of(ReadTimeoutError("slow")) == "unknown"
    assert outcome_of(ConnectionClosedError("reset")) == "unknown"
    assert outcome_of(EventStreamError("garbled")) == "unknown"  # any other failure after sending


async def start_batch(runtime: LocalRuntime, *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *cli_argv(*at(runtime), "batch", *args),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=cli_env(),
        preexec_fn=default_sigint,
    )


async def read_until(process: asyncio.subprocess.Process, text: str) -> str:
    """Standard error up to the line holding ``text``."""
    assert process.stderr is not None
    seen = ""
    while text not in seen:
        line = await asyncio.wait_for(process.stderr.readline(), STEP)
        assert line, f"the process ended before saying {text!r}: {seen}"
        seen += line.decode()
    return seen


async def test_batch_first_ctrl_c_finishes_calls_in_flight_and_no_line_runs_twice(
    runtime: LocalRuntime, tmp_path: Path
) -> None:
    total, concurrency = 200, 8
    model = Counted(held=lambda n: n > 20)  # 1-20 answer at once, then 8 calls stay in flight
    runtime.add_endpoint("counted", model, content_type="application/json")
    source, results = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_numbered_input(source, total)
    process = await start_batch(
        runtime, "counted", "--input", str(source), "--output", str(results),
        "--concurrency", str(concurrency), "--no-progress",
    )  # fmt: skip
    try:
        await model.until_waiting(concurrency)
        in_flight = set(model.waiting)
        process.send_signal(signal.SIGINT)
        await read_until(process, "starting nothing new")
        model.gate.set()  # the calls in flight now finish, and are recorded
        stdout, stderr = await asyncio.wait_for(process.communicate(), STEP)
    finally:
        model.gate.set()
        if process.returncode is None:
            process.kill()
            await process.wait()
    err = stderr.decode("utf-8", "replace")
    assert process.returncode == 130, err
    assert "Traceback" not in err
    assert err.rstrip().splitlines()[-1] == "interrupted"
    assert re.search(rf"not started\s+{total - 20 - concurrency}\b", err), err
    assert stdout == b""
    records = by_line(read_records(results))
    # Every line the model ran has its record: the 20 answered, and the ones in flight at Ctrl-C.
    assert set(records) == set(model.runs) == set(range(1, 21)) | in_flight
    assert len(in_flight) == concurrency
    assert all(record["status"] == "ok" for record in records.values())

    # Resumed: the rest, and only the rest. No line ran twice.
    ran = await run_cli(*batch_args(runtime, "counted", source, results, "--concurrency", "32"))
    assert ran.code == 0, ran.err
    assert model.runs == dict.fromkeys(range(1, total + 1), 1)
    records = by_line(read_records(results))
    assert sorted(records) == list(range(1, total + 1))
    assert all(record["output"]["double"] == 2 * line for line, record in records.items())


async def test_batch_second_ctrl_c_aborts_and_records_unknown_outcomes(
    runtime: LocalRuntime, tmp_path: Path
) -> None:
    model = Counted(held=lambda n: True)
    runtime.add_endpoint("counted", model, content_type="application/json")
    source, results = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_numbered_input(source, 12)
    process = await start_batch(
        runtime, "counted", "--input", str(source), "--output", str(results),
        "--concurrency", "4", "--no-progress",
    )  # fmt: skip
    try:
        await model.until_waiting(4)
        process.send_signal(signal.SIGINT)
        await read_until(process, "Ctrl-C again to abort")
        process.send_signal(signal.SIGINT)  # the model never answers: abort
        _, stderr = await asyncio.wait_for(process.communicate(), STEP)
    finally:
        model.gate.set()
        if process.returncode is None:
            process.kill()
            await process.wait()
    err = stderr.decode("utf-8", "replace")
    assert process.returncode == 130, err
    assert "Traceback" not in err
    records = by_line(read_records(results))
    assert set(records) == set(model.runs) == {1, 2, 3, 4}
    for record in records.values():
        assert record["status"] == "unknown", record
        assert record["error"]["type"] == "Aborted"

    # Resumed: the aborted lines may have run, so they are not sent again.
    ran = await run_cli(*batch_args(runtime, "counted", source, results))
    assert ran.code == 1, ran.err  # 4 lines have no answer
    assert model.runs == dict.fromkeys(range(1, 13), 1)
    records = by_line(read_records(results))
    assert sorted(n for n, record in records.items() if record["status"] == "ok") == list(range(5, 13))


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


SERVING = re.compile(r"serving endpoint '[^']*' at http://127\.0\.0\.1:(\d+) ")


async def serving_port(process: asyncio.subprocess.Process) -> tuple[int, str]:
    """The port serve-local bound (it was given ``--port 0``) and what it printed up to then.

    Read from its own announcement rather than picked beforehand: a port probed free here could be
    taken by another test before the child binds it."""
    assert process.stderr is not None
    printed = ""
    while True:
        line = await asyncio.wait_for(process.stderr.readline(), STEP)
        assert line, f"serve-local exited before serving: {printed}"
        printed += line.decode()
        match = SERVING.search(printed)
        if match:
            return int(match.group(1)), printed


def test_load_handler_forms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sagemaker_rt_aio.cli._main import load_handler

    (tmp_path / "cli_test_handlers_forms.py").write_text(HANDLER_MODULE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.delitem(sys.modules, "cli_test_handlers_forms", raising=False)
    by_module = load_handler("cli_test_handlers_forms:handler")
    by_file = load_handler(f"{tmp_path / 'cli_test_handlers_forms.py'}:handler")
    assert by_module is by_file
    assert callable(by_module)
    sys.modules.pop("cli_test_handlers_forms", None)


@pytest.mark.parametrize("form", ["file"])
async def test_serve_local_runs_a_users_handler(tmp_path: Path, form: str) -> None:
    (tmp_path / "cli_test_handlers.py").write_text(HANDLER_MODULE)
    spec = (
        "cli_test_handlers:handler"
        if form == "module"
        else f"{tmp_path / 'cli_test_handlers.py'}:handler"
    )
    process = await asyncio.create_subprocess_exec(
        *cli_argv("serve-local", spec, "--name", "m", "--port", "0"),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=cli_env(),
        cwd=tmp_path if form == "module" else ROOT,
        preexec_fn=default_sigint,
    )
    try:
        port, announced = await serving_port(process)
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
    err = announced + stderr.decode()
    assert process.returncode == 130, err
    assert "Traceback" not in err
    assert f"serving endpoint 'm' at http://127.0.0.1:{port}" in err
    assert f"--region {REGION} --endpoint-url http://127.0.0.1:{port} invoke m" in err
    with pytest.raises(OSError):  # and it stopped listening
        await asyncio.open_connection("127.0.0.1", port)


@pytest.fixture
def python_sigint() -> Iterator[None]:
    """Ctrl-C as Python sets it up, even under a parent that ignores SIGINT."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


@pytest.mark.usefixtures("python_sigint")
def test_ctrl_c_cancels_the_command_and_then_interrupts() -> None:
    # The commands' loop runs Ctrl-C as 3.11's asyncio.Runner does, on 3.10 too: the command is
    # cancelled (its clean-up runs and cancels its own tasks), never hit by a KeyboardInterrupt
    # in the middle of whatever code the loop was running, a server's connection task say.
    from sagemaker_rt_aio.cli._interrupt import run

    seen: dict[str, type[BaseException]] = {}

    async def serving() -> None:
        try:
            await asyncio.Event().wait()
        except BaseException as stopped:
            seen["task"] = type(stopped)
            raise

    async def command() -> int:
        task = asyncio.create_task(serving())
        await asyncio.sleep(0)
        try:
            os.kill(os.getpid(), signal.SIGINT)
            await asyncio.sleep(STEP)
        except BaseException as stopped:
            seen["command"] = type(stopped)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            raise
        return 0

    with pytest.raises(KeyboardInterrupt):
        run(command())
    assert seen == {"command": asyncio.CancelledError, "task": asyncio.CancelledError}
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # and Ctrl-C is Python's again


@pytest.mark.usefixtures("python_sigint")
def test_a_second_ctrl_c_interrupts_a_hung_clean_up() -> None:
    from sagemaker_rt_aio.cli._interrupt import run

    cleaning = []

    async def command() -> int:
        try:
            os.kill(os.getpid(), signal.SIGINT)
            await asyncio.sleep(STEP)
        except asyncio.CancelledError:
            cleaning.append(True)
            os.kill(os.getpid(), signal.SIGINT)
            await asyncio.sleep(STEP)  # a clean-up that hangs: the second Ctrl-C ends it
        return 0

    with pytest.raises(KeyboardInterrupt):
        run(command())
    assert cleaning == [True]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


# -- demo ---------------------------------------------------------------------------------------


def squash(text: str) -> str:
    return " ".join(text.split())


async def test_demo_runs() -> None:
    ran = await run_cli("demo", timeout=60)  # in-process: the demo serves on its own loop
    out = ran.stdout.decode()
    assert ran.code == 0, ran.err + out
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
