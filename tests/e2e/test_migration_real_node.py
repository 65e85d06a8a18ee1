"""``hwcapctl migrate`` on a real node: the kubelet checkpoints a running container through its checkpoint API,
the archive becomes a checkpoint image in the loopback registry, and the restore step stops at the runtime
(containerd v2.4.2's CRI cannot restore) with the source container still running, never restarted. Then the
checkpoint image is restored at the runtime level on a second "node" (its own runc root and bundle): the same
token, the next counts, and the AT_HWCAP the process masked for itself (PR_SET_MM_MAP) still masked.

The workload is the runtime proof's static counter (tests/e2e/migration/counter.c) from a hostPath volume, in the
sample image. The real node (kubelet + containerd on this machine) finds the pinned CRIU 4.1.1 first on its PATH.
The pod runs as root: CRIU cannot dump a uid-65534 task here (docs/migration.md#uid). The migration target is a
simulated node with the real node's feature labels, a member of the domain.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tarfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from hwcap_dev.devcluster import criu
from hwcap_dev.devcluster.realnodes import RealNodes
from hwcap_dev.devcluster.testing import ClusterAccess, running_real_nodes
from hwcap_dev.shim import shim_path
from hwcap_operator import keys
from hwcap_operator.domain.node_features import node_features
from tests.e2e.chart_rbac_support import read_auxv_words
from tests.e2e.test_migration_rbac import GROUP, migrator_role
from tests.e2e.test_migration_refusal import DOMAIN, MEMBER, hwcapctl

pytestmark = pytest.mark.needs_root

LOG = "/tmp/count.log"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
NETNS = "hwcap-e2e-restore"


def registry_get(host: str, path: str, accept: str = "") -> bytes:
    request = urllib.request.Request(f"http://{host}/v2/{path}", headers={"Accept": accept} if accept else {})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return bytes(answer.read())


def checkpoint_layer(host: str, reference: str) -> bytes:
    """The one layer of a checkpoint image: the kubelet's archive as it was."""
    repository, tag = reference.removeprefix(f"{host}/").rsplit(":", 1)
    manifest = json.loads(registry_get(host, f"{repository}/manifests/{tag}", OCI_MANIFEST))
    return registry_get(host, f"{repository}/blobs/{manifest['layers'][0]['digest']}")


def pull_layers(host: str, reference: str, into: Path) -> dict[str, Any]:
    """Every layer of ``reference`` (``host/repo:tag``, one manifest) unpacked into ``into``; its manifest."""
    repository, tag = reference.removeprefix(f"{host}/").rsplit(":", 1)
    manifest: dict[str, Any] = json.loads(registry_get(host, f"{repository}/manifests/{tag}", OCI_MANIFEST))
    into.mkdir(parents=True, exist_ok=True)
    for layer in manifest["layers"]:
        blob = registry_get(host, f"{repository}/blobs/{layer['digest']}")
        with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
            tar.extractall(into, filter="fully_trusted")  # our own loopback registry: keep modes (/tmp is 1777)
    return manifest


def restore_on_second_node(host: str, checkpoint_image: str, base_image: str, work: Path, criu_bin: Path,
                           log: str, lines: int) -> list[tuple[str, int, int]]:
    """What a target node does without a CRI restore: pull the checkpoint image and the container's image,
    rebuild the rootfs (image + the archive's rootfs-diff.tar), take the container's spec from the archive with
    fresh namespaces (a new network namespace: the source pod's was external to the dump) and ``runc restore``
    under its own runc root. Returns what the restored counter appended to ``log`` (in its rootfs) beyond the
    ``lines`` the archive's rootfs diff had: (token, count, AT_HWCAP) rows."""
    archive = work / "archive"
    pull_layers(host, checkpoint_image, archive)
    bundle = work / "bundle"
    pull_layers(host, base_image, bundle / "rootfs")
    with tarfile.open(archive / "rootfs-diff.tar") as diff:
        diff.extractall(bundle / "rootfs", filter="fully_trusted")
    spec = json.loads((archive / "spec.dump").read_text())
    spec["root"] = {"path": "rootfs"}
    spec["linux"]["cgroupsPath"] = f"/hwcap-e2e-restored-{os.getpid()}"
    spec["linux"]["namespaces"] = [{"type": t} for t in ("pid", "ipc", "uts", "mount")] + [
        {"type": "network", "path": f"/var/run/netns/{NETNS}"}]
    for i, mount in enumerate(m for m in spec["mounts"] if m.get("type") == "bind"):
        copy = work / "kubelet-files" / str(i)  # what the target's kubelet would write: /etc/hosts, resolv.conf, ...
        copy.parent.mkdir(parents=True, exist_ok=True)
        if Path(mount["source"]).is_dir():
            shutil.copytree(mount["source"], copy)
        else:
            shutil.copy2(mount["source"], copy)
        mount["source"] = str(copy)
    (bundle / "config.json").write_text(json.dumps(spec))
    runc = ["runc", "--root", str(work / "runc"), "--criu", str(criu_bin)]
    restored = subprocess.Popen([*runc, "restore", "--detach", "--image-path", str(archive / "checkpoint"),
                                 "--work-path", str(work / "restore-work"), "--bundle", str(bundle), "restored"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    try:
        rc = restored.wait(timeout=120)
        criu_log = (work / "restore-work" / "restore.log").read_text().splitlines()
        assert rc == 0, "\n".join(line for line in criu_log if "Error" in line)
        written = bundle / "rootfs" / log.lstrip("/")
        deadline = time.monotonic() + 20
        while len(counts(written.read_text())) < lines + 2:
            assert time.monotonic() < deadline, "the restored counter wrote nothing"
            time.sleep(0.2)
        return counts(written.read_text())[lines:]
    finally:
        subprocess.run([*runc, "delete", "--force", "restored"], capture_output=True, check=False)
        remove_cgroup(spec["linux"]["cgroupsPath"])


def remove_cgroup(path: str) -> None:
    """runc's delete can leave the cgroup directories while the killed task is being reaped: remove them."""
    deadline = time.monotonic() + 10
    for directory in Path("/sys/fs/cgroup").glob(f"*{path}"):
        while directory.exists():
            try:
                directory.rmdir()
            except OSError:
                assert time.monotonic() < deadline, f"cgroup {directory} still busy"
                time.sleep(0.2)


def counts(text: str) -> list[tuple[str, int, int]]:
    """The counter's log lines: token, count, AT_HWCAP."""
    return [(t, int(c), int(h, 16)) for t, c, h in (line.split() for line in text.splitlines() if line.strip())]


def counter_pod(node: str, image: str, counter_dir: Path, word: int, mask: str) -> dict[str, Any]:
    """The counter pod bound to ``node``, recorded as injected by the test domain with ``mask``; the counter
    masks its own AT_HWCAP to ``word`` (root: docs/migration.md#uid)."""
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "counter", "annotations": {keys.POD_DOMAIN_ANNOTATION: DOMAIN,
                                                            keys.POD_MASK_ANNOTATION: mask}},
            "spec": {"nodeName": node, "volumes": [{"name": "bin", "hostPath": {"path": str(counter_dir)}}],
                     "containers": [{
                "name": "app", "image": image, "command": ["/mig/counter", f"{word:x}", LOG],
                "volumeMounts": [{"name": "bin", "mountPath": "/mig", "readOnly": True}],
                "securityContext": {"runAsUser": 0}}]}}  # fmt: skip


@pytest.fixture(scope="module")
def counter_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The static counter of the runtime proof (masks itself with PR_SET_MM_MAP), for a hostPath volume."""
    here = Path(__file__).parent
    out = tmp_path_factory.mktemp("counter")
    out.chmod(0o755)
    subprocess.run(["musl-gcc", "-static", "-O2", f"-I{here.parent.parent / 'src' / 'shim'}", "-o",
                    str(out / "counter"), str(here / "migration" / "counter.c")], check=True)  # fmt: skip
    return out


@pytest.fixture
def netns() -> Iterator[str]:
    subprocess.run(["ip", "netns", "add", NETNS], check=True)
    yield NETNS
    subprocess.run(["ip", "netns", "delete", NETNS], check=False)


@pytest.fixture(scope="module")
def real(control_plane: ClusterAccess) -> Iterator[RealNodes]:
    assert control_plane.plane is not None, "real nodes need the local control plane"
    assert criu.ensure_criu().check_ok
    with running_real_nodes(control_plane.plane, name_prefix="mig-e2e", hwcap_exec=shim_path()) as nodes:
        yield nodes


@pytest.fixture
def twin(real: RealNodes, core_v1: client.CoreV1Api, api_client: client.ApiClient) -> Iterator[str]:
    """A simulated member node with the real node's feature labels (so the refusal lets the pod go there)."""
    source: dict[str, Any] = api_client.sanitize_for_serialization(  # type: ignore[no-untyped-call]
        core_v1.read_node(real.nodes[0].name))
    labels = {k: v for k, v in source["metadata"]["labels"].items()
              if k.startswith("feature.node.kubernetes.io/") or k == "kubernetes.io/arch"}  # fmt: skip
    name = "mig-e2e-twin"
    core_v1.create_node(client.V1Node(metadata=client.V1ObjectMeta(name=name, labels={**labels, **MEMBER})))
    yield name
    core_v1.delete_node(name)


def test_a_real_pod_is_checkpointed_kept_running_and_restored_at_the_runtime_level_with_its_count_and_mask(
    real: RealNodes, twin: str, control_plane: ClusterAccess, core_v1: client.CoreV1Api,
    api_client: client.ApiClient, kubectl: Any, helm: Any, crd: None, namespace: str, netns: str,
    tmp_path: Path, counter_dir: Path,
) -> None:
    assert real.images is not None
    source = real.nodes[0].name
    kubectl("label", "node", source, f"{keys.DOMAIN_MEMBER_LABEL_PREFIX}{DOMAIN}=true", "--overwrite")
    kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=privileged", "--overwrite")
    node = api_client.sanitize_for_serialization(core_v1.read_node(source))  # type: ignore[no-untyped-call]
    mask = node_features(node).mask
    assert mask is not None
    kernel = read_auxv_words()[0]
    word = kernel & ~(1 << (kernel.bit_length() - 1))  # the kernel's AT_HWCAP minus its highest feature
    pod = counter_pod(source, real.images.sample, counter_dir, word, mask.canonical())
    kubectl("create", "-n", namespace, "-f", "-", input=json.dumps(pod))
    deadline = time.monotonic() + 120
    while core_v1.read_namespaced_pod("counter", namespace).status.phase != "Running":  # type: ignore[union-attr]
        assert time.monotonic() < deadline, "the counter pod did not start"
        time.sleep(1)
    time.sleep(3)

    # --kubelet-direct: the API server refuses to proxy to a loopback node address ("address not allowed").
    # As a member of the chart's migrator group, whose role has nodes/checkpoint (checked by the kubelet), no
    # nodes/proxy.
    migrator = control_plane.user_kubeconfig("mig-direct", [GROUP])
    with migrator_role(helm, kubectl, nodes_proxy=False):
        run = hwcapctl(migrator, "migrate", "--pod", f"{namespace}/counter", "--to", twin, "--kubelet-direct",
                       "--registry", real.registry_host, "--insecure-registry", "-o", "json")  # fmt: skip
    assert "[1/6] checkpoint" in run.stderr and "[3/6] restore" in run.stderr and "[4/6]" not in run.stderr
    assert run.returncode == 1, run.stderr
    result = json.loads(run.stdout)
    assert result["done"] == ["checkpoint", "image"], result["error"]
    assert result["error"].startswith(f"restore: node {twin} runs unknown: only CRI-O restores"), result
    image = result["images"]["app"]
    repository, tag = image.removeprefix(f"{real.registry_host}/").rsplit(":", 1)
    manifest = json.loads(registry_get(real.registry_host, f"{repository}/manifests/{tag}", OCI_MANIFEST))
    assert manifest["annotations"] == {"io.kubernetes.cri-o.annotations.checkpoint.name": "app"}
    assert manifest["layers"][0]["size"] > 10_000  # a CRIU dump, not an empty tar

    stored = core_v1.read_namespaced_pod("counter", namespace)
    statuses = stored.status.container_statuses or []  # type: ignore[union-attr]
    assert stored.status.phase == "Running" and statuses[0].restart_count == 0  # type: ignore[union-attr]
    before = counts(kubectl("exec", "-n", namespace, "counter", "--", "cat", LOG).stdout)
    time.sleep(0.6)
    after = counts(kubectl("exec", "-n", namespace, "counter", "--", "cat", LOG).stdout)
    assert len(after) > len(before)  # still counting after the checkpoint: the source was left running
    token = before[0][0]
    assert {hw for _, _, hw in before} == {word}  # the source process reads its masked word

    # the runtime-level restore on a second "node" from the registry's checkpoint image: a restore, not a
    # restart — the same token, the count going on from where the checkpoint caught it, the word still masked
    with tarfile.open(fileobj=io.BytesIO(checkpoint_layer(real.registry_host, image))) as archive:
        diff = archive.extractfile("rootfs-diff.tar")
        assert diff is not None
        with tarfile.open(fileobj=diff) as rootfs_diff:
            logged = rootfs_diff.extractfile(LOG.lstrip("/"))
            assert logged is not None
            at_checkpoint = counts(logged.read().decode())
    restored = restore_on_second_node(real.registry_host, image, real.images.sample, tmp_path,
                                      criu.wrapper_path(), LOG, len(at_checkpoint))  # fmt: skip
    assert restored[0][0] == token and restored[0][2] == word != kernel
    assert 1 < restored[0][1] <= at_checkpoint[-1][1] + 1
    assert [c for _, c, _ in restored] == list(range(restored[0][1], restored[0][1] + len(restored)))
    kubectl("delete", "pod", "-n", namespace, "counter", "--wait=true", "--timeout=60s")
