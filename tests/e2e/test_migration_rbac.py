"""The chart's migration RBAC (migration.rbac.enabled) on the real API server: the ClusterRole it renders is
enough for ``hwcapctl migrate`` to read what the refusal needs and to reach the kubelet checkpoint endpoint
through nodes/proxy, and a user outside its subjects gets neither."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from hwcap_dev.devcluster.testing import ClusterAccess
from hwcap_dev.paths import CHART_DIR
from tests.e2e.test_migration_refusal import MEMBER, ZEN2, ZEN4, hwcapctl, scene

GROUP = "hwcap-e2e-migrators"


@pytest.fixture
def migrator_role(crd: None, helm: Any, kubectl: Any) -> Iterator[None]:
    rendered = helm("template", "mig", str(CHART_DIR), "--kube-version", "1.37.0",
                    "--show-only", "templates/rbac-migration.yaml", "--set", "migration.rbac.enabled=true",
                    "--set", "migration.rbac.subjects[0].kind=Group",
                    "--set", f"migration.rbac.subjects[0].name={GROUP}",
                    "--set", "migration.rbac.subjects[0].apiGroup=rbac.authorization.k8s.io").stdout  # fmt: skip
    assert "nodes/proxy" in rendered and "ClusterRoleBinding" in rendered
    kubectl("apply", "-f", "-", input=rendered)
    yield
    kubectl("delete", "--ignore-not-found", "-f", "-", input=rendered)


def test_the_migrator_role_reads_refuses_and_reaches_the_kubelet_and_no_one_else_does(
    migrator_role: None, control_plane: ClusterAccess, core_v1: Any, namespace: str,
    node_factory: Callable[..., Any],
) -> None:
    source, weak, _ = scene(core_v1, namespace, node_factory, ZEN2, target_member=False)
    migrator = control_plane.user_kubeconfig("mig-user", [GROUP])
    refused = hwcapctl(migrator, "migrate", "--pod", f"{namespace}/counter", "--to", weak, "--dry-run")
    assert refused.returncode == 1 and refused.stdout.startswith("REFUSED"), refused.stderr

    capable = node_factory(ZEN4, labels=MEMBER)["metadata"]["name"]
    run = hwcapctl(migrator, "migrate", "--pod", f"{namespace}/counter", "--to", capable, "--registry", "127.0.0.1:1")
    assert run.returncode == 1
    assert run.stdout.startswith(f"FAILED at checkpoint: the kubelet on {source} refused")
    assert "403" not in run.stdout  # RBAC let the call through; a simulated node has no kubelet to answer it

    outsider = control_plane.user_kubeconfig("not-a-migrator")
    denied = hwcapctl(outsider, "migrate", "--pod", f"{namespace}/counter", "--to", capable, "--registry", "x")
    assert denied.returncode == 3 and "403" in denied.stderr
