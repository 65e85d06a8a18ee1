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

from tests.support.processes import alive as _alive
from tests.support.waits import wait_for

from hwcap_dev import waiting
from hwcap_dev.devcluster.processes import ManagedProcess, pid_runs


def _wait_gone(pid: int, seconds: float = 20) -> bool:
    try:
        waiting.wait_for(f"pid {pid} to be gone", lambda: not _alive(pid), seconds, interval=0.05)
    except waiting.WaitTimeout:
        return False
    return True


def _wait_written(pidfile: Path, seconds: float) -> int:
    """The pid a child wrote to ``pidfile``."""
    return int(wait_for(f"a pid in {pidfile}", lambda: pidfile.is_file() and pidfile.read_text().strip(),
                        timeout=seconds, interval=0.05))  # fmt: skip


def test_stop_kills_the_whole_process_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "grandchild.pid"
    proc = ManagedProcess("sh", ["sh", "-c", f"sleep 300 & echo $! > {pidfile}; wait"], tmp_path / "sh.log")
    proc.start()
    grandchild = _wait_written(pidfile, 20)
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
    child = _wait_written(pidfile, 30)
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
