"""``batch``: one invocation per input line, results written as they complete, resumable.

The output is JSON lines, one record per input line, in completion order::

    {"line": 7, "status": "ok", "output": {...}, "request_id": "...", "retries": 0, "latency_ms": 12.5}
    {"line": 9, "status": "error", "error": {"type": "ModelError", "code": "ModelError", ...}}

Each record is written with a single write and flushed, so an interrupted run (Ctrl-C) leaves a valid
file holding every line that finished. A re-run keeps the successful records, drops failed ones (and a
torn last line, should the process have been killed mid-write) and calls again only the lines with no
successful record.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from .._client import SageMakerRuntimeClient
from .._errors import ParamValidationError, SageMakerRuntimeError, ServiceError, TransportError


class Progress(Protocol):
    def update(self, n: int = 1) -> Any: ...
    def close(self) -> Any: ...


@dataclass
class BatchSummary:
    total: int = 0
    skipped: int = 0
    succeeded: int = 0
    failed: int = 0
    retries: int = 0
    elapsed: float = 0.0
    latencies: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)

    def percentile(self, fraction: float) -> float:
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]

    def rows(self) -> list[tuple[str, str]]:
        done = self.succeeded + self.failed
        rate = done / self.elapsed if self.elapsed > 0 else 0.0
        rows = [
            ("calls", f"{done}" + (f" ({self.skipped} already done)" if self.skipped else "")),
            ("succeeded", str(self.succeeded)),
            ("failed", str(self.failed)),
            ("retries", str(self.retries)),
            ("wall time", f"{self.elapsed:.2f} s ({rate:,.0f} calls/s)"),
        ]
        for label, fraction in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99)):
            rows.append((f"latency {label}", f"{self.percentile(fraction) * 1000:.1f} ms"))
        if self.latencies:
            rows.append(("latency max", f"{max(self.latencies) * 1000:.1f} ms"))
        for code, count in sorted(self.errors.items()):
            rows.append((f"error {code}", str(count)))
        return rows

    def describe(self) -> str:
        width = max(len(label) for label, _ in self.rows())
        return "\n".join(f"  {label:<{width}}  {value}" for label, value in self.rows())


def completed_lines(output_path: Path) -> set[int]:
    """Line numbers with a successful record; rewrites the file to hold only those records."""
    if not output_path.exists():
        return set()
    kept: list[bytes] = []
    done: set[int] = set()
    with output_path.open("rb") as file:
        for raw in file:
            try:
                record = json.loads(raw)
            except ValueError:
                continue  # a torn last line from a killed run
            if isinstance(record, dict) and record.get("status") == "ok":
                line = record.get("line")
                if isinstance(line, int) and line not in done:
                    done.add(line)
                    kept.append(raw if raw.endswith(b"\n") else raw + b"\n")
    partial = output_path.with_name(output_path.name + ".tmp")
    partial.write_bytes(b"".join(kept))
    os.replace(partial, output_path)
    return done


def _input_lines(path: Path, skip: set[int]) -> Iterator[tuple[int, bytes]]:
    with path.open("rb") as file:
        for number, raw in enumerate(file, start=1):
            body = raw.rstrip(b"\r\n")
            if body.strip() and number not in skip:
                yield number, body


def _output_value(body: bytes, content_type: str | None) -> Any:
    text = body.decode("utf-8", "replace")
    if content_type is None or "json" in content_type:
        try:
            return json.loads(text)
        except ValueError:
            pass
    return text


def _error_record(error: SageMakerRuntimeError) -> dict[str, Any]:
    record: dict[str, Any] = {"type": type(error).__name__, "message": str(error)}
    if isinstance(error, ServiceError):
        record.update(
            code=error.code,
            message=error.message,
            status_code=error.status_code,
            request_id=error.request_id,
        )
    return record


def make_progress(total: int, enabled: bool) -> Progress | None:
    if not enabled or total == 0:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return _TextProgress(total) if sys.stderr.isatty() else None
    return tqdm(total=total, unit="call", dynamic_ncols=True, file=sys.stderr)  # type: ignore[no-any-return]


class _TextProgress:
    """A plain progress line when tqdm (the ``cli`` extra) is not installed."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.done = 0
        self.started = time.monotonic()
        self.shown = 0.0

    def update(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if now - self.shown < 0.2 and self.done < self.total:
            return
        self.shown = now
        rate = self.done / max(now - self.started, 1e-9)
        eta = (self.total - self.done) / rate if rate else 0.0
        sys.stderr.write(f"\r{self.done}/{self.total} calls  {rate:,.0f}/s  ETA {eta:.0f} s ")
        sys.stderr.flush()

    def close(self) -> None:
        sys.stderr.write("\n")


async def run_batch(
    client: SageMakerRuntimeClient,
    *,
    endpoint_name: str,
    input_path: Path,
    output_path: Path,
    concurrency: int,
    content_type: str | None = "application/json",
    accept: str | None = None,
    progress: bool = True,
) -> BatchSummary:
    """Invoke ``endpoint_name`` once per line of ``input_path``; see the module docstring."""
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    summary = BatchSummary()
    done = completed_lines(output_path)
    summary.skipped = len(done)
    pending = sum(1 for _ in _input_lines(input_path, done))
    summary.total = pending + len(done)
    bar = make_progress(pending, progress)
    queue: asyncio.Queue[tuple[int, bytes] | None] = asyncio.Queue(maxsize=concurrency * 2)
    started = time.monotonic()

    async def invoke(number: int, body: bytes, out: BinaryIO) -> None:
        begun = time.monotonic()
        record: dict[str, Any] = {"line": number}
        try:
            result = await client.invoke_endpoint(
                endpoint_name=endpoint_name, body=body, content_type=content_type, accept=accept
            )
        except (ServiceError, TransportError, ParamValidationError) as error:
            # ParamValidationError: this line's body is invalid (e.g. over the size limit); the
            # other lines go on.
            summary.failed += 1
            summary.retries += _retries_of(error)
            code = error.code if isinstance(error, ServiceError) else type(error).__name__
            summary.errors[code] = summary.errors.get(code, 0) + 1
            record.update(status="error", error=_error_record(error))
        else:
            latency = time.monotonic() - begun
            summary.succeeded += 1
            summary.retries += result.response_metadata.retry_attempts
            summary.latencies.append(latency)
            record.update(
                status="ok",
                output=_output_value(result.body, result.content_type),
                request_id=result.response_metadata.request_id,
                retries=result.response_metadata.retry_attempts,
                latency_ms=round(latency * 1000, 3),
            )
        # One write per record, flushed: an interruption never leaves half a line behind.
        out.write(json.dumps(record, ensure_ascii=False).encode() + b"\n")
        out.flush()
        if bar is not None:
            bar.update(1)

    async def worker(out: BinaryIO) -> None:
        while (item := await queue.get()) is not None:
            await invoke(*item, out)

    with output_path.open("ab") as out:
        workers = [asyncio.create_task(worker(out)) for _ in range(concurrency)]
        try:
            for item in _input_lines(input_path, done):
                await queue.put(item)
            for _ in workers:
                await queue.put(None)
            await asyncio.gather(*workers)
        finally:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            if bar is not None:
                bar.close()
    summary.elapsed = time.monotonic() - started
    return summary


def _retries_of(error: SageMakerRuntimeError) -> int:
    metadata = getattr(error, "response_metadata", None)
    return metadata.retry_attempts if metadata is not None else 0
