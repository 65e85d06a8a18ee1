"""Fake Nodes (and NFD NodeFeature objects) made from real CPU dumps, for tests and the demo.

With no kubelet, a Node is just an API object: we create it, then patch its status to Ready with
allocatable resources so kube-scheduler will bind pods to it. Its CPU identity comes from a real
``/proc/cpuinfo`` or ``lscpu`` dump (``tests/data/profiles``): the feature tokens of the dump become
NFD-style labels (``feature.node.kubernetes.io/cpu-cpuid.<NAME>=true``) and a ``NodeFeature`` object
carrying the unfiltered flag list, the two sources the operator reads.

Building these objects is pure (dicts in, dicts out); :func:`create_ready_node` is the one call that talks
to the apiserver. Feature names and NFD spellings come from the catalog (:mod:`hwcap_operator.features`).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hwcap_operator.arch import Arch
from hwcap_operator.features import Feature, FeatureParseError, parse_cpuinfo
from hwcap_operator.features.data_amd64 import NFD_DEFAULT_LABEL_DENYLIST
from hwcap_operator.keys import DEVCLUSTER_PROFILE_LABEL, NFD_CPUID_LABEL_PREFIX

NFD_GROUP_VERSION = "nfd.k8s-sigs.io/v1alpha1"
NFD_NODE_NAME_LABEL = "nfd.node.kubernetes.io/node-name"


class ProfileError(ValueError):
    """A CPU dump we cannot turn into a node; the message names the file and the problem."""


@dataclass(frozen=True)
class CpuProfile:
    """The CPU identity of one fake node: its arch and the catalog features its dump shows."""

    name: str
    arch: Arch
    features: tuple[Feature, ...]
    unknown: tuple[str, ...] = ()

    @property
    def nfd_names(self) -> list[str]:
        """NFD cpuid names of every feature NFD can report (NodeFeature flags are unfiltered)."""
        return [f.nfd for f in self.features if f.nfd is not None]


def load_profile(path: Path) -> CpuProfile:
    """Read a dump from ``tests/data/profiles`` with the catalog's cpuinfo/lscpu parser."""
    try:
        parsed = parse_cpuinfo(path.read_text(), source=str(path))
    except (OSError, FeatureParseError) as err:
        raise ProfileError(f"{path}: {err}") from err
    if not parsed.features:
        raise ProfileError(f"{path}: no known CPU features in the dump")
    return CpuProfile(name=path.stem, arch=parsed.arch, features=parsed.features, unknown=parsed.unknown)


def nfd_labels(profile: CpuProfile) -> dict[str, str]:
    """The ``cpu-cpuid`` labels NFD would publish: every NFD-known feature but its default denylist
    (x86: BMI1, CMOV, ...; labels are filtered, NodeFeature flags are not)."""
    denied = NFD_DEFAULT_LABEL_DENYLIST if profile.arch == "amd64" else frozenset()
    return {f"{NFD_CPUID_LABEL_PREFIX}{name}": "true" for name in profile.nfd_names if name not in denied}


def node_manifest(
    name: str,
    profile: CpuProfile,
    *,
    labels: Mapping[str, str] | None = None,
    nfd: bool = True,
) -> dict[str, Any]:
    """A Node object (spec and metadata only; status is a subresource, see :func:`ready_status`)."""
    all_labels = {
        "kubernetes.io/arch": profile.arch,
        "kubernetes.io/os": "linux",
        "kubernetes.io/hostname": name,
        DEVCLUSTER_PROFILE_LABEL: profile.name[:63].rstrip("-_."),
    }
    if nfd:
        all_labels.update(nfd_labels(profile))
    all_labels.update(labels or {})
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": all_labels}, "spec": {}}


def ready_status(cpu: str = "4", memory: str = "16Gi", pods: str = "110") -> dict[str, Any]:
    """A Node status the scheduler accepts: Ready=True, capacity == allocatable."""
    resources = {"cpu": cpu, "memory": memory, "pods": pods, "ephemeral-storage": "100Gi"}
    return {
        "status": {
            "capacity": resources,
            "allocatable": resources,
            "conditions": [
                {"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "fake node for tests"},
                {"type": "MemoryPressure", "status": "False", "reason": "KubeletHasSufficientMemory"},
                {"type": "DiskPressure", "status": "False", "reason": "KubeletHasNoDiskPressure"},
                {"type": "PIDPressure", "status": "False", "reason": "KubeletHasSufficientPID"},
            ],
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
            "nodeInfo": {
                "architecture": "",  # filled in by callers that know it
                "operatingSystem": "linux",
                "kernelVersion": "",
                "osImage": "hwcap devcluster fake node",
                "containerRuntimeVersion": "",
                "kubeletVersion": "",
                "kubeProxyVersion": "",
                "bootID": "",
                "machineID": "",
                "systemUUID": "",
            },
        }
    }


def node_feature_manifest(node_name: str, profile: CpuProfile, namespace: str) -> dict[str, Any]:
    """An NFD ``NodeFeature`` whose ``cpu.cpuid`` flags are all the dump's NFD-known features, unfiltered."""
    return {
        "apiVersion": NFD_GROUP_VERSION,
        "kind": "NodeFeature",
        "metadata": {
            "name": node_name,
            "namespace": namespace,
            "labels": {NFD_NODE_NAME_LABEL: node_name},
        },
        "spec": {
            "features": {
                "flags": {"cpu.cpuid": {"elements": {name: {} for name in profile.nfd_names}}},
                "attributes": {},
                "instances": {},
            },
            "labels": {},
        },
    }


def nodefeature_crd() -> dict[str, Any]:
    """A minimal NodeFeature CRD (NFD's own is large): enough for the API to store and serve the objects.

    The ``spec`` is kept as-is (x-kubernetes-preserve-unknown-fields) because we only need the shape
    NFD's workers write, not NFD's validation.
    """
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "nodefeatures.nfd.k8s-sigs.io"},
        "spec": {
            "group": "nfd.k8s-sigs.io",
            "names": {"kind": "NodeFeature", "listKind": "NodeFeatureList", "plural": "nodefeatures",
                      "singular": "nodefeature"},
            "scope": "Namespaced",
            "versions": [{
                "name": "v1alpha1", "served": True, "storage": True,
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {"spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
                    "required": ["spec"],
                }},
            }],
        },
    }


#: Taints the NodeTaint admission plugin puts on every new Node; kube-controller-manager's node lifecycle
#: controller lifts them once the node is Ready. None runs here, so :func:`create_ready_node` does it.
CONDITION_TAINTS = frozenset({"node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"})


def create_ready_node(core_v1: Any, manifest: Mapping[str, Any], status: Mapping[str, Any] | None = None) -> Any:
    """Create a Node through the API, patch its status subresource to Ready and lift the condition
    taints, as kubelet + node lifecycle controller would (``core_v1``: kubernetes CoreV1Api)."""
    name = manifest["metadata"]["name"]
    core_v1.create_node(dict(manifest))
    body = copy.deepcopy(dict(status or ready_status()))
    arch = manifest["metadata"]["labels"].get("kubernetes.io/arch", "")
    body["status"]["nodeInfo"]["architecture"] = arch
    core_v1.patch_node_status(name, body)
    for attempt in range(5):  # a running operator may label the new node in between: read again, retry
        node = core_v1.api_client.sanitize_for_serialization(core_v1.read_node(name))
        taints = node.get("spec", {}).get("taints") or []
        kept = [t for t in taints if t.get("key") not in CONDITION_TAINTS]
        if len(kept) == len(taints):
            break
        try:
            core_v1.patch_node(name, [
                {"op": "test", "path": "/metadata/resourceVersion", "value": node["metadata"]["resourceVersion"]},
                {"op": "replace", "path": "/spec/taints", "value": kept},
            ])
            break
        except Exception as err:  # the failed "test" op is a 422 (ApiException; kubernetes is not imported here)
            if getattr(err, "status", None) != 422 or attempt == 4:
                raise
    return core_v1.read_node(name)


def profile_paths(directory: Path, names: Sequence[str]) -> list[Path]:
    """Paths of named profiles (file stems) in ``directory``; a missing one is an error naming it."""
    paths = [directory / f"{name}.txt" for name in names]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise ProfileError(f"profiles not found: {', '.join(missing)}")
    return paths
