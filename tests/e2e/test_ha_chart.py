"""``helm install`` with ``operator.replicas: 2`` (the chart's ci/ha-values.yaml) reconciles: two operator processes
run with the chart's own options and only its ServiceAccount's token (each with its pod's name, as the
Deployment passes POD_NAME) — a domain becomes Ready, exactly one of them holds the chart's Lease, and neither
was refused anything by the API server.

No kubelet runs the chart's pods here (see test_chart_rbac_scenario.py for why the processes run locally).
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from hwcap_dev.devcluster.testing import ClusterAccess, ToolRunner, helm_runner
from tests.e2e.chart_rbac_support import chart_operator_args, request_token
from tests.e2e.webhook_support import delete_domain
from tests.support.domains import Domains, domain_manifest, install_crd
from tests.support.operator import OperatorProcess

CHART_DIR = Path(__file__).resolve().parents[2] / "charts" / "hwcap-operator"
G3 = "arm64-aws-graviton3-neoverse-v1"


@pytest.fixture(scope="module")
def helm(control_plane: ClusterAccess) -> ToolRunner:
    return helm_runner(control_plane)


@pytest.fixture
def ha_release(helm: ToolRunner, kubectl: Any) -> Iterator[tuple[str, str, str]]:
    """(release, namespace, manifest) of the chart installed with ci/ha-values.yaml; uninstalled afterwards."""
    install_crd(kubectl)
    suffix = secrets.token_hex(3)
    name, namespace = f"ha{suffix}", f"hwcap-ha-{suffix}"
    helm("install", name, str(CHART_DIR), "--namespace", namespace, "--create-namespace",
         "--values", str(CHART_DIR / "ci" / "ha-values.yaml"))  # fmt: skip
    try:
        yield name, namespace, helm("get", "manifest", name, "--namespace", namespace).stdout
    finally:
        helm("uninstall", name, "--namespace", namespace, check=False)


def test_helm_install_with_two_replicas_reconciles_with_one_lease_holder(
    ha_release: tuple[str, str, str], control_plane: ClusterAccess, core_v1: client.CoreV1Api,
    api_client: client.ApiClient, kubectl: Any, node_factory: Any, namespace: str, tmp_path: Path,
) -> None:  # fmt: skip
    release, release_ns, manifest = ha_release
    sa = f"{release}-hwcap-operator"
    kubeconfig = control_plane.token_kubeconfig(sa, request_token(core_v1, release_ns, sa))
    args = chart_operator_args(manifest, release_ns)
    lease = args[args.index("--leader-lease") + 1]
    replicas: list[OperatorProcess] = []
    domains = Domains(api_client)
    try:
        for pod_name in (f"{sa}-7d9f-a", f"{sa}-7d9f-b"):
            work = tmp_path / pod_name
            work.mkdir()
            replicas.append(OperatorProcess(kubeconfig, work, namespace=release_ns,
                                            extra=[*args, "--leader-identity", pod_name]).start())  # fmt: skip
        node_factory(G3, labels={"hwcap.dev/test": namespace})
        kubectl("apply", "-f", "-", input=domain_manifest("ha-chart", namespace))
        domains.wait_condition("ha-chart", "Ready", "True", timeout=90)
        holder = client.CoordinationV1Api(api_client).read_namespaced_lease(lease, release_ns).spec.holder_identity
        leaders = [op for op in replicas if "hwcap_leader 1.0" in op.metrics()]
        assert len(leaders) == 1 and holder in {f"{sa}-7d9f-a", f"{sa}-7d9f-b"}
        # A 403 from the API server always carries reason Forbidden (kopf: APIForbiddenError). Not "403" alone:
        # a port or a timestamp's milliseconds in any record can hold those digits.
        refused = [r for op in replicas for r in op.log_records()
                   if "forbidden" in f"{r.get('msg', '')} {r.get('error', '')}".lower()]  # fmt: skip
        assert not refused, refused[:3]
    finally:
        with contextlib.suppress(AssertionError):
            delete_domain(api_client, "ha-chart")  # while the replicas run: the leader lets the finalizer go
        for op in replicas:
            op.stop()
