"""Run a real control plane on loopback: etcd, kube-apiserver and (optionally) kube-scheduler.

What makes it a faithful stand-in for a cluster's API: TLS everywhere the apiserver talks, client-
certificate authentication with an admin in ``system:masters``, RBAC authorization, Pod Security admission,
admission webhooks, and service-account token signing (TokenRequest works). No kubelet and no
kube-controller-manager run; like envtest we therefore disable the ``ServiceAccount`` admission plugin
(nothing would create the ``default`` ServiceAccount of a new namespace) and namespaces stay
``Terminating`` once deleted. Nodes are plain API objects whose status the tests patch.

Everything a run writes lives in its state directory: ``pki/`` (CA, serving/client certs, SA keys),
``etcd-data/``, ``logs/<component>.log``, ``kubeconfig`` (admin), ``state.json`` (pids, ports).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import signal
import socket
import ssl
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from .assets import Binaries
from .kubeconfig import build_kubeconfig, write_kubeconfig
from .pki import CertificateAuthority, service_account_signing_key
from .processes import ManagedProcess, kill_group, pid_runs

LOOPBACK = "127.0.0.1"
ADMIN_USER = "hwcap-devcluster-admin"
#: the apiserver's identity towards kubelets (logs, exec): what kubeadm names apiserver-kubelet-client
KUBELET_CLIENT_USER = "kube-apiserver-kubelet-client"
SERVICE_CLUSTER_IP_RANGE = "10.0.0.0/24"
_APISERVER_SERVICE_IP = "10.0.0.1"


class StartupError(RuntimeError):
    """A component did not become healthy in time; the message carries the logs' tails."""


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Options:
    """How to run a control plane; the defaults are what the test suite uses."""

    state_dir: Path
    scheduler: bool = True
    start_timeout: float = 120.0
    stop_timeout: float = 15.0
    #: detached children survive this Python process (``devcluster up``); otherwise they die with it
    detached: bool = False
    extra_apiserver_args: Sequence[str] = ()
    apiserver_verbosity: int = 1


@dataclass
class Ports:
    """The loopback ports of one run."""

    etcd_client: int = field(default_factory=free_port)
    etcd_peer: int = field(default_factory=free_port)
    apiserver: int = field(default_factory=free_port)
    scheduler: int = field(default_factory=free_port)


_RUNNING: set[ControlPlane] = set()
_PREVIOUS_HANDLERS: dict[int, Any] = {}


def _stop_all() -> None:
    for plane in list(_RUNNING):
        with contextlib.suppress(Exception):
            plane.stop()


def _on_signal(signum: int, frame: FrameType | None) -> None:
    """Stop every control plane, then let the signal do what it would have done."""
    _stop_all()
    previous = _PREVIOUS_HANDLERS.get(signum, signal.SIG_DFL)
    if callable(previous):
        previous(signum, frame)
        return
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _install_cleanup_hooks() -> None:
    if _PREVIOUS_HANDLERS:
        return
    atexit.register(_stop_all)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        with contextlib.suppress(ValueError):  # not the main thread: atexit + pdeathsig still hold
            _PREVIOUS_HANDLERS[signum] = signal.signal(signum, _on_signal)


class ControlPlane:
    """One etcd + kube-apiserver (+ kube-scheduler) on loopback, with its own CA and state directory."""

    def __init__(self, binaries: Binaries, options: Options) -> None:
        self.binaries = binaries
        self.options = options
        self.state_dir = options.state_dir
        self.pki_dir = self.state_dir / "pki"
        self.log_dir = self.state_dir / "logs"
        self.kubeconfig = self.state_dir / "kubeconfig"
        self.ports = Ports()
        self.ca: CertificateAuthority | None = None
        self._procs: list[ManagedProcess] = []

    # -- public surface -------------------------------------------------------------------------------

    @property
    def server(self) -> str:
        """The apiserver URL (https on loopback)."""
        return f"https://{LOOPBACK}:{self.ports.apiserver}"

    @property
    def ca_pem(self) -> bytes:
        """The CA certificate that signed the apiserver's serving certificate and every client cert."""
        return self._ca().cert_pem

    def __enter__(self) -> ControlPlane:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Start every component and wait until each is healthy; on failure stop them and raise with logs."""
        if not self.options.detached:  # a detached plane must outlive this process
            _install_cleanup_hooks()
            _RUNNING.add(self)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        attempts = 3
        for attempt in range(1, attempts + 1):
            try:
                self._start_once()
                self._write_state()
                return
            except StartupError as err:
                self.stop()
                port_clash = "address already in use" in str(err)
                if not port_clash or attempt == attempts:
                    print(str(err), file=sys.stderr, flush=True)
                    raise
                self.ports = Ports()
            except BaseException:
                self.stop()
                raise

    def stop(self) -> None:
        """Stop the components in reverse start order; idempotent."""
        for proc in reversed(self._procs):
            proc.stop(self.options.stop_timeout)
        self._procs.clear()
        _RUNNING.discard(self)
        with contextlib.suppress(FileNotFoundError):
            (self.state_dir / "state.json").unlink()

    def user_kubeconfig(self, user: str, groups: Sequence[str] = (), path: Path | None = None) -> Path:
        """A kubeconfig authenticating as ``user`` in ``groups`` by a client certificate from our CA."""
        pair = self._ca().issue(user, organizations=groups, client=True)
        target = path or self.state_dir / "users" / f"{user}.kubeconfig"
        config = build_kubeconfig(self.server, self.ca_pem, user, cert_pem=pair.cert_pem, key_pem=pair.key_pem)
        return write_kubeconfig(target, config)

    def token_kubeconfig(self, name: str, token: str, path: Path | None = None) -> Path:
        """A kubeconfig that presents a bearer token (e.g. a ServiceAccount token from TokenRequest)."""
        target = path or self.state_dir / "users" / f"{name}.token.kubeconfig"
        return write_kubeconfig(target, build_kubeconfig(self.server, self.ca_pem, name, token=token))

    def certificate_authority(self) -> CertificateAuthority:
        """The dev CA (real nodes get their ``system:node:<name>`` and serving certificates from it)."""
        return self._ca()

    def logs(self) -> dict[str, Path]:
        """Component name → log file."""
        return {proc.name: proc.log_path for proc in self._procs}

    # -- internals ------------------------------------------------------------------------------------

    def _ca(self) -> CertificateAuthority:
        if self.ca is None:
            crt, key = self.pki_dir / "ca.crt", self.pki_dir / "ca.key"
            if crt.is_file() and key.is_file():
                self.ca = CertificateAuthority.load(crt, key)
            else:
                self.ca = CertificateAuthority.generate()
                self.ca.write(self.pki_dir)
        return self.ca

    def _write_pki(self) -> None:
        ca = self._ca()
        ca.issue(
            "kube-apiserver",
            dns_names=["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
                       "kubernetes.default.svc.cluster.local"],
            ip_addresses=[LOOPBACK, _APISERVER_SERVICE_IP],
            server=True,
        ).write(self.pki_dir, "apiserver")
        ca.issue("kube-scheduler", dns_names=["localhost"], ip_addresses=[LOOPBACK], server=True).write(
            self.pki_dir, "scheduler-serving"
        )
        ca.issue(ADMIN_USER, organizations=["system:masters"], client=True).write(self.pki_dir, "admin")
        ca.issue(KUBELET_CLIENT_USER, organizations=["system:masters"], client=True).write(
            self.pki_dir, "apiserver-kubelet-client"
        )
        sa = self.pki_dir / "sa.key"
        if not sa.is_file():
            pair = service_account_signing_key()
            (self.pki_dir / "sa.pub").write_bytes(pair.cert_pem)
            sa.touch(mode=0o600)
            sa.write_bytes(pair.key_pem)

    def _spawn(self, name: str, argv: list[str]) -> ManagedProcess:
        proc = ManagedProcess(name, argv, self.log_dir / f"{name}.log", detached=self.options.detached)
        proc.start()
        self._procs.append(proc)
        return proc

    def _start_once(self) -> None:
        self._write_pki()
        deadline = time.monotonic() + self.options.start_timeout
        etcd = self._spawn("etcd", self._etcd_args())
        self._wait(etcd, deadline, lambda: _http_ok(f"http://{LOOPBACK}:{self.ports.etcd_client}/health"))
        api = self._spawn("kube-apiserver", self._apiserver_args())
        self._wait(api, deadline, lambda: self._api_ok("/readyz"))
        self._wait(api, deadline, lambda: self._api_ok("/api/v1/namespaces/default"))
        admin = self.pki_dir / "admin"
        config = build_kubeconfig(
            self.server, self.ca_pem, ADMIN_USER,
            cert_pem=admin.with_suffix(".crt").read_bytes(), key_pem=admin.with_suffix(".key").read_bytes(),
        )
        write_kubeconfig(self.kubeconfig, config)
        if self.options.scheduler:
            sched_cfg = self.user_kubeconfig("system:kube-scheduler", path=self.state_dir / "scheduler.kubeconfig")
            sched = self._spawn("kube-scheduler", self._scheduler_args(sched_cfg))
            self._wait(sched, deadline, lambda: self._https_ok(f"https://{LOOPBACK}:{self.ports.scheduler}/healthz"))

    def _etcd_args(self) -> list[str]:
        client = f"http://{LOOPBACK}:{self.ports.etcd_client}"
        peer = f"http://{LOOPBACK}:{self.ports.etcd_peer}"
        return [
            str(self.binaries.etcd),
            "--name=devcluster",
            f"--data-dir={self.state_dir / 'etcd-data'}",
            f"--listen-client-urls={client}",
            f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=devcluster={peer}",
            "--unsafe-no-fsync=true",
            "--log-level=warn",
        ]

    def _apiserver_args(self) -> list[str]:
        pki = self.pki_dir
        return [
            str(self.binaries.kube_apiserver),
            f"--etcd-servers=http://{LOOPBACK}:{self.ports.etcd_client}",
            f"--bind-address={LOOPBACK}",
            f"--advertise-address={LOOPBACK}",
            # the endpoint reconcilers refuse a loopback address; nothing in-cluster needs the endpoints
            "--endpoint-reconciler-type=none",
            f"--secure-port={self.ports.apiserver}",
            f"--cert-dir={pki}",
            f"--tls-cert-file={pki / 'apiserver.crt'}",
            f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            # as real clusters run: kubelets are confined to their own Node and its pods
            "--authorization-mode=Node,RBAC",
            "--enable-admission-plugins=NodeRestriction,PodSecurity,MutatingAdmissionWebhook,"
            "ValidatingAdmissionWebhook",
            # real nodes advertise InternalIP 127.0.0.1 and a port of their own (see realnode.py)
            "--kubelet-preferred-address-types=InternalIP",
            f"--kubelet-client-certificate={pki / 'apiserver-kubelet-client.crt'}",
            f"--kubelet-client-key={pki / 'apiserver-kubelet-client.key'}",
            "--disable-admission-plugins=ServiceAccount",
            f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
            f"--service-account-issuer={self.server}",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            "--allow-privileged=true",
            "--profiling=false",
            f"--v={self.options.apiserver_verbosity}",
            *self.options.extra_apiserver_args,
        ]

    def _scheduler_args(self, kubeconfig: Path) -> list[str]:
        return [
            str(self.binaries.kube_scheduler),
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            f"--bind-address={LOOPBACK}",
            f"--secure-port={self.ports.scheduler}",
            f"--tls-cert-file={self.pki_dir / 'scheduler-serving.crt'}",
            f"--tls-private-key-file={self.pki_dir / 'scheduler-serving.key'}",
            "--leader-elect=false",
            "--v=1",
        ]

    def _client_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.pki_dir / "ca.crt"))
        ctx.load_cert_chain(str(self.pki_dir / "admin.crt"), str(self.pki_dir / "admin.key"))
        return ctx

    def _api_ok(self, path: str) -> bool:
        return self._https_ok(self.server + path)

    def _https_ok(self, url: str) -> bool:
        return _http_ok(url, self._client_context())

    def _wait(self, proc: ManagedProcess, deadline: float, probe: Callable[[], bool]) -> None:
        while True:
            code = proc.exited()
            if code is not None:
                raise StartupError(self._failure(f"{proc.name} exited with code {code} during startup"))
            if probe():
                return
            if time.monotonic() > deadline:
                raise StartupError(
                    self._failure(f"{proc.name} not healthy within {self.options.start_timeout:.0f}s")
                )
            time.sleep(0.2)

    def _failure(self, headline: str) -> str:
        parts = [f"devcluster startup failed: {headline} (state: {self.state_dir})"]
        for proc in self._procs:
            parts.append(f"--- {proc.name} log ({proc.log_path}), last lines:\n{proc.log_tail()}")
        return "\n".join(parts)

    def _write_state(self) -> None:
        state = {
            "server": self.server,
            "kubeconfig": str(self.kubeconfig),
            "ports": vars(self.ports),
            "processes": [
                {"name": p.name, "pid": p.pid, "program": str(p.argv[0]), "log": str(p.log_path)}
                for p in self._procs
            ],
        }
        (self.state_dir / "state.json").write_text(json.dumps(state, indent=2) + "\n")


def _http_ok(url: str, context: ssl.SSLContext | None = None) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2, context=context) as resp:
            return 200 <= int(resp.status) < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


def read_state(state_dir: Path) -> dict[str, Any] | None:
    """The state a detached run left behind, or None when nothing is recorded."""
    path = state_dir / "state.json"
    if not path.is_file():
        return None
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def state_is_running(state: dict[str, Any]) -> bool:
    """True when every recorded process is still running its recorded program."""
    return all(pid_runs(int(p["pid"]), Path(p["program"])) for p in state.get("processes", []))


def stop_recorded(state_dir: Path, timeout: float = 15.0) -> list[str]:
    """Stop a detached run from its ``state.json`` (``devcluster down``); returns what was stopped."""
    state = read_state(state_dir)
    stopped: list[str] = []
    if state is None:
        return stopped
    for proc in reversed(state.get("processes", [])):
        pid = int(proc["pid"])
        if pid_runs(pid, Path(proc["program"])):
            kill_group(pid, timeout)
            stopped.append(f"{proc['name']} (pid {pid})")
    (state_dir / "state.json").unlink()
    return stopped
