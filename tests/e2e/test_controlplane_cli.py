"""The devcluster CLI drives a detached control plane end to end, and a failed start reports its logs
and leaves no process behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from hwcap_dev.devcluster.assets import Binaries
from hwcap_dev.devcluster.runner import ControlPlane, Options, StartupError
from tests.support.processes import alive as _running
from tests.support.processes import processes_mentioning as _processes_mentioning


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hwcap_dev.devcluster", *args],
        capture_output=True, text=True, timeout=300, check=False,
    )


def test_up_kubeconfig_down(devcluster_binaries: Binaries, tmp_path: Path) -> None:
    state = str(tmp_path / "state")
    up = _cli("--state-dir", state, "up", "--no-scheduler", "--no-build")
    assert up.returncode == 0, up.stderr
    pids = [p["pid"] for p in json.loads((tmp_path / "state" / "state.json").read_text())["processes"]]
    try:
        assert len(pids) == 2 and all(_running(p) for p in pids)  # etcd + kube-apiserver, detached
        again = _cli("--state-dir", state, "up", "--no-build")
        assert again.returncode == 0 and "already running" in again.stdout
        kubeconfig = _cli("--state-dir", state, "kubeconfig").stdout.strip()
        assert f"KUBECONFIG={kubeconfig}" in up.stdout
        who = subprocess.run(
            [str(devcluster_binaries.kubectl), "auth", "whoami", "-o", "json"],
            env={**os.environ, "KUBECONFIG": kubeconfig}, capture_output=True, text=True, check=True,
        )
        groups = json.loads(who.stdout)["status"]["userInfo"]["groups"]
        assert "system:masters" in groups
    finally:
        down = _cli("--state-dir", state, "down")
    assert down.returncode == 0 and "kube-apiserver" in down.stdout
    assert not any(_running(p) for p in pids)
    assert _cli("--state-dir", state, "status").returncode == 1


def test_failed_start_shows_the_log_and_leaves_nothing_running(
    devcluster_binaries: Binaries, tmp_path: Path
) -> None:
    plane = ControlPlane(
        devcluster_binaries,
        Options(state_dir=tmp_path / "bad", scheduler=False, extra_apiserver_args=["--no-such-flag=1"]),
    )
    with pytest.raises(StartupError) as err:
        plane.start()
    message = str(err.value)
    assert "kube-apiserver exited" in message
    assert "unknown flag: --no-such-flag" in message  # the apiserver's own words, from its log
    assert (tmp_path / "bad" / "logs" / "kube-apiserver.log").is_file()
    assert _processes_mentioning(str(tmp_path / "bad")) == []  # etcd was started, and stopped


def test_sigterm_stops_the_control_plane_cleanly(devcluster_binaries: Binaries, tmp_path: Path) -> None:
    """A test run killed with SIGTERM (CI timeout, Ctrl-\\ in a wrapper) still stops etcd and the apiserver
    through the handler (state.json removed), not only through the parent-death signal."""
    state = tmp_path / "plane"
    code = f"""
import sys, time, pathlib
from hwcap_dev.devcluster.assets import resolve_binaries
from hwcap_dev.devcluster.runner import ControlPlane, Options
options = Options(state_dir=pathlib.Path({str(state)!r}), scheduler=False)
plane = ControlPlane(resolve_binaries(allow_build=False), options)
plane.start()
print("ready", flush=True)
time.sleep(600)
"""
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        pids = [p["pid"] for p in json.loads((state / "state.json").read_text())["processes"]]
        assert len(pids) == 2 and all(_running(p) for p in pids)
        child.send_signal(signal.SIGTERM)
        assert child.wait(timeout=60) == -signal.SIGTERM
    finally:
        if child.poll() is None:
            child.kill()
    assert not (state / "state.json").exists()  # stop() ran in the handler
    assert not any(_running(p) for p in pids)
