"""``batch``: one invocation per input line, results written as they complete, resumable.

The output is JSON lines, one record per input line, in completion order::

    {"line": 7, "status": "ok", "output": {...}, "request_id": "...", "retries": 0, "latency_ms": 12.5}
    {"line": 9, "status": "error", "error": {"type": "ModelError", "code": "ModelError", ...}}
    {"line": 4, "status": "unknown", "error": {"type": "ReadTimeoutError", ...}}

``unknown`` means the request was sent and no answer came (a read timeout, a connection dropped
after sending, an abort): the model may have run, and been paid for. Each record is written with a
single write and flushed, so an interrupted run leaves a valid file holding every line that ended.

A re-run keeps the successful and the unknown records, drops failed ones (and a torn last line,
should the process have been killed mid-write) and calls again only the lines with neither; with
``retry_unknown`` it calls the unknown lines again too.

Stopping: when ``stop`` is set (the CLI sets it on a first Ctrl-C) no new line is started and the
calls in flight finish and are recorded; when ``abort`` is set (a second Ctrl-C), or the run is
cancelled, the calls still in flight are cancelled and recorded as unknown.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from .._client import SageMakerRuntimeClient
from .._errors import (
    CredentialsError,
    NoRegionError,
    ParamValidationError,
    SageMakerRuntimeError,
    ServiceError,
    TransportError,
)


class Progress(Protocol):
    def update(self, n: int = 1) -> Any: ...
    def close(self) -> Any: ...


@dataclass
class BatchSummary:
    total: int = 0
    skipped: int = 0
    skipped_unknown: int = 0
    succeeded: int = 0
    failed: int = 0
    unknown: int = 0
    not_started: int = 0
    stopped: bool = False
    aborted: bool = False
    retries: int = 0
    elapsed: float = 0.0
    latencies: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)

    @property
    def unanswered(self) -> int:
        """Lines of the input that have no successful record yet (not counting unstarted ones)."""
        return self.failed + self.unknown + self.skipped_unknown

    def percentile(self, fraction: float) -> float:
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]

    def rows(self) -> list[tuple[str, str]]:
        done = self.succeeded + self.failed + self.unknown
        rate = done / self.elapsed if self.elapsed > 0 else 0.0
        earlier = []
        if self.skipped:
            earlier.append(f"{self.skipped} already done")
        if self.skipped_unknown:
            earlier.append(f"{self.skipped_unknown} unknown, not re-sent")
        rows = [
            ("calls", f"{done}" + (f" ({', '.join(earlier)})" if earlier else "")),
            ("succeeded", str(self.succeeded)),
            ("failed", str(self.failed)),
        ]
        if self.unknown:
            rows.append(("unknown outcome", str(self.unknown)))
        if self.stopped:
            rows.append(("not started", f"{self.not_started} (interrupted; run again to resume)"))
        rows += [
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


OK, ERROR, UNKNOWN = "ok", "error", "unknown"


@dataclass
class Previous:
    """What an earlier run left in the output file: the lines not to call again."""

    done: set[int] = field(default_factory=set)
    unknown: set[int] = field(default_factory=set)

    @property
    def skip(self) -> set[int]:
        return self.done | self.unknown


def previous_records(output_path: Path, *, retry_unknown: bool = False) -> Previous:
    """Reads an earlier run's records and rewrites the file to hold only those to keep: successes,
    and unknown outcomes unless ``retry_unknown`` (then their lines are called again)."""
    previous = Previous()
    if not output_path.exists():
        return previous
    keep = {OK} if retry_unknown else {OK, UNKNOWN}
    kept: list[bytes] = []
    with output_path.open("rb") as file:
        for raw in file:
            try:
                record = json.loads(raw)
            except ValueError:
                continue  # a torn last line from a killed run
            if not isinstance(record, dict) or record.get("status") not in keep:
                continue
            line = record.get("line")
            if not isinstance(line, int) or line in previous.skip:
                continue
            (previous.done if record["status"] == OK else previous.unknown).add(line)
            kept.append(raw if raw.endswith(b"\n") else raw + b"\n")
    partial = output_path.with_name(output_path.name + ".tmp")
    partial.write_bytes(b"".join(kept))
    os.replace(partial, output_path)
    return previous


def completed_lines(output_path: Path) -> set[int]:
    """Line numbers with a successful record; rewrites the file to hold only those records."""
    return previous_records(output_path, retry_unknown=True).done


def _input_lines(path: Path, skip: set[int]) -> Generator[tuple[int, bytes], None, None]:
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


def _error_record(error: BaseException) -> dict[str, Any]:
    record: dict[str, Any] = {"type": type(error).__name__, "message": str(error)}
    if isinstance(error, ServiceError):
        record.update(
            code=error.code,
            message=error.message,
            status_code=error.status_code,
            request_id=error.request_id,
        )
    return record


def outcome_of(error: SageMakerRuntimeError) -> str:
    """``error`` when the call certainly did not run the model, or the service said it failed;
    ``unknown`` when the request may have gone out and no usable answer came back (a read timeout,
    a connection dropped after sending, an answer too large to read...): the model may have run."""
    if isinstance(error, ServiceError):
        return ERROR
    if isinstance(error, TransportError):
        return UNKNOWN if getattr(error, "request_sent", True) else ERROR
    if isinstance(error, (ParamValidationError, NoRegionError, CredentialsError)):
        return ERROR  # refused before sending
    return UNKNOWN


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
    fields: Mapping[str, Any] | None = None,
    retry_unknown: bool = False,
    stop: asyncio.Event | None = None,
    abort: asyncio.Event | None = None,
) -> BatchSummary:
    """Invoke ``endpoint_name`` once per line of ``input_path``; see the module docstring.

    ``fields`` are further members of every request (``target_variant``...)."""
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    summary = BatchSummary()
    previous = previous_records(output_path, retry_unknown=retry_unknown)
    skip = previous.skip
    summary.skipped, summary.skipped_unknown = len(previous.done), len(previous.unknown)
    pending = sum(1 for _ in _input_lines(input_path, skip))
    summary.total = pending + len(skip)
    bar = make_progress(pending, progress)
    stop = stop or asyncio.Event()
    request = {"content_type": content_type, "accept": accept, **(fields or {})}
    started = time.monotonic()

    def write(out: BinaryIO, record: dict[str, Any]) -> None:
        # One write per record, flushed: an interruption never leaves half a line behind.
        out.write(json.dumps(record, ensure_ascii=False).encode() + b"\n")
        out.flush()
        if bar is not None:
            bar.update(1)

    def record_error(record: dict[str, Any], error: BaseException, status: str) -> None:
        code = error.code if isinstance(error, ServiceError) else type(error).__name__
        summary.errors[code] = summary.errors.get(code, 0) + 1
        record.update(status=status, error=_error_record(error))

    async def invoke(number: int, body: bytes, out: BinaryIO) -> None:
        begun = time.monotonic()
        record: dict[str, Any] = {"line": number}
        try:
            result = await client.invoke_endpoint(
                endpoint_name=endpoint_name, body=body, **request
            )
        except SageMakerRuntimeError as error:
            # A ParamValidationError is this line's own (a body over the size limit): the other
            # lines go on.
            summary.retries += _retries_of(error)
            status = outcome_of(error)
            if status == UNKNOWN:
                summary.unknown += 1
            else:
                summary.failed += 1
            record_error(record, error, status)
        except BaseException as error:
            # Aborted (cancelled) in flight, or a failure of our own: the request may have been
            # sent and the model may have run. Recorded, then the run ends.
            summary.unknown += 1
            if isinstance(error, asyncio.CancelledError):
                message = "aborted while in flight; the model may have run"
                record.update(status=UNKNOWN, error={"type": "Aborted", "message": message})
            else:
                record.update(status=UNKNOWN, error=_error_record(error))
            write(out, record)
            raise
        else:
            latency = time.monotonic() - begun
            summary.succeeded += 1
            summary.retries += result.response_metadata.retry_attempts
            summary.latencies.append(latency)
            record.update(
                status=OK,
                output=_output_value(result.body, result.content_type),
                request_id=result.response_metadata.request_id,
                retries=result.response_metadata.retry_attempts,
                latency_ms=round(latency * 1000, 3),
            )
        write(out, record)

    with output_path.open("ab") as out:
        lines = _input_lines(input_path, skip)

        async def worker() -> None:
            # Workers draw lines themselves (reading a line is a buffered read): once ``stop`` is
            # set none starts another, and those in flight end and are recorded.
            while not stop.is_set():
                item = next(lines, None)
                if item is None:
                    return
                await invoke(*item, out)

        workers = [asyncio.ensure_future(worker()) for _ in range(concurrency)]
        finished = asyncio.gather(*workers)
        aborted = asyncio.ensure_future((abort or asyncio.Event()).wait())
        either: set[asyncio.Future[Any]] = {finished, aborted}
        try:
            await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
            if finished.done():
                finished.result()  # a worker's unexpected error (say, the disk is full)
            else:
                summary.aborted = True
        finally:
            aborted.cancel()
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            await asyncio.gather(finished, return_exceptions=True)  # its outcome, retrieved
            lines.close()
            if bar is not None:
                bar.close()
            summary.elapsed = time.monotonic() - started
            summary.stopped = stop.is_set()
            summary.not_started = pending - (summary.succeeded + summary.failed + summary.unknown)
    return summary


def _retries_of(error: SageMakerRuntimeError) -> int:
    metadata = getattr(error, "response_metadata", None)
    return metadata.retry_attempts if metadata is not None else 0
