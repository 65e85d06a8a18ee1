"""Render charts/hwcap-operator with the project's own helm binary (shared by the chart tests).

helm comes from the devcluster build (``devcluster_binaries``, the session fixture in tests/conftest.py), so
these tests exercise the same pinned helm as the e2e install tests and the demo; there is no second way to
get helm. Rendering is ``helm template`` against the Kubernetes version the devcluster builds.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from hwcap_dev.devcluster import build

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART_DIR = REPO_ROOT / "charts" / "hwcap-operator"
RELEASE = "hw"
NAMESPACE = "hwcap-system"
#: ``helm template`` defaults to an old Kubernetes; render for the version the devcluster runs.
KUBE_VERSION = build.PINS.kubernetes.lstrip("v")

Obj = dict[str, Any]


Render = Callable[..., "Rendered"]


class HelmFailed(AssertionError):
    """helm exited non-zero; the message carries its stderr (what a user would read)."""


@dataclass(frozen=True)
class Rendered:
    """The objects one ``helm template`` produced, with small lookups for the tests."""

    objects: list[Obj]

    def of_kind(self, kind: str) -> list[Obj]:
        return [o for o in self.objects if o["kind"] == kind]

    def one(self, kind: str, name: str | None = None) -> Obj:
        found = [o for o in self.of_kind(kind) if name is None or o["metadata"]["name"] == name]
        assert len(found) == 1, f"expected one {kind} {name or ''}, got {[o['metadata']['name'] for o in found]}"
        return found[0]

    def kinds(self) -> set[str]:
        return {o["kind"] for o in self.objects}


@dataclass(frozen=True)
class Helm:
    """Runs the project's helm with its caches in a temporary directory (never the user's ~/.cache)."""

    binary: Path
    home: Path

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(self.home),
            "HELM_CACHE_HOME": str(self.home / "cache"),
            "HELM_CONFIG_HOME": str(self.home / "config"),
            "HELM_DATA_HOME": str(self.home / "data"),
        }
        proc = subprocess.run([str(self.binary), *args], capture_output=True, text=True, env=env, check=False)
        if check and proc.returncode != 0:
            raise HelmFailed(f"helm {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
        return proc

    def template(
        self,
        values: Mapping[str, Any] | None = None,
        *,
        api_versions: Iterable[str] = (),
        extra: Sequence[str] = (),
        values_files: Sequence[Path] = (),
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        args = ["template", RELEASE, str(CHART_DIR), "--namespace", NAMESPACE, "--kube-version", KUBE_VERSION]
        for path in values_files:
            args += ["--values", str(path)]
        if values:
            fd, name = tempfile.mkstemp(prefix="values-", suffix=".yaml", dir=self.home)
            path = Path(name)
            with os.fdopen(fd, "w") as fh:
                fh.write(yaml.safe_dump(dict(values)))
            args += ["--values", str(path)]
        for api in api_versions:
            args += ["--api-versions", api]
        return self.run(*args, *extra, check=check)


def render_with(helm: Helm, values: Mapping[str, Any] | None = None, *, api_versions: Iterable[str] = ()) -> Rendered:
    """``helm template`` with ``values`` -> the rendered objects (empty documents dropped)."""
    out = helm.template(values, api_versions=api_versions).stdout
    return Rendered([doc for doc in yaml.safe_load_all(out) if doc])
