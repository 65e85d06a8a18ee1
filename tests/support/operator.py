"""Run the real operator (``hwcap-operator run``) as a subprocess against a test control plane.

A subprocess, not an in-process thread: a restart is a real restart (fresh memory, watches re-listed), and
what runs is exactly the console script a user runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from tests.support.ports import free_port
from tests.support.waits import wait_for

#: The init image the operator writes into pods; tests never pull it (there is no kubelet).
INIT_IMAGE = "registry.local/hwcap-operator:test"


class OperatorProcess:
    """``hwcap-operator run`` with the admin kubeconfig; logs in ``work/operator-N.log``."""

    def __init__(self, kubeconfig: Path, work: Path, namespace: str = "hwcap-system", *,
                 webhook: tuple[int, Path, Path] | None = None, extra: list[str] | None = None) -> None:  # fmt: skip
        self.kubeconfig, self.work, self.namespace = kubeconfig, work, namespace
        self.webhook, self.extra = webhook, extra or []
        self.metrics_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.log_path = work / "operator-0.log"

    def start(self) -> OperatorProcess:
        self.starts += 1
        self.log_path = self.work / f"operator-{self.starts}.log"
        args = [sys.executable, "-m", "hwcap_operator.cli.operator_main", "--kubeconfig", str(self.kubeconfig),
                "--log-format", "json", "run", "--namespace", self.namespace, "--init-image", INIT_IMAGE,
                "--metrics-host", "127.0.0.1", "--metrics-port", str(self.metrics_port), "--resync-seconds", "20"]
        if self.webhook is None:
            args += ["--webhook-port", "0"]
        else:
            port, cert, key = self.webhook
            args += ["--webhook-host", "127.0.0.1", "--webhook-port", str(port), "--tls-cert-file", str(cert),
                     "--tls-key-file", str(key)]
        args += self.extra
        log = self.log_path.open("wb")
        self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                     env={**os.environ, "PYTHONUNBUFFERED": "1"})  # fmt: skip
        wait_for("the operator's /readyz", self._ready, timeout=60)
        return self

    def _ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"operator exited with {self.proc.returncode}:\n{self.log()[-4000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/readyz", timeout=2) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as r:
            return str(r.read().decode())

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_records(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log().splitlines():
            with contextlib.suppress(ValueError):
                out.append(json.loads(line))
        return out

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


#: What the e2e ``start_operator`` fixture gives:
#: ``start(kubeconfig=None, *, tls=None, namespace="hwcap-system", extra=()) -> OperatorProcess``.
OperatorStarter = Callable[..., "OperatorProcess"]


@contextlib.contextmanager
def running_operator(kubeconfig: Path, work: Path, **kwargs: Any) -> Iterator[OperatorProcess]:
    op = OperatorProcess(kubeconfig, work, **kwargs).start()
    try:
        yield op
    finally:
        op.stop()
        errors = [r for r in op.log_records() if r.get("level") in ("error", "critical")
                  and "Traceback" in str(r.get("error", ""))]  # fmt: skip
        assert not errors, f"operator logged tracebacks: {errors[:2]}"
