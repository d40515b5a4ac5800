"""``invoke-bidi``: stream standard input to an endpoint's bidirectional stream, answers to stdout.

Input goes as it is read: one ``PayloadPart`` (``DataType=UTF8``) per line by default, or
``--binary`` chunks of ``--chunk-size`` bytes (``BINARY``). Answers are written as they arrive,
while input is still being read (full duplex). End of input sends the stream's end; the command
ends when the model has answered everything.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any

from .._bidi import BidirectionalStream


async def _pipe_reader() -> asyncio.StreamReader | None:
    """Standard input as a non-blocking stream, or None when it is a regular file (those never
    block, and the event loop cannot watch them)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    try:
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    except (ValueError, OSError):
        return None
    return reader


async def stdin_pieces(binary: bool, chunk_size: int) -> AsyncIterator[bytes]:
    reader = await _pipe_reader()
    while True:
        if reader is not None:
            piece = await (reader.read(chunk_size) if binary else reader.readline())
        else:
            source = sys.stdin.buffer
            piece = source.read(chunk_size) if binary else source.readline()
        if not piece:
            return
        yield piece if binary else piece.rstrip(b"\r\n")


async def _send_all(
    stream: BidirectionalStream, pieces: AsyncIterator[bytes], binary: bool
) -> None:
    async for piece in pieces:
        if binary:
            await stream.send(piece, data_type="BINARY")
        else:
            await stream.send(piece, data_type="UTF8", completion_state="COMPLETE")
    await stream.end_input()


async def cmd_invoke_bidi(args: argparse.Namespace, make_client: Callable[..., Any]) -> int:
    extra = {}
    if args.bidirectional_endpoint_url:
        extra["bidirectional_endpoint_url"] = args.bidirectional_endpoint_url
    out = sys.stdout.buffer
    async with (
        make_client(args, **extra) as client,
        client.invoke_endpoint_with_bidirectional_stream(
            endpoint_name=args.endpoint,
            model_invocation_path=args.model_invocation_path,
            model_query_string=args.model_query_string,
            target_variant=args.target_variant,
        ) as stream,
    ):
        sender = asyncio.create_task(
            _send_all(stream, stdin_pieces(args.binary, args.chunk_size), args.binary)
        )
        try:
            async for part in stream:
                out.write(part.bytes)
                if args.newline:
                    out.write(b"\n")
                out.flush()
            await sender  # raises what the sender hit, if anything
        finally:
            if not sender.done():
                sender.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await sender
    return 0


def add_parser(commands: Any, make_client: Callable[..., Any]) -> None:
    bidi = commands.add_parser(
        "invoke-bidi", help="stream stdin to a bidirectional stream (HTTP/2), answers to stdout"
    )
    bidi.add_argument("endpoint", help="endpoint name")
    bidi.add_argument(
        "--bidirectional-endpoint-url", help="the HTTP/2 endpoint (default: the region's)"
    )
    bidi.add_argument("--model-invocation-path")
    bidi.add_argument("--model-query-string")
    bidi.add_argument("--target-variant")
    bidi.add_argument(
        "--binary", action="store_true", help="send raw chunks (BINARY), not one event per line"
    )
    bidi.add_argument("--chunk-size", type=int, default=16384, help="bytes per --binary event")
    bidi.add_argument(
        "--no-newline",
        dest="newline",
        action="store_false",
        help="write answers back to back (default: a newline after each)",
    )

    async def run(args: argparse.Namespace) -> int:
        return await cmd_invoke_bidi(args, make_client)

    bidi.set_defaults(run=run)
