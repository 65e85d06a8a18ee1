"""The real nfd-worker (pinned, built into the cache) on this machine: the NodeFeature it publishes, and that
the operator reads it without taking NFD's silence for absence.

The worker runs once (``-oneshot``: no HTTP server) against the session's control plane and writes its
NodeFeature like in a cluster. The saved object in tests/data/nfd (see its README) is what the unit tests
use; ``HWCAP_REGENERATE_NFD=1`` rewrites it from this run.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from hwcap_dev.devcluster.nfd_worker import NFD_VERSION, ensure_nfd_worker
from hwcap_dev.devcluster.testing import ClusterAccess
from hwcap_operator import features
from hwcap_operator.domain.baseline import common_features
from hwcap_operator.domain.node_features import node_features
from hwcap_operator.features import parse_cpuinfo, parse_node_feature
from hwcap_operator.mask import FeatureMask
from hwcap_operator.presets import preset
from tests.conftest import _ensure_nodefeature_crd
from tests.runtimes.conftest import CPUINFO

DATA = Path(__file__).resolve().parents[1] / "data" / "nfd"
SAVED_OBJECT = DATA / "nodefeature.yaml"
SAVED_CPUINFO = DATA / "cpuinfo.txt"


def run_worker(access: ClusterAccess, namespace: str, node: str) -> None:
    env = {"PATH": os.environ.get("PATH", ""), "NODE_NAME": node, "KUBERNETES_NAMESPACE": namespace}
    argv = [str(ensure_nfd_worker()), "-oneshot", "-kubeconfig", str(access.kubeconfig),
            "-feature-sources=cpu", "-label-sources=cpu", "-no-owner-refs"]  # fmt: skip
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.fixture(scope="module")
def published(control_plane: ClusterAccess, api_client: client.ApiClient) -> dict[str, Any]:
    """The NodeFeature nfd-worker wrote for this machine (server-side fields dropped)."""
    _ensure_nodefeature_crd(api_client)
    core = client.CoreV1Api(api_client)
    namespace = "nfd-worker-run"
    try:
        core.create_namespace({"metadata": {"name": namespace}})
    except client.ApiException as err:
        if err.status != 409:
            raise
    run_worker(control_plane, namespace, "this-machine")
    custom = client.CustomObjectsApi(api_client)
    obj: dict[str, Any] = custom.get_namespaced_custom_object(
        "nfd.k8s-sigs.io", "v1alpha1", namespace, "nodefeatures", "this-machine"
    )
    meta = obj["metadata"]
    obj["metadata"] = {"name": meta["name"], "namespace": meta["namespace"], "labels": meta.get("labels") or {},
                       "annotations": meta.get("annotations") or {}}  # fmt: skip
    if os.environ.get("HWCAP_REGENERATE_NFD") == "1":
        SAVED_OBJECT.write_text(yaml.safe_dump(obj, sort_keys=True))
        SAVED_CPUINFO.write_text(CPUINFO.read_text())
    return obj


def test_worker_is_the_pinned_release(published: dict[str, Any]) -> None:
    assert published["metadata"]["annotations"].get("nfd.node.kubernetes.io/worker.version") == NFD_VERSION
    assert published["metadata"]["labels"].get("nfd.node.kubernetes.io/node-name") == "this-machine"


def test_every_nfd_spelling_of_the_catalog_is_what_nfd_reports(published: dict[str, Any]) -> None:
    """The worker reports each feature of this machine the catalog gives an NFD name, under that name."""
    flags = set(published["spec"]["features"]["flags"]["cpu.cpuid"]["elements"])
    machine = parse_cpuinfo(CPUINFO.read_text())
    expected = {f.nfd for f in machine.features if f.nfd}
    assert expected - flags == set(), "catalog NFD names the worker does not report"
    named = {features.by_nfd("amd64", n).name for n in flags if features.by_nfd("amd64", n)}  # type: ignore[union-attr]
    assert named - set(machine.names) <= set(machine.unobserved), "NFD reports what /proc/cpuinfo could list"


def test_a_member_known_only_through_nfd_keeps_the_kernels_hwcap_word(published: dict[str, Any]) -> None:
    seen = parse_node_feature(published, "NodeFeature")
    machine = parse_cpuinfo(CPUINFO.read_text())
    common = common_features([(seen.mask, seen.possible), (machine.mask, machine.possible)])
    assert common.hwcap == machine.mask.hwcap, "NFD's silence about tsc, pae, apic, ... pulled AT_HWCAP down"
    node = node_features({"metadata": {"name": "this-machine", "labels": {"kubernetes.io/arch": "amd64"}}},
                         published)  # fmt: skip
    assert node.usable and node.source == "nfd-nodefeature"
    level = preset("x86-64-v3") & machine.mask
    assert node.lacks(level) == FeatureMask.empty("amd64")
    assert {"tsc", "pae", "clwb", "rdpid"} <= set(node.unobserved)
