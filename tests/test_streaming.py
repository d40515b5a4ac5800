"""InvokeEndpointWithResponseStream end to end: our client against scripted loopback servers.

Every test runs a real aiohttp server on 127.0.0.1 (the ``scripted_server`` fixture) that writes
event-stream bytes the way the service would, or the way a broken network would: one byte at a time,
cut at every position, truncated, corrupted, stalled, or never ending. Nothing inside aiohttp is
mocked. Where a test needs the client to read the body in exactly the pieces the server wrote, the
server waits (``ReadTap``) until the client has read each piece before it writes the next one; the
tap only observes ``read_chunk``, our own function, and passes every byte through unchanged.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import random
import re
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from conftest import Handler, ScriptedServer, json_error
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sagemaker_rt_aio import (
    ClientClosedError,
    ConnectionClosedError,
    EventStreamError,
    InternalFailure,
    InternalStreamFailure,
    InvokeEndpointRequest,
    InvokeEndpointWithResponseStreamRequest,
    LineTooLongError,
    ModelError,
    ModelStreamError,
    ParamValidationError,
    PayloadPart,
    ReadTimeoutError,
    ResponseStream,
    RetryPolicy,
    SageMakerRuntimeClient,
    ServiceError,
    ServiceUnavailable,
    StreamCall,
    ValidationError,
)
from sagemaker_rt_aio import _stream as stream_module
from sagemaker_rt_aio._eventstream import encode_message
from sagemaker_rt_aio._stream_events import (
    encode_error,
    encode_exception,
    encode_payload_part,
)
from sagemaker_rt_aio._transport import read_chunk as transport_read_chunk

pytestmark = pytest.mark.timeout(60)

AKID = "AKIDEXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
EVENTSTREAM = "application/vnd.amazon.eventstream"
STREAM_PATH = "/endpoints/gen/invocations-response-stream"
# How long a test waits for something that should happen at once (a disconnect to be noticed).
PROMPTLY = 5.0

# The reference's section 5.4 vector, written independently of our encoder: PayloadPart b'{"x":1}'.
VECTOR_5_4 = bytes.fromhex(
    "00000070000000598e47d6f60b3a6576656e742d7479706507000b5061796c6f616450617274"
    "0d3a636f6e74656e742d747970650700186170706c69636174696f6e2f6f637465742d73747265616d"
    "0d3a6d6573736167652d747970650700056576656e747b2278223a317d6ac2b1f0"
)

# A small stream for the exhaustive split tests: three messages, one of them an empty part.
SMALL_PAYLOADS = [b'{"token": "Hel"}\n', b"", b"lo \xe2\x82\xac"]
SMALL_STREAM = b"".join(encode_payload_part(p) for p in SMALL_PAYLOADS)


# -- servers ----------------------------------------------------------------------------------------


async def start_stream(
    request: web.Request, headers: dict[str, str] | None = None
) -> web.StreamResponse:
    """Send a 200 event-stream response's headers; the caller writes the body."""
    response = web.StreamResponse(
        status=200,
        headers={"Content-Type": EVENTSTREAM, "x-amzn-RequestId": "req-stream", **(headers or {})},
    )
    await response.prepare(request)
    return response


def stream_of(*chunks: bytes, headers: dict[str, str] | None = None, delay: float = 0.0) -> Handler:
    """A handler writing ``chunks`` (raw body bytes), ``delay`` seconds apart, then ending."""

    async def handler(request: web.Request, body: bytes) -> web.StreamResponse:
        response = await start_stream(request, headers)
        for index, chunk in enumerate(chunks):
            if delay and index:
                await asyncio.sleep(delay)
            await response.write(chunk)
        await response.write_eof()
        return response

    return handler


def parts_of(*payloads: bytes, headers: dict[str, str] | None = None) -> Handler:
    """A handler streaming one PayloadPart per payload, all in one write."""
    return stream_of(b"".join(encode_payload_part(p) for p in payloads), headers=headers)


class Disconnects:
    """Counts the times a streaming handler found its client gone (a write to it failed)."""

    def __init__(self) -> None:
        self.noticed = asyncio.Event()
        self.count = 0

    async def wait(self, count: int = 1) -> None:
        async def enough() -> None:
            while self.count < count:
                self.noticed.clear()
                await self.noticed.wait()

        await asyncio.wait_for(enough(), PROMPTLY)


def endless(disconnects: Disconnects, *, interval: float = 0.01) -> Handler:
    """A model that never stops generating: a line every ``interval`` seconds until the client
    goes away, which the handler notices when a write fails."""

    async def handler(request: web.Request, body: bytes) -> web.StreamResponse:
        response = await start_stream(request)
        try:
            index = 0
            while True:
                await response.write(encode_payload_part(f"token {index}\n".encode()))
                index += 1
                await asyncio.sleep(interval)
        except ConnectionError:
            disconnects.count += 1
            disconnects.noticed.set()
        return response

    return handler


class ReadTap:
    """Observes each chunk the response stream reads (sizes in ``chunks``), so that a lockstep
    server can wait until the client has read one piece before writing the next."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.chunks: list[int] = []
        self._reads: asyncio.Queue[int] = asyncio.Queue()
        real = transport_read_chunk

        async def read_chunk(response: aiohttp.ClientResponse) -> bytes:
            chunk = await real(response)
            if chunk:
                self.chunks.append(len(chunk))
                self._reads.put_nowait(len(chunk))
            return chunk

        monkeypatch.setattr(stream_module, "read_chunk", read_chunk)

    def reset(self) -> None:
        self.chunks.clear()
        while not self._reads.empty():
            self._reads.get_nowait()

    async def next_read(self) -> None:
        await asyncio.wait_for(self._reads.get(), PROMPTLY)

    def lockstep(self, pieces: Sequence[bytes]) -> Handler:
        """A handler writing ``pieces`` one by one, each only after the client read the last."""

        async def handler(request: web.Request, body: bytes) -> web.StreamResponse:
            response = await start_stream(request)
            for piece in pieces:
                await response.write(piece)
                await self.next_read()
            await response.write_eof()
            return response

        return handler


@pytest.fixture
def tap(monkeypatch: pytest.MonkeyPatch) -> ReadTap:
    return ReadTap(monkeypatch)


def split_at(data: bytes, cuts: Sequence[int]) -> list[bytes]:
    bounds = [0, *sorted(set(cuts)), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds) if b > a]


# -- clients --------------------------------------------------------------------------------------

MakeClient = Callable[..., SageMakerRuntimeClient]


@pytest.fixture
async def make_client(scripted_server: ScriptedServer) -> AsyncIterator[MakeClient]:
    clients: list[SageMakerRuntimeClient] = []

    def make(**kwargs: Any) -> SageMakerRuntimeClient:
        kwargs.setdefault("retry_policy", RetryPolicy.none())
        client = SageMakerRuntimeClient(
            "us-east-1",
            endpoint_url=scripted_server.url,
            aws_access_key_id=AKID,
            aws_secret_access_key=SECRET,
            **kwargs,
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.shutdown()


@pytest.fixture
def client(make_client: MakeClient) -> SageMakerRuntimeClient:
    return make_client()


FAST_RETRIES = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.05)


def call(client: SageMakerRuntimeClient, **kwargs: Any) -> StreamCall:
    kwargs.setdefault("endpoint_name", "gen")
    kwargs.setdefault("body", b'{"inputs": "Hello"}')
    return client.invoke_endpoint_with_response_stream(**kwargs)


async def collect(client: SageMakerRuntimeClient, **kwargs: Any) -> list[bytes]:
    async with call(client, **kwargs) as stream:
        return [part.bytes async for part in stream]


async def collect_until(
    client: SageMakerRuntimeClient, error: type[BaseException]
) -> tuple[list[bytes], Any]:
    """The parts received before the stream raised ``error``, and the error."""
    got: list[bytes] = []
    with pytest.raises(error) as info:
        async with call(client) as stream:
            async for part in stream:
                got.append(part.bytes)
    return got, info.value


async def lines_of(client: SageMakerRuntimeClient, **options: Any) -> list[str]:
    async with call(client) as stream:
        return [line async for line in stream.iter_lines(**options)]


# -- parts and response headers -------------------------------------------------------------------


async def test_parts_arrive_in_order_with_their_bytes(
    scripted_server: ScriptedServer, client: SageMakerRuntimeClient
) -> None:
    payloads = [b"first", b"", b"\x00\xff binary \r\n", b"x" * 300_000, b"last"]
    # One write per part, and a pause, so that parts also arrive in separate reads.
    chunks = [encode_payload_part(p) for p in payloads]
    scripted_server.script = [stream_of(*chunks, delay=0.005)]
    parts: list[PayloadPart] = []
    async with call(client) as stream:
        assert isinstance(stream, ResponseStream)
        async for part in stream:
            parts.append(part)
    assert all(isinstance(part, PayloadPart) for part in parts)
    assert [part.bytes for part in parts] == payloads


async def test_section_5_4_vector_decodes(
    scripted_server: ScriptedServer, client: SageMakerRuntimeClient
) -> None:
    scripted_server.script = [stream_of(VECTOR_5_4, VECTOR_5_4)]
    assert await collect(client) == [b'{"x":1}', b'{"x":1}']


async def test_response_headers_on_the_stream(
    scripted_server: ScriptedServer, client: SageMakerRuntimeClient
) -> None:
    scripted_server.script = [
        parts_of(
            b"a",
            headers={
                "X-Amzn-SageMaker-Content-Type": "application/jsonlines",
                "x-Amzn-Invoked-Production-Variant": "variant-b",
                "X-Amzn-SageMaker-Custom-Attributes": "trace=abc; cost=2",
                "x-amzn-RequestId": "11111111-2222-3333-4444-555555555555",
            },
        )
    ]
    async with call(client) as stream:
        # The model's content type, not the envelope's application/vnd.amazon.eventstream.
        assert stream.content_type == "application/jsonlines"
        assert stream.invoked_production_variant == "variant-b"
        assert stream.custom_attributes == "trace=abc; cost=2"
        metadata = stream.response_metadata
        assert metadata.request_id == "11111111-2222-3333-4444-555555555555"
        assert metadata.http_status_code == 200
        assert metadata.retry_attempts == 0
        assert metadata.http_headers["content-type"] == EVENTSTREAM
        assert metadata.http_headers["x-amzn-invoked-production-variant"] == "variant-b"
        assert all(name == name.lower() for name in metadata.http_headers)
        assert "11111111-2222-3333-4444-555555555555" in repr(stream)
        assert [part.bytes async for part in stream] == [b"a"]
    # Read from the response's headers when asked for: still there once the connection is back.
    assert (stream.content_type, stream.invoked_production_variant, stream.custom_attributes) == (
        "application/jsonlines",
        "variant-b",
        "trace=abc; cost=2",
    )


async def test_response_headers_absent_are_none(
    scripted_server: ScriptedServer, client: SageMakerRuntimeClient
) -> None:
    async def bare(request: web.Request, body: bytes) -> web.StreamResponse:
        response = web.StreamResponse(status=200, headers={"Content-Type": EVENTSTREAM})
        await response.prepare(request)
        await response.write(encode_payload_part(b"a"))
        await response.write_eof()
        return response

    scripted_server.script = [bare]
    async with call(client) as stream:
        assert stream.content_type is None  # not the envelope's Content-Type
        assert stream.invoked_production_variant is None
        assert stream.custom_attributes is None
        assert stream.response_metadata.request_id is None
        assert [part.bytes async for part in stream] == [b"a"]


async def test_empty_body_is_an_empty_stream(
    scripted_server: ScriptedServer, client: SageMakerRuntimeClient
) -> None:
    scripted_server.script = [stream_of()]
    assert await collect(client) == []


# -- however the bytes are cut --------------------------------------------------------------------


async def test_frames_written_one_byte_at_a_time(
    scripted_server: ScriptedServer, client: SageMakerRuntimeClient, tap: ReadTap
) -> None:
    payloads = [b'data: {"token": "Hel"}\n\n', b"", b"lo \xe2\x82\xac", b"!" * 40]
    body = b"".join(encode_payload_part(p) for p in payloads)
    scripted_server.script = [tap.lockstep([body[i : i + 1] for i in range(len(body))])]
    assert await collect(client) == payloads
    # The client really did read the body one byte per read.
    assert tap.chunks == [1] * len(body)


async def test_every_cut_position_of_a_small_stream(
    scripted_server: ScriptedServer, client: SageMakerRuntimeClient, tap: ReadTap
) -> None:
    for cut in range(1, len(SMALL_STREAM)):
        tap.reset()
        scripted_server.script = [tap.lockstep(split_at(SMALL_STREAM, [cut]))]
        assert await collect(client) == SMALL_PAYLOADS, f"cut at {cut}"
        assert tap.chunks == [cut, len(SMALL_STREAM) - cut], f"cut at {cut}"
    assert len(scripted_server.received) == len(SMALL_STREAM) - 1


async def test_random_multi_cuts_of_a_small_stream(
    scripted_server: ScriptedServer, client: SageMakerRuntimeClient, tap: ReadTap
) -> None:
    rand = random.Random(20240604)
    for _ in range(40):
        cuts = rand.sample(range(1, len(SMALL_STREAM)), rand.randint(2, 12))
        pieces = split_at(SMALL_STREAM, cuts)
        tap.reset()
        scripted_server.script = [tap.lockstep(pieces)]
        assert await collect(client) == SMALL_PAYLOADS, f"cuts {sorted(cuts)}"
        assert tap.chunks == [len(piece) for piece in pieces]


@settings(
    max_examples=100,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    payloads=st.lists(st.binary(max_size=40), min_size=1, max_size=4),
    data=st.data(),
)
async def test_hypothesis_splits(
    scripted_server: ScriptedServer,
    client: SageMakerRuntimeClient,
    tap: ReadTap,
    payloads: list[bytes],
    data: st.DataObject,
) -> None:
    body = b"".join(encode_payload_part(p) for p in payloads)
    cuts = data.draw(st.lists(st.integers(1, len(body) - 1), max_size=10, unique=True))
    pieces = split_at(body, cuts)
    tap.reset()
    scripted_server.script = [tap.lockstep(pieces)]
    assert await collect(client) == payloads
    assert tap.chunks == [len(piece) for piece in pieces]


# -- the request on the wire ----------------------------------------------------------------------

_AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<akid>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/"
    r"(?P<service>[^/]+)/aws4_request, SignedHeaders=(?P<signed>[a-z0-9;-]+), "
    r"Signature=(?P<signature>[0-9a-f]{64})"
)


def botocore_signature(method: str, raw_path: str, headers: Any, body: bytes) -> str:
    """The signature botocore computes for the received request (its signed headers, its time)."""
    match = _AUTHORIZATION.fullmatch(headers["Authorization"])
    assert match is not None, headers["Authorization"]
    signed = {name: headers[name] for name in match["signed"].split(";")}
    request = AWSRequest(
        method=method, url=f"http://{headers['Host']}{raw_path}", headers=signed, data=body
    )
    request.context["timestamp"] = headers["X-Amz-Date"]
    auth = SigV4Auth(Credentials(AKID, SECRET), "sagemaker", "us-east-1")
    string_to_sign = auth.string_to_sign(request, auth.canonical_request(request))
    return str(auth.signature(string_to_sign, request))


async def test_request_on_the_wire(
    scripted_server: ScriptedServer, client: SageMakerRuntimeClient
) -> None:
    scripted_server.script = [parts_of(b"ok")]
    body = '{"inputs": "Grüße", "parameters": {"max_new_tokens": 8}}'
    parts = await collect(
        client,
        body=body,
        content_type="application/json",
        accept="application/jsonlines",
        custom_attributes="c000b4f9-df62-4c85-a0bf-7c525f9104a4",
        target_variant="variant-b",
        target_container_hostname="container-1",
        inference_id="inf-42",
        inference_component_name="ic-llm",
        session_id="sess-1",
    )
    assert parts == [b"ok"]
    [received] = scripted_server.received
    headers = received.headers
    assert received.method == "POST"
    assert received.raw_path == STREAM_PATH
    assert received.body == body.encode()
    assert headers["Content-Type"] == "application/json"
    # Accept travels as X-Amzn-SageMaker-Accept for this operation; the standard header is absent.
    assert headers["X-Amzn-SageMaker-Accept"] == "application/jsonlines"
    assert "Accept" not in headers
    assert headers["X-Amzn-SageMaker-Custom-Attributes"] == "c000b4f9-df62-4c85-a0bf-7c525f9104a4"
    assert headers["X-Amzn-SageMaker-Target-Variant"] == "variant-b"
    assert headers["X-Amzn-SageMaker-Target-Container-Hostname"] == "container-1"
    assert headers["X-Amzn-SageMaker-Inference-Id"] == "inf-42"
    assert headers["X-Amzn-SageMaker-Inference-Component"] == "ic-llm"
    assert headers["X-Amzn-SageMaker-Session-Id"] == "sess-1"
    assert "X-Amzn-SageMaker-Target-Model" not in headers
    assert "X-Amzn-SageMaker-Enable-Explanations" not in headers
    # The event stream must arrive as sent: no compression.
    assert headers["Accept-Encoding"] == "identity"
    # Signed with SigV4 for sagemaker, over every modeled header, as botocore would sign it.
    match = _AUTHORIZATION.fullmatch(headers["Authorization"])
    assert match is not None
    assert (match["akid"], match["region"], match["service"]) == (AKID, "us-east-1", "sagemaker")
    signed = match["signed"].split(";")
    assert {
        "content-type",
        "host",
        "x-amz-date",
        "x-amzn-sagemaker-accept",
        "x-amzn-sagemaker-custom-attributes",
        "x-amzn-sagemaker-inference-id",
        "x-amzn-sagemaker-session-id",
    } <= set(signed)
    assert match["signature"] == botocore_signature(
        received.method, received.raw_path, headers, received.body
    )


async def test_no_accept_or_content_type_when_not_given(
    scripted_server: ScriptedServer, client: SageMakerRuntimeClient
) -> None:
    scripted_server.script = [parts_of(b"ok")]
    assert await collect(client, body=b"\x01\x02") == [b"ok"]
    [received] = scripted_server.received
    headers = received.headers
    for name in ("Accept", "Content-Type", "X-Amzn-SageMaker-Accept"):
        assert name not in headers, name
    assert received.body == b"\x01\x02"
    match = _AUTHORIZATION.fullmatch(headers["Authorization"])
    assert match is not None
    assert "content-type" not in match["signed"].split(";")
    assert match["signature"] == botocore_signature(
        received.method, received.raw_path, headers, received.body
    )


# -- iter_lines -----------------------------------------------------------------------------------

LINE_CASES = [
    pytest.param(
        [b'{"token": {"text": "He', b'llo"}}\n{"tok', b'en": {"text": "!"}}\n'],
        ['{"token": {"text": "Hello"}}', '{"token": {"text": "!"}}'],
        id="json-lines-split-across-parts",
    ),
    pytest.param(
        [b'data: {"text": "a"}\n', b"\n", b"data:", b' {"text": "b"}\n\ndata: [DONE]\n\n'],
        ['data: {"text": "a"}', "", 'data: {"text": "b"}', "", "data: [DONE]", ""],
        id="sse-data-lines-with-blank-separators",
    ),
    pytest.param(
        [b"one\r\ntwo\r", b"\nthree\r\n"],
        ["one", "two", "three"],
        id="crlf-also-split-between-cr-and-lf",
    ),
    pytest.param(
        [b"caf\xc3", b"\xa9 ", b"\xf0\x9f", b"\x98", b"\x80\n"],
        ["café 😀"],
        id="utf8-characters-split-across-parts",
    ),
    pytest.param([b"a\n", b"", b"b"], ["a", "b"], id="final-line-without-newline"),
    pytest.param([b"\n\n", b"\n", b"x\n\n"], ["", "", "", "x", ""], id="empty-lines-preserved"),
    pytest.param([b"", b""], [], id="no-bytes-no-lines"),
    pytest.param([b"last\n"], ["last"], id="no-phantom-line-after-final-newline"),
]


@pytest.mark.parametrize(("payloads", "expected"), LINE_CASES)
async def test_iter_lines(
    scripted_server: ScriptedServer,
    client: SageMakerRuntimeClient,
    payloads: list[bytes],
    expected: list[str],
) -> None:
    scripted_server.script = [parts_of(*payloads)]
    assert await lines_of(client) == expected


async def test_iter_lines_json_and_sse_decode(
    scripted_server: ScriptedServer, client: SageMakerRuntimeClient, tap: ReadTap
) -> None:
    """A TGI-style SSE stream, cut one byte per read, still yields whole events."""
    events = [{"token": {"text": t}} for t in ("Gr", "ü", "ße", " 😀")]
    text = "".join(f"data: {json.dumps(e, ensure_ascii=False)}\n\n" for e in events)
    raw = text.encode()
    body = b"".join(encode_payload_part(raw[i : i + 1]) for i in range(len(raw)))
    scripted_server.script = [stream_of(body)]
    lines = await lines_of(client)
    decoded = [json.loads(line.removeprefix("data: ")) for line in lines if line]
    assert decoded == events
    assert "".join(e["token"]["text"] for e in decoded) == "Grüße 😀"


async def test_iter_lines_other_encoding(
    scripted_server: ScriptedServer, client: SageMakerRuntimeClient
) -> None:
    scripted_server.script = [parts_of(b"caf\xe9\nna\xefve")]
    assert await lines_of(client, encoding="latin-1") == ["café", "naïve"]


@pytest.mark.parametrize(
    ("payloads", "expected"),
    [
        pytest.param([b"0123456789\n"], ["0123456789"], id="lf"),
        pytest.param([b"01234", b"56789\r\n"], ["0123456789"], id="crlf"),
        pytest.param([b"0123456789\r", b"\n"], ["0123456789"], id="cr-then-lf-in-next-part"),
        pytest.param([b"0123456789"], ["0123456789"], id="final-line"),
    ],
)
async def test_iter_lines_accepts_a_line_of_exactly_max_line_bytes(
    scripted_server: ScriptedServer,
    client: SageMakerRuntimeClient,
    payloads: list[bytes],
    expected: list[str],
) -> None:
    scripted_server.script = [parts_of(*payloads)]
    assert await lines_of(client, max_line_bytes=10) == expected


@pytest.mark.parametrize(
    "payloads",
    [
        pytest.param([b"ok\n01234567890\n"], id="in-one-part"),
        pytest.param([b"ok\n012345", b"67890\n"], id="across-parts"),
        pytest.param([b"ok\n012345", b"67890"], id="final-line"),
        pytest.param([b"ok\n0123456789\r\r\n"], id="crlf-does-not-hide-an-extra-cr"),
    ],
)
async def test_iter_lines_line_too_long(
    scripted_server: ScriptedServer, client: SageMakerRuntimeClient, payloads: list[bytes]
) -> None:
    scripted_server.script = [parts_of(*payloads)]
    seen: list[str] = []
    with pytest.raises(LineTooLongError) as info:
        async with call(client) as stream:
            async for line in stream.iter_lines(max_line_bytes=10):
                seen.append(line)
    assert seen == ["ok"]
    assert info.value.limit == 10


async def test_iter_lines_bounds_memory_on_an_endless_line(
    scripted_server: ScriptedServer, client: SageMakerRuntimeClient
) -> None:
    """A model that never sends a newline: iter_lines gives up at the bound, not at the end."""
    disconnects = Disconnects()

    async def no_newlines(request: web.Request, body: bytes) -> web.StreamResponse:
        response = await start_stream(request)
        try:
            while True:
                await response.write(encode_payload_part(b"x" * 1000))
                await asyncio.sleep(0.001)
        except ConnectionError:
            disconnects.count += 1
            disconnects.noticed.set()
        return response

    scripted_server.script = [no_newlines]
    with pytest.raises(LineTooLongError):
        async with call(client) as stream:
            async for _ in stream.iter_lines(max_line_bytes=64 * 1024):
                pytest.fail("no line can be complete")
    await disconnects.wait()


async def test_iter_lines_then_stream_error(
    scripted_server: ScriptedServer, client: SageMakerRuntimeClient
) -> None:
    scripted_server.script = [
        stream_of(
            encode_payload_part(b"line 1\nline"),
            encode_payload_part(b" 2\npartial"),
            encode_exception("ModelStreamError", "broken", error_code="StreamBroken"),
        )
    ]
    seen: list[str] = []
    with pytest.raises(ModelStreamError) as info:
        async with call(client) as stream:
            async for line in stream.iter_lines():
                seen.append(line)
    # The incomplete last line is not passed off as a line when the stream failed.
    assert seen == ["line 1", "line 2"]
    assert info.value.error_code == "StreamBroken"


# -- exception and error events -------------------------------------------------------------------


@pytest.mark.parametrize("error_code", ["ModelInvocationTimeExceeded", "StreamBroken"])
async def test_model_stream_error_after_earlier_parts(
    scripted_server: ScriptedServer, client: SageMakerRuntimeClient, error_code: str
) -> None:
    scripted_server.script = [
        stream_of(
            encode_payload_part(b"one"),
            encode_payload_part(b"two"),
            encode_exception("ModelStreamError", "Model stream failed", error_code=error_code),
            encode_payload_part(b"never seen"),
        )
    ]
    got, error = await collect_until(client, ModelStreamError)
    assert got == [b"one", b"two"]
    assert type(error) is ModelStreamError
    assert isinstance(error, ServiceError)
    assert error.error_code == error_code
    assert error.code == "ModelStreamError"
    assert error.message == "Model stream failed"
    assert error.request_id == "req-stream"


async def test_model_stream_error_lowercase_message_key(
    scripted_server: ScriptedServer, client: SageMakerRuntimeClient
) -> None:
    headers = {
        ":exception-type": "ModelStreamError",
        ":content-type": "application/json",
        ":message-type": "exception",
    }
    payload = json.dumps({"message": "lower", "ErrorCode": "StreamBroken"}).encode()
    scripted_server.script = [stream_of(encode_message(headers, payload))]
    got, error = await collect_until(client, ModelStreamError)
    assert got == []
    assert (error.message, error.error_code) == ("lower", "StreamBroken")


async def test_internal_stream_failure(
    scripted_server: ScriptedServer, client: SageMakerRuntimeClient
) -> None:
    scripted_server.script = [
        stream_of(
            encode_payload_part(b"one"),
            encode_exception("InternalStreamFailure", "Internal failure in the stream"),
        )
    ]
    got, error = await collect_until(client, InternalStreamFailure)
    assert got == [b"one"]
    assert error.code == "InternalStreamFailure"
    assert error.message == "Internal failure in the stream"
    assert error.request_id == "req-stream"


async def test_unmodeled_exception_type_is_a_service_error(
    scripted_server: ScriptedServer, client: SageMakerRuntimeClient
) -> None:
    scripted_server.script = [
        stream_of(encode_payload_part(b"one"), encode_exception("FutureFailure", "new kind"))
    ]
    got, error = await collect_until(client, ServiceError)
    assert got == [b"one"]
    assert not isinstance(error, (ModelStreamError, InternalStreamFailure))
    assert (error.code, error.message) == ("FutureFailure", "new kind")


async def test_error_message_is_a_service_error_with_its_code(
    scripted_server: ScriptedServer, client: SageMakerRuntimeClient
) -> None:
    scripted_server.script = [
        stream_of(
            encode_payload_part(b"one"),
            encode_error("ThrottlingException", "Rate exceeded"),
            encode_payload_part(b"never seen"),
        )
    ]
    got, error = await collect_until(client, ServiceError)
    assert got == [b"one"]
    assert error.code == "ThrottlingException"
    assert error.message == "Rate exceeded"
    assert error.request_id == "req-stream"


async def test_unknown_event_type_is_skipped_and_logged(
    scripted_server: ScriptedServer,
    client: SageMakerRuntimeClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    future_event = encode_message(
        {
            ":event-type": "TokenUsage",
            ":content-type": "application/json",
            ":message-type": "event",
        },
        b'{"tokens": 3}',
    )
    scripted_server.script = [
        stream_of(encode_payload_part(b"one"), future_event, encode_payload_part(b"two"))
    ]
    with caplog.at_level(logging.DEBUG, logger="sagemaker_rt_aio"):
        assert await collect(client) == [b"one", b"two"]
    skipped = [r for r in caplog.records if "TokenUsage" in r.getMessage()]
    assert len(skipped) == 1
    assert skipped[0].levelno == logging.DEBUG
    assert skipped[0].name == "sagemaker_rt_aio"


# -- broken framing -------------------------------------------------------------------------------

_SECOND = encode_payload_part(b"second part")


@pytest.mark.parametrize(
    "kept",
    [
        pytest.param(1, id="one-byte-of-prelude"),
        pytest.param(11, id="in-prelude"),
        pytest.param(12, id="prelude-only"),
        pytest.param(40, id="in-headers"),
        pytest.param(len(_SECOND) - 8, id="in-payload"),
        pytest.param(len(_SECOND) - 1, id="last-crc-byte-missing"),
    ],
)
async def test_body_ending_mid_message_raises(
    scripted_server: ScriptedServer, client: SageMakerRuntimeClient, kept: int
) -> None:
    # A well-formed HTTP body (the chunked encoding ends properly) whose last message is cut.
    scripted_server.script = [stream_of(encode_payload_part(b"first"), _SECOND[:kept])]
    got, error = await collect_until(client, EventStreamError)
    assert got == [b"first"]
    assert "truncated" in str(error)


def _flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1 :]


@pytest.mark.parametrize(
    "index",
    [
        pytest.param(2, id="total-length"),
        pytest.param(9, id="prelude-crc"),
        pytest.param(20, id="header-name"),
        pytest.param(len(_SECOND) - 6, id="payload"),
        pytest.param(len(_SECOND) - 1, id="message-crc"),
    ],
)
async def test_corrupted_message_raises(
    scripted_server: ScriptedServer, client: SageMakerRuntimeClient, tap: ReadTap, index: int
) -> None:
    pieces = [encode_payload_part(b"first"), _flip(_SECOND, index), encode_payload_part(b"third")]
    scripted_server.script = [tap.lockstep(pieces)]
    got, error = await collect_until(client, EventStreamError)
    assert got == [b"first"]
    assert "CRC" in str(error)


async def test_parts_before_a_corrupted_message_in_the_same_read_are_yielded(
    scripted_server: ScriptedServer, client: SageMakerRuntimeClient
) -> None:
    # Same bytes as above, but in one write: whether "first" is seen must not depend on how the
    # network happened to cut the body.
    body = encode_payload_part(b"first") + _flip(_SECOND, len(_SECOND) - 1)
    scripted_server.script = [stream_of(body)]
    got, _ = await collect_until(client, EventStreamError)
    assert got == [b"first"]


@pytest.mark.parametrize("at_boundary", [True, False], ids=["between-messages", "mid-message"])
async def test_connection_dropped_mid_body_raises(
    scripted_server: ScriptedServer, make_client: MakeClient, at_boundary: bool
) -> None:
    async def dropper(request: web.Request, body: bytes) -> web.StreamResponse:
        response = await start_stream(request)
        await response.write(encode_payload_part(b"first"))
        if not at_boundary:
            await response.write(_SECOND[:20])
        await asyncio.sleep(0.05)
        assert request.transport is not None
        request.transport.abort()  # no end of the chunked body: the connection just drops
        return response

    scripted_server.script = [dropper, parts_of(b"a retry would see this")]
    # Even with retries on: the request was sent and the model ran, so it is never re-sent.
    client = make_client(retry_policy=FAST_RETRIES)
    got, _ = await collect_until(client, ConnectionClosedError)
    assert got == [b"first"]
    assert len(scripted_server.received) == 1


# -- HTTP errors before the stream starts, and retries --------------------------------------------


@pytest.mark.parametrize(
    ("status", "code", "cls"),
    [
        (400, "ValidationError", ValidationError),
        (424, "ModelError", ModelError),
        (500, "InternalFailure", InternalFailure),
        (503, "ServiceUnavailable", ServiceUnavailable),
    ],
)
async def test_http_error_before_the_stream_is_typed(
    scripted_server: ScriptedServer,
    client: SageMakerRuntimeClient,
    status: int,
    code: str,
    cls: type[ServiceError],
) -> None:
    extra = {"OriginalStatusCode": 500, "OriginalMessage": "CUDA out of memory"}
    scripted_server.script = [
        json_error(status, code, f"{code} happened", **(extra if cls is ModelError else {}))
    ]
    with pytest.raises(ServiceError) as info:
        async with call(client):
            pytest.fail("the block must not be entered")
    error = info.value
    assert type(error) is cls
    assert (error.code, error.status_code) == (code, status)
    assert error.message == f"{code} happened"
    assert error.request_id == f"req-{code}"
    assert error.response_metadata is not None
    assert error.response_metadata.http_status_code == status
    if isinstance(error, ModelError):
        assert error.original_status_code == 500
        assert error.original_message == "CUDA out of memory"
    assert len(scripted_server.received) == 1


async def test_http_error_same_as_invoke_endpoint(
    scripted_server: ScriptedServer, client: SageMakerRuntimeClient
) -> None:
    handler = json_error(424, "ModelError", "Received server error (500)", OriginalStatusCode=500)
    scripted_server.script = [handler]
    with pytest.raises(ModelError) as streamed:
        async with call(client):
            pass
    with pytest.raises(ModelError) as plain:
        await client.invoke_endpoint(endpoint_name="gen", body=b"{}")
    a, b = streamed.value, plain.value
    assert (a.code, a.status_code, a.message, a.original_status_code, a.request_id) == (
        b.code,
        b.status_code,
        b.message,
        b.original_status_code,
        b.request_id,
    )


async def test_503_then_200_is_retried(
    scripted_server: ScriptedServer, make_client: MakeClient
) -> None:
    scripted_server.script = [
        json_error(503, "ServiceUnavailable", "busy"),
        parts_of(b"after", b"retry"),
    ]
    client = make_client(retry_policy=FAST_RETRIES)
    async with call(client) as stream:
        assert stream.response_metadata.retry_attempts == 1
        assert [part.bytes async for part in stream] == [b"after", b"retry"]
    assert len(scripted_server.received) == 2
    first, second = scripted_server.received
    assert first.raw_path == second.raw_path == STREAM_PATH
    assert first.body == second.body
    # Each attempt is signed on its own, and both signatures are valid.
    for received in (first, second):
        match = _AUTHORIZATION.fullmatch(received.headers["Authorization"])
        assert match is not None
        assert match["signature"] == botocore_signature(
            received.method, received.raw_path, received.headers, received.body
        )


@pytest.mark.parametrize(
    ("event", "error"),
    [
        pytest.param(
            encode_error("ServiceUnavailable", "busy mid-stream"), ServiceError, id="error"
        ),
        pytest.param(
            encode_exception("ModelStreamError", "broken", error_code="StreamBroken"),
            ModelStreamError,
            id="model-stream-error",
        ),
        pytest.param(
            encode_exception("InternalStreamFailure", "oops"),
            InternalStreamFailure,
            id="internal-stream-failure",
        ),
    ],
)
async def test_error_inside_a_started_stream_is_not_retried(
    scripted_server: ScriptedServer,
    make_client: MakeClient,
    event: bytes,
    error: type[ServiceError],
) -> None:
    scripted_server.script = [
        stream_of(encode_payload_part(b"one"), event),
        parts_of(b"a retry would see this"),
    ]
    client = make_client(retry_policy=FAST_RETRIES)
    got, _ = await collect_until(client, error)
    assert got == [b"one"]
    await asyncio.sleep(0.1)  # longer than any retry delay of FAST_RETRIES
    assert len(scripted_server.received) == 1


# -- timeouts -------------------------------------------------------------------------------------


async def test_read_timeout_applies_between_chunks_not_to_the_stream(
    scripted_server: ScriptedServer, make_client: MakeClient
) -> None:
    payloads = [f"token {i}\n".encode() for i in range(10)]
    scripted_server.script = [stream_of(*map(encode_payload_part, payloads), delay=0.05)]
    client = make_client(timeout=aiohttp.ClientTimeout(sock_read=0.2))
    started = time.monotonic()
    assert await collect(client) == payloads
    # The whole stream took more than twice sock_read: the timeout is per read.
    assert time.monotonic() - started >= 0.45


async def test_read_timeout_on_a_stall_between_parts(
    scripted_server: ScriptedServer, make_client: MakeClient
) -> None:
    scripted_server.script = [
        stream_of(encode_payload_part(b"one"), encode_payload_part(b"two"), delay=1.0)
    ]
    client = make_client(timeout=aiohttp.ClientTimeout(sock_read=0.3), retry_policy=FAST_RETRIES)
    started = time.monotonic()
    got, error = await collect_until(client, ReadTimeoutError)
    elapsed = time.monotonic() - started
    assert got == [b"one"]
    assert isinstance(error, TimeoutError)
    assert elapsed >= 0.25  # sock_read passed; that it ended the read before the stall did, the
    # missing second part shows (it comes 1 s in)
    assert len(scripted_server.received) == 1  # a read timeout is never retried


async def test_read_timeout_before_the_first_byte(
    scripted_server: ScriptedServer, make_client: MakeClient
) -> None:
    async def slow_headers(request: web.Request, body: bytes) -> web.StreamResponse:
        await asyncio.sleep(1.0)
        return await parts_of(b"late")(request, body)

    scripted_server.script = [slow_headers]
    client = make_client(timeout=aiohttp.ClientTimeout(sock_read=0.3))
    started = time.monotonic()
    with pytest.raises(ReadTimeoutError):
        async with call(client):
            pytest.fail("the block must not be entered")  # the headers came after 1 s
    assert time.monotonic() - started >= 0.25


# -- releasing the connection ---------------------------------------------------------------------


def peer_port_recorder(ports: list[int], handler: Handler) -> Handler:
    async def record(request: web.Request, body: bytes) -> web.StreamResponse:
        assert request.transport is not None
        ports.append(request.transport.get_extra_info("peername")[1])
        return await handler(request, body)

    return record


async def test_fully_read_stream_reuses_the_connection(
    scripted_server: ScriptedServer, client: SageMakerRuntimeClient
) -> None:
    ports: list[int] = []
    scripted_server.script = [peer_port_recorder(ports, parts_of(b"a\n", b"b\n"))]
    assert await collect(client) == [b"a\n", b"b\n"]
    assert await collect(client) == [b"a\n", b"b\n"]
    assert await lines_of(client) == ["a", "b"]

    async def plain(request: web.Request, body: bytes) -> web.StreamResponse:
        return web.Response(body=b"plain")

    scripted_server.script = [peer_port_recorder(ports, plain)]
    result = await client.invoke_endpoint(endpoint_name="gen", body=b"{}")
    assert result.body == b"plain"
    assert len(ports) == 4
    assert len(set(ports)) == 1, ports


async def _next_call_works(client: SageMakerRuntimeClient, server: ScriptedServer) -> None:
    server.script = [parts_of(b"fresh")]
    assert await asyncio.wait_for(collect(client), PROMPTLY) == [b"fresh"]


async def test_leaving_the_block_early_releases_the_connection(
    scripted_server: ScriptedServer, make_client: MakeClient
) -> None:
    # One connection in the pool: if the stream kept it, the next call would wait forever.
    client = make_client(max_connections=1)
    disconnects = Disconnects()
    ports: list[int] = []
    scripted_server.script = [peer_port_recorder(ports, endless(disconnects))]
    async with call(client) as stream:
        async for part in stream:
            assert part.bytes == b"token 0\n"
            break
    await disconnects.wait()
    scripted_server.script = [peer_port_recorder(ports, parts_of(b"fresh"))]
    assert await asyncio.wait_for(collect(client), PROMPTLY) == [b"fresh"]
    # The half-read connection was closed, not handed to the next call.
    assert ports[0] != ports[1]


async def test_iter_lines_left_early_releases_the_connection(
    scripted_server: ScriptedServer, make_client: MakeClient
) -> None:
    client = make_client(max_connections=1)
    disconnects = Disconnects()
    scripted_server.script = [endless(disconnects)]
    async with call(client) as stream:
        async for line in stream.iter_lines():
            assert line == "token 0"
            break
    await disconnects.wait()
    await _next_call_works(client, scripted_server)


async def test_exception_inside_the_block_releases_the_connection(
    scripted_server: ScriptedServer, make_client: MakeClient
) -> None:
    client = make_client(max_connections=1)
    disconnects = Disconnects()
    scripted_server.script = [endless(disconnects)]

    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        async with call(client) as stream:
            async for _ in stream:
                raise Boom
    await disconnects.wait()
    await _next_call_works(client, scripted_server)


async def test_block_left_without_reading_releases_the_connection(
    scripted_server: ScriptedServer, make_client: MakeClient
) -> None:
    client = make_client(max_connections=1)
    disconnects = Disconnects()
    scripted_server.script = [endless(disconnects)]
    async with call(client):
        pass
    await disconnects.wait()
    await _next_call_works(client, scripted_server)


async def test_cancelled_reader_releases_the_connection(
    scripted_server: ScriptedServer, make_client: MakeClient
) -> None:
    client = make_client(max_connections=1)
    disconnects = Disconnects()
    reading = asyncio.Event()

    async def slow(request: web.Request, body: bytes) -> web.StreamResponse:
        response = await start_stream(request)
        try:
            await response.write(encode_payload_part(b"one"))
            while True:
                await asyncio.sleep(0.02)
                if request.transport is None or request.transport.is_closing():
                    raise ConnectionResetError
        except ConnectionError:
            disconnects.count += 1
            disconnects.noticed.set()
        return response

    async def consume() -> None:
        async with call(client) as stream:
            async for _ in stream:
                reading.set()

    scripted_server.script = [slow]
    task = asyncio.create_task(consume())
    await asyncio.wait_for(reading.wait(), PROMPTLY)
    await asyncio.sleep(0.05)  # the task now waits for a part that will never come
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await disconnects.wait()
    await _next_call_works(client, scripted_server)


async def test_stream_error_releases_the_connection(
    scripted_server: ScriptedServer, make_client: MakeClient
) -> None:
    client = make_client(max_connections=1)

    async def error_then_hang(request: web.Request, body: bytes) -> web.StreamResponse:
        response = await start_stream(request)
        await response.write(
            encode_exception(
                "ModelStreamError", "timeout", error_code="ModelInvocationTimeExceeded"
            )
        )
        await asyncio.sleep(30)  # the body never ends: only closing the connection frees it
        return response

    scripted_server.script = [error_then_hang]
    got, error = await collect_until(client, ModelStreamError)
    assert (got, error.error_code) == ([], "ModelInvocationTimeExceeded")
    await _next_call_works(client, scripted_server)


# -- validation, single iteration, cached metadata, shutdown --------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"session_id": "NEW_SESSION"}, id="new-session-refused"),
        pytest.param({"endpoint_name": "bad name!"}, id="bad-endpoint-name"),
        pytest.param({"endpoint_name": ""}, id="empty-endpoint-name"),
        pytest.param({"body": None}, id="no-body"),
        pytest.param({"body": 42}, id="body-not-bytes"),
        pytest.param({"accept": "x" * 1025}, id="accept-too-long"),
        pytest.param({"content_type": "text/plain\r\nX-Injected: 1"}, id="header-injection"),
        pytest.param({"inference_id": ""}, id="empty-inference-id"),
        pytest.param({"target_variant": "-bad"}, id="bad-variant"),
    ],
)
async def test_validation_before_anything_is_sent(
    scripted_server: ScriptedServer, client: SageMakerRuntimeClient, kwargs: dict[str, Any]
) -> None:
    with pytest.raises(ParamValidationError):
        call(client, **kwargs)  # the call itself raises: no need to enter the block
    assert scripted_server.received == []


async def test_body_over_the_limit_is_refused_before_sending(
    scripted_server: ScriptedServer, make_client: MakeClient
) -> None:
    client = make_client(max_body_bytes=100)
    with pytest.raises(ParamValidationError) as info:
        call(client, body=b"x" * 101)
    assert info.value.field == "body"
    call(client, body=b"x" * 100)  # at the limit is fine (and not sent until entered)
    assert scripted_server.received == []


async def test_target_model_is_not_a_parameter(
    scripted_server: ScriptedServer, client: SageMakerRuntimeClient
) -> None:
    with pytest.raises(TypeError):
        call(client, target_model="model.tar.gz")
    with pytest.raises(TypeError):
        call(client, enable_explanations="`true`")
    with pytest.raises(TypeError):
        InvokeEndpointWithResponseStreamRequest(  # type: ignore[call-arg]
            endpoint_name="gen", body=b"{}", target_model="model.tar.gz"
        )
    assert scripted_server.received == []


async def test_request_object_of_the_wrong_operation_is_refused(
    scripted_server: ScriptedServer, client: SageMakerRuntimeClient
) -> None:
    wrong = InvokeEndpointRequest(endpoint_name="gen", body=b"{}")
    with pytest.raises(ParamValidationError):
        client.invoke_endpoint_with_response_stream(wrong)  # type: ignore[arg-type]
    bad = InvokeEndpointWithResponseStreamRequest(
        endpoint_name="gen", body=b"{}", session_id="NEW_SESSION"
    )
    with pytest.raises(ParamValidationError):
        client.invoke_endpoint_with_response_stream(bad)
    assert scripted_server.received == []


async def test_nothing_is_sent_until_the_block_is_entered(
    scripted_server: ScriptedServer, client: SageMakerRuntimeClient
) -> None:
    scripted_server.script = [parts_of(b"a")]
    pending = call(client)
    await asyncio.sleep(0.05)
    assert scripted_server.received == []
    async with pending as stream:
        assert [part.bytes async for part in stream] == [b"a"]
    assert len(scripted_server.received) == 1


async def test_a_stream_iterates_only_once(
    scripted_server: ScriptedServer, client: SageMakerRuntimeClient
) -> None:
    scripted_server.script = [parts_of(b"a\n", b"b\n")]
    async with call(client) as stream:
        assert [part.bytes async for part in stream] == [b"a\n", b"b\n"]
        with pytest.raises(RuntimeError):
            async for _ in stream:
                pass
        with pytest.raises(RuntimeError):
            async for _ in stream.iter_lines():
                pass


async def test_a_partly_read_stream_cannot_be_read_again(
    scripted_server: ScriptedServer, client: SageMakerRuntimeClient
) -> None:
    scripted_server.script = [parts_of(b"a\n", b"b\n", b"c\n")]
    async with call(client) as stream:
        async for line in stream.iter_lines():
            assert line == "a"
            break
        with pytest.raises(RuntimeError):
            async for _ in stream:
                pass


async def test_cached_response_metadata_for_a_request_object(
    scripted_server: ScriptedServer, client: SageMakerRuntimeClient
) -> None:
    scripted_server.script = [parts_of(b"a", headers={"x-amzn-RequestId": "req-cached"})]
    request = InvokeEndpointWithResponseStreamRequest(
        endpoint_name="gen", body=b"{}", accept="application/jsonlines"
    )
    assert client.get_cached_response_metadata(request) is None
    async with client.invoke_endpoint_with_response_stream(request) as stream:
        cached = client.get_cached_response_metadata(request)
        assert cached is stream.response_metadata
        assert [part.bytes async for part in stream] == [b"a"]
    assert cached is not None
    assert cached.request_id == "req-cached"
    assert cached.http_status_code == 200
    [received] = scripted_server.received
    assert received.headers["X-Amzn-SageMaker-Accept"] == "application/jsonlines"
    # A failed call caches nothing for its request object.
    failing = InvokeEndpointWithResponseStreamRequest(endpoint_name="gen", body=b"{}")
    scripted_server.script = [json_error(400, "ValidationError", "no")]
    with pytest.raises(ValidationError):
        async with client.invoke_endpoint_with_response_stream(failing):
            pass
    assert client.get_cached_response_metadata(failing) is None


async def test_call_after_shutdown_is_refused(
    scripted_server: ScriptedServer, client: SageMakerRuntimeClient
) -> None:
    scripted_server.script = [parts_of(b"a")]
    assert await collect(client) == [b"a"]
    await client.shutdown()
    assert client.closed
    with pytest.raises(ClientClosedError):
        async with call(client):
            pytest.fail("the block must not be entered")
    assert len(scripted_server.received) == 1


async def _read_all(stream: ResponseStream, parts: list[bytes], first: asyncio.Event) -> None:
    async for part in stream:
        parts.append(part.bytes)
        first.set()


async def test_shutdown_while_a_stream_is_read_ends_it_with_an_error(
    scripted_server: ScriptedServer, client: SageMakerRuntimeClient
) -> None:
    """A reader must not be left waiting forever on a connection shutdown() closed."""
    disconnects = Disconnects()
    scripted_server.script = [endless(disconnects, interval=0.05)]
    parts: list[bytes] = []
    first = asyncio.Event()
    with pytest.raises((ClientClosedError, ConnectionClosedError)):
        async with call(client) as stream:
            reader = asyncio.create_task(_read_all(stream, parts, first))
            await asyncio.wait_for(first.wait(), PROMPTLY)
            await client.shutdown(grace=0.1)
            await asyncio.wait_for(reader, 2.0)
    assert parts


def gated(
    release: asyncio.Event,
    *,
    answer: asyncio.Event | None = None,
    headers: dict[str, str] | None = None,
) -> Handler:
    """A stream of two parts, the second once ``release`` is set; with ``answer``, nothing at
    all (not even the headers) until that is set."""

    async def handler(request: web.Request, body: bytes) -> web.StreamResponse:
        if answer is not None:
            await answer.wait()
        response = await start_stream(request, headers)
        await response.write(encode_payload_part(b"a"))
        await release.wait()
        await response.write(encode_payload_part(b"b"))
        await response.write_eof()
        return response

    return handler


async def _ticks(count: int = 20) -> None:
    for _ in range(count):
        await asyncio.sleep(0)


async def test_shutdown_waits_for_an_open_stream_and_ends_when_it_is_read_out(
    scripted_server: ScriptedServer, client: SageMakerRuntimeClient
) -> None:
    """Within the grace period, shutdown waits for a stream being read, and returns as soon as
    the stream is closed, not when the grace period (an hour here) ends."""
    release = asyncio.Event()
    scripted_server.script = [gated(release)]
    async with call(client) as stream:
        parts = stream.__aiter__()
        first = await asyncio.wait_for(parts.__anext__(), PROMPTLY)
        shutdown = asyncio.create_task(client.shutdown(grace=3600))
        await _ticks()
        assert not shutdown.done()  # the stream is open: shutdown waits for it
        release.set()
        rest = [part.bytes async for part in parts]
    await asyncio.wait_for(shutdown, PROMPTLY)
    assert [first.bytes, *rest] == [b"a", b"b"]
    assert client.closed


async def test_shutdown_waits_for_a_stream_that_opens_while_it_runs(
    scripted_server: ScriptedServer, client: SageMakerRuntimeClient
) -> None:
    """A stream call in flight when shutdown begins may still open its stream within the grace
    period; shutdown then waits for that stream too, and returns once it is closed."""
    answer, release = asyncio.Event(), asyncio.Event()
    scripted_server.script = [gated(release, answer=answer)]

    async def read() -> list[bytes]:
        async with call(client) as stream:
            return [part.bytes async for part in stream]

    reader = asyncio.create_task(read())
    for _ in range(500):  # bounded: until the request has reached the server
        if scripted_server.received:
            break
        await asyncio.sleep(0.01)
    assert scripted_server.received
    shutdown = asyncio.create_task(client.shutdown(grace=3600))
    await _ticks()
    answer.set()  # the stream opens now, while the client is closing
    for _ in range(500):  # bounded: until the stream is open and its first part read
        if not shutdown.done() and client._lifecycle._resources:
            break
        await asyncio.sleep(0.01)
    await _ticks()
    assert not shutdown.done()  # the stream is open: shutdown waits for it
    release.set()
    assert await asyncio.wait_for(reader, PROMPTLY) == [b"a", b"b"]
    await asyncio.wait_for(shutdown, PROMPTLY)
    assert client.closed


async def test_concurrent_shutdowns_both_wait_for_an_open_stream(
    scripted_server: ScriptedServer, client: SageMakerRuntimeClient
) -> None:
    """A second shutdown while a stream is open waits for it too, and both return once it is
    closed."""
    release = asyncio.Event()
    scripted_server.script = [gated(release)]
    async with call(client) as stream:
        parts = stream.__aiter__()
        await asyncio.wait_for(parts.__anext__(), PROMPTLY)
        first = asyncio.create_task(client.shutdown(grace=3600))
        await _ticks()
        second = asyncio.create_task(client.shutdown(grace=3600))
        await _ticks()
        assert not first.done() and not second.done()
        release.set()
        assert [part.bytes async for part in parts] == [b"b"]
    await asyncio.wait_for(asyncio.gather(first, second), PROMPTLY)
    assert client.closed


async def test_a_cancelled_shutdown_ends_an_open_stream_and_still_closes(
    scripted_server: ScriptedServer, client: SageMakerRuntimeClient
) -> None:
    """Cancelling shutdown (an application's own shutdown timeout) cuts the grace short: the
    stream's pending read ends with an error, and the client still closes."""
    release = asyncio.Event()
    variant = {"X-Amzn-Invoked-Production-Variant": "variant-c"}
    scripted_server.script = [gated(release, headers=variant)]
    try:
        with pytest.raises((ClientClosedError, ConnectionClosedError)):
            async with call(client) as stream:
                parts = stream.__aiter__()
                await asyncio.wait_for(parts.__anext__(), PROMPTLY)
                pending = asyncio.create_task(parts.__anext__())  # waits for the second part
                await _ticks()
                with pytest.raises(asyncio.TimeoutError):
                    await asyncio.wait_for(client.shutdown(grace=3600), 0.05)
                await asyncio.wait_for(pending, PROMPTLY)
        await asyncio.wait_for(client.shutdown(), PROMPTLY)  # waits for the same shutdown's end
        assert client.closed
        # The stream's fields are read from its response's headers: an aborted one keeps them.
        assert stream.invoked_production_variant == "variant-c"
        # So is its metadata, first asked for here.
        assert stream._metadata is None
        metadata = stream.response_metadata
        assert metadata.http_status_code == 200
        assert metadata.http_headers["x-amzn-invoked-production-variant"] == "variant-c"
    finally:
        release.set()


# -- through the local runtime --------------------------------------------------------------------


async def test_streaming_through_the_local_runtime() -> None:
    local = pytest.importorskip("sagemaker_rt_aio.local")

    async def generate(invocation: Any) -> AsyncIterator[bytes]:
        prompt = invocation.json()["inputs"]
        for word in [prompt, "wor", "ld 😀"]:
            yield json.dumps({"token": word}, ensure_ascii=False).encode()[:-1]
            yield b"}\n"

    async def breaks(invocation: Any) -> AsyncIterator[bytes]:
        yield b"partial\n"
        raise RuntimeError("the GPU caught fire")

    async with local.LocalRuntime() as runtime:
        runtime.add_endpoint("gen", generate)
        runtime.add_endpoint("broken", breaks)
        async with SageMakerRuntimeClient(
            "us-east-1",
            endpoint_url=runtime.url,
            aws_access_key_id="AKIDLOCAL",
            aws_secret_access_key="local-secret",
            retry_policy=RetryPolicy.none(),
        ) as client:
            async with client.invoke_endpoint_with_response_stream(
                endpoint_name="gen",
                body=json.dumps({"inputs": "Hello"}),
                content_type="application/json",
                accept="application/jsonlines",
            ) as stream:
                assert stream.response_metadata.http_status_code == 200
                assert stream.response_metadata.request_id
                lines = [line async for line in stream.iter_lines()]
            assert [json.loads(line)["token"] for line in lines] == ["Hello", "wor", "ld 😀"]
            [invocation] = runtime.invocations("gen")
            assert invocation.accept == "application/jsonlines"
            assert invocation.content_type == "application/json"

            got: list[bytes] = []
            with pytest.raises(ModelStreamError) as info:
                async with client.invoke_endpoint_with_response_stream(
                    endpoint_name="broken", body=b"{}"
                ) as stream:
                    async for part in stream:
                        got.append(part.bytes)
            assert got == [b"partial\n"]
            assert info.value.code == "ModelStreamError"

            with pytest.raises(ValidationError):
                async with client.invoke_endpoint_with_response_stream(
                    endpoint_name="missing", body=b"{}"
                ):
                    pytest.fail("the block must not be entered")
