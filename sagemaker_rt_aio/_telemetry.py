"""OpenTelemetry traces and metrics: everything the client knows about OpenTelemetry lives here.

This module imports ``opentelemetry-api`` (the ``otel`` extra); the client imports it only when that
package is installed (``load_telemetry``). The call pipeline sees a tiny observer interface:

    pipeline.observe(operation, endpoint_name, stream) -> CallObservation | None
    obs.attempt_failed(error) / obs.retrying(error, wait) / obs.succeeded(response, result)
    obs.failed(exc) / obs.part() / obs.stream_closed(completed, exc)

Code outside the pipeline (the bidirectional stream) calls the same object:
``telemetry.observe(operation, endpoint_name, True)``, then ``stream_started(status, request_id)``
or ``failed(exc)``, ``part()`` per event received, and ``stream_closed(completed, exc)``.
The OpenAI route's JSON answers (``ChatCompletions``) add GenAI attributes (``genai_from_openai``).

With no provider given and the global providers still the API's defaults (proxy or no-op), ``observe``
returns None after two ``isinstance`` checks, so a call pays well under a microsecond. A global SDK
provider installed after the client was built is honoured: the checks run per call, and the API's
proxy tracer and meter forward to it.

What is emitted, and never: see README "Observability". Bodies, header values, custom attributes and
credentials are never read here; exceptions recorded on spans are our own typed errors, whose texts
are already free of secrets.
"""

from __future__ import annotations

import asyncio
import time
import traceback
import weakref
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from ._errors import SageMakerRuntimeError, ServiceError

if TYPE_CHECKING:
    from ._transport import HttpResponse

try:  # the API's global meter provider before one is set; private, so looked up defensively
    from opentelemetry.metrics import _internal as _metrics_internal
    from opentelemetry.metrics._internal import _ProxyMeterProvider as _ProxyMP

    _IDLE_METER_PROVIDERS: tuple[type, ...] = (metrics.NoOpMeterProvider, _ProxyMP)
except ImportError:  # pragma: no cover - a future API without them: the public getters decide
    _metrics_internal = None  # type: ignore[assignment]
    _IDLE_METER_PROVIDERS = (metrics.NoOpMeterProvider,)
_IDLE_TRACER_PROVIDERS = (trace.ProxyTracerProvider, trace.NoOpTracerProvider)


# ``get_tracer_provider()`` costs about a microsecond (it looks the environment up on every call),
# too much for every call's hot path: while the API's module globals are still None, no provider was
# ever set and nothing records. ``Telemetry`` calls the public getters once when built, which loads
# a provider named by OTEL_PYTHON_TRACER_PROVIDER/OTEL_PYTHON_METER_PROVIDER into those globals.
_GLOBALS_READABLE = hasattr(trace, "_TRACER_PROVIDER") and hasattr(
    _metrics_internal, "_METER_PROVIDER"
)

INSTRUMENTATION_NAME = "sagemaker_rt_aio"
INSTRUMENTATION_VERSION = "0.1.0"
# The AWS SDK semantic conventions use the service id of the service model, as botocore's
# instrumentation does ("SageMaker Runtime"; S3 is "S3").
SERVICE = "SageMaker Runtime"
S3_SERVICE = "S3"
# Not in the semantic conventions: the name of the endpoint a call went to.
ENDPOINT_ATTRIBUTE = "aws.sagemaker.endpoint_name"
OUTCOME_ATTRIBUTE = "sagemaker_runtime.outcome"
CANCELLED = "CancelledError"  # error.type of a call cancelled by its caller

# Seconds: the semantic conventions' advisory boundaries for durations, stretched for long calls
# (explicit_bucket_boundaries_advisory: opentelemetry-api 1.30, hence the extra's minimum).
_DURATION_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 30.0, 60.0,
    120.0, 300.0,
)  # fmt: skip
_GAP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_S3_METHODS = {"HEAD": "HeadObject", "GET": "GetObject", "PUT": "PutObject"}
# Operations whose JSON answer is an OpenAI-style document (usage, finish reasons): the route's.
_GENAI_OPERATIONS = frozenset({"ChatCompletions"})


def error_type(exc: BaseException) -> str:
    """``error.type``: the service's error code, else the exception's class name."""
    if isinstance(exc, ServiceError):
        return exc.code
    if isinstance(exc, asyncio.CancelledError):
        return CANCELLED
    return type(exc).__qualname__


class Telemetry:
    """One client's tracer and instruments."""

    def __init__(
        self,
        *,
        tracer_provider: trace.TracerProvider | None,
        meter_provider: metrics.MeterProvider | None,
        region: str,
        host: str,
        port: int | None,
        gauges: Callable[[], tuple[int, int]] | None = None,
    ) -> None:
        self._explicit = tracer_provider is not None or meter_provider is not None
        tp = tracer_provider if tracer_provider is not None else trace.get_tracer_provider()
        mp = meter_provider if meter_provider is not None else metrics.get_meter_provider()
        self._tracer = tp.get_tracer(INSTRUMENTATION_NAME, INSTRUMENTATION_VERSION)
        meter = mp.get_meter(INSTRUMENTATION_NAME, INSTRUMENTATION_VERSION)
        self.region = region
        self.host = host
        self._static: dict[str, Any] = {
            "rpc.system": "aws-api",
            "cloud.region": region,
            "server.address": host,
        }
        if port is not None:
            self._static["server.port"] = port
        self.duration = meter.create_histogram(
            "rpc.client.call.duration",
            unit="s",
            description="Duration of a call, retries and backoff included; a stream's until closed.",
            explicit_bucket_boundaries_advisory=_DURATION_BUCKETS,
        )
        self.attempts = meter.create_counter(
            "sagemaker_runtime.attempts", unit="{attempt}", description="HTTP attempts sent."
        )
        self.retries = meter.create_counter(
            "sagemaker_runtime.retries", unit="{retry}", description="Attempts tried again."
        )
        self.active = meter.create_up_down_counter(
            "sagemaker_runtime.calls.active", unit="{call}", description="Calls in flight."
        )
        self.first_part = meter.create_histogram(
            "sagemaker_runtime.stream.time_to_first_part",
            unit="s",
            description="From the start of a stream call to its first payload part.",
            explicit_bucket_boundaries_advisory=_DURATION_BUCKETS,
        )
        self.between_parts = meter.create_histogram(
            "sagemaker_runtime.stream.time_between_parts",
            unit="s",
            description="Between consecutive payload parts of a stream.",
            explicit_bucket_boundaries_advisory=_GAP_BUCKETS,
        )
        if gauges is not None:
            self._gauges = gauges
            _observed_by(meter, mp).add(self)

    def enabled(self) -> bool:
        """Whether anything would record a call: a provider given, or a global SDK one set."""
        if self._explicit:
            return True
        return not isinstance(
            trace.get_tracer_provider(), _IDLE_TRACER_PROVIDERS
        ) or not isinstance(metrics.get_meter_provider(), _IDLE_METER_PROVIDERS)

    def observe(
        self, operation: str, endpoint_name: str, stream: bool = False
    ) -> CallObservation | None:
        """Start observing one SageMaker Runtime call, or None when nothing records."""
        if (
            not self._explicit
            and _GLOBALS_READABLE
            and trace._TRACER_PROVIDER is None
            and _metrics_internal._METER_PROVIDER is None
        ) or not self.enabled():
            return None
        if operation.startswith("S3 "):  # the waiter's S3 requests ("S3 HEAD" on a bucket)
            return self._s3(operation[3:], endpoint_name)
        return CallObservation(self, SERVICE, operation, endpoint_name, stream)

    def observe_s3(self, method: str, bucket: str) -> CallObservation | None:
        """Start observing one S3 request of the async-result waiter."""
        if not self.enabled():
            return None
        return self._s3(method, bucket)

    def _s3(self, method: str, bucket: str) -> CallObservation:
        operation = _S3_METHODS.get(method, method)
        # S3's host is not the client's endpoint: no server.address/server.port on these.
        return CallObservation(self, S3_SERVICE, operation, None, False, bucket=bucket)

    @contextmanager
    def waiting(self, operation: str, output_location: str | None) -> Iterator[Span | None]:
        """A span around an async-result wait, current while it runs, so its S3 requests are
        its children."""
        if not self.enabled():
            yield None
            return
        attributes: dict[str, Any] = {
            "rpc.system": "aws-api",
            "rpc.service": SERVICE,
            "rpc.method": operation,
            "cloud.region": self.region,
        }
        if isinstance(output_location, str) and output_location.startswith("s3://"):
            attributes["aws.s3.bucket"] = output_location[5:].split("/", 1)[0]
        span = self._tracer.start_span(
            f"{SERVICE}.{operation}", kind=SpanKind.INTERNAL, attributes=attributes
        )
        token = otel_context.attach(trace.set_span_in_context(span))
        try:
            yield span
        except BaseException as exc:
            _record_error(span, exc)
            raise
        finally:
            otel_context.detach(token)
            span.end()

    async def waiting_iter(
        self, operation: str, output_location: str | None, chunks: AsyncIterator[bytes]
    ) -> AsyncIterator[bytes]:
        """``waiting`` for an async iterator: the span is current only while the first chunk is
        fetched (polls and the GET happen then), never across a ``yield``."""
        try:
            with self.waiting(operation, output_location):
                try:
                    first = await chunks.__anext__()
                except StopAsyncIteration:
                    return
            yield first
            async for chunk in chunks:
                yield chunk
        finally:
            aclose = getattr(chunks, "aclose", None)
            if aclose is not None:
                await aclose()

    def _observe_gauges(self) -> tuple[int, int]:
        return self._gauges()


class CallObservation:
    """One call's span and measurements, from its start until it ends (a stream: until closed)."""

    __slots__ = (
        "_attempts",
        "_ended",
        "_genai",
        "_last",
        "_metric_attrs",
        "_parts",
        "_started",
        "_stream",
        "_t",
        "_token",
        "span",
    )

    def __init__(
        self,
        telemetry: Telemetry,
        service: str,
        operation: str,
        endpoint_name: str | None,
        stream: bool,
        *,
        bucket: str | None = None,
    ) -> None:
        self._t = telemetry
        self._stream = stream
        self._started = time.monotonic()
        self._attempts = 1
        self._parts = 0
        self._last = 0.0
        self._ended = False
        self._genai = operation in _GENAI_OPERATIONS
        metric_attrs = {"rpc.system": "aws-api", "rpc.service": service, "rpc.method": operation}
        if bucket is None:
            attributes = dict(telemetry._static)
            metric_attrs["server.address"] = telemetry.host
        else:
            attributes = {"rpc.system": "aws-api", "cloud.region": telemetry.region}
            attributes["aws.s3.bucket"] = metric_attrs["aws.s3.bucket"] = bucket
        attributes["rpc.service"] = service
        attributes["rpc.method"] = operation
        if endpoint_name is not None:
            attributes[ENDPOINT_ATTRIBUTE] = endpoint_name
            metric_attrs[ENDPOINT_ATTRIBUTE] = endpoint_name
        self._metric_attrs = metric_attrs
        self.span = telemetry._tracer.start_span(
            f"{service}.{operation}", kind=SpanKind.CLIENT, attributes=attributes
        )
        # Current while the call runs: spans of HTTP instrumentations nest under it.
        self._token: object | None = otel_context.attach(trace.set_span_in_context(self.span))
        telemetry.active.add(1, metric_attrs)

    # -- attempts ---------------------------------------------------------------------------

    def attempt_failed(self, error: BaseException) -> None:
        """An attempt ended in an error (a service answer or a transport failure)."""
        attrs = dict(self._metric_attrs)
        attrs["error.type"] = error_type(error)
        self._t.attempts.add(1, attrs)

    def retrying(self, error: BaseException, wait: float) -> None:
        """The call will try again after ``wait`` seconds."""
        self._attempts += 1
        reason = error_type(error)
        event: dict[str, Any] = {
            "sagemaker_runtime.attempt": self._attempts - 1,
            "error.type": reason,
            "sagemaker_runtime.retry.delay": wait,
        }
        if isinstance(error, ServiceError):
            event["http.response.status_code"] = error.status_code
            if error.request_id:
                event["aws.request_id"] = error.request_id
        self.span.add_event("retry", event)
        attrs = dict(self._metric_attrs)
        attrs["error.type"] = reason
        self._t.retries.add(1, attrs)

    # -- the end of the call ----------------------------------------------------------------

    def succeeded(self, response: HttpResponse, result: object = None) -> None:
        """A 2xx answer. A stream call's span stays open until the stream is closed."""
        self._t.attempts.add(1, self._metric_attrs)
        self._detach()
        span = self.span
        span.set_attribute("http.response.status_code", response.status)
        request_id = response.headers.get("x-amzn-RequestId") or response.headers.get(
            "x-amz-request-id"
        )
        if request_id:
            span.set_attribute("aws.request_id", request_id)
        if self._genai and not self._stream:
            self._genai_from_result(result)
        if self._stream and result is not None:
            try:
                result._observer = self  # type: ignore[attr-defined]  # ResponseStream's hook
            except AttributeError:  # a stream type without the hook: the span ends now
                pass
            else:
                return
        self._end(None)

    def failed(self, exc: BaseException) -> None:
        """The call ended with ``exc`` (a typed error, or a cancellation)."""
        self._detach()
        if isinstance(exc, ServiceError):
            self.span.set_attribute("http.response.status_code", exc.status_code)
            if exc.request_id:
                self.span.set_attribute("aws.request_id", exc.request_id)
        self._end(exc)

    # -- streams ----------------------------------------------------------------------------

    def stream_started(self, status: int, request_id: str | None = None) -> None:
        """A stream that does not come through the pipeline (the bidirectional HTTP/2 one)
        started: its answer's status and request id; the span lasts until ``stream_closed``."""
        self._t.attempts.add(1, self._metric_attrs)
        self._detach()
        self.span.set_attribute("http.response.status_code", status)
        if request_id:
            self.span.set_attribute("aws.request_id", request_id)

    def part(self) -> None:
        """A payload part arrived."""
        now = time.monotonic()
        if self._parts:
            self._t.between_parts.record(now - self._last, self._metric_attrs)
        else:
            self._t.first_part.record(now - self._started, self._metric_attrs)
            self.span.add_event("first_part")
        self._parts += 1
        self._last = now

    def stream_closed(self, completed: bool, exc: BaseException | None = None) -> None:
        """The stream was closed: read to its end, abandoned early, or ended by ``exc``."""
        if self._ended:
            return
        if exc is not None and not isinstance(exc, (SageMakerRuntimeError, asyncio.CancelledError)):
            exc = None  # the caller's own exception left the block: the stream was abandoned
        self.span.set_attribute("sagemaker_runtime.stream.parts", self._parts)
        self.span.set_attribute(
            "sagemaker_runtime.stream.outcome",
            "error" if exc is not None else ("completed" if completed else "abandoned"),
        )
        self._end(exc)

    # -- GenAI (the OpenAI-compatible route, or any caller that parsed a usage report) --------

    def genai(
        self,
        *,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        finish_reasons: Sequence[str] | None = None,
        model: str | None = None,
    ) -> None:
        span = self.span
        if input_tokens is not None:
            span.set_attribute("gen_ai.usage.input_tokens", input_tokens)
        if output_tokens is not None:
            span.set_attribute("gen_ai.usage.output_tokens", output_tokens)
        if finish_reasons:
            span.set_attribute("gen_ai.response.finish_reasons", list(finish_reasons))
        if model:
            span.set_attribute("gen_ai.response.model", model)

    def _genai_from_result(self, result: object) -> None:
        """GenAI attributes from the route's JSON answer (parsed here only when recording)."""
        to_json = getattr(result, "json", None)
        if to_json is None:
            return
        try:
            document = to_json()
        except (ValueError, RecursionError):  # not JSON (a container's own format): nothing
            return
        self.genai_from_openai(document)

    def genai_from_openai(self, document: object) -> None:
        """Usage and finish reasons from an OpenAI-style response (or stream chunk) document."""
        if not isinstance(document, Mapping):
            return
        usage = document.get("usage")
        if isinstance(usage, Mapping):
            prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
            self.genai(
                input_tokens=prompt if isinstance(prompt, int) else None,
                output_tokens=completion if isinstance(completion, int) else None,
            )
        choices = document.get("choices")
        if isinstance(choices, list):
            reasons = [
                str(choice["finish_reason"])
                for choice in choices
                if isinstance(choice, Mapping) and choice.get("finish_reason")
            ]
            if reasons:
                self.genai(finish_reasons=reasons)
        model = document.get("model")
        if isinstance(model, str):
            self.genai(model=model)

    # -- internals --------------------------------------------------------------------------

    def _detach(self) -> None:
        token, self._token = self._token, None
        if token is not None:
            otel_context.detach(token)  # type: ignore[arg-type]

    def _end(self, exc: BaseException | None) -> None:
        if self._ended:
            return
        self._ended = True
        self._detach()
        span = self.span
        attrs = dict(self._metric_attrs)
        if self._attempts > 1:
            span.set_attribute("http.request.resend_count", self._attempts - 1)
        span.set_attribute("sagemaker_runtime.attempts", self._attempts)
        if exc is None:
            attrs[OUTCOME_ATTRIBUTE] = "success"
        else:
            kind = error_type(exc)
            attrs["error.type"] = kind
            attrs[OUTCOME_ATTRIBUTE] = "cancelled" if kind == CANCELLED else "error"
            _record_error(span, exc)
        span.end()
        self._t.duration.record(time.monotonic() - self._started, attrs)
        self._t.active.add(-1, self._metric_attrs)


def _record_error(span: Span, exc: BaseException) -> None:
    kind = error_type(exc)
    span.set_attribute("error.type", kind)
    span.set_status(Status(StatusCode.ERROR, kind))
    # Our typed errors carry no secrets. The chained causes are left out of the stack trace: a
    # third-party exception's text is not ours to vouch for.
    stack = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__, chain=False))
    span.record_exception(exc, attributes={"exception.stacktrace": stack})


# -- observable gauges: one set of instruments per meter, reading every live client ------------


class _Observed:
    """The clients measured through one meter. The SDK keeps only the first callback of an
    observable instrument created twice under one name, so one callback serves them all."""

    def __init__(self, meter: metrics.Meter) -> None:
        self._clients: weakref.WeakSet[Telemetry] = weakref.WeakSet()
        meter.create_observable_up_down_counter(
            "sagemaker_runtime.calls.queued",
            callbacks=[self._queued],
            unit="{call}",
            description="Attempts waiting for a free connection slot (max_connections).",
        )
        meter.create_observable_gauge(
            "sagemaker_runtime.retry_quota.available",
            callbacks=[self._quota],
            unit="{token}",
            description="Tokens left in the retry quota (the lowest among clients of one host).",
        )

    def add(self, telemetry: Telemetry) -> None:
        self._clients.add(telemetry)

    def _read(self) -> Iterable[tuple[str, int, int]]:
        for telemetry in list(self._clients):
            queued, quota = telemetry._observe_gauges()
            yield telemetry.host, queued, quota

    def _queued(self, options: CallbackOptions) -> Iterable[Observation]:
        totals: dict[str, int] = {}
        for host, queued, _ in self._read():
            totals[host] = totals.get(host, 0) + queued
        return [Observation(n, {"server.address": host}) for host, n in totals.items()]

    def _quota(self, options: CallbackOptions) -> Iterable[Observation]:
        lowest: dict[str, int] = {}
        for host, _, quota in self._read():
            lowest[host] = min(lowest.get(host, quota), quota)
        return [Observation(n, {"server.address": host}) for host, n in lowest.items()]


_OBSERVED: weakref.WeakKeyDictionary[Any, _Observed] = weakref.WeakKeyDictionary()


def _observed_by(meter: metrics.Meter, provider: object) -> _Observed:
    try:
        observed = _OBSERVED.get(provider)
        if observed is None:
            observed = _OBSERVED[provider] = _Observed(meter)
    except TypeError:  # a provider that cannot be weakly referenced: its own set, never shared
        observed = _Observed(meter)
    return observed
