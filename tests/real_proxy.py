"""A real forward proxy for the tests: proxy.py (not written here) in its own process on loopback,
with Basic auth, CONNECT tunnels and an access log the tests read."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

USER, PASSWORD = "tunnel", "p@ss:word"


@dataclass
class Proxy:
    url: str  # with credentials
    port: int
    log: Path

    def tunnels_to(self, port: int) -> int:
        return self.log.read_text().count(f"CONNECT 127.0.0.1:{port} ")


@contextlib.contextmanager
def running_proxy(directory: Path) -> Iterator[Proxy]:
    """proxy.py on a free port of 127.0.0.1, asking for ``USER``/``PASSWORD``; killed on exit."""
    port_file, log = directory / "port", directory / "proxy.log"
    process = subprocess.Popen(  # its own process group: proxy.py forks an acceptor
        [
            sys.executable, "-m", "proxy", "--hostname", "127.0.0.1", "--port", "0",
            "--port-file", str(port_file), "--num-workers", "1", "--num-acceptors", "1",
            "--threaded", "--basic-auth", f"{USER}:{PASSWORD}", "--log-file", str(log),
        ],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        port = _wait_for(process, port_file)
        yield Proxy(f"http://{USER}:{PASSWORD.replace('@', '%40')}@127.0.0.1:{port}", port, log)
    finally:
        # The whole group (proxy.py and the acceptor it forked); it holds nothing worth a graceful
        # stop, and SIGTERM takes it a second.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _wait_for(process: subprocess.Popen[bytes], port_file: Path) -> int:
    give_up = time.monotonic() + 20
    while time.monotonic() < give_up:
        if process.poll() is not None:
            raise RuntimeError("proxy.py exited at start")
        with contextlib.suppress(OSError, ValueError):
            port = int(port_file.read_text())
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return port
        time.sleep(0.05)
    raise RuntimeError("proxy.py did not start")
