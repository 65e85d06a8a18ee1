"""``hwcapctl migrate`` end to end between two real nodes on CRI-O (issue 17): the kubelet checkpoints a running
container (CRI ``CheckpointContainer``), the archive becomes a checkpoint image in the loopback registry, the
target's kubelet creates a pod whose container image is that checkpoint image and CRI-O *restores* it (CRI
``CreateContainer``), ``migrate`` confirms it runs and only then deletes the source pod.

The workload is the runtime proof's static counter (tests/e2e/migration/counter.c, from a hostPath volume, in the
sample image): it masks its own AT_HWCAP with PR_SET_MM_MAP, draws a random token once and appends
"token count AT_HWCAP" to /tmp/count.log in its own rootfs five times a second. The restored pod's log is that
file as the checkpoint caught it plus what the restored process wrote: one token, counts consecutive from 1 (a
restart would draw a new token and start again at 1) and the masked word on every line. The pod runs as root:
CRIU cannot dump a uid-65534 task on these machines (docs/migration.md#uid).

Also here: a pod of two containers moves with both processes restored; a migration the target cannot pull
for fails at confirm, removes what it made there and leaves the source running; and a migration towards a
member that lacks a feature of the mask is refused, features named.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from hwcap_dev.devcluster import criu
from hwcap_dev.devcluster.realnodes import RealNodes
from hwcap_dev.devcluster.testing import ClusterAccess, running_real_nodes
from hwcap_dev.shim import shim_path
from hwcap_operator import keys
from hwcap_operator.domain.node_features import node_features
from tests.e2e.chart_rbac_support import read_auxv_words
from tests.e2e.test_migration_rbac import GROUP, migrator_role
from tests.e2e.test_migration_real_node import LOG, counter_dir, counter_pod, counts
from tests.e2e.test_migration_refusal import DOMAIN, MEMBER, hwcapctl

pytestmark = pytest.mark.needs_root

__all__ = ["counter_dir"]  # a module fixture used below


@pytest.fixture(scope="module")
def crio_nodes(control_plane: ClusterAccess) -> Iterator[RealNodes]:
    """Two real nodes whose runtime is CRI-O (kubelet v1.37.2 + CRI-O v1.36.3 + runc + the pinned CRIU)."""
    assert control_plane.plane is not None, "real nodes need the local control plane"
    assert criu.ensure_criu().check_ok
    with running_real_nodes(control_plane.plane, 2, name_prefix="mig-crio", hwcap_exec=shim_path(),
                            runtime="cri-o") as nodes:  # fmt: skip
        yield nodes


@pytest.fixture
def members(crio_nodes: RealNodes, kubectl: Any) -> Iterator[tuple[str, str]]:
    names = [node.name for node in crio_nodes.nodes]
    for name in names:
        kubectl("label", "node", name, f"{keys.DOMAIN_MEMBER_LABEL_PREFIX}{DOMAIN}=true", "--overwrite")
    yield names[0], names[1]
    for name in names:
        kubectl("label", "node", name, f"{keys.DOMAIN_MEMBER_LABEL_PREFIX}{DOMAIN}-")


def start_counter(crio_nodes: RealNodes, core_v1: client.CoreV1Api, api_client: client.ApiClient, kubectl: Any,
                  namespace: str, node: str, counter_dir: Path) -> tuple[int, int]:
    """The counter pod on ``node`` under the node's own mask; returns (its masked AT_HWCAP, the kernel's)."""
    assert crio_nodes.images is not None
    kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=privileged", "--overwrite")
    mask = node_features(api_client.sanitize_for_serialization(core_v1.read_node(node))).mask  # type: ignore[no-untyped-call]
    assert mask is not None
    kernel = read_auxv_words()[0]
    word = kernel & ~(1 << (kernel.bit_length() - 1))  # the kernel's AT_HWCAP minus its highest feature
    pod = counter_pod(node, crio_nodes.images.sample, counter_dir, word, mask.canonical())
    kubectl("create", "-n", namespace, "-f", "-", input=json.dumps(pod))
    wait_running(core_v1, namespace, "counter")
    return word, kernel


def wait_running(core_v1: client.CoreV1Api, namespace: str, name: str, lines: int = 3) -> None:
    deadline = time.monotonic() + 120
    while core_v1.read_namespaced_pod(name, namespace).status.phase != "Running":  # type: ignore[union-attr]
        assert time.monotonic() < deadline, f"{name} did not start"
        time.sleep(0.5)
    time.sleep(0.2 * lines)


def log_of(kubectl: Any, namespace: str, pod: str) -> list[tuple[str, int, int]]:
    return counts(kubectl("exec", "-n", namespace, pod, "--", "cat", LOG).stdout)


def gone(core_v1: client.CoreV1Api, namespace: str, name: str, timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            core_v1.read_namespaced_pod(name, namespace)
        except ApiException as exc:
            if exc.status == 404:
                return True
            raise
        time.sleep(0.5)
    return False


def test_a_running_pod_moves_to_another_crio_node_and_keeps_counting_with_its_masked_word(
    crio_nodes: RealNodes, members: tuple[str, str], control_plane: ClusterAccess, core_v1: client.CoreV1Api,
    api_client: client.ApiClient, kubectl: Any, helm: Any, crd: None, namespace: str, counter_dir: Path,
) -> None:
    source, target = members
    word, kernel = start_counter(crio_nodes, core_v1, api_client, kubectl, namespace, source, counter_dir)
    before = log_of(kubectl, namespace, "counter")
    token = before[0][0]
    assert {hw for _, _, hw in before} == {word} != {kernel}  # the source process reads its masked word

    migrator = control_plane.user_kubeconfig("mig-crio", [GROUP])  # nodes/checkpoint, no nodes/proxy
    with migrator_role(helm, kubectl, nodes_proxy=False):
        run = hwcapctl(migrator, "migrate", "--pod", f"{namespace}/counter", "--to", target, "--kubelet-direct",
                       "--registry", crio_nodes.registry_host, "--insecure-registry", "-o", "json")  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    for n, step in enumerate(("checkpoint", "image", "restore", "confirm", "delete-source"), start=1):
        assert f"[{n}/6] {step}:" in run.stderr
    result = json.loads(run.stdout)
    assert result["ok"] and result["restored"] == "counter-m"
    # The clean-up removed the container's memory image: the archive on the source node and the image's tag.
    assert result["kept"] == [] and "clean-up: left" not in run.stderr
    assert result["archives"] and not any(Path(a).exists() for a in result["archives"].values())
    for reference in result["images"].values():
        repository, _, tag = reference.removeprefix(f"{crio_nodes.registry_host}/").rpartition(":")
        assert registry_status(crio_nodes.registry_host, repository, tag) == 404, reference

    restored = core_v1.read_namespaced_pod("counter-m", namespace)
    assert restored.spec.node_name == target  # type: ignore[union-attr]
    statuses = restored.status.container_statuses or []  # type: ignore[union-attr]
    assert statuses[0].restart_count == 0 and statuses[0].state.running is not None  # type: ignore[union-attr]
    assert restored.spec.containers[0].image.startswith(f"{crio_nodes.registry_host}/checkpoint/")  # type: ignore[union-attr]
    assert (restored.metadata.annotations or {})["hwcap.dev/migrated-from"] == f"{source}/counter"  # type: ignore[union-attr]
    assert gone(core_v1, namespace, "counter"), "the source pod was not deleted"

    time.sleep(1.0)
    after = log_of(kubectl, namespace, "counter-m")
    assert {t for t, _, _ in after} == {token}  # one process all along: a restart would draw a new token
    assert [c for _, c, _ in after] == list(range(1, len(after) + 1))  # consecutive, never back to 1
    assert after[-1][1] > before[-1][1] + 3  # and it went on counting on the target
    assert {hw for _, _, hw in after} == {word}  # the restored process still reads the masked word

    # towards a member that lacks a feature of the pod's mask: refused before anything is touched
    weak = weak_twin(core_v1, api_client, target)
    try:
        refused = hwcapctl(control_plane, "migrate", "--pod", f"{namespace}/counter-m", "--to", weak[0],
                           "--registry", crio_nodes.registry_host)  # fmt: skip
        assert refused.returncode == 1 and refused.stdout.startswith("REFUSED (nothing was touched)"), refused.stdout
        lacks = next(r for r in refused.stdout.strip().split("; ") if f"node {weak[0]} lacks " in r)
        assert weak[1] in lacks.split(" lacks ", 1)[1].split() and "[1/" not in refused.stderr
        assert [p.metadata.name for p in core_v1.list_namespaced_pod(namespace).items] == ["counter-m"]  # type: ignore[union-attr]
    finally:
        core_v1.delete_node(weak[0])


def test_a_pod_of_two_containers_moves_with_both_processes_restored(
    crio_nodes: RealNodes, members: tuple[str, str], control_plane: ClusterAccess, core_v1: client.CoreV1Api,
    api_client: client.ApiClient, kubectl: Any, namespace: str, counter_dir: Path,
) -> None:  # fmt: skip
    """Every container of the pod is checkpointed and restored from its own checkpoint image, not only the first:
    two counters (each its own token, its own file in its own rootfs) both go on counting on the target."""
    source, target = members
    assert crio_nodes.images is not None
    kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=privileged", "--overwrite")
    mask = node_features(api_client.sanitize_for_serialization(core_v1.read_node(source))).mask  # type: ignore[no-untyped-call]
    assert mask is not None
    kernel = read_auxv_words()[0]
    word = kernel & ~(1 << (kernel.bit_length() - 1))
    pod = counter_pod(source, crio_nodes.images.sample, counter_dir, word, mask.canonical())
    pod["spec"]["containers"].append({**pod["spec"]["containers"][0], "name": "sidecar"})
    kubectl("create", "-n", namespace, "-f", "-", input=json.dumps(pod))
    wait_running(core_v1, namespace, "counter")

    def logs(name: str) -> dict[str, list[tuple[str, int, int]]]:
        return {c: counts(kubectl("exec", "-n", namespace, name, "-c", c, "--", "cat", LOG).stdout)
                for c in ("app", "sidecar")}  # fmt: skip

    before = logs("counter")
    tokens = {c: rows[0][0] for c, rows in before.items()}
    assert tokens["app"] != tokens["sidecar"]  # two processes, each with its own token
    run = hwcapctl(control_plane, "migrate", "--pod", f"{namespace}/counter", "--to", target, "--kubelet-direct",
                   "--registry", crio_nodes.registry_host, "--insecure-registry", "-o", "json")  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    result = json.loads(run.stdout)
    assert sorted(result["images"]) == ["app", "sidecar"] and result["kept"] == []
    restored = core_v1.read_namespaced_pod("counter-m", namespace)
    assert {s.name: s.restart_count for s in restored.status.container_statuses or []} == {"app": 0, "sidecar": 0}  # type: ignore[union-attr]
    time.sleep(1.0)
    after = logs("counter-m")
    for container, rows in after.items():
        assert {t for t, _, _ in rows} == {tokens[container]}, container  # restored, not restarted
        assert [c for _, c, _ in rows] == list(range(1, len(rows) + 1)), container
        assert rows[-1][1] > before[container][-1][1] + 3, container  # and counting on the target
        assert {hw for _, _, hw in rows} == {word}, container


def registry_status(host: str, repository: str, tag: str) -> int:
    """The loopback registry's HTTP status for a manifest (200 there, 404 gone)."""
    request = urllib.request.Request(f"http://{host}/v2/{repository}/manifests/{tag}", method="HEAD",
                                     headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def weak_twin(core_v1: client.CoreV1Api, api_client: client.ApiClient, like: str) -> tuple[str, str]:
    """A simulated member with ``like``'s CPU labels minus one feature; returns (its name, that feature)."""
    node: dict[str, Any] = api_client.sanitize_for_serialization(core_v1.read_node(like))  # type: ignore[no-untyped-call]
    labels = {k: v for k, v in node["metadata"]["labels"].items()
              if k.startswith("feature.node.kubernetes.io/") or k == "kubernetes.io/arch"}  # fmt: skip
    prefix = "feature.node.kubernetes.io/cpu-cpuid."
    dropped = next(k for k in sorted(labels) if k in (f"{prefix}AVX2", f"{prefix}AVX", f"{prefix}SSE4_2"))
    del labels[dropped]
    name = "mig-crio-weak"
    core_v1.create_node(client.V1Node(metadata=client.V1ObjectMeta(name=name, labels={**labels, **MEMBER})))
    return name, dropped.removeprefix(prefix).lower()


def test_a_restore_the_target_cannot_pull_for_is_undone_and_the_source_keeps_running(
    crio_nodes: RealNodes, members: tuple[str, str], control_plane: ClusterAccess, core_v1: client.CoreV1Api,
    api_client: client.ApiClient, kubectl: Any, namespace: str, counter_dir: Path,
) -> None:
    source, target = members
    start_counter(crio_nodes, core_v1, api_client, kubectl, namespace, source, counter_dir)
    # the push reaches the registry as "localhost:<port>", which the nodes' CRI-O does not treat as plain http
    registry = crio_nodes.registry_host.replace("127.0.0.1", "localhost")
    run = hwcapctl(control_plane, "migrate", "--pod", f"{namespace}/counter", "--to", target, "--kubelet-direct",
                   "--registry", registry, "--insecure-registry", "-o", "json")  # fmt: skip
    assert run.returncode == 1, run.stdout
    result = json.loads(run.stdout)
    assert result["done"] == ["checkpoint", "image", "restore"], result["error"]
    assert result["error"].startswith(f"confirm: counter-m on {target}, the restored containers running: "
                                      "container app: ErrImagePull"), result["error"]  # fmt: skip
    assert "undo: removing counter-m" in run.stderr
    # A failed move keeps the archive and the image (for a retry by hand or a look) and names them.
    assert result["kept"] and all(Path(a).exists() for a in result["archives"].values())
    assert "kept (they hold the containers' memory; delete them when done): archive " in run.stderr
    assert gone(core_v1, namespace, "counter-m", 60) and gone(core_v1, namespace, "counter-pull", 1)
    pod = core_v1.read_namespaced_pod("counter", namespace)
    assert pod.status.phase == "Running" and pod.status.container_statuses[0].restart_count == 0  # type: ignore[union-attr,index]
    seen = log_of(kubectl, namespace, "counter")
    time.sleep(0.6)
    assert len(log_of(kubectl, namespace, "counter")) > len(seen)  # still counting
