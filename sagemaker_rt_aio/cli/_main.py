"""Argument parsing, the small commands, and the one place errors become a line and an exit code.

Conventions follow the AWS CLI where they fit: ``--region``, ``--profile``, ``--endpoint-url``, and a
body given as a string, ``file://path`` (text), ``fileb://path`` (bytes) or ``-`` (standard input).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO

from .._client import SageMakerRuntimeClient
from .._errors import SageMakerRuntimeError, ServiceError
from ._bidi import add_parser as add_bidi_parser

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def read_body(spec: str) -> bytes:
    """The request body from ``--body``: ``-`` (stdin), ``fileb://``/``file://`` (a file) or text."""
    if spec == "-":
        return sys.stdin.buffer.read()
    for prefix in ("fileb://", "file://"):
        if spec.startswith(prefix):
            return Path(spec[len(prefix) :]).expanduser().read_bytes()
    return spec.encode()


def _open_output(path: str) -> BinaryIO:
    return sys.stdout.buffer if path == "-" else Path(path).open("wb")


def make_client(args: argparse.Namespace, **extra: Any) -> SageMakerRuntimeClient:
    return SageMakerRuntimeClient(
        args.region,
        profile_name=args.profile,
        endpoint_url=args.endpoint_url,
        s3_endpoint_url=getattr(args, "s3_endpoint_url", None),
        allow_http=args.allow_http,
        **extra,
    )


# -- commands -------------------------------------------------------------------------------


async def cmd_invoke(args: argparse.Namespace) -> int:
    async with make_client(args) as client:
        result = await client.invoke_endpoint(
            endpoint_name=args.endpoint,
            body=read_body(args.body),
            content_type=args.content_type,
            accept=args.accept,
            custom_attributes=args.custom_attributes,
            target_model=args.target_model,
            target_variant=args.target_variant,
            inference_component_name=args.inference_component,
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
    out = sys.stdout.buffer
    async with (
        make_client(args) as client,
        client.invoke_endpoint_with_response_stream(
            endpoint_name=args.endpoint,
            body=read_body(args.body),
            content_type=args.content_type,
            accept=args.accept,
            custom_attributes=args.custom_attributes,
            target_variant=args.target_variant,
            inference_component_name=args.inference_component,
        ) as stream,
    ):
        if args.lines:
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
    async with make_client(args) as client:
        fields: dict[str, Any] = {
            "endpoint_name": args.endpoint,
            "content_type": args.content_type,
            "accept": args.accept,
            "inference_id": args.inference_id,
        }
        if args.input_location:
            fields["input_location"] = args.input_location
        else:
            fields["body"] = read_body(args.body)
        result = await client.invoke_endpoint_async(**fields)
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


async def cmd_batch(args: argparse.Namespace) -> int:
    from ._batch import run_batch

    input_path, output_path = Path(args.input), Path(args.output)
    if _same_file(input_path, output_path):
        # A resumed run rewrites --output to keep only finished records: it would erase the input.
        print("error: --output must not be the --input file", file=sys.stderr)
        return EXIT_ERROR
    async with make_client(args, max_connections=max(args.concurrency, 1)) as client:
        summary = await run_batch(
            client,
            endpoint_name=args.endpoint,
            input_path=input_path,
            output_path=output_path,
            concurrency=args.concurrency,
            content_type=args.content_type,
            accept=args.accept,
            progress=not args.no_progress,
        )
    print(summary.describe(), file=sys.stderr)
    return 0 if summary.failed == 0 else EXIT_ERROR


async def cmd_serve_local(args: argparse.Namespace) -> int:
    from ..local import LocalRuntime

    if (args.handler is None) == (args.container is None):
        raise SystemExit("error: serve-local takes either module:function or --container URL")
    handler = load_handler(args.handler) if args.handler is not None else None
    async with LocalRuntime(host=args.host, port=args.port) as runtime:
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
    if not sep or not attribute:
        raise SystemExit(f"error: handler must be module:function, got {spec!r}")
    if module_name.endswith(".py"):
        path = Path(module_name).resolve()
        sys.path.insert(0, str(path.parent))
        module_name = path.stem
    else:
        sys.path.insert(0, str(Path.cwd()))
    module = importlib.import_module(module_name)
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise SystemExit(f"error: {module_name} has no attribute {attribute!r}") from None


# -- parsing --------------------------------------------------------------------------------


def positive_int(text: str) -> int:
    """An argparse type: an integer of at least 1 (a usage error otherwise, not a traceback)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sagemaker-rt-aio",
        description="Call Amazon SageMaker Runtime endpoints, or run them locally.",
    )
    parser.add_argument("--region", help="AWS region (default: from the environment or profile)")
    parser.add_argument("--profile", help="a profile from ~/.aws/config")
    parser.add_argument("--endpoint-url", help="send requests here instead of AWS")
    parser.add_argument("--s3-endpoint-url", help="S3 endpoint for async results")
    parser.add_argument(
        "--allow-http", action="store_true", help="allow plain http:// to a non-loopback host"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_request(sub: argparse.ArgumentParser, *, body_required: bool = True) -> None:
        sub.add_argument("endpoint", help="endpoint name")
        sub.add_argument(
            "--body",
            required=body_required,
            help="request body: text, file://PATH, fileb://PATH, or - for stdin",
        )
        sub.add_argument("--content-type")
        sub.add_argument("--accept")

    invoke = commands.add_parser("invoke", help="InvokeEndpoint; write the answer")
    with_request(invoke)
    invoke.add_argument("--custom-attributes")
    invoke.add_argument("--target-model")
    invoke.add_argument("--target-variant")
    invoke.add_argument("--inference-component")
    invoke.add_argument("--output", "-o", default="-", help="file for the answer (default stdout)")
    invoke.set_defaults(run=cmd_invoke)

    stream = commands.add_parser("invoke-stream", help="stream the answer as it is generated")
    with_request(stream)
    stream.add_argument("--custom-attributes")
    stream.add_argument("--target-variant")
    stream.add_argument("--inference-component")
    stream.add_argument("--lines", action="store_true", help="print whole lines, not raw parts")
    stream.set_defaults(run=cmd_invoke_stream)

    asynchronous = commands.add_parser("invoke-async", help="InvokeEndpointAsync")
    with_request(asynchronous, body_required=False)
    asynchronous.add_argument("--input-location", help="s3:// URI of the input (instead of --body)")
    asynchronous.add_argument("--inference-id")
    asynchronous.add_argument("--wait", action="store_true", help="wait for and print the result")
    asynchronous.add_argument("--timeout", type=float, default=900.0, help="seconds to --wait")
    asynchronous.add_argument("--poll-interval", type=float, default=1.0)
    asynchronous.set_defaults(run=cmd_invoke_async)

    batch = commands.add_parser("batch", help="one invocation per JSON line, resumable")
    batch.add_argument("endpoint")
    batch.add_argument("--input", required=True, help="JSON lines: one request body per line")
    batch.add_argument("--output", required=True, help="JSON lines of results (appended)")
    batch.add_argument("--concurrency", type=positive_int, default=16)
    batch.add_argument("--content-type", default="application/json")
    batch.add_argument("--accept")
    batch.add_argument("--no-progress", action="store_true")
    batch.set_defaults(run=cmd_batch)

    serve = commands.add_parser(
        "serve-local", help="serve module:handler (or a model container) on the local runtime"
    )
    serve.add_argument("handler", nargs="?", help="module:function (or file.py:function)")
    serve.add_argument(
        "--container",
        metavar="URL",
        help="forward to a model server speaking SageMaker's container contract at URL",
    )
    serve.add_argument("--name", default="local", help="endpoint name (default: local)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.set_defaults(run=cmd_serve_local)

    demo = commands.add_parser("demo", help="a tour on the embedded local runtime (no AWS)")
    demo.add_argument("--calls", type=int, default=1000, help="calls in the batch step")
    demo.add_argument("--concurrency", type=positive_int, default=64)
    demo.set_defaults(run=cmd_demo)

    add_bidi_parser(commands, make_client)
    return parser


def describe_error(error: BaseException) -> str:
    """One line for a person: what failed, and the request id to quote to AWS support."""
    if isinstance(error, ServiceError):
        text = f"{error.code} (HTTP {error.status_code}): {error.message or ''}".rstrip(": ")
        if error.request_id:
            text += f" [request id {error.request_id}]"
    else:
        text = f"{type(error).__name__}: {error}"
    # One line, whatever the message holds (a model's error text may span several).
    return re.sub(r"\s*[\r\n]+\s*", " ", text).strip()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = asyncio.run(args.run(args))
        return code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (SageMakerRuntimeError, OSError) as error:
        print(f"error: {describe_error(error)}", file=sys.stderr)
        return EXIT_ERROR
