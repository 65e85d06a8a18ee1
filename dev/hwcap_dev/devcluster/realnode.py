"""Real nodes for the dev cluster: a kubelet with its own containerd (or CRI-O) on this machine, pods really run.

The runtime is containerd unless :attr:`NodeRuntime.crio_dir` is set: then CRI-O (:mod:`.crio`), whose CRI
restores a container from a checkpoint image, which ``hwcapctl migrate`` needs on the target.

Each node has a short base directory (``/run/hwcap-dev/<cluster>/<node>``: unix sockets below it stay
under 108 bytes), its own containerd (root, state, socket), CNI bridge and subnet, kubelet ports and pod
cgroup root, and authenticates as ``system:node:<name>`` with a client certificate from the dev CA, so the
apiserver's Node authorizer and NodeRestriction admission see it as a real kubelet.

**How the apiserver reaches a kubelet on loopback.** The kubelet refuses a loopback node IP and would
otherwise advertise the machine's default-route address. It runs with ``--cloud-provider=external``
instead: it then advertises no address of its own and taints itself
``node.cloudprovider.kubernetes.io/uninitialized``, waiting for a cloud controller. :func:`initialize_node`
plays that controller's part: it sets the node's InternalIP to 127.0.0.1 and removes the taint. The
apiserver (``--kubelet-preferred-address-types=InternalIP``) then dials ``127.0.0.1:<the node's kubelet
port>`` for ``kubectl logs``/``exec``; every node has its own port, all traffic stays on loopback.

The node agent runs beside each kubelet with that node's credentials (``hwcap-operator agent``), so what it
publishes is this machine's real words and the kernel's real inheritance verdict.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import ssl
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import crio, criu, node_cleanup, node_config
from .kubeconfig import build_kubeconfig, write_kubeconfig
from .node_config import NodeLayout
from .processes import ManagedProcess
from .runner import LOOPBACK, ControlPlane, StartupError, free_port
from .simulated_nodes import CONDITION_TAINTS

RUN_ROOT = Path("/run/hwcap-dev")
UNINITIALIZED_TAINT = "node.cloudprovider.kubernetes.io/uninitialized"
CNI_BIN_DIR = Path("/usr/lib/cni")


@dataclass(frozen=True)
class NodeRuntime:
    """The programs a real node runs."""

    kubelet: Path
    containerd: Path
    shim_dir: Path
    runc: Path
    cni_bin_dir: Path = CNI_BIN_DIR
    agent: Sequence[str] = (sys.executable, "-m", "hwcap_operator.cli.operator_main")
    hwcap_exec: Path | None = None
    #: set: the node runs CRI-O (``crio`` and ``pinns`` from this directory, :mod:`.crio`) instead of containerd
    crio_dir: Path | None = None

    @classmethod
    def from_build(cls, bin_dir: Path, hwcap_exec: Path | None = None, crio_dir: Path | None = None) -> NodeRuntime:
        """kubelet/containerd/shim from the node-runtime build, runc from Debian (``/usr/sbin/runc``); with
        ``crio_dir`` the node's runtime is CRI-O (+ Debian's conmon) instead of containerd."""
        runc = shutil.which("runc") or "/usr/sbin/runc"
        return cls(bin_dir / "kubelet", bin_dir / "containerd", bin_dir, Path(runc), hwcap_exec=hwcap_exec,
                   crio_dir=crio_dir)

    @property
    def kind(self) -> str:
        """``cri-o`` or ``containerd`` (as the Node's ``containerRuntimeVersion`` names them)."""
        return "cri-o" if self.crio_dir is not None else "containerd"

    def missing(self) -> list[str]:
        """Programs or directories that are not there (a clear error before anything starts)."""
        if self.crio_dir is not None:
            engine = [self.crio_dir / "crio", self.crio_dir / "pinns", crio.CONMON]
        else:
            engine = [self.containerd, self.shim_dir / "containerd-shim-runc-v2"]
        needed = [self.kubelet, *engine, self.runc,
                  self.cni_bin_dir / "bridge", self.cni_bin_dir / "host-local", self.cni_bin_dir / "loopback"]
        return [str(p) for p in needed if not p.exists()]


def cluster_tag(state_dir: Path) -> str:
    """A short stable id of one dev cluster (its state directory), used in paths and link names."""
    return hashlib.sha256(str(state_dir.resolve()).encode()).hexdigest()[:8]


def node_layout(state_dir: Path, name: str, index: int) -> NodeLayout:
    """The directories, names and fresh ports of node number ``index`` of the cluster in ``state_dir``."""
    tag = cluster_tag(state_dir)
    return NodeLayout(
        name=name,
        base=RUN_ROOT / tag / f"n{index}",
        bridge=f"hwc{tag[:6]}-{index}"[:15],
        subnet=f"10.213.{index}.0/24",
        cgroup_root=f"/hwcap-dev-{tag}-n{index}",
        kubelet_port=free_port(),
        healthz_port=free_port(),
    )


def _admin_context(plane: ControlPlane) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(plane.pki_dir / "ca.crt"))
    ctx.load_cert_chain(str(plane.pki_dir / "admin.crt"), str(plane.pki_dir / "admin.key"))
    return ctx


def admin_request(plane: ControlPlane, method: str, path: str, body: Any = None,
                  content_type: str = "application/json") -> Any:
    """One apiserver call as the admin; returns the decoded JSON, or None for 404."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(plane.server + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(req, timeout=10, context=_admin_context(plane)) as resp:
            return json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as err:
        if err.code == 404:
            return None
        raise StartupError(f"{method} {path}: HTTP {err.code}: {err.read().decode(errors='replace')[:400]}") from err


def _ready(node: dict[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in node.get("status", {}).get("conditions") or [])


def initialize_node(plane: ControlPlane, name: str) -> bool:
    """Do the cloud controller's and node lifecycle controller's parts for a kubelet on loopback.

    Cloud controller: InternalIP 127.0.0.1, the ``uninitialized`` taint removed. Lifecycle controller (not
    run in the dev cluster): the ``not-ready`` taint the kubelet registers with is lifted once the node
    reports Ready. Returns False while the Node object does not exist yet.
    """
    node = admin_request(plane, "GET", f"/api/v1/nodes/{name}")
    if node is None:
        return False
    blocking = {UNINITIALIZED_TAINT, *(CONDITION_TAINTS if _ready(node) else ())}
    taints = node.get("spec", {}).get("taints") or []
    kept = [t for t in taints if t.get("key") not in blocking]
    addresses = [{"type": "InternalIP", "address": LOOPBACK}, {"type": "Hostname", "address": name}]
    if node.get("status", {}).get("addresses") != addresses:
        admin_request(plane, "PATCH", f"/api/v1/nodes/{name}/status", {"status": {"addresses": addresses}},
                      "application/merge-patch+json")
    if len(kept) != len(taints):
        admin_request(plane, "PATCH", f"/api/v1/nodes/{name}", {"spec": {"taints": kept or None}},
                      "application/merge-patch+json")
    return True


def node_ready(plane: ControlPlane, name: str) -> bool:
    """True when the Node reports Ready=True and carries none of the taints :func:`initialize_node` lifts."""
    node = admin_request(plane, "GET", f"/api/v1/nodes/{name}")
    if node is None:
        return False
    keys = {UNINITIALIZED_TAINT, *CONDITION_TAINTS}
    return _ready(node) and not any(t.get("key") in keys for t in node.get("spec", {}).get("taints") or [])


@dataclass
class RealNode:
    """One kubelet + containerd (+ node agent) registered with a running control plane."""

    plane: ControlPlane
    runtime: NodeRuntime
    layout: NodeLayout
    registry_host: str
    sandbox_image: str
    labels: dict[str, str] = field(default_factory=dict)
    detached: bool = False
    start_timeout: float = 180.0
    procs: list[ManagedProcess] = field(default_factory=list)

    @property
    def name(self) -> str:
        """The Node's name."""
        return self.layout.name

    @property
    def netns_dir(self) -> Path:
        """Where the node's runtime keeps the pods' network namespaces (teardown looks there)."""
        if self.runtime.crio_dir is not None:
            return self.layout.crio_namespaces_dir / "netns"
        return self.layout.containerd_state / "netns"

    @property
    def runtime_socket(self) -> Path:
        """The CRI socket the kubelet talks to."""
        return self.layout.crio_socket if self.runtime.crio_dir is not None else self.layout.containerd_socket

    @property
    def log_dir(self) -> Path:
        """containerd, kubelet and agent logs of this node (in the cluster's state directory)."""
        return self.plane.state_dir / "logs" / self.name

    def start(self) -> None:
        """Write the node's files, start containerd, kubelet and agent, wait until the Node is Ready."""
        missing = self.runtime.missing()
        if missing:
            raise StartupError(f"real node {self.name}: missing {', '.join(missing)} "
                               "(run `hwcap-dev cluster build --node` and `make system-packages`)")
        try:
            self._write_files()
            deadline = time.monotonic() + self.start_timeout
            engine = self._spawn_engine()
            self._wait(engine, deadline, self.runtime_socket.exists, f"{engine.name} socket")
            kubelet = self._spawn("kubelet", self._kubelet_args())
            self._wait(kubelet, deadline, lambda: initialize_node(self.plane, self.name), "Node registered")
            self._wait(kubelet, deadline, lambda: initialize_node(self.plane, self.name)
                       and node_ready(self.plane, self.name), "Node Ready")
            self._spawn("agent", self._agent_args())
        except BaseException:
            self.stop()
            raise

    def stop(self) -> node_cleanup.Leftovers:
        """Stop agent and kubelet, then remove every process, mount, link and namespace of the node."""
        for proc in reversed(self.procs):
            if proc.name not in ("containerd", "crio"):
                proc.stop(10)
        left = self.remove()
        for proc in self.procs:
            proc.stop(10)
        self.procs.clear()
        return left

    def remove(self) -> node_cleanup.Leftovers:
        """Tear down whatever of this node is on the machine (also after a crash: works from the layout)."""
        return node_cleanup.remove_all(self.layout.base, self.layout.bridge, self.layout.cgroup_root,
                                       self.netns_dir)

    def leftovers(self) -> node_cleanup.Leftovers:
        """What of this node is on the machine right now."""
        return node_cleanup.leftovers(self.layout.base, self.layout.bridge, self.layout.cgroup_root,
                                      self.netns_dir)

    def record(self) -> dict[str, Any]:
        """What ``cluster down`` needs to tear this node down from ``state.json``."""
        return {"name": self.name, "base": str(self.layout.base), "bridge": self.layout.bridge,
                "cgroup_root": self.layout.cgroup_root, "kubelet_port": self.layout.kubelet_port,
                "netns_dir": str(self.netns_dir), "runtime": self.runtime.kind,
                "processes": [{"name": f"{self.name}/{p.name}", "pid": p.pid, "program": str(p.argv[0])}
                              for p in self.procs]}

    # -- internals ------------------------------------------------------------------------------------

    def _write_files(self) -> None:
        lay = self.layout
        for directory in (lay.base, lay.cni_conf_dir, lay.seccomp_dir, lay.pod_logs_dir, lay.pki_dir):
            directory.mkdir(parents=True, exist_ok=True)
        os.chmod(lay.base, 0o711)
        node_cleanup.make_cgroup_root(lay.cgroup_root)
        ca = self.plane.certificate_authority()
        (lay.pki_dir / "ca.crt").write_bytes(ca.cert_pem)
        client = ca.issue(f"system:node:{lay.name}", organizations=["system:nodes"], client=True)
        ca.issue(lay.name, dns_names=[lay.name, "localhost"], ip_addresses=[LOOPBACK], server=True).write(
            lay.pki_dir, "kubelet-serving")
        write_kubeconfig(lay.base / "kubelet.kubeconfig", build_kubeconfig(
            self.plane.server, ca.cert_pem, f"system:node:{lay.name}",
            cert_pem=client.cert_pem, key_pem=client.key_pem))
        if self.runtime.crio_dir is None:
            (lay.base / "containerd.toml").write_text(node_config.containerd_config(
                lay, shim_dir=self.runtime.shim_dir, runc=self.runtime.runc, cni_bin_dir=self.runtime.cni_bin_dir,
                sandbox_image=self.sandbox_image))
            hosts = lay.registry_hosts_dir / self.registry_host
            hosts.mkdir(parents=True, exist_ok=True)
            (hosts / "hosts.toml").write_text(node_config.registry_hosts_toml(self.registry_host))
        (lay.cni_conf_dir / "10-hwcap-bridge.conflist").write_text(node_config.cni_conflist(lay))
        (lay.base / "kubelet.yaml").write_text(node_config.kubelet_config(
            lay, client_ca=lay.pki_dir / "ca.crt", serving_cert=lay.pki_dir / "kubelet-serving.crt",
            serving_key=lay.pki_dir / "kubelet-serving.key", runtime_socket=self.runtime_socket))

    def _spawn_engine(self) -> ManagedProcess:
        """containerd, or CRI-O with its files written now (it reads them once at start)."""
        lay = self.layout
        if self.runtime.crio_dir is None:
            return self._spawn("containerd", [str(self.runtime.containerd), "--config",
                                              str(lay.base / "containerd.toml")])  # fmt: skip
        config = crio.crio_config(
            lay, runc=self.runtime.runc, conmon=crio.CONMON, pinns=self.runtime.crio_dir / "pinns",
            cni_bin_dir=self.runtime.cni_bin_dir, path_env=self._path(""), sandbox_image=self.sandbox_image,
            registry_host=self.registry_host)
        args = crio.write_node_files(lay, config, self.registry_host)
        return self._spawn("crio", [str(self.runtime.crio_dir / "crio"), *args], crio.crio_env(lay))

    def _kubelet_args(self) -> list[str]:
        labels = ",".join(f"{k}={v}" for k, v in sorted(self.labels.items()))
        args = [
            str(self.runtime.kubelet),
            f"--config={self.layout.base / 'kubelet.yaml'}",
            f"--kubeconfig={self.layout.base / 'kubelet.kubeconfig'}",
            f"--root-dir={self.layout.kubelet_root}",
            f"--hostname-override={self.name}",
            "--cloud-provider=external",
            "--v=1",
        ]
        return args + ([f"--node-labels={labels}"] if labels else [])

    def _agent_args(self) -> list[str]:
        args = [*self.runtime.agent, "--kubeconfig", str(self.layout.base / "kubelet.kubeconfig"),
                "--log-format", "text", "agent", "--node-name", self.name, "--interval", "30"]
        if self.runtime.hwcap_exec is not None:
            args += ["--hwcap-exec", str(self.runtime.hwcap_exec)]
        return args

    def _path(self, rest: str) -> str:
        """PATH for the node's programs: the pinned CRIU >= 4 (when installed) before Debian's 3.17 in /usr/sbin."""
        criu_dir = criu.wrapper_path().parent
        return os.pathsep.join([str(self.runtime.shim_dir), *([str(criu_dir)] if criu_dir.is_dir() else []),
                                "/usr/sbin", "/usr/bin", "/sbin", "/bin", *([rest] if rest else [])])

    def _spawn(self, name: str, argv: list[str], extra_env: dict[str, str] | None = None) -> ManagedProcess:
        proc = ManagedProcess(name, argv, self.log_dir / f"{name}.log", detached=self.detached)
        env = {**os.environ, **(extra_env or {})}
        env["PATH"] = self._path(env.get("PATH", ""))
        proc.start(env=env)
        self.procs.append(proc)
        return proc

    def _wait(self, proc: ManagedProcess, deadline: float, probe: Any, what: str) -> None:
        while True:
            code = proc.exited()
            if code is not None:
                raise StartupError(self._failure(f"{proc.name} exited with code {code} waiting for {what}"))
            with contextlib.suppress(StartupError, OSError):
                if probe():
                    return
            if time.monotonic() > deadline:
                raise StartupError(self._failure(f"{what} not reached within {self.start_timeout:.0f}s"))
            time.sleep(0.5)

    def _failure(self, headline: str) -> str:
        parts = [f"real node {self.name}: {headline}"]
        parts += [f"--- {p.name} log ({p.log_path}), last lines:\n{p.log_tail(30)}" for p in self.procs]
        return "\n".join(parts)
