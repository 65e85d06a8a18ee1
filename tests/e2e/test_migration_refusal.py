"""``hwcapctl migrate`` against the real kube-apiserver: refused before anything is touched, and a failing step
keeps the source pod.

Nodes are simulated from real /proc/cpuinfo dumps (tests/data/profiles): the pod's recorded mask is an AMD
Zen 4's features; a Zen 2 lacks AVX-512, a second Zen 4 has all of them. The membership label is set as the
operator sets it (no operator runs here: the decision only reads the label and the features).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubernetes import client

from hwcap_dev.devcluster.testing import ClusterAccess
from hwcap_operator import keys
from hwcap_operator.domain.node_features import node_features

DOMAIN = "migration"
ZEN4 = "x86_64-amd-zen4-genoa-epyc9654"
ZEN2 = "x86_64-amd-zen2-rome-epyc7742"
MEMBER = {f"{keys.DOMAIN_MEMBER_LABEL_PREFIX}{DOMAIN}": "true"}


def hwcapctl(control_plane: ClusterAccess | Path, *args: str) -> subprocess.CompletedProcess[str]:
    """hwcapctl with the admin's kubeconfig (or the one given)."""
    kubeconfig = control_plane if isinstance(control_plane, Path) else control_plane.kubeconfig
    return subprocess.run([sys.executable, "-m", "hwcap_operator.cli.main", *args, "--kubeconfig", str(kubeconfig)],
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip


def pods_in(core_v1: client.CoreV1Api, namespace: str) -> dict[str, str]:
    """Every pod of the namespace with its resourceVersion: any write would change one."""
    items: list[dict[str, Any]] = core_v1.list_namespaced_pod(namespace).to_dict()["items"]
    return {p["metadata"]["name"]: p["metadata"]["resource_version"] for p in items}


def scene(core_v1: client.CoreV1Api, namespace: str, node_factory: Callable[..., Any], target_profile: str,
          target_member: bool) -> tuple[str, str, dict[str, str]]:
    """A Zen 4 member running the pod (its mask: the Zen 4's features) and a target: (source, target, pods)."""
    source = node_factory(ZEN4, labels=MEMBER)
    target = node_factory(target_profile, labels=MEMBER if target_member else None)
    mask = node_features(source).mask
    assert mask is not None
    pods = running_pod(core_v1, namespace, source["metadata"]["name"], mask.canonical())
    return source["metadata"]["name"], target["metadata"]["name"], pods


def running_pod(core_v1: client.CoreV1Api, namespace: str, node: str, mask: str) -> dict[str, str]:
    """An injected pod bound to ``node`` and reported Running (as its kubelet would)."""
    pod = client.V1Pod(
        metadata=client.V1ObjectMeta(name="counter", annotations={
            keys.POD_DOMAIN_ANNOTATION: DOMAIN, keys.POD_MASK_ANNOTATION: mask}),
        spec=client.V1PodSpec(node_name=node, containers=[client.V1Container(name="app", image="busybox")]),
    )  # fmt: skip
    core_v1.create_namespaced_pod(namespace, pod)
    core_v1.patch_namespaced_pod_status("counter", namespace, {"status": {"phase": "Running"}})
    return pods_in(core_v1, namespace)


def test_migrate_to_a_weaker_non_member_is_refused_naming_both_reasons_and_touches_nothing(
    control_plane: ClusterAccess, core_v1: client.CoreV1Api, namespace: str, node_factory: Callable[..., Any],
) -> None:
    _, weak_name, before = scene(core_v1, namespace, node_factory, ZEN2, target_member=False)

    result = hwcapctl(control_plane, "migrate", "--pod", f"{namespace}/counter", "--to", weak_name,
                      "--registry", "127.0.0.1:1")  # fmt: skip

    assert result.returncode == 1, result.stderr
    out = result.stdout
    assert out.startswith("REFUSED (nothing was touched): ")
    assert f"node {weak_name} is not a member of domain {DOMAIN}" in out
    assert f"node {weak_name} lacks " in out and "avx512f" in out and "avx512bw" in out
    assert "[1/" not in result.stderr  # no step started
    assert pods_in(core_v1, namespace) == before  # the pod unchanged, no other pod
    # the same reason as `check --domain --pod --node`
    check = hwcapctl(control_plane, "check", "--domain", DOMAIN, "--pod", f"{namespace}/counter", "--node", weak_name)
    assert check.returncode == 1
    lacks = next(r for r in out.removeprefix("REFUSED (nothing was touched): ").strip().split("; ") if "lacks" in r)
    assert lacks in check.stdout


def test_a_weaker_member_is_still_refused_for_the_missing_features(
    control_plane: ClusterAccess, core_v1: client.CoreV1Api, namespace: str, node_factory: Callable[..., Any],
) -> None:
    _, weak_member, _ = scene(core_v1, namespace, node_factory, ZEN2, target_member=True)
    result = hwcapctl(control_plane, "migrate", "--pod", f"{namespace}/counter", "--to", weak_member,
                      "--dry-run", "-o", "json")  # fmt: skip
    assert result.returncode == 1
    assert '"refused": true' in result.stdout and "not a member" not in result.stdout and "avx512f" in result.stdout


def test_a_capable_member_is_accepted_and_a_failing_checkpoint_keeps_the_source(
    control_plane: ClusterAccess, core_v1: client.CoreV1Api, namespace: str, node_factory: Callable[..., Any],
) -> None:
    source, target_name, before = scene(core_v1, namespace, node_factory, ZEN4, target_member=True)

    dry = hwcapctl(control_plane, "migrate", "--pod", f"{namespace}/counter", "--to", target_name, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.startswith(f"OK: {namespace}/counter may move to {target_name}")

    # a simulated node has no kubelet: the first step fails through the real API server's nodes/proxy
    run = hwcapctl(control_plane, "migrate", "--pod", f"{namespace}/counter", "--to", target_name,
                   "--registry", "127.0.0.1:1", "--insecure-registry")  # fmt: skip
    assert run.returncode == 1
    assert "[1/6] checkpoint:" in run.stderr and "[2/6]" not in run.stderr
    assert run.stdout.startswith(f"FAILED at checkpoint: the kubelet on {source} refused "
                                 f"/api/v1/nodes/{source}/proxy/checkpoint/{namespace}/counter/app: ")
    assert "the source pod keeps running" in run.stdout
    assert pods_in(core_v1, namespace) == before  # the pod unchanged, no other pod


def test_migrate_reads_the_targets_nodefeature_like_the_operator_and_only_then_sees_cpuid_only_flags(
    control_plane: ClusterAccess, core_v1: client.CoreV1Api, api_client: client.ApiClient, namespace: str,
    node_factory: Callable[..., Any],
) -> None:
    """NFD's labels leave out many x86 flags a mask names (its NodeFeature object has them): a target with the
    object may take the pod, the same CPU known only by its labels may not, and the reasons say which flags."""
    source = node_factory(ZEN4, labels=MEMBER, node_feature_namespace=namespace)
    body: dict[str, Any] = client.CustomObjectsApi(api_client).get_namespaced_custom_object(  # type: ignore[assignment]
        "nfd.k8s-sigs.io", "v1alpha1", namespace, "nodefeatures", source["metadata"]["name"])
    mask = node_features(source, body).mask
    labels_only = node_features(source).mask
    assert mask is not None and labels_only is not None
    beyond_labels = set((mask - labels_only).names())
    assert beyond_labels  # what this test is about: flags only the NodeFeature carries
    running_pod(core_v1, namespace, source["metadata"]["name"], mask.canonical())
    with_object = node_factory(ZEN4, labels=MEMBER, node_feature_namespace=namespace)["metadata"]["name"]
    without = node_factory(ZEN4, labels=MEMBER)["metadata"]["name"]

    allowed = hwcapctl(control_plane, "migrate", "--pod", f"{namespace}/counter", "--to", with_object, "--dry-run")
    assert allowed.returncode == 0 and allowed.stdout.startswith("OK:"), allowed.stdout + allowed.stderr
    refused = hwcapctl(control_plane, "migrate", "--pod", f"{namespace}/counter", "--to", without, "--dry-run")
    assert refused.returncode == 1, refused.stdout
    lacks = refused.stdout.split(f"node {without} lacks ", 1)[1].split()
    assert set(lacks) == beyond_labels

    # `check --domain --pod --node` reads the same objects and reaches the same verdicts
    check_ok = hwcapctl(control_plane, "check", "--domain", DOMAIN, "--pod", f"{namespace}/counter",
                        "--node", with_object)  # fmt: skip
    assert check_ok.returncode == 0 and check_ok.stdout.startswith("OK:"), check_ok.stdout + check_ok.stderr
    check_refused = hwcapctl(control_plane, "check", "--domain", DOMAIN, "--pod", f"{namespace}/counter",
                             "--node", without)  # fmt: skip
    assert check_refused.returncode == 1, check_refused.stdout
    assert set(check_refused.stdout.split(f"node {without} lacks ", 1)[1].split()) == beyond_labels
