"""Proof kube-scheduler runs: of two fake Ready nodes made from real arm64 dumps, a pod requiring an
NFD cpu-cpuid label is bound to the one whose dump has that feature, and a pod requiring a feature
neither dump has stays unschedulable."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kubernetes import client

from hwcap_operator.keys import NFD_CPUID_LABEL_PREFIX
from tests.support.waits import wait_for

GRAVITON2 = "arm64-aws-graviton2-neoverse-n1"
GRAVITON3 = "arm64-aws-graviton3-neoverse-v1"


def _dump_features(profiles_dir: Path, profile: str) -> set[str]:
    """The dump's own Features line, read independently of the node factory."""
    for line in (profiles_dir / f"{profile}.txt").read_text().splitlines():
        if line.startswith("Features"):
            return set(line.split(":", 1)[1].split())
    raise AssertionError(f"{profile}: no Features line")


#: Nodes other tests leave behind must not take our pods: each test's nodes carry its own label, required too.
OWNER = "e2e.hwcap.dev/owner"


def _pod(name: str, feature: str, owner: str) -> dict[str, Any]:
    term = {"matchExpressions": [
        {"key": NFD_CPUID_LABEL_PREFIX + feature, "operator": "In", "values": ["true"]},
        {"key": OWNER, "operator": "In", "values": [owner]},
    ]}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [term]}}},
            "containers": [{"name": "app", "image": "registry.invalid/app:1",
                            "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}],
        },
    }


def _wait_for(core_v1: client.CoreV1Api, namespace: str, name: str, done: Any, what: str) -> client.V1Pod:
    def reached() -> client.V1Pod | None:
        pod = core_v1.read_namespaced_pod(name, namespace)
        return pod if done(pod) else None

    pod: client.V1Pod = wait_for(f"pod {namespace}/{name}: {what}", reached, timeout=60, interval=0.3)
    return pod


def test_scheduler_binds_by_node_affinity(
    core_v1: client.CoreV1Api, node_factory: Any, profiles_dir: Path, namespace: str
) -> None:
    assert "sve" in _dump_features(profiles_dir, GRAVITON3)
    assert "sve" not in _dump_features(profiles_dir, GRAVITON2)
    old = node_factory(GRAVITON2, labels={OWNER: namespace})
    new = node_factory(GRAVITON3, labels={OWNER: namespace})
    assert {c["type"]: c["status"] for c in new["status"]["conditions"]}["Ready"] == "True"

    core_v1.create_namespaced_pod(namespace, _pod("needs-sve", "SVE", namespace))
    pod = _wait_for(core_v1, namespace, "needs-sve", lambda p: p.spec.node_name, "binding")
    assert pod.spec.node_name == new["metadata"]["name"] != old["metadata"]["name"]


def test_pod_needing_a_missing_feature_stays_pending(
    core_v1: client.CoreV1Api, node_factory: Any, profiles_dir: Path, namespace: str
) -> None:
    missing = "sve2"
    assert all(missing not in _dump_features(profiles_dir, p) for p in (GRAVITON2, GRAVITON3))
    node_factory(GRAVITON2, labels={OWNER: namespace})
    node_factory(GRAVITON3, labels={OWNER: namespace})
    core_v1.create_namespaced_pod(namespace, _pod("needs-sve2", missing.upper(), namespace))

    def unschedulable(p: client.V1Pod) -> bool:
        conds = {c.type: c for c in (p.status.conditions or [])}
        cond = conds.get("PodScheduled")
        return cond is not None and cond.status == "False" and cond.reason == "Unschedulable"

    pod = _wait_for(core_v1, namespace, "needs-sve2", unschedulable, "Unschedulable")
    assert pod.spec.node_name is None
    assert any("affinity" in (c.message or "") for c in pod.status.conditions), pod.status.conditions
