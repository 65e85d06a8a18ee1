"""Child processes that never outlive their owner: own process group, parent-death signal, group kill.

A test session that crashes, is interrupted or is killed must not leave an etcd or kube-apiserver behind
holding ports and memory on a 2-core machine. Each child runs in its own process group (so a kill reaches
anything it spawns) and, unless detached on purpose (``devcluster up``), under ``setpriv --pdeathsig KILL``
so the kernel kills it if its Python parent dies without running any cleanup code.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie still answers kill(0); treat it as gone
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    return True


def pid_runs(pid: int, program: Path) -> bool:
    """True when ``pid`` is alive and is running ``program`` (guards against recycled pids)."""
    if not _alive(pid):
        return False
    try:
        exe = os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return False
    return Path(exe.removesuffix(" (deleted)")).name == program.name


def kill_group(pid: int, timeout: float) -> None:
    """SIGTERM the process group led by ``pid``, SIGKILL it after ``timeout`` seconds."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.05)


@dataclass
class ManagedProcess:
    """One long-running child with its log file."""

    name: str
    argv: Sequence[str]
    log_path: Path
    detached: bool = False
    popen: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    def start(self, env: dict[str, str] | None = None) -> None:
        """Start the child with stdout+stderr appended to its log."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        prefix: list[str] = []
        if not self.detached and shutil.which("setpriv"):
            prefix = ["setpriv", "--pdeathsig", "KILL", "--"]
        with self.log_path.open("ab") as log:
            log.write(f"\n--- starting {self.name}: {' '.join(self.argv)}\n".encode())
            log.flush()
            self.popen = subprocess.Popen(
                [*prefix, *self.argv],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=env,
            )

    @property
    def pid(self) -> int:
        """The child's pid (also its process-group id)."""
        if self.popen is None:
            raise RuntimeError(f"{self.name} was never started")
        return self.popen.pid

    def exited(self) -> int | None:
        """The exit code if the child has ended, else None."""
        return None if self.popen is None else self.popen.poll()

    def stop(self, timeout: float) -> None:
        """Terminate the child's whole process group and reap it."""
        if self.popen is None:
            return
        if self.popen.poll() is None:
            kill_group(self.popen.pid, timeout)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=5)

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of the child's log, for error messages."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])
