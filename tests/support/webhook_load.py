"""Load against a webhook server process: start one (its own process, so its RSS and GIL are its own), and the
open-loop client ``bench/openloop`` (Go, stdlib only) built once into the cache.

Shared by the webhook benchmark (bench/bench_webhook.py, bench/bench_podcreate.py) and the webhook's
reliability classes (tests/reliability/test_webhook_abuse.py).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

from hwcap_dev.paths import REPO_ROOT
from tests.support.webhook_server import Tls, free_port

OPENLOOP_SOURCE = REPO_ROOT / "bench" / "openloop"
CACHE = Path(os.environ.get("HWCAP_OPERATOR_CACHE", Path.home() / ".cache" / "hwcap-operator"))


class Served(NamedTuple):
    port: int
    pid: int


@contextlib.contextmanager
def server(app: str, tls_dir: Path, tls: Tls) -> Iterator[Served]:
    """``python -m tests.support.webhook_server --app <app>`` serving the pair in ``tls_dir/tls``; yields its
    port and pid once it answers TLS handshakes."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "tests.support.webhook_server", "--app", app,
                                "--port", str(port), "--dir", str(tls_dir)], cwd=REPO_ROOT)  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as raw, \
                        tls.client_context().wrap_socket(raw, server_hostname="localhost"):  # fmt: skip
                    break
            except (OSError, ssl.SSLError):
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError(f"{app} server did not start") from None
                time.sleep(0.1)
        yield Served(port, process.pid)
    finally:
        process.terminate()
        process.wait(10)


def build_openloop() -> Path:
    """``go build`` the open-loop client once per source version into the cache (stdlib only: no downloads)."""
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sorted(OPENLOOP_SOURCE.iterdir()))).hexdigest()[:12]
    binary = CACHE / "bench" / f"openloop-{digest}"
    if not binary.exists():
        binary.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["go", "build", "-o", str(binary), "."], cwd=OPENLOOP_SOURCE, check=True,
                       env={**os.environ, "GOTOOLCHAIN": "local", "CGO_ENABLED": "0"})  # fmt: skip
    return binary


def open_loop(binary: Path, port: int, ca: Path, body: Path, rate: float, seconds: float) -> dict[str, Any]:
    """Send ``body`` at ``rate`` req/s for ``seconds``; latency percentiles (ms) from each scheduled send time."""
    out = subprocess.run([str(binary), "-url", f"https://127.0.0.1:{port}/mutate-pods", "-ca", str(ca),
                          "-body", str(body), "-rate", str(rate), "-duration", f"{seconds}s"],
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    result: dict[str, Any] = json.loads(out)
    return result
