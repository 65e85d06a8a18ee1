"""N real nodes next to a running control plane: the loopback registry, the images, the kubelets.

``hwcap-dev cluster up --real-nodes N`` and the pytest fixture both go through :class:`RealNodes`:
build (or reuse) the node runtime, start Debian's ``docker-registry`` on 127.0.0.1, assemble and push the
dev images (:mod:`hwcap_dev.images`), then start each node. This machine's CPU becomes each node's NFD
labels (``feature.node.kubernetes.io/cpu-cpuid.*``, applied by the admin as NFD's master would; the
kubelet may not set labels under kubernetes.io itself, NodeRestriction forbids it).

Everything is recorded in ``<state>/realnodes.json`` so ``cluster down`` can stop it from another process,
and tear down what a crashed run left (processes, mounts, links, namespaces, cgroups).
"""

from __future__ import annotations

import contextlib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hwcap_dev.images.push import PushedImages, build_and_push
from hwcap_dev.images.registry import RegistryClient, start_registry

from . import node_cleanup
from .build import cache_root
from .crio import ensure_crio_built
from .node_build import ensure_node_built
from .processes import ManagedProcess, kill_group, pid_runs
from .realnode import NodeRuntime, RealNode, admin_request, node_layout
from .runner import ControlPlane, free_port
from .simulated_nodes import load_profile, nfd_labels

STATE_FILE = "realnodes.json"
REAL_NODE_LABEL = "dev.hwcap/real-node"


def machine_labels() -> dict[str, str]:
    """NFD's cpuid labels for this machine's own CPU (from ``/proc/cpuinfo``)."""
    return nfd_labels(load_profile(Path("/proc/cpuinfo")))


def _log(msg: str) -> None:
    print(f"[real nodes] {msg}", file=sys.stderr, flush=True)


@dataclass
class RealNodes:
    """The registry, the pushed images and N running real nodes of one control plane."""

    plane: ControlPlane
    count: int
    detached: bool = False
    hwcap_exec: Path | None = None
    name_prefix: str = "real"
    #: ``containerd`` or ``cri-o`` (CRI-O restores a pod from a checkpoint image through the CRI; issue 17)
    runtime: str = "containerd"
    nodes: list[RealNode] = field(default_factory=list)
    registry: ManagedProcess | None = None
    images: PushedImages | None = None

    @property
    def images_dir(self) -> Path:
        """Where this cluster's images are assembled and their CycloneDX SBOMs written (``<name>.cdx.json``);
        per cluster, so two clusters never rebuild the same tree at once. The .debs are cached machine-wide."""
        return self.plane.state_dir / "images"

    @property
    def registry_host(self) -> str:
        """``127.0.0.1:<port>`` of the loopback registry."""
        if self.images is None:
            raise RuntimeError("real nodes not started")
        return self.images.pause.split("/", 1)[0]

    def start(self) -> None:
        """Registry and images, then the nodes; on failure stop what started and raise."""
        self.start_registry()
        self.start_nodes()

    def start_registry(self) -> PushedImages:
        """Start the loopback registry and push the dev images (the operator needs the init image's name
        before any node exists)."""
        try:
            port = free_port()
            self.registry = start_registry(self.plane.state_dir / "registry", port, detached=self.detached)
            _log(f"registry on 127.0.0.1:{port}; assembling and pushing pause, init and sample images")
            self.images = build_and_push(RegistryClient(f"127.0.0.1:{port}"), self.images_dir,
                                         cache_root() / "images" / "debs")
            self._record()
            return self.images
        except BaseException:
            self.stop()
            raise

    def start_nodes(self) -> None:
        """Build the node runtime if missing, then start each node and wait until it is Ready."""
        if self.images is None:
            self.start_registry()
        assert self.images is not None
        try:
            crio_dir = ensure_crio_built().bin_dir if self.runtime == "cri-o" else None
            runtime = NodeRuntime.from_build(ensure_node_built().bin_dir, self.hwcap_exec, crio_dir)
            labels = machine_labels()
            for index in range(self.count):
                layout = node_layout(self.plane.state_dir, f"{self.name_prefix}-{index}", index)
                node = RealNode(self.plane, runtime, layout, self.registry_host, self.images.pause,
                                detached=self.detached)
                self.nodes.append(node)
                _log(f"starting {layout.name}: {runtime.kind} + kubelet, base {layout.base}")
                node.start()
                admin_request(self.plane, "PATCH", f"/api/v1/nodes/{layout.name}",
                              {"metadata": {"labels": {**labels, REAL_NODE_LABEL: "true"}}},
                              "application/merge-patch+json")
                self._record()
                _log(f"{layout.name} Ready")
        except BaseException:
            self.stop()
            raise

    def stop(self) -> list[node_cleanup.Leftovers]:
        """Stop every node (tearing down its traces) and the registry; returns what each node left."""
        left = [node.stop() for node in reversed(self.nodes)]
        self.nodes.clear()
        if self.registry is not None:
            self.registry.stop(5)
            self.registry = None
        with contextlib.suppress(FileNotFoundError):
            (self.plane.state_dir / STATE_FILE).unlink()
        return left

    def _record(self) -> None:
        doc: dict[str, Any] = {
            "registry": None if self.registry is None else {
                "name": "registry", "pid": self.registry.pid, "program": str(self.registry.argv[0])},
            "images": None if self.images is None else vars(self.images),
            "nodes": [node.record() for node in self.nodes],
        }
        (self.plane.state_dir / STATE_FILE).write_text(json.dumps(doc, indent=2) + "\n")


def read_recorded(state_dir: Path) -> dict[str, Any] | None:
    """What a detached ``up --real-nodes`` recorded, or None."""
    path = state_dir / STATE_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def stop_recorded_nodes(state_dir: Path) -> list[str]:
    """Stop the real nodes and registry a detached run recorded; returns what was stopped or left."""
    doc = read_recorded(state_dir)
    if doc is None:
        return []
    said: list[str] = []
    for node in reversed(doc.get("nodes", [])):
        for proc in reversed(node.get("processes", [])):
            if pid_runs(int(proc["pid"]), Path(proc["program"])):
                kill_group(int(proc["pid"]), 10)
                said.append(f"{proc['name']} (pid {proc['pid']})")
        base = Path(node["base"])
        netns = Path(node.get("netns_dir") or base / "containerd-state" / "netns")
        left = node_cleanup.remove_all(base, node["bridge"], node["cgroup_root"], netns)
        if not left.empty():
            said.append(f"{node['name']} left {left.describe()}")
    registry = doc.get("registry")
    if registry and pid_runs(int(registry["pid"]), Path(registry["program"])):
        kill_group(int(registry["pid"]), 5)
        said.append(f"registry (pid {registry['pid']})")
    (state_dir / STATE_FILE).unlink()
    return said
