"""The chart's migration RBAC (migration.rbac.enabled) on the real API server: with nodesProxy the ClusterRole it
renders is enough for ``hwcapctl migrate`` to read what the refusal needs and to reach the kubelet checkpoint
endpoint through nodes/proxy, and a user outside its subjects gets neither. Without nodesProxy (the default) the
role only has nodes/checkpoint, which the kubelet checks itself: tests/e2e/test_migration_real_node.py."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from hwcap_dev.devcluster.testing import ClusterAccess
from hwcap_dev.paths import CHART_DIR
from tests.e2e.test_migration_refusal import MEMBER, ZEN2, ZEN4, hwcapctl, scene

GROUP = "hwcap-e2e-migrators"


@contextlib.contextmanager
def migrator_role(helm: Any, kubectl: Any, *, nodes_proxy: bool) -> Iterator[str]:
    """The chart's migration ClusterRole, bound to GROUP, applied for the block; yields the rendered YAML."""
    rendered = helm("template", "mig", str(CHART_DIR), "--kube-version", "1.37.0",
                    "--show-only", "templates/rbac-migration.yaml", "--set", "migration.rbac.enabled=true",
                    "--set", f"migration.rbac.nodesProxy={str(nodes_proxy).lower()}",
                    "--set", "migration.rbac.subjects[0].kind=Group",
                    "--set", f"migration.rbac.subjects[0].name={GROUP}",
                    "--set", "migration.rbac.subjects[0].apiGroup=rbac.authorization.k8s.io").stdout  # fmt: skip
    assert 'resources: ["nodes/checkpoint"]' in rendered
    assert ('resources: ["nodes/proxy"]' in rendered) == nodes_proxy
    kubectl("apply", "-f", "-", input=rendered)
    try:
        yield rendered
    finally:
        kubectl("delete", "--ignore-not-found", "-f", "-", input=rendered)


def test_the_migrator_role_with_nodes_proxy_reads_refuses_and_reaches_the_kubelet_and_no_one_else_does(
    crd: None, helm: Any, kubectl: Any, control_plane: ClusterAccess, core_v1: Any, namespace: str,
    node_factory: Callable[..., Any],
) -> None:
    with migrator_role(helm, kubectl, nodes_proxy=True):
        check_migrator(control_plane, core_v1, namespace, node_factory)


def check_migrator(control_plane: ClusterAccess, core_v1: Any, namespace: str,
                   node_factory: Callable[..., Any]) -> None:
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
