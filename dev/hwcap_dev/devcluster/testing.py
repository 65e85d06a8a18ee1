"""What the pytest fixtures hand to tests: one cluster handle, kubectl/helm runners, a node factory.

The same handle works for the project's own control plane and for an existing cluster
(``USE_EXISTING_CLUSTER=true`` + ``KUBECONFIG``, the envtest convention), so e2e tests do not care which.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import secrets
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .assets import Binaries
from .kubeconfig import build_kubeconfig, write_kubeconfig
from .realnodes import RealNodes
from .runner import ControlPlane


def use_existing_cluster() -> bool:
    """envtest's switch: run the tests against the cluster named by ``KUBECONFIG`` instead."""
    return os.environ.get("USE_EXISTING_CLUSTER", "").strip().lower() in ("1", "true", "yes")


@dataclass
class ClusterAccess:
    """How tests reach the cluster: the admin kubeconfig, and the binaries to drive it with."""

    kubeconfig: Path
    binaries: Binaries
    work_dir: Path
    plane: ControlPlane | None = None

    @property
    def local(self) -> bool:
        """True for the project's own control plane (we hold its CA and can mint users)."""
        return self.plane is not None

    def user_kubeconfig(self, user: str, groups: Sequence[str] = ()) -> Path:
        """A kubeconfig for ``user`` in ``groups``: a client certificate on the local control plane,
        impersonation of the admin (``as``/``as-groups``, honoured by kubectl) on an existing cluster."""
        if self.plane is not None:
            return self.plane.user_kubeconfig(user, groups)
        config: dict[str, Any] = yaml.safe_load(self.kubeconfig.read_text())
        current = config.get("current-context")
        ctx = next(c for c in config["contexts"] if c["name"] == current)["context"]
        for entry in config["users"]:
            if entry["name"] == ctx["user"]:
                entry["user"]["as"] = user
                entry["user"]["as-groups"] = list(groups) or None
        return write_kubeconfig(self.work_dir / "users" / f"{user}.kubeconfig", config)

    def token_kubeconfig(self, name: str, token: str) -> Path:
        """A kubeconfig presenting a bearer token (ServiceAccount tokens from TokenRequest)."""
        if self.plane is not None:
            return self.plane.token_kubeconfig(name, token)
        config: dict[str, Any] = yaml.safe_load(self.kubeconfig.read_text())
        current = config.get("current-context")
        ctx = next(c for c in config["contexts"] if c["name"] == current)["context"]
        cluster = next(c for c in config["clusters"] if c["name"] == ctx["cluster"])["cluster"]
        ca = base64.b64decode(cluster.get("certificate-authority-data", ""))
        return write_kubeconfig(
            self.work_dir / "users" / f"{name}.token.kubeconfig",
            build_kubeconfig(cluster["server"], ca, name, token=token),
        )


class CommandError(RuntimeError):
    """A kubectl/helm call failed; the message has the command, exit code and stderr."""

    def __init__(self, proc: subprocess.CompletedProcess[str]) -> None:
        self.proc = proc
        cmd = " ".join(str(a) for a in proc.args)
        super().__init__(f"`{cmd}` exited {proc.returncode}\nstdout: {proc.stdout}\nstderr: {proc.stderr}")


@dataclass
class ToolRunner:
    """Runs one CLI (kubectl or helm) against the cluster with a given kubeconfig."""

    program: Path
    kubeconfig: Path
    env: Mapping[str, str] = field(default_factory=dict)
    timeout: float = 120.0

    def __call__(
        self,
        *args: str,
        input: str | None = None,
        check: bool = True,
        kubeconfig: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``program args...``; raise :class:`CommandError` on failure unless ``check=False``."""
        env = {**os.environ, **self.env, "KUBECONFIG": str(kubeconfig or self.kubeconfig)}
        proc = subprocess.run(
            [str(self.program), *args], input=input, capture_output=True, text=True,
            env=env, timeout=self.timeout, check=False,
        )
        if check and proc.returncode != 0:
            raise CommandError(proc)
        return proc


def kubectl_runner(access: ClusterAccess) -> ToolRunner:
    """kubectl against the cluster as the admin."""
    return ToolRunner(access.binaries.kubectl, access.kubeconfig)


def helm_runner(access: ClusterAccess) -> ToolRunner:
    """helm against the cluster as the admin, with its caches and config kept in the work dir."""
    home = access.work_dir / "helm"
    env = {
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_DATA_HOME": str(home / "data"),
    }
    return ToolRunner(access.binaries.helm, access.kubeconfig, env=env)


@contextlib.contextmanager
def running_real_nodes(plane: ControlPlane, count: int = 1, *, name_prefix: str = "real",
                       hwcap_exec: Path | None = None, runtime: str = "containerd") -> Iterator[RealNodes]:
    """``count`` real nodes (kubelet + containerd on this machine, root only) next to ``plane``, with the
    loopback registry and the dev images; on exit they are stopped and nothing of them may be left (a
    process, mount, network link, namespace or cgroup left behind fails the caller). For fixtures::

        @pytest.fixture(scope="module")
        def real(control_plane):
            with running_real_nodes(control_plane.plane, hwcap_exec=shim_path()) as nodes:
                yield nodes
    """
    nodes = RealNodes(plane, count, hwcap_exec=hwcap_exec, name_prefix=name_prefix, runtime=runtime)
    nodes.start()
    try:
        yield nodes
    finally:
        left = [item.describe() for item in nodes.stop() if not item.empty()]
        if left:
            raise AssertionError(f"real nodes left traces on this machine: {left}")


def namespace_name(test_name: str) -> str:
    """A DNS-1123 namespace name derived from a test's name, unique per call."""
    base = re.sub(r"[^a-z0-9-]+", "-", test_name.lower()).strip("-")[:40].strip("-") or "test"
    return f"t-{base}-{secrets.token_hex(3)}"
