"""Process control for the demo: the commands it runs against its cluster, the operator and agent it starts
(detached: they outlive ``up``), and stopping all of it again; :class:`DemoError` when one of them fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

from hwcap_dev import waiting
from hwcap_dev.demo.console import quote
from hwcap_dev.demo.state import DemoState
from hwcap_dev.devcluster.assets import Binaries
from hwcap_dev.devcluster.processes import ManagedProcess, kill_group, pid_runs
from hwcap_dev.devcluster.realnodes import stop_recorded_nodes
from hwcap_dev.devcluster.runner import ControlPlane, stop_recorded

T = TypeVar("T")


class DemoError(RuntimeError):
    """A demo step failed; the message says which and where the logs are."""


def wait_for(what: str, probe: Callable[[], T | None], timeout: float, interval: float = 0.3) -> T:
    """Poll ``probe`` until it returns something truthy; :class:`DemoError` naming ``what`` otherwise."""
    try:
        return waiting.wait_for(what, probe, timeout, interval)
    except waiting.WaitTimeout as err:
        raise DemoError(str(err)) from None


class ClusterCommands:
    """Commands against the demo's cluster (its kubeconfig, a helm home of its own), echoed with their output."""

    def __init__(self, state: DemoState, say: Callable[[str], None]) -> None:
        self.state, self.say = state, say
        self.binaries: Binaries | None = None

    def env(self) -> dict[str, str]:
        home = self.state.state_dir / "helm"
        return {**os.environ, "KUBECONFIG": str(self.state.kubeconfig), "HELM_CACHE_HOME": str(home / "cache"),
                "HELM_CONFIG_HOME": str(home / "config"), "HELM_DATA_HOME": str(home / "data")}  # fmt: skip

    def run(self, argv: Sequence[str | Path], *, show: bool = True, check: bool = True,
            input_text: str | None = None) -> subprocess.CompletedProcess[str]:  # fmt: skip
        """Run a command against the demo cluster; with ``show`` print it (short program name) and its output."""
        args = [str(a) for a in argv]
        if show:
            self.say(f"$ {Path(args[0]).name} {' '.join(quote(a) for a in args[1:])}")
        proc = subprocess.run(args, input=input_text, stdin=None if input_text is not None else subprocess.DEVNULL,
                              capture_output=True, text=True, env=self.env(), timeout=120, check=False)  # fmt: skip
        if show:
            text = (proc.stdout + (proc.stderr if proc.returncode else "")).rstrip()
            if text:
                self.say("\n".join("  " + line for line in text.splitlines()))
        if check and proc.returncode != 0:
            raise DemoError(f"`{' '.join(args)}` exited {proc.returncode}: {proc.stderr.strip() or proc.stdout}")
        return proc

    def kubectl(self, *args: str, show: bool = True, check: bool = True,
                input_text: str | None = None) -> subprocess.CompletedProcess[str]:  # fmt: skip
        if self.binaries is None:
            raise DemoError("kubectl is not resolved yet: the control-plane binaries come first")
        return self.run([self.binaries.kubectl, *args], show=show, check=check, input_text=input_text)

    def get_json(self, *args: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.kubectl("get", *args, "-o", "json", show=False).stdout)
        return data


def spawn_operator_program(state: DemoState, name: str, args: list[str]) -> ManagedProcess:
    """``hwcap-operator ARGS`` (run or agent) as a detached process logging to ``logs/NAME.log``; recorded in
    the state file at once, so ``down`` finds it even if ``up`` dies next."""
    proc = ManagedProcess(name, [sys.executable, "-m", "hwcap_operator.cli.operator_main", *args],
                          state.state_dir / "logs" / f"{name}.log", detached=True)  # fmt: skip
    proc.start(env={**os.environ, "PYTHONUNBUFFERED": "1"})
    state.record(proc, Path(os.path.realpath(sys.executable)))
    return proc


def operator_ready(proc: ManagedProcess, metrics_port: int) -> bool:
    """The operator answers ``/readyz``; :class:`DemoError` with its log's tail if it exited instead."""
    code = proc.exited()
    if code is not None:
        raise DemoError(f"the operator exited with {code}:\n{proc.log_tail()}")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/readyz", timeout=2) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def console_script(name: str) -> Path:
    """The console script next to this interpreter (the venv's ``hwcapctl``), so the printed command is real."""
    candidate = Path(sys.executable).parent / name
    if candidate.is_file():
        return candidate
    found = shutil.which(name)
    if found is None:
        raise DemoError(f"{name} is not installed next to {sys.executable}; run `make venv`")
    return Path(found)


def stop_demo(state_dir: Path) -> list[str]:
    """Stop the demo's processes, then the control plane; returns what was stopped (idempotent)."""
    state = DemoState.load(state_dir)
    stopped = []
    for proc in reversed(state.processes):
        pid = int(proc["pid"])
        if pid_runs(pid, Path(proc["program"])):
            kill_group(pid, 15.0)
            stopped.append(f"{proc['name']} (pid {pid})")
    state.processes = []
    if state.path.exists():
        state.path.unlink()
    stopped += stop_recorded_nodes(state.cluster_dir)  # real nodes: kubelet, containerd, pods, registry
    stopped += stop_recorded(state.cluster_dir)
    shutil.rmtree(state.cluster_dir / "etcd-data", ignore_errors=True)
    return stopped


def stop_quietly(state_dir: Path, plane: ControlPlane | None) -> None:
    """The operator and agent first (they would retry against a vanished apiserver), then the control plane."""
    stop_demo(state_dir)
    if plane is not None:
        plane.stop()


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM/SIGHUP become KeyboardInterrupt so a killed ``up`` still stops what it started."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)
