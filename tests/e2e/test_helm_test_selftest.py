"""The program of the chart's ``helm test`` pod, run against a real operator serving its webhook over TLS and a
real API server: it passes, and it fails (one line, exit 1) when the webhook's certificate is not the CA's."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.e2e.webhook_support import WebhookTLS, webhook_tls


def selftest(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hwcap_operator.cli.selftest", *args],
                          capture_output=True, text=True, timeout=60)  # fmt: skip


def test_helm_test_program_passes_against_the_running_operator(
    operator: Any, tls: WebhookTLS, local_control_plane: Any, tmp_path: Path
) -> None:
    ca = tmp_path / "ca.crt"
    ca.write_bytes(tls.ca_pem)
    url = f"https://127.0.0.1:{operator.webhook[0]}/mutate-pods"
    common = [
        "--webhook-url",
        url,
        "--namespace",
        operator.namespace,
        "--kubeconfig",
        str(local_control_plane.kubeconfig),
    ]
    passed = selftest(*common, "--ca-file", str(ca))
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert passed.stdout.splitlines() == ["ok: CRD served", "ok: webhook answers"]
    # A CA that did not sign the serving certificate: the TLS check fails, and says so in one line.
    other = webhook_tls(tmp_path / "other")
    (tmp_path / "other-ca.crt").write_bytes(other.ca_pem)
    failed = selftest(*common, "--ca-file", str(tmp_path / "other-ca.crt"))
    assert failed.returncode == 1
    lines = failed.stdout.splitlines()
    assert lines[0] == "ok: CRD served" and lines[1].startswith("FAILED: webhook answers") and "CERTIFICATE" in lines[1]
