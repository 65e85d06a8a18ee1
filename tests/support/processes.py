"""Which processes live, read from /proc: the independent check that what a test started is gone again.

Written here rather than taken from ``hwcap_dev.devcluster.processes``: the tests of that module must not
check its behaviour with its own helpers.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def alive(pid: int) -> bool:
    """``pid`` exists and is not a zombie (a zombie has exited; only its parent has not reaped it yet)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def processes_mentioning(text: str) -> list[str]:
    """``"PID: command line"`` of every live process but this one whose command line contains ``text``."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if text in cmdline and alive(int(proc.name)):
                found.append(f"{proc.name}: {cmdline[:200]}")
    return found
