"""``invoke-bidi``: stream standard input to an endpoint's bidirectional stream, answers to stdout.

Input goes as it is read: one ``PayloadPart`` (``DataType=UTF8``) per line by default, or
``--binary`` chunks of ``--chunk-size`` bytes (``BINARY``). Answers are written as they arrive,
while input is still being read (full duplex). End of input sends the stream's end; the command
ends when the model has answered everything.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import os
import stat
import sys
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

from .._bidi import BidirectionalStream


async def stdin_pieces(binary: bool, chunk_size: int) -> AsyncIterator[bytes]:
    """Standard input in pieces (lines, or chunks with ``binary``) as they come.

    A pipe or socket is read by the event loop itself (its blocking mode restored afterwards); a
    regular file never blocks, so it is read directly; anything else (a terminal) is read by a
    daemon thread, which cannot hold the process open at exit and never changes the terminal's
    mode, which the shell shares.
    """
    mode = os.fstat(sys.stdin.fileno()).st_mode
    if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
        pieces = _from_pipe(binary, chunk_size)
    elif stat.S_ISREG(mode):
        pieces = _from_file(binary, chunk_size)
    else:
        pieces = _from_thread(binary, chunk_size)
    async for piece in pieces:
        yield piece if binary else piece.rstrip(b"\r\n")


def _read(binary: bool, chunk_size: int) -> bytes:
    source = sys.stdin.buffer
    return source.read1(chunk_size) if binary else source.readline()  # type: ignore[union-attr]


async def _from_file(binary: bool, chunk_size: int) -> AsyncIterator[bytes]:
    while piece := _read(binary, chunk_size):
        yield piece


async def _from_pipe(binary: bool, chunk_size: int) -> AsyncIterator[bytes]:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), sys.stdin
    )
    fd = sys.stdin.fileno()
    try:
        while piece := await (reader.read(chunk_size) if binary else reader.readline()):
            yield piece
    finally:
        with contextlib.suppress(OSError):
            os.set_blocking(fd, True)  # other holders of this pipe expect it blocking
        transport.close()


async def _from_thread(binary: bool, chunk_size: int) -> AsyncIterator[bytes]:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=4)  # bounded: the thread waits for us

    def run() -> None:
        while True:
            piece = _read(binary, chunk_size)
            try:
                asyncio.run_coroutine_threadsafe(queue.put(piece), loop).result()
            except (RuntimeError, concurrent.futures.CancelledError):
                return  # the loop is gone
            if not piece:
                return

    threading.Thread(target=run, name="stdin-reader", daemon=True).start()
    while piece := await queue.get():
        yield piece


async def _send_all(
    stream: BidirectionalStream, pieces: AsyncIterator[bytes], binary: bool
) -> None:
    async for piece in pieces:
        if binary:
            await stream.send(piece, data_type="BINARY")
        else:
            await stream.send(piece, data_type="UTF8", completion_state="COMPLETE")
    await stream.end_input()


async def _receive(stream: BidirectionalStream, newline: bool) -> None:
    out = sys.stdout.buffer
    async for part in stream:
        out.write(part.bytes)
        if newline:
            out.write(b"\n")
        out.flush()


async def cmd_invoke_bidi(args: argparse.Namespace, make_client: Callable[..., Any]) -> int:
    extra = {}
    if args.bidirectional_endpoint_url:
        extra["bidirectional_endpoint_url"] = args.bidirectional_endpoint_url
    async with (
        make_client(args, **extra) as client,
        client.invoke_endpoint_with_bidirectional_stream(
            endpoint_name=args.endpoint,
            model_invocation_path=args.model_invocation_path,
            model_query_string=args.model_query_string,
            target_variant=args.target_variant,
        ) as stream,
    ):
        pieces = stdin_pieces(args.binary, args.chunk_size)
        sender = asyncio.create_task(_send_all(stream, pieces, args.binary))
        receiver = asyncio.create_task(_receive(stream, args.newline))
        tasks = {sender, receiver}
        try:
            # Whichever fails first ends the command; the answer's end ends it too, even if
            # standard input is still open.
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            if sender in done and receiver not in done and sender.exception() is None:
                await asyncio.wait({receiver})  # input sent: the rest of the answer
        finally:
            for task in tasks:
                task.cancel()
            results = await asyncio.gather(*tasks, return_exceptions=True)
        for result in results:
            if isinstance(result, Exception):
                raise result
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
