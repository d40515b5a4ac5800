"""Ready-made middlewares.

A middleware is ``async def middleware(request, call_next) -> HttpResponse``. It runs once per
attempt, inside the retry loop and before signing, so headers it adds are signed; the first in the
client's ``middlewares`` list is the outermost. It sees every HTTP answer, errors included (the
retry layer turns those into exceptions after the middlewares return), and transport failures as
exceptions.
"""

from __future__ import annotations

import logging
import time

from ._pipeline import CallNext
from ._transport import HttpRequest, HttpResponse

__all__ = ["LoggingMiddleware"]


class LoggingMiddleware:
    """Logs one line per attempt: operation, endpoint, attempt, status, request id, latency.

    Never logs credentials, signatures, headers or bodies.
    """

    def __init__(self, logger: logging.Logger | None = None, *, level: int = logging.INFO) -> None:
        self.logger = logger or logging.getLogger("sagemaker_rt_aio.requests")
        self.level = level

    async def __call__(self, request: HttpRequest, call_next: CallNext) -> HttpResponse:
        if not self.logger.isEnabledFor(self.level):
            return await call_next(request)
        started = time.perf_counter()
        try:
            response = await call_next(request)
        except Exception as exc:
            self.logger.log(
                self.level,
                "%s endpoint=%s attempt=%d error=%s latency_ms=%.1f",
                request.operation,
                request.endpoint_name,
                request.attempt,
                type(exc).__name__,
                (time.perf_counter() - started) * 1000,
            )
            raise
        self.logger.log(
            self.level,
            "%s endpoint=%s attempt=%d status=%d request_id=%s latency_ms=%.1f",
            request.operation,
            request.endpoint_name,
            request.attempt,
            response.status,
            response.headers.get("x-amzn-RequestId") or "-",
            (time.perf_counter() - started) * 1000,
        )
        return response
