"""Reliability: fault and bad-input classes, counted. Every class writes its result (trials, losses) with
``hwcap_dev.reliability.record``; ``make reliability`` runs them at full scale (HWCAP_RELIABILITY=full) and
renders docs/reliability.md; the regular suite runs the same tests with small counts (the CI subset).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from hwcap_dev import reliability
from hwcap_dev.devcluster.testing import ClusterAccess
from tests.e2e.webhook_support import (
    TEST_LABEL,
    WebhookTLS,
    delete_domain,
    domain_manifest,
    label_namespace,
    webhook_tls,
)
from tests.support.domains import Domains, install_crd
from tests.support.operator import OperatorProcess
from tests.support.ports import free_port

G3 = "arm64-aws-graviton3-neoverse-v1"


@pytest.fixture(scope="session")
def results(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Where this run's results go: build/reliability for ``make reliability``, a temporary directory otherwise
    (a CI run must not overwrite the full run's numbers)."""
    if reliability.full_scale():
        yield reliability.results_dir()
    else:
        yield tmp_path_factory.mktemp("reliability")


@pytest.fixture
def rig(control_plane: ClusterAccess, kubectl: Any, api_client: client.ApiClient, core_v1: client.CoreV1Api,
        node_factory: Any, namespace: str, tmp_path: Path) -> Iterator[tuple[OperatorProcess, str, WebhookTLS]]:
    """A webhook-serving operator with a leader Lease of its own identity, and a Ready domain over two nodes."""
    install_crd(kubectl)
    tls = webhook_tls(tmp_path / "tls")
    op = OperatorProcess(control_plane.kubeconfig, tmp_path, namespace="default",
                         webhook=(free_port(), tls.cert, tls.key),
                         extra=["--leader-lease", "faults", "--leader-identity", "the-pod"])  # fmt: skip
    op.start()
    for _ in range(2):
        node_factory(G3, labels={TEST_LABEL: namespace})
    label_namespace(core_v1, namespace, {TEST_LABEL: namespace})
    name = f"faults-{namespace}"[:63]
    kubectl("apply", "-f", "-", input=domain_manifest(name, namespace, {TEST_LABEL: namespace}))
    Domains(api_client).wait_condition(name, "Ready", "True", timeout=60)
    try:
        yield op, name, tls
    finally:
        if op.proc is None or op.proc.poll() is not None:
            op.start()
        delete_domain(api_client, name)
        op.stop()
