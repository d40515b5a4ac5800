"""Which SHA-256 signs cheaper inside real calls: OpenSSL's (hashlib) or CPython's own.

Run: ``python benchmarks/bench_sha256.py [--rounds R] [--concurrency C]``.

A call hashes three short messages (the body, the canonical request, the string to sign). Alone,
in a tight loop, OpenSSL's hashing is the faster; inside a call, after the wait for the network has
let the caches go cold, what counts is how much code and data each touches. Two measurements, each
alternating round by round against the loopback server of ``floor.py``, paired medians of CPU:

- **Pieces in a call**: raw aiohttp calls, each first doing one piece of work (three hashes the
  sizes of a call's, through OpenSSL or CPython's own), against the same calls doing nothing
  extra; and each piece alone in a loop.
- **Whole calls**: this client signing with each implementation (the module's ready state swapped
  between rounds), against the expert's hand-signed call.

CPython's own is ``_sha256`` up to 3.11 and ``_sha2`` (HACL*) from 3.12.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import importlib
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

from bench_client import alternate, paired, round_runner  # noqa: E402
from floor import (  # noqa: E402
    CONTENT_TYPE,
    ENDPOINT,
    REQUEST_BODY,
    SKIP_AUTO_HEADERS,
    _session,
    make_expert,
    make_ours,
    quiet_environment,
    start_server,
    steady_allocator,
    stop_server,
)

CANONICAL = b"c" * 330  # about a SageMaker call's canonical request
TO_SIGN = b"s" * 150  # and its string to sign


def builtin_sha256() -> Callable[[], object]:
    for name in ("_sha256", "_sha2"):
        try:
            return importlib.import_module(name).sha256  # type: ignore[no-any-return]
        except ImportError:
            continue
    raise SystemExit("this Python has no built-in SHA-256")


def three_hashes(new: Callable[[], object]) -> Callable[[], None]:
    ready = new()

    def piece() -> None:
        for message in (REQUEST_BODY, CANONICAL, TO_SIGN):
            digest = ready.copy()  # type: ignore[attr-defined]
            digest.update(message)
            digest.hexdigest()

    return piece


def signing_with(new: Callable[[], object]) -> None:
    """This client signs with ``new``'s SHA-256 from now on (its ready state and caches)."""
    from sagemaker_rt_aio import _signing

    _signing._SHA256 = new()  # type: ignore[assignment]
    _signing.signing_hmac.cache_clear()
    _signing._templates.clear()


CALLS = 300  # per client and round


def cpu_per_call(
    loop: asyncio.AbstractEventLoop,
    call: Callable[[], Awaitable[object]],
    before: Callable[[], None] = lambda: None,
) -> Callable[[], float]:
    """A run for bench_client's ``alternate``: ``before()``, then CPU µs per call over ``CALLS``."""
    run = round_runner(loop, call, 1)
    before()
    run(50)  # warm-up

    def measure() -> float:
        before()
        started = time.process_time()
        run(CALLS)
        return (time.process_time() - started) / CALLS * 1e6

    return measure


def pieces_in_calls(loop: asyncio.AbstractEventLoop, url: str, rounds: int) -> None:
    session = loop.run_until_complete(_make_session())
    target = f"{url}/endpoints/{ENDPOINT}/invocations"
    headers = {"Content-Type": CONTENT_TYPE, "Accept-Encoding": "identity", "User-Agent": "raw"}
    pieces = {
        "nothing": lambda: None,
        "OpenSSL x3": three_hashes(hashlib.sha256),
        "built-in x3": three_hashes(builtin_sha256()),
    }

    def call_doing(piece: Callable[[], None]) -> Callable[[], Awaitable[bytes]]:
        async def call() -> bytes:
            piece()
            async with session.post(
                target, data=REQUEST_BODY, headers=headers, skip_auto_headers=SKIP_AUTO_HEADERS
            ) as response:
                return await response.read()

        return call

    runs = {name: cpu_per_call(loop, call_doing(piece)) for name, piece in pieces.items()}
    samples = alternate(runs, rounds)
    loop.run_until_complete(session.close())
    print("| piece | alone, µs | added to a call, µs (paired) |\n|---|---:|---:|")
    for name, piece in pieces.items():
        started = time.process_time()
        for _ in range(20_000):
            piece()
        alone = (time.process_time() - started) / 20_000 * 1e6
        pairs = zip(samples[name], samples["nothing"], strict=True)
        added = statistics.median(a - b for a, b in pairs)
        print(f"| {name} | {alone:.1f} | {added:+.1f} |")


def whole_calls(loop: asyncio.AbstractEventLoop, url: str, rounds: int) -> None:
    expert, close_expert = loop.run_until_complete(make_expert(url, 1))
    ours, close_ours = loop.run_until_complete(make_ours(url, 1))
    builtin = builtin_sha256()
    runs = {
        "expert": cpu_per_call(loop, expert),
        "ours, OpenSSL": cpu_per_call(loop, ours, lambda: signing_with(hashlib.sha256)),
        "ours, built-in": cpu_per_call(loop, ours, lambda: signing_with(builtin)),
    }
    samples = alternate(runs, rounds)
    loop.run_until_complete(close_expert())
    loop.run_until_complete(close_ours())
    print("\n| client | CPU µs per call | of the expert's (paired) |\n|---|---:|---:|")
    for name, (median, ratio) in paired(samples, "expert").items():
        print(f"| {name} | {median:.1f} | {ratio:.3f}x |")


async def _make_session() -> Any:
    return _session(1)  # made inside the loop, as aiohttp wants


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    quiet_environment()
    steady_allocator()
    process, url = start_server()
    try:
        print(f"Python {sys.version.split()[0]}, {args.rounds} rounds\n")
        loop = asyncio.new_event_loop()
        pieces_in_calls(loop, url, args.rounds)
        whole_calls(loop, url, args.rounds)
        loop.close()
    finally:
        stop_server(process)


if __name__ == "__main__":
    main()
