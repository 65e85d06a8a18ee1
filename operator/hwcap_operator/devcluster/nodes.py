"""Fake Nodes (and NFD NodeFeature objects) made from real CPU dumps, for tests and the demo.

With no kubelet, a Node is just an API object: we create it, then patch its status to Ready with
allocatable resources so kube-scheduler will bind pods to it. Its CPU identity comes from a real
``/proc/cpuinfo`` or ``lscpu`` dump (``tests/data/profiles``): the feature tokens of the dump become
NFD-style labels (``feature.node.kubernetes.io/cpu-cpuid.<NAME>=true``) and a ``NodeFeature`` object
carrying the unfiltered flag list, the two sources the operator reads.

Building these objects is pure (dicts in, dicts out); :func:`create_ready_node` is the one call that talks
to the apiserver.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hwcap_operator.arch import Arch, normalize_arch
from hwcap_operator.keys import NFD_CPUID_LABEL_PREFIX

NFD_GROUP_VERSION = "nfd.k8s-sigs.io/v1alpha1"
NFD_NODE_NAME_LABEL = "nfd.node.kubernetes.io/node-name"

#: The feature line of each dump format: arm64 "Features", x86 "flags"/"Flags:", s390 "features", riscv "isa".
_FEATURE_LINE = re.compile(r"^(Features|flags|Flags|features|isa)\s*:\s*(.*)$", re.MULTILINE)


class ProfileError(ValueError):
    """A CPU dump that has no feature line we can read; the message names the file."""


@dataclass(frozen=True)
class CpuProfile:
    """The CPU identity of one fake node: its arch and the raw feature tokens of its dump, in order."""

    name: str
    arch: Arch
    tokens: tuple[str, ...]


def _arch_from_filename(path: Path) -> Arch:
    return normalize_arch(path.name.split("-", 1)[0])


def load_profile(path: Path) -> CpuProfile:
    """Read a dump from ``tests/data/profiles``: the first feature line after the metadata block.

    The arch comes from the file name prefix (``arm64-``, ``x86_64-``, ...), the convention of the
    profiles README; only the first block is read (some files carry a second, older block).
    """
    text = path.read_text()
    match = _FEATURE_LINE.search(text)
    if match is None:
        raise ProfileError(f"{path}: no 'Features'/'flags'/'features'/'isa' line found")
    tokens = tuple(match.group(2).split())
    if not tokens:
        raise ProfileError(f"{path}: the {match.group(1)!r} line is empty")
    return CpuProfile(name=path.stem, arch=_arch_from_filename(path), tokens=tokens)


def nfd_labels(profile: CpuProfile) -> dict[str, str]:
    """NFD ``cpu-cpuid`` labels for a profile.

    Stopgap until the catalog's parsers land (``hwcap_operator.features``): on arm64 NFD spells each
    HWCAP as the upper-cased kernel name (``asimd`` → ``ASIMD``). Other arches need the catalog's
    spelling table (x86 names differ, e.g. ``pni`` → ``SSE3``), so they are refused rather than guessed.
    """
    if profile.arch != "arm64":
        raise ProfileError(
            f"{profile.name}: NFD labels for arch {profile.arch!r} need hwcap_operator.features' NFD spellings"
        )
    return {f"{NFD_CPUID_LABEL_PREFIX}{token.upper()}": "true" for token in profile.tokens}


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
        "hwcap.dev/test-profile": profile.name[:63],
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
    """An NFD ``NodeFeature`` whose ``cpu.cpuid`` flags are the dump's tokens, unfiltered, as NFD publishes."""
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
                "flags": {"cpu.cpuid": {"elements": {token.upper(): {} for token in profile.tokens}}},
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


def create_ready_node(core_v1: Any, manifest: Mapping[str, Any], status: Mapping[str, Any] | None = None) -> Any:
    """Create a Node through the API and patch its status subresource to Ready (``core_v1``: CoreV1Api)."""
    name = manifest["metadata"]["name"]
    core_v1.create_node(dict(manifest))
    body = copy.deepcopy(dict(status or ready_status()))
    arch = manifest["metadata"]["labels"].get("kubernetes.io/arch", "")
    body["status"]["nodeInfo"]["architecture"] = arch
    return core_v1.patch_node_status(name, body)


def profile_paths(directory: Path, names: Sequence[str]) -> list[Path]:
    """Paths of named profiles (file stems) in ``directory``; a missing one is an error naming it."""
    paths = [directory / f"{name}.txt" for name in names]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise ProfileError(f"profiles not found: {', '.join(missing)}")
    return paths
