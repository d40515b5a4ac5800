"""The observer interface the call pipeline and response streams call, and its lazy loader.

Nothing here imports OpenTelemetry: ``load_telemetry`` imports ``_telemetry`` (which does) only
when ``opentelemetry-api`` is installed. Without it the pipeline's ``observe`` stays None and a call
pays one attribute check.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ._telemetry import Telemetry
    from ._transport import HttpResponse

OTEL_EXTRA_HINT = "install the 'otel' extra: pip install 'sagemaker-rt-aio[otel]'"


class CallObserver(Protocol):
    """What a call tells its observer (``_telemetry.CallObservation``)."""

    def attempt_failed(self, error: BaseException) -> None: ...
    def retrying(self, error: BaseException, wait: float) -> None: ...
    def succeeded(self, response: HttpResponse, result: object = None) -> None: ...
    def failed(self, exc: BaseException) -> None: ...
    def part(self) -> None: ...
    def stream_closed(self, completed: bool, exc: BaseException | None = None) -> None: ...


# (operation, endpoint_name, stream) -> an observer for this call, or None when nothing records.
Observe = Callable[[str, str, bool], "CallObserver | None"]


def load_telemetry(
    tracer_provider: Any,
    meter_provider: Any,
    *,
    region: str,
    host: str,
    port: int | None,
    gauges: Callable[[], tuple[int, int]],
) -> Telemetry | None:
    """The client's telemetry, or None when ``opentelemetry-api`` is not installed.

    Providers given without the package installed are an error naming the extra to install.
    """
    try:
        from ._telemetry import Telemetry
    except ImportError as exc:
        if not (exc.name or "").startswith("opentelemetry"):
            raise  # a bug of ours, not a missing extra
        if tracer_provider is not None or meter_provider is not None:
            raise ImportError(
                f"tracer_provider and meter_provider need opentelemetry-api: {OTEL_EXTRA_HINT}"
            ) from exc
        return None
    return Telemetry(
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        region=region,
        host=host,
        port=port,
        gauges=gauges,
    )
