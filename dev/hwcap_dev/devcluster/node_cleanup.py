"""Find and remove what a real node leaves on the machine: processes, mounts, network links, namespaces.

A kubelet and containerd spread state well beyond their own pids: containerd-shim processes that
``setsid`` away, container processes in the pod cgroups, overlay/shm/tmpfs mounts, network namespaces
bind-mounted under containerd's state directory, the CNI bridge and its veths, and cgroup directories.
:func:`leftovers` lists all of it for one node (``cluster down`` and a test both use it) and
:func:`remove_all` tears it down in the order that works: kill, unmount, delete links, rmdir cgroups.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

CGROUP_FS = Path("/sys/fs/cgroup")
_MNT_DETACH = 2


@dataclass(frozen=True)
class Leftovers:
    """What of one node is still on the machine."""

    pids: tuple[int, ...]
    mounts: tuple[str, ...]
    links: tuple[str, ...]
    namespaces: tuple[str, ...]
    cgroups: tuple[str, ...]

    def empty(self) -> bool:
        """True when nothing is left."""
        return not (self.pids or self.mounts or self.links or self.namespaces or self.cgroups)

    def describe(self) -> str:
        """One line per kind that is not empty."""
        parts = [f"{kind}: {', '.join(map(str, items))}" for kind, items in (
            ("processes", self.pids), ("mounts", self.mounts), ("links", self.links),
            ("namespaces", self.namespaces), ("cgroups", self.cgroups)) if items]
        return "; ".join(parts) or "nothing"


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def processes_mentioning(marker: str) -> list[int]:
    """Pids whose command line contains ``marker`` (the node's base directory: containerd, kubelet, shims)."""
    me = os.getpid()
    return [int(p.name) for p in Path("/proc").iterdir()
            if p.name.isdigit() and int(p.name) != me and marker in _cmdline(int(p.name))]


def hierarchies() -> list[Path]:
    """The cgroup hierarchies' mount points: ``/sys/fs/cgroup`` itself when unified (v2), else each v1
    controller's directory under it (this machine: cpu, memory, pids, ..., name=systemd)."""
    if not CGROUP_FS.is_dir():
        return []
    if (CGROUP_FS / "cgroup.controllers").exists():
        return [CGROUP_FS]
    return [h for h in CGROUP_FS.iterdir()
            if h.is_dir() and not h.is_symlink() and (h / "cgroup.procs").exists()]


def cgroup_dirs(cgroup_root: str) -> list[Path]:
    """Every cgroup directory under ``cgroup_root`` in every mounted hierarchy, deepest first."""
    found: list[Path] = []
    rel = cgroup_root.strip("/")
    for hierarchy in hierarchies():
        top = hierarchy / rel
        if top.is_dir() and not top.is_symlink():
            found += [d for d in top.rglob("*") if d.is_dir()] + [top]
    return sorted(set(found), key=lambda d: len(d.parts), reverse=True)


def make_cgroup_root(cgroup_root: str) -> None:
    """Create ``cgroup_root`` in every hierarchy (the kubelet refuses a root missing from one)."""
    for hierarchy in hierarchies():
        (hierarchy / cgroup_root.strip("/")).mkdir(exist_ok=True)


def cgroup_pids(cgroup_root: str) -> list[int]:
    """Pids in any cgroup under ``cgroup_root`` (container and sandbox processes)."""
    pids: set[int] = set()
    for directory in cgroup_dirs(cgroup_root):
        with contextlib.suppress(OSError):
            pids.update(int(x) for x in (directory / "cgroup.procs").read_text().split())
    return sorted(pids)


def mounts_under(base: Path) -> list[str]:
    """Mount points at or below ``base`` (from /proc/self/mountinfo), deepest first."""
    prefix = str(base).rstrip("/")
    points: list[str] = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            point = line.split()[4].replace("\\040", " ")
            if point == prefix or point.startswith(prefix + "/"):
                points.append(point)
    return sorted(set(points), key=lambda p: p.count("/"), reverse=True)


def bridge_links(bridge: str) -> list[str]:
    """The bridge and every interface enslaved to it (the pods' host-side veths)."""
    top = Path("/sys/class/net") / bridge
    if not top.exists():
        return []
    ports = sorted(p.name for p in (top / "brif").iterdir()) if (top / "brif").is_dir() else []
    return [bridge, *ports]


def namespaces_under(netns_dir: Path) -> list[str]:
    """Network-namespace files containerd keeps under its state directory."""
    return sorted(str(p) for p in netns_dir.iterdir()) if netns_dir.is_dir() else []


def leftovers(base: Path, bridge: str, cgroup_root: str, netns_dir: Path) -> Leftovers:
    """Everything of one node still on the machine."""
    pids = sorted(set(processes_mentioning(str(base) + "/")) | set(cgroup_pids(cgroup_root)))
    return Leftovers(tuple(pids), tuple(mounts_under(base)), tuple(bridge_links(bridge)),
                     tuple(namespaces_under(netns_dir)), tuple(str(d) for d in cgroup_dirs(cgroup_root)))


def _kill(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(Path(f"/proc/{pid}").exists() and _alive(pid) for pid in pids):
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _umount(point: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.umount2(point.encode(), _MNT_DETACH)


def remove_all(base: Path, bridge: str, cgroup_root: str, netns_dir: Path) -> Leftovers:
    """Kill, unmount, delete links and cgroups, remove ``base``; returns what could not be removed."""
    for _ in range(3):  # a killed shim can leave a child that a second pass catches
        _kill(sorted(set(cgroup_pids(cgroup_root)) | set(processes_mentioning(str(base) + "/"))))
    for point in mounts_under(base):
        _umount(point)
    for link in reversed(bridge_links(bridge)):
        subprocess.run(["ip", "link", "delete", link], capture_output=True, check=False)
    for directory in cgroup_dirs(cgroup_root):
        with contextlib.suppress(OSError):
            directory.rmdir()
    if not mounts_under(base):
        shutil.rmtree(base, ignore_errors=True)
        with contextlib.suppress(OSError):  # the cluster's directory, once its last node is gone
            base.parent.rmdir()
    return leftovers(base, bridge, cgroup_root, netns_dir)
