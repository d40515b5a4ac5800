"""What the benchmarks share: the loopback server, the request, and the clients being compared.

The clients, each a factory ``make_X(url, concurrency) -> (call, close)`` to run inside an event loop:

  raw     aiohttp POST with the same body and unsigned headers: the floor any aiohttp client pays;
  expert  the same POST signed per call with a hand-written SigV4 (hashlib + hmac, signing key cached
          per day), as an expert would write it: what a signed call costs at the least;
  ours    ``SageMakerRuntimeClient.invoke_endpoint`` with keyword arguments (validation, signing,
          retry bookkeeping, slots, typed result and metadata included);
  aiobotocore  ``invoke_endpoint``, Body read.

For streams, ``make_stream_X(url, events)`` returns ``read() -> (events seen, seconds to the first)``.

The server runs in a spawned process of its own, so its CPU is never counted. It answers every
``.../invocations`` POST with 200 and ``RESPONSE_BODY``; ``.../invocations-response-stream`` with
``STREAM_EVENTS`` PayloadPart events carrying TGI-style token lines (``data:{"token":...}``), each
written on its own as a model generating tokens would (the endpoint ``burst``: all in one write).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import multiprocessing
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

REQUEST_BODY = b'{"inputs": "The quick brown fox jumps over the lazy dog", "parameters": {"n": 1}}'
RESPONSE_BODY = b'{"generated_text": "ok", "score": 0.97}'
CONTENT_TYPE = "application/json"
ACCESS_KEY = "AKIDBENCHMARK0000000"
SECRET_KEY = "benchmark/secret/key/0000000000000000000"
REGION = "us-east-1"
SERVICE = "sagemaker"
ENDPOINT = "bench-endpoint"
STREAM_EVENTS = 200
FIRST_ENDPOINT = "first"  # answers one-event streams
# Answers streams paced as a model generates tokens, so that each event arrives in a read of its
# own (unpaced, the server writes faster than a client reads, and a read brings several events).
PACED_ENDPOINT = "paced"
PACE_SECONDS = 0.003  # between events; above a client's cost per event even under callgrind
# Answers each stream in one write, as a container that buffers its output does: reads bring many
# events each on any machine (unpaced, how many depends on how fast the server writes against how
# fast the client reads), so what a client spends per event besides aiohttp's reads shows.
BURST_ENDPOINT = "burst"
REQUEST_ID = "00000000-0000-0000-0000-000000000000"

Call = Callable[..., Awaitable[Any]]  # call(endpoint=ENDPOINT)
Close = Callable[[], Awaitable[None]]


def token_line(index: int) -> bytes:
    """One TGI streaming line, as text-generation-inference's SageMaker container sends it."""
    token = {"id": index, "text": f" tok{index % 97}", "logprob": -0.25, "special": False}
    return b"data:" + json.dumps({"token": token, "generated_text": None}).encode() + b"\n\n"


def chat_chunk(index: int) -> bytes:
    """One server-sent event of an OpenAI chat-completions stream, as vLLM's and SGLang's
    OpenAI-compatible servers write them."""
    chunk = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 1767225600,
        "model": "bench-model",
        "choices": [{"index": 0, "delta": {"content": f" tok{index % 97}"}, "finish_reason": None}],
    }
    return b"data: " + json.dumps(chunk, separators=(",", ":")).encode() + b"\n\n"


CHAT_DONE = b"data: [DONE]\n\n"
CHAT_BODY = {"messages": [{"role": "user", "content": "Hello"}]}  # the route's request


def stream_text(events: int) -> str:
    return "".join(f" tok{i % 97}" for i in range(events))


# -- the server (child process) -------------------------------------------------------------------


def _serve(port_queue: Any) -> None:
    from aiohttp import web

    from sagemaker_rt_aio._stream_events import encode_payload_part

    frames = [encode_payload_part(token_line(i)) for i in range(STREAM_EVENTS)]
    call_headers = {
        "x-amzn-RequestId": REQUEST_ID,
        "x-Amzn-Invoked-Production-Variant": "AllTraffic",
    }

    stream_headers = {
        "Content-Type": "application/vnd.amazon.eventstream",
        "X-Amzn-SageMaker-Content-Type": "text/event-stream",
        **call_headers,
    }

    held: dict[str, tuple[int, asyncio.Event]] = {}

    async def invocations(request: web.Request) -> web.Response:
        await request.read()
        name = request.match_info["name"]
        if name.startswith("hold-"):
            # hold-N-tag: answer none until N have arrived, so that N calls are in flight at once.
            count, event = held.get(name, (0, asyncio.Event()))
            held[name] = (count + 1, event)
            if count + 1 >= int(name.split("-")[1]):
                event.set()
            await event.wait()
        return web.Response(body=RESPONSE_BODY, content_type=CONTENT_TYPE, headers=call_headers)

    def streaming(
        events: list[bytes], end: list[bytes], headers: dict[str, str]
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def stream(request: web.Request) -> web.StreamResponse:
            await request.read()
            # The endpoint "first": one-event streams (bench_instructions' cost of a stream's
            # start).
            name = request.match_info.get("name")
            count = 1 if name == FIRST_ENDPOINT else int(request.query.get("events", STREAM_EVENTS))
            chosen = events[:count] + end
            if name == BURST_ENDPOINT:
                return web.Response(body=b"".join(chosen), headers=headers)
            response = web.StreamResponse(headers=headers)
            await response.prepare(request)
            pace = PACE_SECONDS if name == PACED_ENDPOINT else 0.0
            for frame in chosen:
                await response.write(frame)  # each event in its own write, as tokens are made
                if pace:
                    await asyncio.sleep(pace)
            await response.write_eof()
            return response

        return stream

    stream = streaming(frames, [], stream_headers)
    # The OpenAI-compatible route: the container's own server-sent events, no event stream.
    chat = streaming(
        [chat_chunk(i) for i in range(STREAM_EVENTS)],
        [CHAT_DONE],
        {"Content-Type": "text/event-stream", **call_headers},
    )

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/endpoints/{name}/invocations", invocations)
        app.router.add_post("/endpoints/{name}/invocations-response-stream", stream)
        app.router.add_post("/raw-stream", stream)
        app.router.add_post("/endpoints/{name}/openai/v1/chat/completions", chat)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=2048)
        await site.start()
        port_queue.put(runner.addresses[0][1])
        await asyncio.Event().wait()

    try:
        import uvloop  # the server should never be the bottleneck

        uvloop.run(main())
    except ImportError:
        asyncio.run(main())


def start_server(
    serve: Callable[[Any], None] = _serve,
) -> tuple[multiprocessing.process.BaseProcess, str]:
    """Run ``serve(port_queue)`` in a fresh process; return it and the URL it serves on."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=serve, args=(queue,), daemon=True)
    process.start()
    try:
        port = queue.get(timeout=60)
    except BaseException:
        stop_server(process)
        raise
    return process, f"http://127.0.0.1:{port}"


def stop_server(process: multiprocessing.process.BaseProcess) -> None:
    process.terminate()
    process.join(5)
    if process.is_alive():
        process.kill()
        process.join(5)


# -- the expert's SigV4 ---------------------------------------------------------------------------


class ExpertSigner:
    """SigV4 for one (host, path) written by hand, as an expert would: the canonical request is
    formatted per call, the signing key is derived once a day, nothing else is cached."""

    def __init__(self, host: str, path: str) -> None:
        self.host = host
        self.path = path
        self._day = ""
        self._key = b""

    def _signing_key(self, day: str) -> bytes:
        if day != self._day:
            key = ("AWS4" + SECRET_KEY).encode()
            for part in (day, REGION, SERVICE, "aws4_request"):
                key = hmac.new(key, part.encode(), hashlib.sha256).digest()
            self._day, self._key = day, key
        return self._key

    def headers(self, body: bytes, content_type: str, stamp: str | None = None) -> dict[str, str]:
        stamp = stamp or time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        day = stamp[:8]
        payload_hash = hashlib.sha256(body).hexdigest()
        canonical = (
            f"POST\n{self.path}\n\ncontent-type:{content_type}\nhost:{self.host}\n"
            f"x-amz-date:{stamp}\n\ncontent-type;host;x-amz-date\n{payload_hash}"
        )
        scope = f"{day}/{REGION}/{SERVICE}/aws4_request"
        to_sign = (
            f"AWS4-HMAC-SHA256\n{stamp}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
        )
        signature = hmac.new(self._signing_key(day), to_sign.encode(), hashlib.sha256).hexdigest()
        return {
            "Content-Type": content_type,
            "X-Amz-Date": stamp,
            "Authorization": (
                f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/{scope}, "
                "SignedHeaders=content-type;host;x-amz-date, "
                f"Signature={signature}"
            ),
            "Accept-Encoding": "identity",
            "User-Agent": "expert",
        }


def check_expert_matches_ours(url: str) -> None:
    """The floor must do the same work: its signature equals this package's for the same inputs."""
    from sagemaker_rt_aio._signing import FrozenCredentials, payload_sha256, sign

    host = url.split("/")[2]
    path = f"/endpoints/{ENDPOINT}/invocations"
    stamp = "20260101T000000Z"
    ours = {"Content-Type": CONTENT_TYPE}
    sign(
        method="POST",
        host=host,
        path=path,
        headers=ours,
        payload_hash=payload_sha256(REQUEST_BODY),
        credentials=FrozenCredentials(ACCESS_KEY, SECRET_KEY),
        region=REGION,
        service=SERVICE,
        timestamp=stamp,
    )
    expert = ExpertSigner(host, path).headers(REQUEST_BODY, CONTENT_TYPE, stamp)
    if ours["Authorization"] != expert["Authorization"]:
        raise AssertionError(f"expert SigV4 differs from ours:\n{expert}\n{ours}")


# -- the clients ----------------------------------------------------------------------------------

SKIP_AUTO_HEADERS = frozenset({"Accept", "Content-Type", "Accept-Encoding", "User-Agent"})


def _session(concurrency: int, timeout: Any = None) -> Any:
    import aiohttp

    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=concurrency),
        auto_decompress=False,
        **({} if timeout is None else {"timeout": timeout}),
    )


async def make_raw(url: str, concurrency: int) -> tuple[Call, Close]:
    """The floor: aiohttp's POST, unsigned, body read."""
    session = _session(concurrency)
    headers = {"Content-Type": CONTENT_TYPE, "Accept-Encoding": "identity", "User-Agent": "raw"}

    async def call(endpoint: str = ENDPOINT) -> bytes:
        async with session.post(
            f"{url}/endpoints/{endpoint}/invocations",
            data=REQUEST_BODY,
            headers=headers,
            skip_auto_headers=SKIP_AUTO_HEADERS,
        ) as response:
            body = await response.read()
            if response.status != 200:
                raise AssertionError(response.status)
            return body

    return call, session.close


async def make_expert(url: str, concurrency: int, timeout: Any = None) -> tuple[Call, Close]:
    """The expert floor: the same POST, signed by hand on every call (``timeout``: the session's;
    if None, aiohttp's default: 300 s in all, no read timeout)."""
    session = _session(concurrency, timeout)
    signers: dict[str, ExpertSigner] = {}

    async def call(endpoint: str = ENDPOINT) -> bytes:
        signer = signers.get(endpoint)
        if signer is None:
            path = f"/endpoints/{endpoint}/invocations"
            signer = signers[endpoint] = ExpertSigner(url.split("/")[2], path)
        async with session.post(
            f"{url}{signer.path}",
            data=REQUEST_BODY,
            headers=signer.headers(REQUEST_BODY, CONTENT_TYPE),
            skip_auto_headers=SKIP_AUTO_HEADERS,
        ) as response:
            body = await response.read()
            if response.status != 200:
                raise AssertionError(response.status)
            return body

    return call, session.close


def ours_client(url: str, concurrency: int) -> Any:
    """This client, its pool of ``concurrency`` connections (``max_connections``)."""
    from sagemaker_rt_aio import SageMakerRuntimeClient

    return SageMakerRuntimeClient(
        REGION,
        endpoint_url=url,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        max_connections=concurrency,
        allow_http=True,
    )


async def make_ours(url: str, concurrency: int, client: Any = None) -> tuple[Call, Close]:
    """``invoke_endpoint`` with keyword arguments (``client``: one made by ``ours_client`` and
    set up otherwise, not yet entered)."""
    if client is None:
        client = ours_client(url, concurrency)
    await client.__aenter__()

    async def call(endpoint: str = ENDPOINT) -> bytes:
        result = await client.invoke_endpoint(
            endpoint_name=endpoint, body=REQUEST_BODY, content_type=CONTENT_TYPE
        )
        return bytes(result.body)

    return call, client.shutdown


async def make_aiobotocore(url: str, concurrency: int) -> tuple[Call, Close] | None:
    try:
        from aiobotocore.config import AioConfig
        from aiobotocore.session import get_session
    except ImportError:
        return None
    context = get_session().create_client(
        "sagemaker-runtime",
        region_name=REGION,
        endpoint_url=url,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        config=AioConfig(max_pool_connections=concurrency, retries={"max_attempts": 1}),
    )
    client = await context.__aenter__()

    async def call(endpoint: str = ENDPOINT) -> bytes:
        response = await client.invoke_endpoint(
            EndpointName=endpoint, Body=REQUEST_BODY, ContentType=CONTENT_TYPE
        )
        async with response["Body"] as stream:
            return bytes(await stream.read())

    async def close() -> None:
        await context.__aexit__(None, None, None)

    return call, close


async def make_ours_request(url: str, concurrency: int) -> tuple[Call, Close]:
    """This client called the Java SDK's way: a request object per call (which also keeps the
    call's metadata for ``get_cached_response_metadata``)."""
    from sagemaker_rt_aio import InvokeEndpointRequest

    client = ours_client(url, concurrency)
    await client.__aenter__()

    async def call(endpoint: str = ENDPOINT) -> bytes:
        request = InvokeEndpointRequest(
            endpoint_name=endpoint, body=REQUEST_BODY, content_type=CONTENT_TYPE
        )
        result = await client.invoke_endpoint(request)
        return bytes(result.body)

    return call, client.shutdown


async def make_expert_read_timeout(url: str, concurrency: int) -> tuple[Call, Close]:
    """The expert floor keeping the read timeout this client keeps: aiohttp's own ``sock_read``
    of 70 s (its timer, armed once the request is written and re-armed on every read), and no
    total (this client's default has none either)."""
    import aiohttp

    return await make_expert(url, concurrency, aiohttp.ClientTimeout(sock_read=70))


async def make_ours_without_read_timeout(url: str, concurrency: int) -> tuple[Call, Close]:
    """An ablation, not a way to call: this client with its 70 s read timeout switched off (its
    read watchdog then watches nothing). The API refuses ``sock_read=0``, so the timeout is set
    on the client's internals before its session is made."""
    import aiohttp

    client = ours_client(url, concurrency)
    timeout = client.timeout
    client._pipeline.timeout = aiohttp.ClientTimeout(
        total=timeout.total, connect=timeout.connect, sock_connect=timeout.sock_connect, sock_read=0
    )
    return await make_ours(url, concurrency, client)


async def make_ours_queued_in_slots(url: str, concurrency: int) -> tuple[Call, Close]:
    """An ablation, not a way to call: this client with every call that finds no free connection
    waiting in its slots, before it is signed and built (as until 2026-12-04), rather than in its
    pool once built (a slot taken on credit)."""
    client = ours_client(url, concurrency)
    client._pipeline._pooled = False
    return await make_ours(url, concurrency, client)


CALL_CLIENTS: dict[str, Callable[[str, int], Awaitable[tuple[Call, Close] | None]]] = {
    "raw": make_raw,
    "expert": make_expert,
    "ours": make_ours,
    "aiobotocore": make_aiobotocore,
}
# Other ways of calling, counted by bench_instructions.py when named (not in the timed runs).
OTHER_CALL_CLIENTS: dict[str, Callable[[str, int], Awaitable[tuple[Call, Close] | None]]] = {
    "ours request": make_ours_request,
    "expert read timeout": make_expert_read_timeout,
    "ours without read timeout": make_ours_without_read_timeout,
    "ours queued in slots": make_ours_queued_in_slots,
}

# -- stream readers: read() -> (events, or bytes for raw; seconds from the call to the first event;
# -- seconds from the call to the response headers) -------------------------------------------------

StreamRead = Callable[[], Awaitable[tuple[int, float, float]]]


async def make_stream_raw(
    url: str, concurrency: int, endpoint: str = ENDPOINT
) -> tuple[StreamRead, Close]:
    """Reading the same bytes with aiohttp alone: the floor. Counts chunks, not events."""
    headers = {"Content-Type": CONTENT_TYPE, "Accept-Encoding": "identity", "User-Agent": "raw"}
    return _aiohttp_stream(
        concurrency, _stream_target(url, endpoint), REQUEST_BODY, lambda: headers
    )


async def make_stream_expert(
    url: str, concurrency: int, endpoint: str = ENDPOINT
) -> tuple[StreamRead, Close]:
    """The same read, its request signed by hand per call as the expert floor's calls are: what
    any signed stream pays before its first part. Counts chunks, not events."""
    signer = ExpertSigner(url.split("/")[2], f"/endpoints/{endpoint}/invocations-response-stream")
    return _aiohttp_stream(
        concurrency,
        _stream_target(url, endpoint),
        REQUEST_BODY,
        lambda: signer.headers(REQUEST_BODY, CONTENT_TYPE),
    )


def _stream_target(url: str, endpoint: str) -> str:
    return f"{url}/endpoints/{endpoint}/invocations-response-stream"


def _aiohttp_stream(
    concurrency: int, target: str, body: bytes, headers_for: Callable[[], dict[str, str]]
) -> tuple[StreamRead, Close]:
    session = _session(concurrency)

    async def read() -> tuple[int, float, float]:
        start = time.perf_counter()
        first = 0.0
        size = 0
        async with session.post(
            target, data=body, headers=headers_for(), skip_auto_headers=SKIP_AUTO_HEADERS
        ) as response:
            headers_in = time.perf_counter() - start
            async for chunk in response.content.iter_any():
                if not size:
                    first = time.perf_counter() - start
                size += len(chunk)
        return size, first, headers_in

    return read, session.close


async def _ours_stream(
    url: str, concurrency: int, mode: str, endpoint: str = ENDPOINT, *, chat: bool = False
) -> tuple[StreamRead, Close] | None:
    """This client's ``async for part`` (``mode`` "parts") or ``iter_text()`` ("text") of a
    response stream, or (``chat``) of the OpenAI-compatible route's stream."""
    client = ours_client(url, concurrency)
    if chat and not hasattr(client, "chat_completions_stream"):
        return None
    await client.__aenter__()

    def open_stream() -> Any:
        if chat:
            return client.chat_completions_stream(endpoint_name=endpoint, body=CHAT_BODY)
        return client.invoke_endpoint_with_response_stream(
            endpoint_name=endpoint, body=REQUEST_BODY, content_type=CONTENT_TYPE
        )

    async def read() -> tuple[int, float, float]:
        start = time.perf_counter()
        first = 0.0
        count = 0
        async with open_stream() as stream:
            headers_in = time.perf_counter() - start
            parts = stream if mode == "parts" else stream.iter_text()
            async for _part in parts:
                if not count:
                    first = time.perf_counter() - start
                count += 1
        return count, first, headers_in

    if mode == "text" and not hasattr(_stream_class(), "iter_text"):
        await client.shutdown()
        return None
    return read, client.shutdown


def _stream_class() -> type:
    from sagemaker_rt_aio import ResponseStream

    return ResponseStream


async def make_stream_ours(
    url: str, concurrency: int, endpoint: str = ENDPOINT
) -> tuple[StreamRead, Close] | None:
    return await _ours_stream(url, concurrency, "parts", endpoint)


async def make_stream_ours_text(
    url: str, concurrency: int, endpoint: str = ENDPOINT
) -> tuple[StreamRead, Close] | None:
    return await _ours_stream(url, concurrency, "text", endpoint)


async def make_stream_aiobotocore(
    url: str, concurrency: int, endpoint: str = ENDPOINT
) -> tuple[StreamRead, Close] | None:
    try:
        from aiobotocore.config import AioConfig
        from aiobotocore.session import get_session
    except ImportError:
        return None
    context = get_session().create_client(
        "sagemaker-runtime",
        region_name=REGION,
        endpoint_url=url,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        config=AioConfig(max_pool_connections=concurrency, retries={"max_attempts": 1}),
    )
    client = await context.__aenter__()

    async def read() -> tuple[int, float, float]:
        start = time.perf_counter()
        first = 0.0
        count = 0
        response = await client.invoke_endpoint_with_response_stream(
            EndpointName=endpoint, Body=REQUEST_BODY, ContentType=CONTENT_TYPE
        )
        headers_in = time.perf_counter() - start
        async for event in response["Body"]:
            if "PayloadPart" in event:
                if not count:
                    first = time.perf_counter() - start
                count += 1
        return count, first, headers_in

    async def close() -> None:
        await context.__aexit__(None, None, None)

    return read, close


# -- the OpenAI-compatible route's streams ----------------------------------------------------------


async def make_chat_raw(
    url: str, concurrency: int, endpoint: str = ENDPOINT
) -> tuple[StreamRead, Close]:
    """The route's stream read with aiohttp alone (a bearer token of no cost). Counts chunks."""
    headers = {
        "Content-Type": "application/json",
        "Accept": "text/event-stream",
        "Authorization": "Bearer benchmark",
        "Accept-Encoding": "identity",
        "User-Agent": "raw",
    }
    return _aiohttp_stream(
        concurrency,
        f"{url}/endpoints/{endpoint}/openai/v1/chat/completions",
        json.dumps({**CHAT_BODY, "stream": True}).encode(),
        lambda: headers,
    )


async def make_chat_ours(
    url: str, concurrency: int, endpoint: str = ENDPOINT
) -> tuple[StreamRead, Close] | None:
    return await _ours_stream(url, concurrency, "parts", endpoint, chat=True)


async def make_chat_ours_text(
    url: str, concurrency: int, endpoint: str = ENDPOINT
) -> tuple[StreamRead, Close] | None:
    return await _ours_stream(url, concurrency, "text", endpoint, chat=True)


CHAT_CLIENTS: dict[str, Callable[..., Awaitable[tuple[StreamRead, Close] | None]]] = {
    "raw": make_chat_raw,
    "ours": make_chat_ours,
    "ours iter_text": make_chat_ours_text,
}

# The expert's stream reads as raw aiohttp's does; its request is signed. It is here for the time
# to the first event, which a signature delays for any signed client: without it, the first-event
# column would charge the signature to this client alone.
STREAM_CLIENTS: dict[str, Callable[..., Awaitable[tuple[StreamRead, Close] | None]]] = {
    "raw": make_stream_raw,
    "expert": make_stream_expert,
    "ours": make_stream_ours,
    "ours iter_text": make_stream_ours_text,
    "aiobotocore": make_stream_aiobotocore,
}
# One-event streams, for the time to a stream's first part: the expert floor besides raw aiohttp.
FIRST_PART_CLIENTS: dict[str, Callable[..., Awaitable[tuple[StreamRead, Close] | None]]] = {
    "raw": make_stream_raw,
    "expert": make_stream_expert,
    "ours": make_stream_ours,
    "ours iter_text": make_stream_ours_text,
}


def steady_allocator() -> None:
    """Put glibc's malloc where a process that has run a while has it, the same for every client.

    glibc serves a block of 128 KiB or more with its own ``mmap`` until a freed one raises that
    threshold to its size (``M_MMAP_THRESHOLD`` in mallopt(3)). An asyncio transport reads into a
    fresh 256 KiB buffer on every read, so until then every read also costs an ``mmap``, an
    ``mremap`` and a ``munmap`` (and their page faults): 15-25 % of a small call's CPU here. What
    first frees a bigger block is usually the interned-strings table growing with imports, so a
    client that imports more code got there sooner and, alone in a process, looked cheaper: ours
    did at concurrency 64, not at 1, and the expert and raw aiohttp never did. A 1 MiB block
    freed here puts every measured process in the regime a busy service is in. (In bench_client,
    every client shares one allocator; this makes its numbers those of that regime from round
    one.)
    """
    block = bytearray(1 << 20)
    del block


def quiet_environment() -> None:
    """No credential lookups or config files for anyone: every client gets its keys explicitly."""
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    os.environ["AWS_CONFIG_FILE"] = os.devnull
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
