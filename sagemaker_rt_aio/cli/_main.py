"""Argument parsing, the small commands, and the one place errors become a line and an exit code.

Conventions follow the AWS CLI where they fit: global options (``--region``, ``--profile``,
``--endpoint-url``, ``--debug``...) before or after the command, a flag per request member, a body
given as a string, ``file://path`` (text), ``fileb://path`` (bytes) or ``-`` (standard input), and
the AWS CLI's exit codes (see ``_exit``).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO, NoReturn

from .._client import SageMakerRuntimeClient
from .._types import (
    InvokeEndpointAsyncRequest,
    InvokeEndpointRequest,
    InvokeEndpointWithResponseStreamRequest,
)
from ._bidi import add_parser as add_bidi_parser
from ._exit import (
    EPILOG,
    EXIT_INTERRUPTED,
    EXIT_ITEMS_FAILED,
    EXIT_OTHER,
    EXIT_USAGE,
    CommandError,
    UsageError,
    describe_error,
    exit_code_for,
)
from ._interrupt import run as run_interruptibly
from ._members import add_member_flags, member_values
from ._options import add_global_options, client_options, debug_logging, seconds


def read_body(spec: str, option: str = "--body") -> bytes:
    """The request body from ``--body``: ``-`` (stdin), ``fileb://``/``file://`` (a file) or text."""
    if spec == "-":
        return sys.stdin.buffer.read()
    for prefix in ("fileb://", "file://"):
        if spec.startswith(prefix):
            try:
                return Path(spec[len(prefix) :]).expanduser().read_bytes()
            except OSError as error:
                raise UsageError(f"{option}: cannot read {spec}: {error.strerror}") from None
    # surrogateescape: an argument that was not valid UTF-8 goes out as the bytes it was given.
    return spec.encode("utf-8", "surrogateescape")


def _open_output(path: str) -> BinaryIO:
    return sys.stdout.buffer if path == "-" else Path(path).open("wb")


def _check_output(path: str, option: str = "--output") -> None:
    """Refuse an output that cannot be written before the (paid) call, not after it."""
    if path == "-":
        return
    target = Path(path)
    if target.is_dir():
        raise UsageError(f"{option}: {path} is a directory")
    if not target.parent.is_dir():
        raise UsageError(f"{option}: no such directory: {target.parent}")


def endpoint_of(args: argparse.Namespace) -> str:
    """The endpoint, given as the positional argument or as ``--endpoint-name`` (AWS CLI style)."""
    positional, option = args.endpoint, args.endpoint_name
    if positional and option and positional != option:
        raise UsageError(f"two endpoints given: {positional!r} and --endpoint-name {option!r}")
    name: str | None = positional or option
    if not name:
        raise UsageError("an endpoint name is required (ENDPOINT or --endpoint-name)")
    return name


def make_client(args: argparse.Namespace, **extra: Any) -> SageMakerRuntimeClient:
    return SageMakerRuntimeClient(args.region, **client_options(args), **extra)


# -- commands -------------------------------------------------------------------------------


async def cmd_invoke(args: argparse.Namespace) -> int:
    endpoint, body = endpoint_of(args), read_body(args.body)
    _check_output(args.output)
    async with make_client(args) as client:
        result = await client.invoke_endpoint(
            endpoint_name=endpoint, body=body, **member_values(args)
        )
    out = _open_output(args.output)
    try:
        out.write(result.body)
        if args.output == "-" and not result.body.endswith(b"\n"):
            out.write(b"\n")
        out.flush()
    finally:
        if out is not sys.stdout.buffer:
            out.close()
    return 0


async def cmd_invoke_stream(args: argparse.Namespace) -> int:
    endpoint, body = endpoint_of(args), read_body(args.body)
    out = sys.stdout.buffer
    async with (
        make_client(args) as client,
        client.invoke_endpoint_with_response_stream(
            endpoint_name=endpoint, body=body, **member_values(args)
        ) as stream,
    ):
        if args.text:  # the generated text, whatever the container's format (stream.iter_text)
            async for text in stream.iter_text():
                out.write(text.encode())
                out.flush()
            out.write(b"\n")
        elif args.lines:
            async for line in stream.iter_lines():
                out.write(line.encode() + b"\n")
                out.flush()
        else:
            async for part in stream:
                out.write(part.bytes)
                out.flush()
            out.write(b"\n")
    return 0


async def cmd_invoke_async(args: argparse.Namespace) -> int:
    endpoint, fields = endpoint_of(args), member_values(args)
    if (args.body is None) == ("input_location" not in fields):
        raise UsageError("give exactly one of --body and --input-location")
    if args.body is not None:
        fields["body"] = read_body(args.body)
    async with make_client(args) as client:
        result = await client.invoke_endpoint_async(endpoint_name=endpoint, **fields)
        print(f"inference_id:     {result.inference_id}", file=sys.stderr)
        print(f"output_location:  {result.output_location}", file=sys.stderr)
        print(f"failure_location: {result.failure_location}", file=sys.stderr)
        if not args.wait:
            return 0
        output = await client.wait_for_async_result(
            result, timeout=args.timeout, poll_interval=args.poll_interval
        )
    sys.stdout.buffer.write(output + (b"" if output.endswith(b"\n") else b"\n"))
    sys.stdout.buffer.flush()
    return 0


def _same_file(first: Path, second: Path) -> bool:
    return first.exists() and second.exists() and os.path.samefile(first, second)


def _batch_paths(args: argparse.Namespace) -> tuple[Path, Path]:
    input_path, output_path = Path(args.input), Path(args.output)
    if not input_path.is_file():
        raise UsageError(f"--input: no such file: {args.input}")
    if args.output == "-":
        # Not standard output: a batch reads its --output back to resume, so it must be a file.
        raise UsageError("--output: a batch needs a file (it is read back to resume), not -")
    if _same_file(input_path, output_path):
        # A resumed run rewrites --output to keep only finished records: it would erase the input.
        raise UsageError("--output must not be the --input file")
    _check_output(args.output)
    return input_path, output_path


async def cmd_batch(args: argparse.Namespace) -> int:
    from ._batch import run_batch
    from ._interrupt import TwoStepInterrupt

    endpoint = endpoint_of(args)
    input_path, output_path = _batch_paths(args)
    fields = member_values(args)
    content_type, accept = fields.pop("content_type", None), fields.pop("accept", None)
    async with make_client(args, max_connections=max(args.concurrency, 1)) as client:
        with TwoStepInterrupt() as interrupt:
            summary = await run_batch(
                client,
                endpoint_name=endpoint,
                input_path=input_path,
                output_path=output_path,
                concurrency=args.concurrency,
                content_type=content_type,
                accept=accept,
                progress=not args.no_progress,
                fields=fields,
                retry_unknown=args.retry_unknown,
                stop=interrupt.stop,
                abort=interrupt.abort,
            )
    print(summary.describe(), file=sys.stderr)
    if interrupt.interrupted:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_ITEMS_FAILED if summary.unanswered else 0


async def cmd_serve_local(args: argparse.Namespace) -> int:
    from ..local import LocalRuntime

    if (args.handler is None) == (args.container is None):
        raise SystemExit("error: serve-local takes either module:function or --container URL")
    handler = load_handler(args.handler) if args.handler is not None else None
    runtime = LocalRuntime(host=args.host, port=args.port)
    try:
        await runtime.start()
    except OSError as error:
        reason = error.strerror or str(error)
        raise CommandError(f"cannot serve on {args.host}:{args.port}: {reason}") from error
    async with runtime:
        if handler is not None:
            runtime.add_endpoint(args.name, handler)
        else:
            try:
                runtime.add_container_endpoint(args.name, args.container)
            except ValueError as exc:
                raise SystemExit(f"error: {exc}") from None
            print(f"forwarding to the container at {args.container}", file=sys.stderr)
        print(f"serving endpoint {args.name!r} at {runtime.url} (Ctrl-C to stop)", file=sys.stderr)
        print(
            f"try: sagemaker-rt-aio --region {runtime.region} --endpoint-url {runtime.url} "
            f"invoke {args.name} --body '...'",
            file=sys.stderr,
        )
        await asyncio.Event().wait()
    return 0


async def cmd_demo(args: argparse.Namespace) -> int:
    from ._demo import run_demo

    return await run_demo(calls=args.calls, concurrency=args.concurrency)


def load_handler(spec: str) -> Any:
    """``module:attribute`` (or ``path/to/file.py:attribute``) to the handler object."""
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise UsageError(f"handler must be module:function, got {spec!r}")
    if module_name.endswith(".py"):
        path = Path(module_name).resolve()
        if not path.is_file():
            raise UsageError(f"handler: no such file: {module_name}")
        sys.path.insert(0, str(path.parent))
        module_name = path.stem
    else:
        sys.path.insert(0, str(Path.cwd()))
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name != module_name:
            # The handler's module is there; something it imports is not.
            raise CommandError(f"handler: importing {module_name} failed: {error}") from error
        raise UsageError(f"handler: no module named {module_name!r}") from None
    except Exception as error:
        raise CommandError(
            f"handler: importing {module_name} failed: {type(error).__name__}: {error}"
        ) from error
    handler = getattr(module, attribute, None)
    if handler is None:
        raise UsageError(f"handler: {module_name} has no attribute {attribute!r}")
    if not callable(handler):
        raise UsageError(f"handler: {module_name}.{attribute} is not callable")
    return handler


# -- parsing --------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit code 252 (raised, printed by ``main``)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (usage: {self.prog} --help)")


def positive_int(text: str) -> int:
    """An argparse type: an integer of at least 1 (a usage error otherwise, not a traceback)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def port_number(text: str) -> int:
    value = non_negative_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"must be a port number (0-65535), got {value}")
    return value


def positive_seconds(text: str) -> float:
    value = seconds(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be more than 0 seconds")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="sagemaker-rt-aio",
        description="Call Amazon SageMaker Runtime endpoints, or run them locally.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    add_global_options(parser, top=True)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(
            name,
            help=help,
            description=help,
            epilog=EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
            allow_abbrev=False,
        )
        add_global_options(sub, top=False)
        return sub

    def with_endpoint(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("endpoint", nargs="?", help="endpoint name")
        sub.add_argument("--endpoint-name", help="endpoint name (instead of ENDPOINT)")

    def with_body(sub: argparse.ArgumentParser, *, required: bool = True) -> None:
        sub.add_argument(
            "--body",
            required=required,
            help="request body: text, file://PATH, fileb://PATH, or - for stdin",
        )

    invoke = command("invoke", "InvokeEndpoint; write the answer")
    with_endpoint(invoke)
    with_body(invoke)
    invoke.add_argument("--output", "-o", default="-", help="file for the answer (default stdout)")
    add_member_flags(invoke, InvokeEndpointRequest)
    invoke.set_defaults(run=cmd_invoke)

    stream = command("invoke-stream", "stream the answer as it is generated")
    with_endpoint(stream)
    with_body(stream)
    stream_view = stream.add_mutually_exclusive_group()
    stream_view.add_argument(
        "--lines", action="store_true", help="print whole lines, not raw parts"
    )
    stream_view.add_argument(
        "--text",
        action="store_true",
        help="print the generated text (OpenAI chunks, TGI tokens, LMI JSON lines, decoded)",
    )
    add_member_flags(stream, InvokeEndpointWithResponseStreamRequest)
    stream.set_defaults(run=cmd_invoke_stream)

    asynchronous = command("invoke-async", "InvokeEndpointAsync")
    with_endpoint(asynchronous)
    with_body(asynchronous, required=False)
    asynchronous.add_argument("--wait", action="store_true", help="wait for and print the result")
    asynchronous.add_argument(
        "--timeout", type=positive_seconds, default=900.0, help="seconds to --wait"
    )
    asynchronous.add_argument("--poll-interval", type=positive_seconds, default=1.0)
    add_member_flags(asynchronous, InvokeEndpointAsyncRequest)
    asynchronous.set_defaults(run=cmd_invoke_async)

    batch = command("batch", "one invocation per JSON line, resumable")
    with_endpoint(batch)
    batch.add_argument("--input", required=True, help="JSON lines: one request body per line")
    batch.add_argument("--output", required=True, help="JSON lines of results (appended)")
    batch.add_argument("--concurrency", type=positive_int, default=16)
    batch.add_argument("--no-progress", action="store_true")
    batch.add_argument(
        "--retry-unknown",
        action="store_true",
        help="call again the lines of unknown outcome (the model may have run them already)",
    )
    add_member_flags(batch, InvokeEndpointRequest)
    batch.set_defaults(run=cmd_batch, member_content_type="application/json")

    serve = command(
        "serve-local", "serve module:handler (or a model container) on the local runtime"
    )
    serve.add_argument("handler", nargs="?", help="module:function (or file.py:function)")
    serve.add_argument(
        "--container",
        metavar="URL",
        help="forward to a model server speaking SageMaker's container contract at URL",
    )
    serve.add_argument("--name", default="local", help="endpoint name (default: local)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=port_number, default=8080)
    serve.set_defaults(run=cmd_serve_local)

    demo = command("demo", "a tour on the embedded local runtime (no AWS)")
    demo.add_argument(
        "--calls", type=non_negative_int, default=1000, help="calls in the batch step"
    )
    demo.add_argument("--concurrency", type=positive_int, default=64)
    demo.set_defaults(run=cmd_demo)

    add_bidi_parser(commands, make_client)
    bidi = commands.choices["invoke-bidi"]
    bidi.epilog, bidi.formatter_class = EPILOG, argparse.RawDescriptionHelpFormatter
    add_global_options(bidi, top=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit code. Errors are one line on stderr, never a traceback
    (``--debug`` adds the traceback)."""
    try:
        return _main(argv)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _main(argv: Sequence[str] | None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except UsageError as error:
        print(f"error: {describe_error(error)}", file=sys.stderr)
        return EXIT_USAGE
    except SystemExit as done:  # --help, --version
        return done.code if isinstance(done.code, int) else 0
    with debug_logging(args.debug):
        try:
            code: int = run_interruptibly(args.run(args))
            return code
        except asyncio.CancelledError:
            print("interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED
        except BrokenPipeError:
            _silence_stdout()
            print("error: the output was closed early (broken pipe)", file=sys.stderr)
            return EXIT_OTHER
        except Exception as error:
            if args.debug:
                traceback.print_exc(file=sys.stderr)
            print(f"error: {describe_error(error)}", file=sys.stderr)
            return exit_code_for(error)


def _silence_stdout() -> None:
    # Python flushes stdout at exit; into a closed pipe that prints a second error.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass
