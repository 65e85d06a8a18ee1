"""A starting replica never answers "untouched" for a pod it would mask (issue 11's measurement, repeated): while a
fresh operator process starts, its webhook is sent the review of a selected pod every 20 ms from the moment it
listens. Every answer must be a refusal to decide (HTTP 503, so the failurePolicy applies) or the masked
mutation — never ``allowed`` without a patch — and /readyz turns 200 only once masked answers come.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from kubernetes import client

from hwcap_dev.devcluster.testing import ClusterAccess
from tests.e2e.webhook_support import (
    MUTATE_PATH,
    TEST_LABEL,
    delete_domain,
    domain_manifest,
    label_namespace,
    webhook_tls,
)
from tests.support.domains import Domains, install_crd
from tests.support.operator import OperatorProcess
from tests.support.ports import free_port

G3 = "arm64-aws-graviton3-neoverse-v1"


def review(namespace: str) -> bytes:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "probe", "namespace": namespace},
           "spec": {"containers": [{"name": "app", "image": "registry.invalid/app:1", "command": ["/app"]}]}}
    return json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "u", "kind": {"group": "", "version": "v1", "kind": "Pod"}, "operation": "CREATE",
        "namespace": namespace, "object": pod}}).encode()  # fmt: skip


def answer(url: str, body: bytes, context: ssl.SSLContext) -> str | None:
    """"refused" (503), "masked" (allowed with a patch), "untouched" (allowed, no patch), other text; None when
    nothing listens yet."""
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5, context=context) as r:
            response = json.loads(r.read())["response"]
    except urllib.error.HTTPError as exc:
        return "refused" if exc.code == 503 else f"HTTP {exc.code}"
    except OSError:
        return None
    if not response["allowed"]:
        return "denied"
    return "masked" if response.get("patch") else "untouched"


def test_a_starting_replica_refuses_to_decide_until_its_view_is_loaded(
    control_plane: ClusterAccess, kubectl: Any, api_client: client.ApiClient, core_v1: client.CoreV1Api,
    node_factory: Any, namespace: str, tmp_path: Path,
) -> None:  # fmt: skip
    install_crd(kubectl)
    tls = webhook_tls(tmp_path / "tls")
    port = free_port()
    (tmp_path / "first").mkdir()
    (tmp_path / "second").mkdir()
    first = OperatorProcess(control_plane.kubeconfig, tmp_path / "first", namespace="default",
                            webhook=(port, tls.cert, tls.key)).start()  # fmt: skip
    name = f"ready-{namespace}"[:63]
    node_factory(G3, labels={TEST_LABEL: namespace})
    label_namespace(core_v1, namespace, {TEST_LABEL: namespace})
    kubectl("apply", "-f", "-", input=domain_manifest(name, namespace, {TEST_LABEL: namespace}))
    second = OperatorProcess(control_plane.kubeconfig, tmp_path / "second", namespace="default",
                             webhook=(port, tls.cert, tls.key))  # fmt: skip
    try:
        Domains(api_client).wait_condition(name, "Ready", "True", timeout=60)
        first.stop()
        context = ssl.create_default_context(cadata=tls.ca_pem.decode())
        url, body = f"https://127.0.0.1:{port}{MUTATE_PATH}", review(namespace)
        answers: list[tuple[float, str]] = []
        ready_at: list[float] = []
        done = threading.Event()

        def poll() -> None:
            while not done.is_set():
                got = answer(url, body, context)
                if got is not None:
                    answers.append((time.monotonic(), got))
                time.sleep(0.02)

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        second.start()  # returns once /readyz is 200
        ready_at.append(time.monotonic())
        time.sleep(1.0)
        done.set()
        poller.join(timeout=10)
        kinds = [kind for _, kind in answers]
        print(f"\nwhile starting: {kinds.count('refused')} refused (503), {kinds.count('masked')} masked, "
              f"{kinds.count('untouched')} untouched, other {sorted(set(kinds) - {'refused', 'masked', 'untouched'})}")
        assert "untouched" not in kinds
        assert set(kinds) <= {"refused", "masked"}
        after_ready = [k for t, k in answers if t >= ready_at[0]]
        assert after_ready and set(after_ready) == {"masked"}
    finally:
        if second.proc is None or second.proc.poll() is not None:
            second.start()
        delete_domain(api_client, name)
        second.stop()
        first.stop()
