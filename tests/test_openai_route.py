"""The OpenAI-compatible route end to end: our client and the openai SDK against the local
runtime (bearer tokens checked), and the LLM stream helpers on both kinds of stream."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import aiohttp
import botocore.credentials
import openai
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest

from sagemaker_rt_aio import (
    ClientClosedError,
    ConnectionClosedError,
    DeadlineExceededError,
    HttpRequest,
    HttpResponse,
    JsonDecoder,
    LineTooLongError,
    ModelError,
    ModelStreamError,
    ParamValidationError,
    RetryPolicy,
    SageMakerRuntimeClient,
    ServerSentEvent,
    ServiceError,
    ServiceUnavailable,
    SSEDecoder,
)
from sagemaker_rt_aio._bearer import make_bearer_token
from sagemaker_rt_aio._signing import FrozenCredentials
from sagemaker_rt_aio.local import LocalRuntime
from sagemaker_rt_aio.local._invocation import Invocation, InvocationResponse
from sagemaker_rt_aio.local.demo_models import FORMATS, LLM_TEXT, CannedLLM, llm_handlers

CREDS = botocore.credentials.Credentials("AKIDROUTE", "route-secret", "route/session+token=")
MESSAGES = [{"role": "user", "content": "hello"}]


@pytest.fixture
async def runtime() -> AsyncIterator[LocalRuntime]:
    async with LocalRuntime(credentials=CREDS) as rt:
        for name, handler in llm_handlers(seed=11).items():
            rt.add_endpoint(name, handler)
        yield rt


@pytest.fixture
async def client(runtime: LocalRuntime) -> AsyncIterator[SageMakerRuntimeClient]:
    async with SageMakerRuntimeClient(
        region_name="us-east-1",
        endpoint_url=runtime.url,
        allow_http=True,
        credentials=CREDS,
        retry_policy=RetryPolicy(base_delay=0.001, max_delay=0.002),
    ) as c:
        yield c


def test_base_url(client: SageMakerRuntimeClient, runtime: LocalRuntime) -> None:
    assert client.openai_base_url("my-llm") == f"{runtime.url}/endpoints/my-llm/openai/v1"
    with pytest.raises(ParamValidationError):
        client.openai_base_url("bad name/..")


# -- our client on the route ------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
async def test_stream_text_from_each_format(
    client: SageMakerRuntimeClient, runtime: LocalRuntime, fmt: str
) -> None:
    async with client.chat_completions_stream(
        endpoint_name=fmt, body={"messages": MESSAGES}
    ) as stream:
        assert "".join([t async for t in stream.iter_text()]) == LLM_TEXT
    invocation = runtime.invocations(fmt)[-1]
    assert invocation.path == "/openai/v1/chat/completions"
    assert json.loads(invocation.body) == {"messages": MESSAGES, "stream": True}
    assert "Authorization" not in invocation.headers  # the token stops at the runtime (issue 14)
    assert stream.content_type == CannedLLM(fmt).content_type


async def test_non_streaming_call(client: SageMakerRuntimeClient, runtime: LocalRuntime) -> None:
    result = await client.chat_completions(
        endpoint_name="openai-chat",
        body={"messages": MESSAGES},
        inference_component_name="ic-llama",
    )
    assert result.json()["choices"][0]["message"]["content"] == LLM_TEXT
    assert result.content_type == "application/json"
    assert result.response_metadata.http_status_code == 200
    assert result.response_metadata.request_id
    invocation = runtime.invocations("openai-chat")[-1]
    assert invocation.inference_component_name == "ic-llama"
    assert invocation.path == "/openai/v1/chat/completions"
    # Bytes go as they are.
    raw = await client.chat_completions(endpoint_name="openai-chat", body=b'{"messages": []}')
    assert raw.json()["object"] == "chat.completion"


async def test_events_json_and_lines_on_the_route(client: SageMakerRuntimeClient) -> None:
    async with client.chat_completions_stream(endpoint_name="openai-chat", body={}) as s:
        events = [e async for e in s.iter_events()]
    assert all(isinstance(e, ServerSentEvent) and e.event == "message" for e in events)
    assert events[-1].data == "[DONE]"
    async with client.chat_completions_stream(endpoint_name="tgi", body={}) as s:
        docs = [d async for d in s.iter_json()]
    assert docs[-1]["details"]["finish_reason"] == "eos_token"
    async with client.chat_completions_stream(endpoint_name="lmi", body=b'{"stream": true}') as s:
        lines = [line async for line in s.iter_lines()]
    assert all(json.loads(line)["token"] for line in lines)


async def test_a_route_stream_is_iterated_only_once(client: SageMakerRuntimeClient) -> None:
    async with client.chat_completions_stream(endpoint_name="tgi", body={}) as s:
        assert [part async for part in s]
        with pytest.raises(RuntimeError, match="only once"):
            [part async for part in s]
        with pytest.raises(RuntimeError, match="only once"):
            [text async for text in s.iter_text()]


async def test_route_streams_share_one_decoder_that_is_never_fed(
    client: SageMakerRuntimeClient,
) -> None:
    # The route's body is not an event stream: its streams use one shared, never-fed decoder
    # rather than building one each. Fed, it would carry one stream's bytes into the next.
    from sagemaker_rt_aio._stream import _UNFED_DECODER

    for way in ("parts", "text"):
        async with client.chat_completions_stream(endpoint_name="tgi", body={}) as s:
            got = [p async for p in s] if way == "parts" else [t async for t in s.iter_text()]
        assert got
        assert _UNFED_DECODER.pending == 0 and _UNFED_DECODER.error is None


async def test_classic_stream_has_the_same_helpers(client: SageMakerRuntimeClient) -> None:
    for fmt in FORMATS:
        async with client.invoke_endpoint_with_response_stream(endpoint_name=fmt, body=b"{}") as s:
            assert "".join([t async for t in s.iter_text()]) == LLM_TEXT
        if fmt == "openai-chat":
            assert s.finish_reason == "stop"
            assert s.usage is not None and s.usage.total_tokens == s.usage.completion_tokens + 7  # type: ignore[operator]


async def test_bad_arguments_send_nothing(
    client: SageMakerRuntimeClient, runtime: LocalRuntime
) -> None:
    runtime.clear_invocations()
    for kwargs in (
        {"endpoint_name": "bad name", "body": {}},
        {"endpoint_name": "tgi", "body": {"x": object()}},
        {"endpoint_name": "tgi", "body": None},
        {"endpoint_name": "tgi", "body": 12},
        {"endpoint_name": "tgi", "body": {}, "inference_component_name": "bad\nname"},
    ):
        with pytest.raises(ParamValidationError):
            await client.chat_completions(**kwargs)  # type: ignore[arg-type]
        with pytest.raises(ParamValidationError):
            client.chat_completions_stream(**kwargs)  # type: ignore[arg-type]
    assert runtime.call_count("tgi") == 0


async def test_same_pipeline_retries_only_not_now_answers(
    client: SageMakerRuntimeClient, runtime: LocalRuntime
) -> None:
    runtime.fail_next("openai-chat", 2, error="ServiceUnavailable", status=503)
    result = await client.chat_completions(endpoint_name="openai-chat", body={})
    assert result.response_metadata.retry_attempts == 2
    runtime.fail_next("openai-chat", 1, error="ValidationError", status=400)
    with pytest.raises(ServiceError) as caught:
        await client.chat_completions(endpoint_name="openai-chat", body={})
    assert caught.value.code == "ValidationError"
    assert runtime.call_count("openai-chat") == 4
    runtime.fail_next("tgi", 1, error="ServiceUnavailable", status=503)
    async with client.chat_completions_stream(endpoint_name="tgi", body={}) as stream:
        assert "".join([t async for t in stream.iter_text()]) == LLM_TEXT
    # Made from the response when first read, after the block: the retry counted all the same.
    assert stream.response_metadata.retry_attempts == 1
    assert stream.response_metadata.http_status_code == 200
    runtime.fail_next("tgi", 1, error="ServiceUnavailable", status=503)
    no_retries = client.with_options(retry_policy=RetryPolicy.none())
    with pytest.raises(ServiceUnavailable):
        async with no_retries.chat_completions_stream(endpoint_name="tgi", body={}):
            pass  # pragma: no cover
    result = await no_retries.chat_completions(endpoint_name="openai-chat", body={})
    assert result.response_metadata.retry_attempts == 0


async def test_middlewares_see_the_route_and_never_a_sigv4_signature(
    runtime: LocalRuntime,
) -> None:
    seen: list[HttpRequest] = []

    async def record(request: HttpRequest, call_next: object) -> HttpResponse:
        response = await call_next(request)  # type: ignore[operator]
        seen.append(request)
        return response  # type: ignore[no-any-return]

    async with SageMakerRuntimeClient(
        region_name="us-east-1",
        endpoint_url=runtime.url,
        allow_http=True,
        credentials=CREDS,
        middlewares=[record],
    ) as client:
        await client.chat_completions(endpoint_name="openai-chat", body={})
    assert seen[0].operation == "ChatCompletions"
    assert seen[0].url.path == "/endpoints/openai-chat/openai/v1/chat/completions"
    assert seen[0].headers["Authorization"].startswith("Bearer ")
    assert "X-Amz-Date" not in seen[0].headers
    assert "sagemaker-api-key" not in repr(seen[0])


async def test_wrong_credentials_are_refused(runtime: LocalRuntime) -> None:
    wrong = botocore.credentials.Credentials("AKIDROUTE", "not-the-secret", CREDS.token)
    async with SageMakerRuntimeClient(
        region_name="us-east-1", endpoint_url=runtime.url, allow_http=True, credentials=wrong
    ) as client:
        with pytest.raises(ServiceError) as caught:
            await client.chat_completions(endpoint_name="openai-chat", body={})
    assert caught.value.status_code == 403
    assert caught.value.code == "InvalidSignatureException"
    assert "sagemaker-api-key" not in str(caught.value)
    assert runtime.invocations("openai-chat") == []


async def test_sigv4_signed_route_requests_are_accepted_too(runtime: LocalRuntime) -> None:
    # A SigV4-signed request on the route (what a signing proxy would send), signed by botocore:
    # the runtime checks that signature instead of a bearer token.
    url = f"{runtime.url}/endpoints/openai-chat/openai/v1/chat/completions"
    request = AWSRequest(
        method="POST", url=url, data=b"{}", headers={"Content-Type": "application/json"}
    )
    SigV4Auth(CREDS, "sagemaker", "us-east-1").add_auth(request)
    async with aiohttp.ClientSession() as http:
        async with http.post(url, data=b"{}", headers=dict(request.headers)) as good:
            assert good.status == 200
            assert (await good.json())["object"] == "chat.completion"
        tampered = {**dict(request.headers), "Content-Type": "text/plain"}
        async with http.post(url, data=b"{}", headers=tampered) as bad:
            assert bad.status == 403
    # Accepted, and the signature stopped at the runtime: the handler never sees it (issue 14).
    assert "Authorization" not in runtime.invocations("openai-chat")[-1].headers


# -- hostile world ------------------------------------------------------------------------------


async def _tokens_then_fail(invocation: Invocation) -> InvocationResponse:
    async def body() -> AsyncIterator[bytes]:
        for word in ("Hello", " wor", "ld"):
            yield (
                b'data: {"choices":[{"index":0,"delta":{"content":"' + word.encode() + b'"}}]}\n\n'
            )
            await asyncio.sleep(0)
        raise RuntimeError("the GPU fell over")

    return InvocationResponse(body=body(), content_type="text/event-stream")


async def test_dropped_route_stream_keeps_the_partial_text(
    client: SageMakerRuntimeClient, runtime: LocalRuntime
) -> None:
    runtime.add_endpoint("flaky", _tokens_then_fail)
    received = []
    with pytest.raises(ConnectionClosedError) as caught:
        async with client.chat_completions_stream(endpoint_name="flaky", body={}) as stream:
            async for text in stream.iter_text():
                received.append(text)
    assert caught.value.partial_text == "Hello world" == "".join(received) == stream.text


async def test_dropped_route_stream_of_parts_is_a_typed_error_after_the_parts(
    client: SageMakerRuntimeClient, runtime: LocalRuntime
) -> None:
    runtime.add_endpoint("flaky", _tokens_then_fail)
    received = b""
    with pytest.raises(ConnectionClosedError) as caught:
        async with client.chat_completions_stream(endpoint_name="flaky", body={}) as stream:
            async for part in stream:
                received += part.bytes
    assert received.count(b"data: ") == 3  # every event sent before the drop came out first
    assert isinstance(caught.value.__cause__, aiohttp.ClientError)  # aiohttp's, translated once


async def test_model_stream_error_keeps_the_partial_text(
    client: SageMakerRuntimeClient, runtime: LocalRuntime
) -> None:
    runtime.add_endpoint("flaky", _tokens_then_fail)
    with pytest.raises(ModelStreamError) as caught:
        async with client.invoke_endpoint_with_response_stream(
            endpoint_name="flaky", body=b"{}"
        ) as stream:
            async for _ in stream.iter_text():
                pass
    assert caught.value.partial_text == "Hello world"
    assert caught.value.error_code == "StreamBroken"


async def test_failure_before_the_first_chunk_is_a_model_error(
    client: SageMakerRuntimeClient, runtime: LocalRuntime
) -> None:
    async def broken(invocation: Invocation) -> bytes:
        raise RuntimeError("no GPU")

    runtime.add_endpoint("broken", broken)
    with pytest.raises(ModelError):
        await client.chat_completions(endpoint_name="broken", body={})


async def test_endless_line_is_bounded(
    client: SageMakerRuntimeClient, runtime: LocalRuntime
) -> None:
    async def endless(invocation: Invocation) -> InvocationResponse:
        async def body() -> AsyncIterator[bytes]:
            yield b"data: "
            while True:
                yield b"x" * 4096
                await asyncio.sleep(0)

        return InvocationResponse(body=body(), content_type="text/event-stream")

    runtime.add_endpoint("endless", endless)
    with pytest.raises(LineTooLongError) as caught:
        async with client.chat_completions_stream(endpoint_name="endless", body={}) as stream:
            async for _ in stream.iter_text(max_line_bytes=64 * 1024):
                pass  # pragma: no cover
    assert caught.value.partial_text == ""


async def test_cancelled_stream_releases_everything(
    client: SageMakerRuntimeClient, runtime: LocalRuntime
) -> None:
    release = asyncio.Event()

    async def stalls(invocation: Invocation) -> InvocationResponse:
        async def body() -> AsyncIterator[bytes]:
            yield b'data: {"choices":[{"index":0,"delta":{"content":"first"}}]}\n\n'
            await release.wait()  # the model stalls until the test lets it go
            yield b"data: [DONE]\n\n"

        return InvocationResponse(body=body(), content_type="text/event-stream")

    runtime.add_endpoint("slow", stalls)
    started = asyncio.Event()

    async def consume() -> None:
        async with client.chat_completions_stream(endpoint_name="slow", body={}) as stream:
            async for _ in stream.iter_text():
                started.set()

    task = asyncio.create_task(consume())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    release.set()
    assert not client._lifecycle._resources
    # The client still works, and shuts down at once.
    result = await client.chat_completions(endpoint_name="openai-chat", body={})
    assert result.response_metadata.http_status_code == 200


# -- the openai SDK (a client nobody here wrote) against the local runtime -------------------


async def test_openai_sdk_streaming_and_not_with_our_token(
    client: SageMakerRuntimeClient,
) -> None:
    token = await client.generate_bearer_token(expires_in=300)
    sdk = openai.AsyncOpenAI(
        base_url=client.openai_base_url("openai-chat"), api_key=token, max_retries=0
    )
    try:
        answer = await sdk.chat.completions.create(model="ignored", messages=MESSAGES)  # type: ignore[arg-type]
        assert answer.choices[0].message.content == LLM_TEXT
        assert answer.usage is not None and answer.usage.prompt_tokens == 7
        stream = await sdk.chat.completions.create(
            model="ignored",
            messages=MESSAGES,  # type: ignore[arg-type]
            stream=True,
        )
        deltas = [
            chunk.choices[0].delta.content or ""
            async for chunk in stream
            if chunk.choices and chunk.choices[0].delta
        ]
        assert "".join(deltas) == LLM_TEXT
    finally:
        await sdk.close()


@pytest.mark.parametrize(
    "token",
    [
        "sagemaker-api-key-bm90IGEgdG9rZW4=",
        "sk-an-openai-key",
        make_bearer_token(FrozenCredentials("AKIDROUTE", "wrong", CREDS.token), "us-east-1",
                          expires_in=900),
        make_bearer_token(FrozenCredentials("AKIDROUTE", "route-secret", CREDS.token),
                          "us-east-1", expires_in=60, now=1_700_000_000),
    ],
    ids=["malformed", "foreign", "wrong-secret", "expired"],
)  # fmt: skip
async def test_openai_sdk_refused_with_a_bad_token(runtime: LocalRuntime, token: str) -> None:
    sdk = openai.AsyncOpenAI(
        base_url=f"{runtime.url}/endpoints/openai-chat/openai/v1", api_key=token, max_retries=0
    )
    try:
        with pytest.raises(openai.PermissionDeniedError) as caught:
            await sdk.chat.completions.create(model="x", messages=MESSAGES)  # type: ignore[arg-type]
    finally:
        await sdk.close()
    assert caught.value.status_code == 403
    assert runtime.invocations("openai-chat") == []


async def test_without_credentials_the_runtime_takes_any_token() -> None:
    async with LocalRuntime() as rt:
        rt.add_endpoint("llm", CannedLLM("openai-chat"))
        sdk = openai.AsyncOpenAI(
            base_url=f"{rt.url}/endpoints/llm/openai/v1", api_key="anything", max_retries=0
        )
        try:
            answer = await sdk.chat.completions.create(model="x", messages=MESSAGES)  # type: ignore[arg-type]
        finally:
            await sdk.close()
    assert answer.choices[0].message.content == LLM_TEXT


async def test_shutdown_ends_a_route_stream_in_progress(runtime: LocalRuntime) -> None:
    release = asyncio.Event()

    async def stalls(invocation: Invocation) -> InvocationResponse:
        async def body() -> AsyncIterator[bytes]:
            yield b'data: {"choices":[{"index":0,"delta":{"content":"only this"}}]}\n\n'
            await release.wait()
            yield b"data: [DONE]\n\n"

        return InvocationResponse(body=body(), content_type="text/event-stream")

    runtime.add_endpoint("stalls", stalls)
    client = SageMakerRuntimeClient(
        region_name="us-east-1", endpoint_url=runtime.url, allow_http=True, credentials=CREDS
    )
    got_first = asyncio.Event()

    async def consume() -> None:
        async with client.chat_completions_stream(endpoint_name="stalls", body={}) as stream:
            async for _ in stream.iter_text():
                got_first.set()

    task = asyncio.create_task(consume())
    await got_first.wait()
    await client.shutdown(grace=0)
    with pytest.raises(ClientClosedError) as caught:
        await task
    assert caught.value.partial_text == "only this"
    release.set()
    with pytest.raises(ClientClosedError):
        await client.chat_completions(endpoint_name="stalls", body={})
    with pytest.raises(ClientClosedError):
        await client.generate_bearer_token()


async def test_bearer_tokens_never_logged(
    client: SageMakerRuntimeClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG", logger="sagemaker_rt_aio")
    await client.chat_completions(endpoint_name="openai-chat", body={})
    async with client.chat_completions_stream(endpoint_name="tgi", body={}) as stream:
        async for _ in stream.iter_text():
            pass
    assert "Bearer <redacted>" in caplog.text
    assert "sagemaker-api-key" not in caplog.text


@pytest.mark.parametrize("fmt", FORMATS)
async def test_tiny_parts_through_the_client_give_the_same_events_json_and_text(
    client: SageMakerRuntimeClient, runtime: LocalRuntime, fmt: str
) -> None:
    # Parts of 1 to 30 bytes: events, lines and characters split anywhere.
    trickle = CannedLLM(fmt, seed=7, mean_part_bytes=15)
    runtime.add_endpoint("trickle", trickle)
    whole = trickle.stream_bytes()
    expected_events = SSEDecoder().feed(whole)
    expected_json = JsonDecoder(trickle.content_type).feed(whole)
    async with client.invoke_endpoint_with_response_stream(
        endpoint_name="trickle", body=b"{}"
    ) as s:
        assert [e async for e in s.iter_events()] == expected_events
    async with client.invoke_endpoint_with_response_stream(
        endpoint_name="trickle", body=b"{}"
    ) as s:
        assert [v async for v in s.iter_json()] == expected_json
    async with client.invoke_endpoint_with_response_stream(
        endpoint_name="trickle", body=b"{}"
    ) as s:
        assert "".join([t async for t in s.iter_text()]) == trickle.text


async def test_the_route_keeps_the_call_deadline(runtime: LocalRuntime) -> None:
    release = asyncio.Event()

    async def thinks(invocation: Invocation) -> bytes:
        await release.wait()  # longer than the deadline: released at the end of the test
        return b"{}"

    runtime.add_endpoint("thinks", thinks)
    async with SageMakerRuntimeClient(
        region_name="us-east-1",
        endpoint_url=runtime.url,
        allow_http=True,
        credentials=CREDS,
        timeout=aiohttp.ClientTimeout(total=0.1),
    ) as client:
        with pytest.raises(DeadlineExceededError):
            await client.chat_completions(endpoint_name="thinks", body={})
        with pytest.raises(DeadlineExceededError):
            async with client.chat_completions_stream(endpoint_name="thinks", body={}):
                pass  # pragma: no cover
    release.set()
