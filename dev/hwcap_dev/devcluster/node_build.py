"""Build the real node's runtime from the Go module proxy, pinned and cached next to the control plane.

A real node needs a kubelet and a container runtime. Both are built like the control plane
(:mod:`.build`): released Go modules, pinned, compiled once into ``~/.cache/hwcap-operator``:

* ``kubelet`` from ``k8s.io/kubernetes/cmd/kubelet`` in the same throwaway module as kube-apiserver (the
  staging replace block generated from the release's go.mod), same version stamp, so no skew;
* ``containerd`` and its shim ``containerd-shim-runc-v2`` from ``github.com/containerd/containerd/v2``.
  Debian's containerd 1.6 has no CRI ``CheckpointContainer`` (the migration work needs it); v2 has.
  ``no_btrfs`` drops the one part that needs btrfs headers.

``runc`` and the CNI plugins come from Debian (``tools/system-packages.txt``): runc is C-free Go too, but
Debian's 1.1.5 runs under containerd 2 here, so there is nothing to gain from compiling it.

The node runtime has its own cache directory (``node-<kubernetes>-<hash>``) so adding it did not rebuild
the control plane; a pin change here rebuilds only the node runtime.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from . import build


@dataclass(frozen=True)
class NodePins:
    """Every version that decides the node runtime's binaries; hashing it names the cache directory."""

    kubernetes: str = build.PINS.kubernetes
    containerd: str = "v2.4.2"
    go_toolchain: str = build.PINS.go_toolchain
    #: bump when the recipe below changes in a way that changes the binaries
    recipe: int = 1

    def control_plane_pins(self) -> build.Pins:
        """The control-plane pins sharing this kubernetes version (for the staging module block)."""
        return build.Pins(kubernetes=self.kubernetes, go_toolchain=self.go_toolchain)

    def key(self) -> str:
        """A short content hash of the pins."""
        blob = json.dumps(asdict(self), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:12]


NODE_PINS = NodePins()

#: The binaries a complete node-runtime build provides.
NODE_BINARIES = ("kubelet", "containerd", "containerd-shim-runc-v2")
CONTAINERD_MODULE = "github.com/containerd/containerd/v2"


def node_cache_dir(pins: NodePins = NODE_PINS) -> Path:
    """Where one pinned node runtime lives."""
    return build.cache_root() / f"node-{pins.kubernetes}-{pins.key()}"


def node_bin_dir(pins: NodePins = NODE_PINS) -> Path:
    """The directory holding kubelet, containerd and the shim."""
    return node_cache_dir(pins) / "bin"


def node_is_built(pins: NodePins = NODE_PINS) -> bool:
    """True when a previous build finished and every binary is still there."""
    stamp = node_cache_dir(pins) / "complete.json"
    return stamp.is_file() and all((node_bin_dir(pins) / name).is_file() for name in NODE_BINARIES)


def _build_kubelet(pins: NodePins, work: Path, out: Path, env: Mapping[str, str], log: Path) -> None:
    k8s = pins.control_plane_pins()
    mod_dir = work / "k8s"
    mod_dir.mkdir(parents=True, exist_ok=True)
    k8s_go_mod = build.download_go_mod("k8s.io/kubernetes", k8s.kubernetes, mod_dir, env, log)
    (mod_dir / "go.mod").write_text(build.kubernetes_module_text(k8s, k8s_go_mod))
    cmd = "k8s.io/kubernetes/cmd/kubelet"
    build.run_step(["go", "get", f"{cmd}@{k8s.kubernetes}"], mod_dir, env, log, "resolve kubelet")
    build_date = build.release_time(mod_dir, env, log, "k8s.io/kubernetes", k8s.kubernetes)
    build.log_step("compiling kubelet: about 6 minutes on 2 cores the first time")
    build.run_step(["go", "build", "-trimpath", "-ldflags", build.version_ldflags(k8s, build_date),
                    "-o", str(out / "kubelet"), cmd], mod_dir, env, log, "build kubelet")


def _build_containerd(pins: NodePins, work: Path, out: Path, env: Mapping[str, str], log: Path) -> None:
    go_env = {**env, "GOBIN": str(out), "CGO_ENABLED": "1"}
    ldflags = f"-s -w -X {CONTAINERD_MODULE}/version.Version={pins.containerd}"
    build.log_step("compiling containerd + containerd-shim-runc-v2: about 2 minutes on 2 cores the first time")
    build.run_step(
        ["go", "install", "-trimpath", "-tags", "no_btrfs", "-ldflags", ldflags,
         f"{CONTAINERD_MODULE}/cmd/containerd@{pins.containerd}",
         f"{CONTAINERD_MODULE}/cmd/containerd-shim-runc-v2@{pins.containerd}"],
        work, go_env, log, "build containerd + shim",
    )


def ensure_node_built(pins: NodePins = NODE_PINS, force: bool = False) -> build.BuildResult:
    """Return the cached node runtime, building it first when missing (or when ``force``)."""

    def steps(work: Path, out: Path, env: Mapping[str, str], log: Path) -> None:
        _build_containerd(pins, work, out, env, log)
        _build_kubelet(pins, work, out, env, log)

    target = node_cache_dir(pins)
    return build.build_cached(
        target=target, pins_doc=asdict(pins), names=NODE_BINARIES,
        env=lambda: build.go_env(pins.control_plane_pins(), target / "src"), is_done=lambda: node_is_built(pins),
        steps=steps, force=force, what="the node runtime (kubelet ~6 min, containerd ~2 min on 2 cores)",
    )
