"""``ghostline serve --http`` in a child process, for the tests and benchmarks (as
``lsp_server.client.running_server`` is for the language server): a free loopback port,
wait until ``/healthz`` answers, stop it after."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class TeamServerProcess:
    process: subprocess.Popen
    url: str  # http://127.0.0.1:PORT
    log: Path  # its stderr

    def rss_mb(self) -> float:
        """Resident memory of the server (Linux)."""
        for row in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if row.startswith("VmRSS:"):
                return int(row.split()[1]) / 1024
        return float("nan")

    def stop(self, timeout: float = 20.0) -> int:
        """Stop as a service manager would (SIGTERM), killing it if it does not end."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


@contextlib.contextmanager
def team_server(args: list[str], log: Path, timeout: float = 120.0) -> Iterator[TeamServerProcess]:
    """Run ``ghostline serve --http 127.0.0.1:PORT *args`` until the block ends."""
    port = free_port()
    with open(log, "wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", "training.cli", "serve", "--http", f"127.0.0.1:{port}", *args],
                                stdout=subprocess.DEVNULL, stderr=err)
    server = TeamServerProcess(proc, f"http://127.0.0.1:{port}", log)
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never through a proxy
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with direct.open(f"{server.url}/healthz", timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the team server did not start: {log.read_text()[-2000:]}") from None
                time.sleep(0.1)
        yield server
    finally:
        server.stop()
