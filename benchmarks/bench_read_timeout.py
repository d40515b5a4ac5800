"""What keeping a 70 s read timeout costs a call: the expert floor with and without one, this
client with and without its own.

Run: ``python benchmarks/bench_read_timeout.py [--concurrency 1,64,512] [--rounds R] [--calls N]
[--loop asyncio|uvloop]``.

The expert floor of ``bench_client.py`` keeps no read timeout: aiohttp's default session has a
300 s total and no ``sock_read``. This client keeps a 70 s ``sock_read`` on every call (AWS's
advice for SageMaker: the service gives the model 60 s), with one read watchdog per client
instead of aiohttp's timer re-armed on every read. Four clients, in paired rounds as in
``bench_client.py`` (one loopback server in its own process, pools warmed up, turns rotating, a
full collection before each round; each ratio the median over rounds of the ratio within a
round):

- ``expert``: the floor as ``bench_client.py`` has it;
- ``expert read timeout``: the same session with ``ClientTimeout(sock_read=70)``, as aiohttp's
  documentation keeps one (and no total, as this client's default);
- ``ours``: ``invoke_endpoint``, as ``bench_client.py`` calls it;
- ``ours without read timeout``: an ablation, not a setting (the API refuses ``sock_read=0``):
  the same client with its read watchdog watching nothing.
"""

from __future__ import annotations

import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

from bench_client import bench_calls, call_table_main, paired  # noqa: E402
from floor import CALL_CLIENTS, OTHER_CALL_CLIENTS  # noqa: E402

CLIENTS = {
    "expert": CALL_CLIENTS["expert"],
    "expert read timeout": OTHER_CALL_CLIENTS["expert read timeout"],
    "ours": CALL_CLIENTS["ours"],
    "ours without read timeout": OTHER_CALL_CLIENTS["ours without read timeout"],
}


def bench(url: str, loop_name: str, concurrency: int, calls: int, rounds: int) -> list[str]:
    samples = bench_calls(url, loop_name, concurrency, calls, rounds, CLIENTS)
    to_expert = paired(samples, "expert")
    to_ours = paired(samples, "ours")
    return [
        f"| {loop_name} | {concurrency} | {name} | {to_expert[name][0]:.1f} | "
        f"{to_expert[name][1]:.3f}x | {to_ours[name][1]:.3f}x |"
        for name in CLIENTS
    ]


def main() -> None:
    call_table_main(
        __doc__,
        (
            "| loop | concurrency | client | CPU µs/call | vs expert | vs ours |",
            "|---|---:|---|---:|---:|---:|",
        ),
        bench,
        concurrency="1,64,512",
        rounds=31,
        calls=2048,
    )


if __name__ == "__main__":
    main()
