"""OpenTelemetry: spans and metrics of calls, retries, errors, cancellation, streams and waits.

The SDK's own in-memory span exporter and metric reader record what the client emits, against the
local runtime (which also serves S3 for the async-result waiter) or a scripted loopback server.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest
from botocore.credentials import Credentials
from conftest import ScriptedServer, json_error
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from sagemaker_rt_aio import (
    BidirectionalPart,
    ClientClosedError,
    ConnectionClosedError,
    EndpointConnectionError,
    ModelError,
    ModelStreamError,
    RetryPolicy,
    SageMakerRuntimeClient,
    SageMakerRuntimeError,
    ServiceUnavailable,
    ServiceUnavailableError,
    ThrottlingException,
    ValidationError,
)
from sagemaker_rt_aio._observe import load_telemetry
from sagemaker_rt_aio.local import ContainerError, Invocation, LocalRuntime
from sagemaker_rt_aio.local.demo_models import LLM_TEXT, CannedLLM

ACCESS_KEY = "AKIDTELEMETRYTEST"
SECRET_KEY = "telemetry-secret-key-DO-NOT-LEAK"
SESSION_TOKEN = "telemetry-session-token-DO-NOT-LEAK"
BODY = b"request-body-DO-NOT-LEAK"
CUSTOM = "custom-attributes-DO-NOT-LEAK"
FAST = RetryPolicy(base_delay=0.001, max_delay=0.005, throttle_base_delay=0.001)


class Recorder:
    """SDK tracer and meter providers with in-memory exporters."""

    def __init__(self) -> None:
        self.spans_exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans_exporter))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])

    def spans(self, name: str | None = None) -> list[ReadableSpan]:
        spans = list(self.spans_exporter.get_finished_spans())
        return [s for s in spans if name is None or s.name == name]

    def metrics(self) -> dict[str, list[Any]]:
        """Metric name -> its data points."""
        data = self.reader.get_metrics_data()
        out: dict[str, list[Any]] = {}
        if data is None:
            return out
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    out.setdefault(metric.name, []).extend(metric.data.data_points)
                    out.setdefault(f"{metric.name}#unit", []).append(metric.unit)
        return out

    def shutdown(self) -> None:
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()


@pytest.fixture
def rec() -> Iterator[Recorder]:
    recorder = Recorder()
    yield recorder
    recorder.shutdown()


@pytest.fixture
def runtime_stop() -> asyncio.Event:
    """Set when the test ends: handlers that hang wait for it, so the runtime stops at once."""
    return asyncio.Event()


@pytest.fixture
async def runtime(runtime_stop: asyncio.Event) -> AsyncIterator[LocalRuntime]:
    credentials = Credentials(ACCESS_KEY, SECRET_KEY, SESSION_TOKEN)
    async with LocalRuntime(credentials=credentials, async_delay=0.1) as rt:
        rt.add_endpoint("echo", echo)
        try:
            yield rt
        finally:
            runtime_stop.set()


async def echo(invocation: Invocation) -> bytes:
    return b"echo:" + invocation.body


def client_for(url: str, rec: Recorder | None, **kwargs: Any) -> SageMakerRuntimeClient:
    kwargs.setdefault("retry_policy", FAST)
    if rec is not None:
        kwargs.setdefault("tracer_provider", rec.tracer_provider)
        kwargs.setdefault("meter_provider", rec.meter_provider)
    return SageMakerRuntimeClient(
        "us-east-1",
        endpoint_url=url,
        s3_endpoint_url=url,
        allow_http=True,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        aws_session_token=SESSION_TOKEN,
        **kwargs,
    )


def points(rec: Recorder, name: str, **attrs: Any) -> list[Any]:
    return [
        p
        for p in rec.metrics().get(name, [])
        if all(p.attributes.get(k) == v for k, v in attrs.items())
    ]


def total(rec: Recorder, name: str, **attrs: Any) -> int:
    """Sum of counter values, or of histogram counts."""
    found = points(rec, name, **attrs)
    return sum(getattr(p, "count", None) or getattr(p, "value", 0) for p in found)


def exported_text(rec: Recorder) -> str:
    """Everything exported, as text: span JSON (attributes, events, status) and metric JSON."""
    spans = "\n".join(span.to_json() for span in rec.spans())
    data = rec.reader.get_metrics_data()
    return spans + "\n" + (data.to_json() if data is not None else "")


# -- success -------------------------------------------------------------------------------------


async def test_success_span_attributes_and_metrics(runtime: LocalRuntime, rec: Recorder) -> None:
    async with client_for(runtime.url, rec) as client:
        result = await client.invoke_endpoint(endpoint_name="echo", body=BODY)
    [span] = rec.spans()
    assert span.name == "SageMaker Runtime.InvokeEndpoint"
    assert span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.UNSET
    attrs = dict(span.attributes or {})
    assert attrs["rpc.system"] == "aws-api"
    assert attrs["rpc.service"] == "SageMaker Runtime"
    assert attrs["rpc.method"] == "InvokeEndpoint"
    assert attrs["cloud.region"] == "us-east-1"
    assert attrs["server.address"] == "127.0.0.1"
    assert attrs["server.port"] == runtime.port
    assert attrs["http.response.status_code"] == 200
    assert attrs["aws.request_id"] == result.response_metadata.request_id
    assert attrs["aws.sagemaker.endpoint_name"] == "echo"
    assert attrs["sagemaker_runtime.attempts"] == 1
    assert "error.type" not in attrs and "http.request.resend_count" not in attrs

    [duration] = points(rec, "rpc.client.call.duration", **{"rpc.method": "InvokeEndpoint"})
    assert duration.count == 1
    assert duration.attributes["aws.sagemaker.endpoint_name"] == "echo"
    assert duration.attributes["sagemaker_runtime.outcome"] == "success"
    assert "error.type" not in duration.attributes
    assert rec.metrics()["rpc.client.call.duration#unit"] == ["s"]
    assert total(rec, "sagemaker_runtime.attempts") == 1
    assert total(rec, "sagemaker_runtime.retries") == 0
    [active] = points(rec, "sagemaker_runtime.calls.active")
    assert active.value == 0  # up and down again


async def test_call_span_is_child_of_the_callers_span(runtime: LocalRuntime, rec: Recorder) -> None:
    tracer = rec.tracer_provider.get_tracer("app")
    async with client_for(runtime.url, rec) as client:
        with tracer.start_as_current_span("handler") as parent:
            await client.invoke_endpoint(endpoint_name="echo", body=b"x")
            # The call's span was current only during the call.
            assert trace.get_current_span() is parent
    [call] = rec.spans("SageMaker Runtime.InvokeEndpoint")
    assert call.parent is not None
    assert call.parent.span_id == parent.get_span_context().span_id


# -- retries -------------------------------------------------------------------------------------


async def test_retries_are_events_and_counters(runtime: LocalRuntime, rec: Recorder) -> None:
    runtime.fail_next("echo", 2)  # ServiceUnavailable twice, then the model
    async with client_for(runtime.url, rec) as client:
        result = await client.invoke_endpoint(endpoint_name="echo", body=b"x")
    assert result.response_metadata.retry_attempts == 2
    [span] = rec.spans()
    attrs = dict(span.attributes or {})
    assert attrs["sagemaker_runtime.attempts"] == 3
    assert attrs["http.request.resend_count"] == 2
    assert attrs["http.response.status_code"] == 200
    assert span.status.status_code is StatusCode.UNSET
    retries = [e for e in span.events if e.name == "retry"]
    assert [e.attributes["sagemaker_runtime.attempt"] for e in retries] == [1, 2]  # type: ignore[index]
    for event in retries:
        assert event.attributes["error.type"] == "ServiceUnavailable"  # type: ignore[index]
        assert event.attributes["http.response.status_code"] == 503  # type: ignore[index]
    assert total(rec, "sagemaker_runtime.retries", **{"error.type": "ServiceUnavailable"}) == 2
    assert total(rec, "sagemaker_runtime.attempts") == 3
    assert total(rec, "sagemaker_runtime.attempts", **{"error.type": "ServiceUnavailable"}) == 2
    # The quota paid for two retries and got one token back for the success.
    [quota] = points(rec, "sagemaker_runtime.retry_quota.available")
    assert quota.value == 500 - 2 * 5 + 5


# -- errors --------------------------------------------------------------------------------------


async def _broken(invocation: Invocation) -> bytes:
    raise ContainerError(500, "the model fell over")


ERROR_CASES = [
    ("model", ModelError, "ModelError", 424),
    ("unknown-endpoint", ValidationError, "ValidationError", 400),
    ("throttled", ThrottlingException, "ThrottlingException", 400),
    ("unavailable", ServiceUnavailable, "ServiceUnavailable", 503),
    ("reset", ConnectionClosedError, "ConnectionClosedError", None),
]


@pytest.mark.parametrize(("case", "error_class", "error_type", "status"), ERROR_CASES)
async def test_errors_set_status_and_record_the_exception(
    runtime: LocalRuntime,
    rec: Recorder,
    case: str,
    error_class: type[Exception],
    error_type: str,
    status: int | None,
) -> None:
    runtime.add_endpoint("broken", _broken)
    endpoint = {"model": "broken", "unknown-endpoint": "nope"}.get(case, "echo")
    if case == "throttled":
        runtime.fail_next("echo", 1, error="ThrottlingException", status=400)
    elif case == "unavailable":
        runtime.fail_next("echo", 1)
    elif case == "reset":
        runtime.reset_connection_next("echo", 1)
    async with client_for(runtime.url, rec, retry_policy=RetryPolicy.none()) as client:
        with pytest.raises(error_class):
            await client.invoke_endpoint(endpoint_name=endpoint, body=b"x")
    [span] = rec.spans()
    assert span.status.status_code is StatusCode.ERROR
    attrs = dict(span.attributes or {})
    assert attrs["error.type"] == error_type
    assert attrs.get("http.response.status_code") == status
    if status is not None:
        assert attrs["aws.request_id"]
    [exception] = [e for e in span.events if e.name == "exception"]
    assert exception.attributes["exception.type"].endswith(error_class.__name__)  # type: ignore[index,union-attr]
    [duration] = points(rec, "rpc.client.call.duration")
    assert duration.attributes["error.type"] == error_type
    assert duration.attributes["sagemaker_runtime.outcome"] == "error"


async def test_connection_refused(rec: Recorder) -> None:
    async with client_for("http://127.0.0.1:9", rec, retry_policy=RetryPolicy.none()) as client:
        with pytest.raises(EndpointConnectionError):
            await client.invoke_endpoint(endpoint_name="echo", body=b"x")
    [span] = rec.spans()
    assert span.attributes["error.type"] == "EndpointConnectionError"  # type: ignore[index]
    assert span.status.status_code is StatusCode.ERROR


async def test_shutdown_during_a_call_ends_its_span(
    runtime: LocalRuntime, rec: Recorder, runtime_stop: asyncio.Event
) -> None:
    entered = asyncio.Event()

    async def hang(invocation: Invocation) -> bytes:
        entered.set()
        await runtime_stop.wait()
        return b""

    runtime.add_endpoint("hang", hang)
    client = client_for(runtime.url, rec)
    task = asyncio.ensure_future(client.invoke_endpoint(endpoint_name="hang", body=b"x"))
    await entered.wait()
    await client.shutdown(grace=0)
    with pytest.raises(ClientClosedError):
        await task
    [span] = rec.spans()
    assert span.attributes["error.type"] == "ClientClosedError"  # type: ignore[index]
    assert span.status.status_code is StatusCode.ERROR


# -- cancellation --------------------------------------------------------------------------------


async def test_cancelled_call_ends_its_span(
    runtime: LocalRuntime, rec: Recorder, runtime_stop: asyncio.Event
) -> None:
    entered = asyncio.Event()

    async def hang(invocation: Invocation) -> bytes:
        entered.set()
        await runtime_stop.wait()
        return b""

    runtime.add_endpoint("hang", hang)
    async with client_for(runtime.url, rec) as client:
        task = asyncio.ensure_future(client.invoke_endpoint(endpoint_name="hang", body=b"x"))
        await entered.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        [span] = rec.spans()
        assert span.attributes["error.type"] == "CancelledError"  # type: ignore[index]
        assert span.status.status_code is StatusCode.ERROR
        [duration] = points(rec, "rpc.client.call.duration")
        assert duration.attributes["sagemaker_runtime.outcome"] == "cancelled"
        [active] = points(rec, "sagemaker_runtime.calls.active")
        assert active.value == 0


# -- streams -------------------------------------------------------------------------------------


async def _tokens(invocation: Invocation) -> AsyncIterator[bytes]:
    for token in (b"a", b"b", b"c", b"d"):
        yield token


async def _half(invocation: Invocation) -> AsyncIterator[bytes]:
    yield b"partial"
    raise RuntimeError("GPU fell off")


async def test_stream_read_to_the_end(runtime: LocalRuntime, rec: Recorder) -> None:
    runtime.add_endpoint("tokens", _tokens)
    async with client_for(runtime.url, rec) as client:
        async with client.invoke_endpoint_with_response_stream(
            endpoint_name="tokens", body=b"x"
        ) as stream:
            assert rec.spans() == []  # the call's span lasts while the stream is open
            parts = [part.bytes async for part in stream]
        assert parts == [b"a", b"b", b"c", b"d"]
    [span] = rec.spans()
    assert span.name == "SageMaker Runtime.InvokeEndpointWithResponseStream"
    attrs = dict(span.attributes or {})
    assert attrs["sagemaker_runtime.stream.parts"] == 4
    assert attrs["sagemaker_runtime.stream.outcome"] == "completed"
    assert attrs["aws.request_id"] == stream.response_metadata.request_id
    assert span.status.status_code is StatusCode.UNSET
    assert [e.name for e in span.events] == ["first_part"]
    assert total(rec, "sagemaker_runtime.stream.time_to_first_part") == 1
    assert total(rec, "sagemaker_runtime.stream.time_between_parts") == 3
    assert rec.metrics()["sagemaker_runtime.stream.time_to_first_part#unit"] == ["s"]
    [duration] = points(rec, "rpc.client.call.duration")
    assert duration.attributes["rpc.method"] == "InvokeEndpointWithResponseStream"
    assert duration.sum >= points(rec, "sagemaker_runtime.stream.time_to_first_part")[0].sum


async def test_stream_abandoned(runtime: LocalRuntime, rec: Recorder) -> None:
    runtime.add_endpoint("tokens", _tokens)
    async with (
        client_for(runtime.url, rec) as client,
        client.invoke_endpoint_with_response_stream(endpoint_name="tokens", body=b"x") as stream,
    ):
        async for _ in stream:
            break
    [span] = rec.spans()
    assert span.attributes["sagemaker_runtime.stream.outcome"] == "abandoned"  # type: ignore[index]
    assert span.attributes["sagemaker_runtime.stream.parts"] == 1  # type: ignore[index]
    assert span.status.status_code is StatusCode.UNSET


async def test_stream_error_mid_stream(runtime: LocalRuntime, rec: Recorder) -> None:
    runtime.add_endpoint("half", _half)
    async with client_for(runtime.url, rec) as client:
        with pytest.raises(ModelStreamError):
            async with client.invoke_endpoint_with_response_stream(
                endpoint_name="half", body=b"x"
            ) as stream:
                async for _ in stream:
                    pass
    [span] = rec.spans()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == "ModelStreamError"  # type: ignore[index]
    assert span.attributes["sagemaker_runtime.stream.outcome"] == "error"  # type: ignore[index]


async def test_stream_ended_by_shutdown(
    runtime: LocalRuntime, rec: Recorder, runtime_stop: asyncio.Event
) -> None:
    async def slow(invocation: Invocation) -> AsyncIterator[bytes]:
        yield b"first"
        await runtime_stop.wait()

    runtime.add_endpoint("slow", slow)
    client = client_for(runtime.url, rec)
    async with client.invoke_endpoint_with_response_stream(endpoint_name="slow", body=b"x") as s:
        iterator = aiter(s)
        assert (await iterator.__anext__()).bytes == b"first"
        await client.shutdown(grace=0)
        with pytest.raises(ClientClosedError):
            await iterator.__anext__()
    [span] = rec.spans()
    assert span.attributes["error.type"] == "ClientClosedError"  # type: ignore[index]


async def test_stream_cancelled_while_reading(
    runtime: LocalRuntime, rec: Recorder, runtime_stop: asyncio.Event
) -> None:
    async def slow(invocation: Invocation) -> AsyncIterator[bytes]:
        yield b"first"
        await runtime_stop.wait()

    runtime.add_endpoint("slow", slow)
    got_first = asyncio.Event()

    async def read(client: SageMakerRuntimeClient) -> None:
        async with client.invoke_endpoint_with_response_stream(
            endpoint_name="slow", body=b"x"
        ) as stream:
            async for _ in stream:
                got_first.set()

    async with client_for(runtime.url, rec) as client:
        task = asyncio.ensure_future(read(client))
        await got_first.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        [span] = rec.spans()
        assert span.attributes["error.type"] == "CancelledError"  # type: ignore[index]
        assert span.attributes["sagemaker_runtime.stream.outcome"] == "error"  # type: ignore[index]
        [active] = points(rec, "sagemaker_runtime.calls.active")
        assert active.value == 0


async def test_long_stream_keeps_exported_data_bounded(
    runtime: LocalRuntime, rec: Recorder
) -> None:
    async def many(invocation: Invocation) -> AsyncIterator[bytes]:
        for _ in range(2000):
            yield b"t"

    runtime.add_endpoint("many", many)
    async with (
        client_for(runtime.url, rec) as client,
        client.invoke_endpoint_with_response_stream(endpoint_name="many", body=b"x") as stream,
    ):
        count = sum([1 async for _ in stream])
    assert count == 2000
    [span] = rec.spans()
    assert len(span.events) == 1  # first_part only: nothing grows with the stream's length
    assert span.attributes["sagemaker_runtime.stream.parts"] == 2000  # type: ignore[index]
    [gaps] = points(rec, "sagemaker_runtime.stream.time_between_parts")
    assert gaps.count == 1999


async def test_cancelled_during_retry_backoff(runtime: LocalRuntime, rec: Recorder) -> None:
    runtime.fail_next("echo", 5)
    slow_retries = RetryPolicy(base_delay=30.0, max_delay=30.0, max_attempts=5)
    answered = asyncio.Event()

    async def middleware(request: Any, call_next: Any) -> Any:
        response = await call_next(request)
        answered.set()  # the call task runs on to its backoff before this test's task resumes
        return response

    async with client_for(
        runtime.url, rec, retry_policy=slow_retries, middlewares=[middleware]
    ) as client:
        task = asyncio.ensure_future(client.invoke_endpoint(endpoint_name="echo", body=b"x"))
        await answered.wait()
        assert total(rec, "sagemaker_runtime.retries") == 1
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    [span] = rec.spans()
    assert [e.name for e in span.events if e.name == "retry"] == ["retry"]
    assert span.attributes["error.type"] == "CancelledError"  # type: ignore[index]


# -- waits ---------------------------------------------------------------------------------------


async def test_wait_span_holds_its_s3_polls(runtime: LocalRuntime, rec: Recorder) -> None:
    async with client_for(runtime.url, rec) as client:
        queued = await client.invoke_endpoint_async(endpoint_name="echo", body=b"x")
        out = await client.wait_for_async_result(queued, timeout=5, poll_interval=0.05)
    assert out == b"echo:x"
    [invoke] = rec.spans("SageMaker Runtime.InvokeEndpointAsync")
    assert invoke.kind is SpanKind.CLIENT
    [wait] = rec.spans("SageMaker Runtime.WaitForAsyncResult")
    polls = rec.spans("S3.HeadObject")
    [get] = rec.spans("S3.GetObject")
    assert len(polls) >= 2  # async_delay held the output back for a few polls
    wait_id = wait.get_span_context().span_id  # type: ignore[union-attr]
    for span in [*polls, get]:
        assert span.kind is SpanKind.CLIENT
        assert span.parent is not None and span.parent.span_id == wait_id
        attrs = dict(span.attributes or {})
        assert attrs["rpc.service"] == "S3"
        assert attrs["aws.s3.bucket"]
        assert attrs["http.response.status_code"] in (200, 404)
    assert {p.attributes["http.response.status_code"] for p in polls} >= {404}  # type: ignore[index]
    assert total(rec, "rpc.client.call.duration", **{"rpc.method": "HeadObject"}) == len(polls)


async def test_iter_async_result_span(runtime: LocalRuntime, rec: Recorder) -> None:
    async with client_for(runtime.url, rec) as client:
        queued = await client.invoke_endpoint_async(endpoint_name="echo", body=b"x")
        chunks = [c async for c in client.iter_async_result(queued, timeout=5, poll_interval=0.05)]
        assert trace.get_current_span() is trace.INVALID_SPAN  # nothing left attached
    assert b"".join(chunks) == b"echo:x"
    [wait] = rec.spans("SageMaker Runtime.IterAsyncResult")
    wait_id = wait.get_span_context().span_id  # type: ignore[union-attr]
    s3_spans = rec.spans("S3.HeadObject") + rec.spans("S3.GetObject")
    assert s3_spans
    assert all(s.parent is not None and s.parent.span_id == wait_id for s in s3_spans)


async def test_wait_timeout_is_an_error_span(runtime: LocalRuntime, rec: Recorder) -> None:
    from sagemaker_rt_aio import AsyncInferenceTimeout

    async with client_for(runtime.url, rec) as client:
        queued = await client.invoke_endpoint_async(endpoint_name="echo", body=b"x")
        with pytest.raises(AsyncInferenceTimeout):
            await client.wait_for_async_result(queued, timeout=0.05, poll_interval=0.02)
    [wait] = rec.spans("SageMaker Runtime.WaitForAsyncResult")
    assert wait.status.status_code is StatusCode.ERROR
    assert wait.attributes["error.type"] == "AsyncInferenceTimeout"  # type: ignore[index]


# -- slots and gauges ----------------------------------------------------------------------------


async def test_queued_for_a_slot_gauge(runtime: LocalRuntime, rec: Recorder) -> None:
    entered = asyncio.Event()
    release = asyncio.Event()

    async def gate(invocation: Invocation) -> bytes:
        entered.set()
        await release.wait()
        return b"ok"

    runtime.add_endpoint("gate", gate)
    async with client_for(runtime.url, rec, max_connections=1) as client:
        first = asyncio.ensure_future(client.invoke_endpoint(endpoint_name="gate", body=b"x"))
        await entered.wait()
        second = asyncio.ensure_future(client.invoke_endpoint(endpoint_name="gate", body=b"x"))
        for _ in range(5):
            await asyncio.sleep(0)  # the second call reaches the slot queue
        [queued] = points(rec, "sagemaker_runtime.calls.queued")
        assert queued.value == 1
        [active] = points(rec, "sagemaker_runtime.calls.active")
        assert active.value == 2
        release.set()
        await asyncio.gather(first, second)
        [queued] = points(rec, "sagemaker_runtime.calls.queued")
        assert queued.value == 0


# -- secrets -------------------------------------------------------------------------------------


async def test_no_secret_or_body_in_exported_data(runtime: LocalRuntime, rec: Recorder) -> None:
    runtime.add_endpoint("tokens", _tokens)
    runtime.add_endpoint("broken", _broken)
    runtime.fail_next("echo", 1)
    sent: list[str] = []  # the signatures sent (handlers never see the caller's Authorization)

    async def on_start(_: Any, __: Any, params: aiohttp.TraceRequestStartParams) -> None:
        sent.append(params.headers.get("Authorization", ""))

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(on_start)
    async with (
        aiohttp.ClientSession(trace_configs=[trace]) as session,
        client_for(runtime.url, rec, http_session=session) as client,
    ):
        await client.invoke_endpoint(endpoint_name="echo", body=BODY, custom_attributes=CUSTOM)
        with pytest.raises(ModelError):
            await client.invoke_endpoint(
                endpoint_name="broken", body=BODY, custom_attributes=CUSTOM
            )
        async with client.invoke_endpoint_with_response_stream(
            endpoint_name="tokens", body=BODY, custom_attributes=CUSTOM
        ) as stream:
            async for _ in stream:
                pass
        queued = await client.invoke_endpoint_async(endpoint_name="echo", body=BODY)
        await client.wait_for_async_result(queued, timeout=5, poll_interval=0.05)
    signatures = {auth.split("Signature=")[1] for auth in sent if "Signature=" in auth}
    assert signatures
    text = exported_text(rec)
    assert "InvokeEndpoint" in text  # the scan sees real data
    for secret in (SECRET_KEY, SESSION_TOKEN, BODY.decode(), CUSTOM, "echo:request", *signatures):
        assert secret not in text


async def test_scripted_server_error_text_does_not_leak_headers(
    scripted_server: ScriptedServer, rec: Recorder
) -> None:
    scripted_server.script = [json_error(400, "ValidationException", "bad input")]
    async with client_for(scripted_server.url, rec, retry_policy=RetryPolicy.none()) as client:
        with pytest.raises(SageMakerRuntimeError):
            await client.invoke_endpoint(endpoint_name="e", body=BODY)
    signature = scripted_server.received[0].headers["Authorization"].split("Signature=")[1]
    text = exported_text(rec)
    assert "ValidationException" in text or "ValidationError" in text
    for secret in (SECRET_KEY, SESSION_TOKEN, BODY.decode(), signature):
        assert secret not in text


# -- providers -----------------------------------------------------------------------------------


@pytest.fixture
def reset_globals() -> Iterator[None]:
    """Undo a global provider set by a test (the API allows setting it once per process)."""
    from opentelemetry.metrics import _internal as metrics_internal
    from opentelemetry.util._once import Once

    saved = (
        trace._TRACER_PROVIDER,
        trace._TRACER_PROVIDER_SET_ONCE,
        metrics_internal._METER_PROVIDER,
        metrics_internal._METER_PROVIDER_SET_ONCE,
        metrics_internal._PROXY_METER_PROVIDER,
    )
    trace._TRACER_PROVIDER_SET_ONCE = Once()
    metrics_internal._METER_PROVIDER_SET_ONCE = Once()
    try:
        yield
    finally:
        (
            trace._TRACER_PROVIDER,
            trace._TRACER_PROVIDER_SET_ONCE,
            metrics_internal._METER_PROVIDER,
            metrics_internal._METER_PROVIDER_SET_ONCE,
            metrics_internal._PROXY_METER_PROVIDER,
        ) = saved


async def test_global_providers_set_after_the_client_was_built(
    runtime: LocalRuntime, rec: Recorder, reset_globals: None
) -> None:
    assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
    async with client_for(runtime.url, None) as client:
        assert client._telemetry is not None
        # No SDK yet: nothing observes the call.
        assert client._telemetry.observe("InvokeEndpoint", "echo", False) is None
        await client.invoke_endpoint(endpoint_name="echo", body=b"x")
        trace.set_tracer_provider(rec.tracer_provider)
        metrics.set_meter_provider(rec.meter_provider)
        await client.invoke_endpoint(endpoint_name="echo", body=b"x")
    [span] = rec.spans()
    assert span.attributes["rpc.method"] == "InvokeEndpoint"  # type: ignore[index]
    assert total(rec, "rpc.client.call.duration") == 1


def test_without_opentelemetry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry", None)
    monkeypatch.delitem(sys.modules, "sagemaker_rt_aio._telemetry", raising=False)
    kwargs: dict[str, Any] = {"region": "us-east-1", "host": "h", "port": 443}
    assert load_telemetry(None, None, gauges=lambda: (0, 0), **kwargs) is None
    with pytest.raises(ImportError, match=r"sagemaker-rt-aio\[otel\]"):
        load_telemetry(object(), None, gauges=lambda: (0, 0), **kwargs)
    client = SageMakerRuntimeClient("us-east-1", aws_access_key_id="a", aws_secret_access_key="b")
    assert client._pipeline.observe is None


# -- GenAI ---------------------------------------------------------------------------------------


def test_genai_attributes_from_an_openai_response(rec: Recorder) -> None:
    telemetry = load_telemetry(
        rec.tracer_provider,
        rec.meter_provider,
        region="us-east-1",
        host="h",
        port=443,
        gauges=lambda: (0, 0),
    )
    assert telemetry is not None
    obs = telemetry.observe("ChatCompletions", "llm", False)
    assert obs is not None
    document = json.loads(
        '{"model": "m", "choices": [{"finish_reason": "stop"}],'
        ' "usage": {"prompt_tokens": 7, "completion_tokens": 3}}'
    )
    obs.genai_from_openai(document)
    obs.failed(ServiceUnavailable("x", code="ServiceUnavailable", status_code=503))
    [span] = rec.spans()
    attrs = dict(span.attributes or {})
    assert attrs["gen_ai.usage.input_tokens"] == 7
    assert attrs["gen_ai.usage.output_tokens"] == 3
    assert list(attrs["gen_ai.response.finish_reasons"]) == ["stop"]  # type: ignore[arg-type]


# -- the FastAPI example's --otel ----------------------------------------------------------------


def _fastapi_example() -> Any:
    import importlib.util
    from pathlib import Path

    name = "examples_fastapi_service"  # the name tests/test_examples.py loads it under
    if name in sys.modules:
        return sys.modules[name]
    examples = Path(__file__).resolve().parent.parent / "examples"
    spec = importlib.util.spec_from_file_location(name, examples / "fastapi_service.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    sys.path.insert(0, str(examples))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(examples))
    return module


async def test_fastapi_example_console_telemetry(runtime: LocalRuntime) -> None:
    import io

    out = io.StringIO()
    tracer_provider, meter_provider = _fastapi_example().console_telemetry(out)
    try:
        async with client_for(
            runtime.url, None, tracer_provider=tracer_provider, meter_provider=meter_provider
        ) as client:
            await client.invoke_endpoint(endpoint_name="echo", body=BODY)
        assert '"name": "SageMaker Runtime.InvokeEndpoint"' in out.getvalue()
    finally:
        tracer_provider.shutdown()
        meter_provider.shutdown()  # prints the metrics collected so far
    printed = out.getvalue()
    assert '"name": "rpc.client.call.duration"' in printed
    assert BODY.decode() not in printed and SECRET_KEY not in printed


def test_s3_operations_through_the_pipeline_are_s3_spans(rec: Recorder) -> None:
    telemetry = load_telemetry(
        rec.tracer_provider,
        rec.meter_provider,
        region="us-east-1",
        host="h",
        port=443,
        gauges=lambda: (0, 0),
    )
    assert telemetry is not None
    obs = telemetry.observe("S3 HEAD", "my-bucket", False)
    assert obs is not None
    obs.failed(ServiceUnavailable("x", code="SlowDown", status_code=503))
    [span] = rec.spans()
    assert span.name == "S3.HeadObject"
    assert span.attributes["rpc.service"] == "S3"  # type: ignore[index]
    assert span.attributes["aws.s3.bucket"] == "my-bucket"  # type: ignore[index]
    assert "aws.sagemaker.endpoint_name" not in span.attributes  # type: ignore[operator]
    assert "server.address" not in span.attributes  # type: ignore[operator]  # S3 is elsewhere


def test_genai_attributes_of_a_chat_completions_answer(rec: Recorder) -> None:
    from multidict import CIMultiDict, CIMultiDictProxy

    from sagemaker_rt_aio._transport import HttpResponse

    class Answer:  # the OpenAI route's result: its JSON document on demand
        def __init__(self, body: bytes) -> None:
            self.body = body

        def json(self) -> Any:
            return json.loads(self.body)

    telemetry = load_telemetry(
        rec.tracer_provider,
        rec.meter_provider,
        region="us-east-1",
        host="h",
        port=443,
        gauges=lambda: (0, 0),
    )
    assert telemetry is not None
    response = HttpResponse(200, CIMultiDictProxy(CIMultiDict()), b"")
    for body in (
        b'{"choices": [{"finish_reason": "length"}], "usage": {"prompt_tokens": 5,'
        b' "completion_tokens": 9}}',
        b"not json",  # a container's own format: no GenAI attributes, no error
    ):
        obs = telemetry.observe("ChatCompletions", "llm", False)
        assert obs is not None
        obs.succeeded(response, Answer(body))
    first, second = rec.spans()
    assert first.attributes["gen_ai.usage.output_tokens"] == 9  # type: ignore[index]
    assert list(first.attributes["gen_ai.response.finish_reasons"]) == ["length"]  # type: ignore[arg-type,index]
    assert "gen_ai.usage.input_tokens" not in second.attributes  # type: ignore[operator]
    assert second.status.status_code is StatusCode.UNSET


def test_stream_outside_the_pipeline(rec: Recorder) -> None:
    """The API the bidirectional stream uses: started, parts, closed."""
    telemetry = load_telemetry(
        rec.tracer_provider,
        rec.meter_provider,
        region="us-east-1",
        host="h",
        port=443,
        gauges=lambda: (0, 0),
    )
    assert telemetry is not None
    obs = telemetry.observe("InvokeEndpointWithBidirectionalStream", "bidi", True)
    assert obs is not None
    obs.stream_started(200, "req-bidi")
    assert rec.spans() == []
    for _ in range(3):
        obs.part()
    obs.stream_closed(True)
    [span] = rec.spans()
    attrs = dict(span.attributes or {})
    assert attrs["aws.request_id"] == "req-bidi"
    assert attrs["sagemaker_runtime.stream.outcome"] == "completed"
    assert total(rec, "sagemaker_runtime.stream.time_between_parts") == 2


# -- the OpenAI route's stream, GenAI attributes of streamed answers, the bidirectional stream ---


async def test_route_stream_parts_and_genai_from_iter_text(
    runtime: LocalRuntime, rec: Recorder
) -> None:
    runtime.add_endpoint("openai-chat", CannedLLM("openai-chat"))
    async with (
        client_for(runtime.url, rec) as client,
        client.chat_completions_stream(
            endpoint_name="openai-chat", body={"messages": []}
        ) as stream,
    ):
        assert rec.spans() == []  # the span lasts while the stream is open
        text = "".join([t async for t in stream.iter_text()])
    assert text == LLM_TEXT
    assert stream.usage is not None and stream.finish_reason == "stop"
    [span] = rec.spans()
    assert span.name == "SageMaker Runtime.ChatCompletions"
    attrs = dict(span.attributes or {})
    parts = attrs["sagemaker_runtime.stream.parts"]
    assert isinstance(parts, int) and parts > 1
    assert attrs["sagemaker_runtime.stream.outcome"] == "completed"
    assert list(attrs["gen_ai.response.finish_reasons"]) == ["stop"]  # type: ignore[arg-type]
    assert attrs["gen_ai.usage.input_tokens"] == stream.usage.prompt_tokens
    assert attrs["gen_ai.usage.output_tokens"] == stream.usage.completion_tokens
    assert total(rec, "sagemaker_runtime.stream.time_to_first_part") == 1
    assert total(rec, "sagemaker_runtime.stream.time_between_parts") == parts - 1
    [first] = points(rec, "sagemaker_runtime.stream.time_to_first_part")
    assert first.attributes["rpc.method"] == "ChatCompletions"


async def test_genai_from_iter_json_on_both_streams(runtime: LocalRuntime, rec: Recorder) -> None:
    runtime.add_endpoint("tgi", CannedLLM("tgi"))
    runtime.add_endpoint("openai-chat", CannedLLM("openai-chat"))
    async with client_for(runtime.url, rec) as client:
        async with client.chat_completions_stream(endpoint_name="tgi", body={}) as route:
            docs = [d async for d in route.iter_json()]
        async with client.invoke_endpoint_with_response_stream(
            endpoint_name="openai-chat", body=b"{}"
        ) as classic:
            assert "".join([t async for t in classic.iter_text()]) == LLM_TEXT
    details = docs[-1]["details"]
    route_span, classic_span = rec.spans()
    assert route_span.name == "SageMaker Runtime.ChatCompletions"
    assert list(route_span.attributes["gen_ai.response.finish_reasons"]) == ["eos_token"]  # type: ignore[arg-type,index]
    assert route_span.attributes["gen_ai.usage.output_tokens"] == details["generated_tokens"]  # type: ignore[index]
    assert classic_span.name == "SageMaker Runtime.InvokeEndpointWithResponseStream"
    assert list(classic_span.attributes["gen_ai.response.finish_reasons"]) == ["stop"]  # type: ignore[arg-type,index]
    assert classic_span.attributes["gen_ai.usage.output_tokens"] == classic.usage.completion_tokens  # type: ignore[index,union-attr]


async def test_no_genai_attributes_from_an_abandoned_or_raw_stream(
    runtime: LocalRuntime, rec: Recorder
) -> None:
    runtime.add_endpoint("openai-chat", CannedLLM("openai-chat"))
    async with client_for(runtime.url, rec) as client:
        async with client.chat_completions_stream(endpoint_name="openai-chat", body={}) as s:
            async for _ in s.iter_text():
                break  # the decoder never saw the end
        async with client.chat_completions_stream(endpoint_name="openai-chat", body={}) as s:
            async for _ in s:  # raw parts: nothing decoded, nothing reported
                pass
    abandoned, raw = rec.spans()
    assert abandoned.attributes["sagemaker_runtime.stream.outcome"] == "abandoned"  # type: ignore[index]
    assert raw.attributes["sagemaker_runtime.stream.outcome"] == "completed"  # type: ignore[index]
    for span in (abandoned, raw):
        assert not [k for k in span.attributes or {} if k.startswith("gen_ai.")]


def bidi_client(runtime: LocalRuntime, rec: Recorder | None) -> SageMakerRuntimeClient:
    return client_for(
        runtime.url,
        rec,
        bidirectional_endpoint_url=runtime.bidirectional_url,
        retry_policy=RetryPolicy(max_attempts=3, base_delay=0.0, max_delay=0.0),
    )


async def bidi_echo(invocation: Any, inbound: AsyncIterator[BidirectionalPart]) -> Any:
    async for part in inbound:
        yield part


BIDI = "SageMaker Runtime.InvokeEndpointWithBidirectionalStream"


async def test_bidirectional_stream_span_and_metrics(runtime: LocalRuntime, rec: Recorder) -> None:
    runtime.add_bidirectional_endpoint("duplex", bidi_echo)
    async with (
        bidi_client(runtime, rec) as client,
        client.invoke_endpoint_with_bidirectional_stream(endpoint_name="duplex") as s,
    ):
        answers = aiter(s)
        for index in range(3):
            await s.send(f"ping {index}")
            assert (await answers.__anext__()).bytes == f"ping {index}".encode()
        await s.end_input()
        assert [p async for p in answers] == []
        assert rec.spans() == []  # until the stream is closed
    [span] = rec.spans()
    assert span.name == BIDI
    assert span.kind is SpanKind.CLIENT
    attrs = dict(span.attributes or {})
    assert attrs["rpc.method"] == "InvokeEndpointWithBidirectionalStream"
    assert attrs["aws.sagemaker.endpoint_name"] == "duplex"
    assert attrs["http.response.status_code"] == 200
    assert s.response_metadata is not None
    assert attrs["aws.request_id"] == s.response_metadata.request_id
    assert attrs["sagemaker_runtime.stream.parts"] == 3
    assert attrs["sagemaker_runtime.stream.outcome"] == "completed"
    assert span.status.status_code is StatusCode.UNSET
    assert total(rec, "sagemaker_runtime.stream.time_to_first_part") == 1
    assert total(rec, "sagemaker_runtime.stream.time_between_parts") == 2
    assert total(rec, "sagemaker_runtime.attempts") == 1
    [duration] = points(rec, "rpc.client.call.duration")
    assert duration.attributes["sagemaker_runtime.outcome"] == "success"
    [active] = points(rec, "sagemaker_runtime.calls.active")
    assert active.value == 0


async def test_bidirectional_retries_then_error_answer(
    runtime: LocalRuntime, rec: Recorder
) -> None:
    runtime.add_bidirectional_endpoint("duplex", bidi_echo)
    runtime.fail_next("duplex", 5, error="ServiceUnavailableError", status=503)
    async with bidi_client(runtime, rec) as client:
        with pytest.raises(ServiceUnavailableError) as caught:
            async with client.invoke_endpoint_with_bidirectional_stream(
                endpoint_name="duplex"
            ) as s:
                [part async for part in s]
    [span] = rec.spans()
    attrs = dict(span.attributes or {})
    assert span.status.status_code is StatusCode.ERROR
    assert attrs["error.type"] == caught.value.code
    assert attrs["http.response.status_code"] == 503
    assert attrs["sagemaker_runtime.attempts"] == 3
    assert [e.name for e in span.events].count("retry") == 2
    assert total(rec, "sagemaker_runtime.retries") == 2
    assert total(rec, "sagemaker_runtime.attempts", **{"error.type": caught.value.code}) == 3
    assert [e.name for e in span.events][-1] == "exception"


async def test_bidirectional_model_stream_error_and_abandoned(
    runtime: LocalRuntime, rec: Recorder
) -> None:
    async def breaks(invocation: Any, inbound: AsyncIterator[BidirectionalPart]) -> Any:
        async for part in inbound:
            yield part
            raise ContainerError(500, "decoder crashed")

    runtime.add_bidirectional_endpoint("breaks", breaks)
    runtime.add_bidirectional_endpoint("duplex", bidi_echo)
    async with bidi_client(runtime, rec) as client:
        with pytest.raises(ModelStreamError):
            async with client.invoke_endpoint_with_bidirectional_stream(
                endpoint_name="breaks"
            ) as s:
                await s.send(b"one")
                [part async for part in s]
        async with client.invoke_endpoint_with_bidirectional_stream(endpoint_name="duplex") as s:
            await s.send(b"one")
            async for _ in s:
                break  # left early: abandoned, not an error
    broken, abandoned = rec.spans()
    assert broken.attributes["error.type"] == "ModelStreamError"  # type: ignore[index]
    assert broken.attributes["sagemaker_runtime.stream.outcome"] == "error"  # type: ignore[index]
    assert broken.attributes["sagemaker_runtime.stream.parts"] == 1  # type: ignore[index]
    assert abandoned.attributes["sagemaker_runtime.stream.outcome"] == "abandoned"  # type: ignore[index]
    assert abandoned.status.status_code is StatusCode.UNSET


async def test_bidirectional_cancelled_and_shut_down(runtime: LocalRuntime, rec: Recorder) -> None:
    runtime.add_bidirectional_endpoint("duplex", bidi_echo)
    client = bidi_client(runtime, rec)
    got_first = asyncio.Event()

    async def read() -> None:
        async with client.invoke_endpoint_with_bidirectional_stream(endpoint_name="duplex") as s:
            await s.send(b"one")
            async for _ in s:
                got_first.set()

    task = asyncio.ensure_future(read())
    await got_first.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    [cancelled] = rec.spans()
    assert cancelled.attributes["error.type"] == "CancelledError"  # type: ignore[index]
    got_first.clear()
    task = asyncio.ensure_future(read())
    await got_first.wait()
    await client.shutdown(grace=0)
    with pytest.raises(ClientClosedError):
        await task
    _, shut = rec.spans()
    assert shut.name == BIDI
    assert shut.attributes["error.type"] == "ClientClosedError"  # type: ignore[index]
    assert shut.status.status_code is StatusCode.ERROR
    [active] = points(rec, "sagemaker_runtime.calls.active")
    assert active.value == 0


async def test_bidirectional_open_failure_ends_the_span(rec: Recorder) -> None:
    async with SageMakerRuntimeClient(
        "us-east-1",
        endpoint_url="http://127.0.0.1:9",
        bidirectional_endpoint_url="http://127.0.0.1:9",
        allow_http=True,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        retry_policy=RetryPolicy(max_attempts=1),
        tracer_provider=rec.tracer_provider,
        meter_provider=rec.meter_provider,
    ) as client:
        with pytest.raises(EndpointConnectionError):
            async with client.invoke_endpoint_with_bidirectional_stream(endpoint_name="x"):
                pass
        assert trace.get_current_span() is trace.INVALID_SPAN  # no span left current
    [span] = rec.spans()
    assert span.name == BIDI
    assert span.attributes["error.type"] == "EndpointConnectionError"  # type: ignore[index]


async def test_no_secret_or_body_in_exported_stream_data(
    runtime: LocalRuntime, rec: Recorder
) -> None:
    runtime.add_bidirectional_endpoint("duplex", bidi_echo)
    runtime.add_endpoint("openai-chat", CannedLLM("openai-chat", CUSTOM))
    sent: list[str] = []  # the route's bearer tokens (handlers never see the caller's Authorization)

    async def on_start(_: Any, __: Any, params: aiohttp.TraceRequestStartParams) -> None:
        sent.append(params.headers.get("Authorization", ""))

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(on_start)
    async with (
        aiohttp.ClientSession(trace_configs=[trace]) as session,
        client_for(
            runtime.url,
            rec,
            http_session=session,
            bidirectional_endpoint_url=runtime.bidirectional_url,
            retry_policy=RetryPolicy(max_attempts=3, base_delay=0.0, max_delay=0.0),
        ) as client,
    ):
        async with client.invoke_endpoint_with_bidirectional_stream(endpoint_name="duplex") as s:
            await s.send(BODY)
            await s.end_input()
            assert [p.bytes async for p in s] == [BODY]
        async with client.chat_completions_stream(
            endpoint_name="openai-chat", body={"messages": [{"content": BODY.decode()}]}
        ) as route:
            assert "".join([t async for t in route.iter_text()]) == CUSTOM
        async with client.chat_completions_stream(endpoint_name="openai-chat", body={}) as route:
            assert [d async for d in route.iter_json()]
    secrets = {SECRET_KEY, SESSION_TOKEN, BODY.decode(), CUSTOM}
    secrets |= {auth.split("Bearer ")[1] for auth in sent if auth.startswith("Bearer ")}
    assert len(secrets) > 4
    text = exported_text(rec)
    assert "InvokeEndpointWithBidirectionalStream" in text and "gen_ai.usage" in text
    for secret in secrets:
        assert secret not in text
