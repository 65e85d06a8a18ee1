"""No orphans: a stopped child takes its whole process group along, and a child dies with its parent
even when the parent is SIGKILLed and runs no cleanup."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from hwcap_dev.devcluster.processes import ManagedProcess, pid_runs


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _wait_gone(pid: int, seconds: float = 20) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


def test_stop_kills_the_whole_process_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "grandchild.pid"
    proc = ManagedProcess("sh", ["sh", "-c", f"sleep 300 & echo $! > {pidfile}; wait"], tmp_path / "sh.log")
    proc.start()
    deadline = time.monotonic() + 20
    while not (pidfile.is_file() and pidfile.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.05)
    grandchild = int(pidfile.read_text())
    assert _alive(grandchild) and pid_runs(grandchild, Path("/bin/sleep"))
    proc.stop(timeout=5)
    assert proc.exited() is not None
    assert _wait_gone(grandchild), "the grandchild survived its group's stop"


def _child_of_killed_parent(tmp_path: Path, detached: bool) -> int:
    """Start a Python parent that starts a ``sleep`` child, SIGKILL the parent, return the child's pid."""
    pidfile = tmp_path / "child.pid"
    parent_code = textwrap.dedent(f"""
        import pathlib, time
        from hwcap_dev.devcluster.processes import ManagedProcess
        p = ManagedProcess("sleeper", ["sleep", "300"], pathlib.Path({str(tmp_path / 'sleep.log')!r}),
                           detached={detached!r})
        p.start()
        pathlib.Path({str(pidfile)!r}).write_text(str(p.pid))
        time.sleep(300)
    """)
    parent = subprocess.Popen([sys.executable, "-c", parent_code])
    deadline = time.monotonic() + 30
    while not (pidfile.is_file() and pidfile.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    child = int(pidfile.read_text())
    assert _alive(child)
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    return child


def test_children_die_with_a_killed_parent(tmp_path: Path) -> None:
    child = _child_of_killed_parent(tmp_path, detached=False)
    assert _wait_gone(child), "the child outlived its SIGKILLed parent"


def test_detached_children_outlive_their_parent(tmp_path: Path) -> None:
    """``devcluster up`` leaves the cluster running: its children must survive the CLI process."""
    child = _child_of_killed_parent(tmp_path, detached=True)
    try:
        time.sleep(1)  # a pdeathsig kill would be immediate; give it a moment to show
        assert _alive(child)
    finally:
        os.killpg(child, signal.SIGKILL)
        _wait_gone(child)
