"""The node factory's objects survive the real API (Node labels and NFD NodeFeature round-trip to the
dump's features), and Pod Security admission is enforced."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from hwcap_dev.devcluster.testing import ToolRunner
from hwcap_operator.features import parse_node, parse_node_feature

PROFILE = "arm64-aws-graviton2-neoverse-n1"


def _dump_features(profiles_dir: Path) -> set[str]:
    line = next(ln for ln in (profiles_dir / f"{PROFILE}.txt").read_text().splitlines() if ln.startswith("Features"))
    return set(line.split(":", 1)[1].split())


def test_fake_node_and_node_feature_round_trip_to_the_dump(
    node_factory: Any, api_client: client.ApiClient, profiles_dir: Path, namespace: str
) -> None:
    node = node_factory(PROFILE, node_feature_namespace=namespace)
    assert set(parse_node(node).names) == _dump_features(profiles_dir)
    assert not node["spec"].get("taints")  # schedulable: the condition taints were lifted
    stored = client.CustomObjectsApi(api_client).get_namespaced_custom_object(
        "nfd.k8s-sigs.io", "v1alpha1", namespace, "nodefeatures", node["metadata"]["name"]
    )
    elements = stored["spec"]["features"]["flags"]["cpu.cpuid"]["elements"]
    assert set(elements) == {t.upper() for t in _dump_features(profiles_dir)}
    assert set(parse_node_feature(stored, arch="arm64").names) == _dump_features(profiles_dir)


def test_pod_security_restricted_is_enforced(kubectl: ToolRunner, namespace: str) -> None:
    kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted")
    privileged = """
apiVersion: v1
kind: Pod
metadata: {name: root-pod}
spec:
  containers:
  - name: app
    image: registry.invalid/app:1
    securityContext: {privileged: true}
"""
    denied = kubectl("apply", "-n", namespace, "-f", "-", input=privileged, check=False)
    assert denied.returncode != 0
    assert 'violates PodSecurity "restricted' in denied.stderr and "privileged" in denied.stderr, denied.stderr

    compliant = """
apiVersion: v1
kind: Pod
metadata: {name: tidy-pod}
spec:
  securityContext: {runAsNonRoot: true, runAsUser: 65534, seccompProfile: {type: RuntimeDefault}}
  containers:
  - name: app
    image: registry.invalid/app:1
    securityContext:
      allowPrivilegeEscalation: false
      capabilities: {drop: [ALL]}
"""
    kubectl("apply", "-n", namespace, "-f", "-", input=compliant)


def test_unknown_profile_is_named(node_factory: Any) -> None:
    with pytest.raises(ValueError, match="arm64-no-such-cpu"):
        node_factory("arm64-no-such-cpu")
