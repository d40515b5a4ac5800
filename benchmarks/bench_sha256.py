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
import gc
import hashlib
import importlib
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

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


async def alternate(
    runs: dict[str, Callable[[], Awaitable[object]]],
    rounds: int,
    calls: int,
    before: dict[str, Callable[[], None]] | None = None,
) -> dict[str, list[float]]:
    """CPU µs per call of each run, the runs taking turns round by round, the order rotating."""
    samples: dict[str, list[float]] = {name: [] for name in runs}
    names = list(runs)
    for name in names:  # warm-up
        if before:
            before[name]()
        for _ in range(50):
            await runs[name]()
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            if before:
                before[name]()
            gc.collect()
            started = time.process_time()
            for _ in range(calls):
                await runs[name]()
            samples[name].append((time.process_time() - started) / calls * 1e6)
    return samples


async def pieces_in_calls(url: str, rounds: int) -> None:
    session = _session(1)
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

    samples = await alternate({n: call_doing(p) for n, p in pieces.items()}, rounds, 300)
    await session.close()
    print("| piece | alone, µs | added to a call, µs (paired) |\n|---|---:|---:|")
    for name, piece in pieces.items():
        started = time.process_time()
        for _ in range(20_000):
            piece()
        alone = (time.process_time() - started) / 20_000 * 1e6
        pairs = zip(samples[name], samples["nothing"], strict=True)
        added = statistics.median(a - b for a, b in pairs)
        print(f"| {name} | {alone:.1f} | {added:+.1f} |")


async def whole_calls(url: str, rounds: int) -> None:
    expert, close_expert = await make_expert(url, 1)
    ours, close_ours = await make_ours(url, 1)
    runs = {"expert": expert, "ours, OpenSSL": ours, "ours, built-in": ours}
    builtin = builtin_sha256()
    before = {
        "expert": lambda: None,
        "ours, OpenSSL": lambda: signing_with(hashlib.sha256),
        "ours, built-in": lambda: signing_with(builtin),
    }
    samples = await alternate(runs, rounds, 300, before)
    await close_expert()
    await close_ours()
    print("\n| client | CPU µs per call | of the expert's (paired) |\n|---|---:|---:|")
    for name, values in samples.items():
        ratio = statistics.median(a / b for a, b in zip(values, samples["expert"], strict=True))
        print(f"| {name} | {statistics.median(values):.1f} | {ratio:.3f}x |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    quiet_environment()
    steady_allocator()
    process, url = start_server()
    try:
        print(f"Python {sys.version.split()[0]}, {args.rounds} rounds\n")
        asyncio.run(pieces_in_calls(url, args.rounds))
        asyncio.run(whole_calls(url, args.rounds))
    finally:
        stop_server(process)


if __name__ == "__main__":
    main()
