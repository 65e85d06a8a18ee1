"""Migration at the runtime level: runc checkpoints a masked, counting process on one "node", another restores it.

Two nodes are two runc roots with their own bundle directories on this machine. The container runs
``hwcap-exec --hwcap MASK -- /counter MASK /count.log`` from a minimal rootfs (two static binaries). The
counter applies the mask to its own saved vector with PR_SET_MM_MAP (on this kernel, without the inheritance
series, hwcap-exec's vector does not survive its exec: docs/kernel.md#inherit-hwcap), keeps a random token
and a count in memory only, and appends ``token count AT_HWCAP`` to a log in its rootfs.

``runc checkpoint --criu <pinned CRIU 4.1.1>`` → the bundle (rootfs with its log) and the image directory go to
node B → ``runc restore`` there: the same token with the next count (a restore, not a restart), and the
AT_HWCAP the restored process reads from /proc/self/auxv is still the masked word.

Root container, on purpose: a container running as uid 65534 cannot be dumped here. CRIU reads each task's
rlimits with prlimit(), which the kernel allows on another uid's process only with CAP_SYS_RESOURCE, and the
root of these machines runs without it (bit 24 is clear in its CapBnd); the dump fails with "Can't get
rlimit 0: Operation not permitted" (docs/migration.md#uid).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hwcap_dev.devcluster import criu
from hwcap_dev.shim import shim_path
from hwcap_operator.auxv import parse_auxv

pytestmark = [pytest.mark.needs_root, pytest.mark.needs_binaries]

HERE = Path(__file__).parent


@dataclass(frozen=True)
class Node:
    """One runtime "node": its own runc state root and its own bundle directory."""

    name: str
    runc_root: Path
    bundle: Path

    def runc(self, *args: str, criu_bin: Path | None = None) -> subprocess.CompletedProcess[str]:
        cmd = ["runc", "--root", str(self.runc_root)]
        if criu_bin is not None:
            cmd += ["--criu", str(criu_bin)]
        return subprocess.run([*cmd, *args], capture_output=True, text=True, check=False, timeout=120)

    def pid(self, container: str) -> int:
        state = self.runc("state", container)
        assert state.returncode == 0, state.stderr
        return int(json.loads(state.stdout)["pid"])


def kernel_hwcap() -> int:
    """The kernel's AT_HWCAP for an unmasked process (this test's own)."""
    return parse_auxv(Path("/proc/self/auxv").read_bytes()).hwcap[0]


def log_lines(bundle: Path) -> list[tuple[str, int, int]]:
    text = (bundle / "rootfs" / "count.log").read_text() if (bundle / "rootfs" / "count.log").exists() else ""
    rows = [line.split() for line in text.splitlines() if line.strip()]
    return [(token, int(count), int(hwcap, 16)) for token, count, hwcap in rows]


def wait_for(predicate: object, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(predicate) and predicate():
            return
        time.sleep(0.1)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")


def detached(cmd: list[str], cwd: Path) -> subprocess.Popen[bytes]:
    """runc with pipes for the container's stdio, as containerd gives fifos: CRIU cannot dump an fd on a host
    file outside the container (the dump fails with "Can't lookup mount=... for fd=1")."""
    return subprocess.Popen(cmd, cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.fixture(scope="module")
def criu_bin() -> Path:
    if os.geteuid() != 0:
        pytest.fail("runc checkpoint/restore needs root (run the needs_root tests as root)")
    if shutil.which("runc") is None:
        pytest.fail("runc is not installed (tools/system-packages.txt; make system-packages)")
    install = criu.ensure_criu()
    assert install.check_ok, f"criu check failed on this kernel:\n{install.check_output}"
    return install.criu


@pytest.fixture
def counter(tmp_path: Path) -> Path:
    out = tmp_path / "counter"
    subprocess.run(["musl-gcc", "-static", "-O2", "-Wall", "-Wextra", "-Werror",
                    f"-I{HERE.parent.parent / 'src' / 'shim'}", "-o", str(out), str(HERE / "migration" / "counter.c")],
                   check=True, capture_output=True, text=True)
    return out


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[tuple[Node, Node]]:
    made = (Node("node-a", tmp_path / "a" / "runc", tmp_path / "a" / "bundle"),
            Node("node-b", tmp_path / "b" / "runc", tmp_path / "b" / "bundle"))
    yield made
    for node in made:
        listed = node.runc("list", "--format", "json")
        for entry in json.loads(listed.stdout or "null") or []:
            node.runc("delete", "--force", entry["id"])


def make_bundle(node: Node, counter: Path, mask: int) -> None:
    rootfs = node.bundle / "rootfs"
    rootfs.mkdir(parents=True)
    shutil.copy2(shim_path(), rootfs / "hwcap-exec")
    shutil.copy2(counter, rootfs / "counter")
    subprocess.run(["runc", "spec"], cwd=node.bundle, check=True)
    spec = json.loads((node.bundle / "config.json").read_text())
    spec["process"]["terminal"] = False
    spec["process"]["args"] = ["/hwcap-exec", "--hwcap", f"{mask:x}", "--", "/counter", f"{mask:x}", "/count.log"]
    spec["root"]["readonly"] = False
    (node.bundle / "config.json").write_text(json.dumps(spec))


def test_checkpoint_on_one_node_restore_on_another_keeps_count_and_mask(
    criu_bin: Path, counter: Path, nodes: tuple[Node, Node], tmp_path: Path,
) -> None:
    source, target = nodes
    kernel = kernel_hwcap()
    mask = kernel & ~(1 << (kernel.bit_length() - 1))  # the kernel's word minus its highest feature
    make_bundle(source, counter, mask)
    started = detached(["runc", "--root", str(source.runc_root), "run", "--detach", "counter-a"], source.bundle)
    assert started.wait(timeout=60) == 0, started.stderr.read() if started.stderr else ""
    wait_for(lambda: len(log_lines(source.bundle)) >= 3, "three counts on the source node")
    before = log_lines(source.bundle)
    token = before[0][0]
    assert {hw for _, _, hw in before} == {kernel & mask}  # masked on the source already

    images = tmp_path / "checkpoint"
    dumped = source.runc("checkpoint", "--image-path", str(images), "--work-path", str(tmp_path / "dump-work"),
                         "counter-a", criu_bin=criu_bin)
    assert dumped.returncode == 0, f"{dumped.stderr}\n{(tmp_path / 'dump-work' / 'dump.log').read_text()[-3000:]}"
    assert source.runc("state", "counter-a").returncode != 0  # runc's default: the source is gone after the dump
    at_checkpoint = log_lines(source.bundle)
    last_count = at_checkpoint[-1][1]

    shutil.copytree(source.bundle, target.bundle, symlinks=True)  # the rootfs travels (containerd: rootfs diff)
    restored = detached(["runc", "--root", str(target.runc_root), "--criu", str(criu_bin), "restore", "--detach",
                         "--image-path", str(images), "--work-path", str(tmp_path / "restore-work"),
                         "--bundle", str(target.bundle), "counter-b"], target.bundle)
    rc = restored.wait(timeout=120)
    restore_log = tmp_path / "restore-work" / "restore.log"
    assert rc == 0, restore_log.read_text()[-3000:] if restore_log.exists() else "no restore.log"

    wait_for(lambda: len(log_lines(target.bundle)) >= len(at_checkpoint) + 2, "two counts on the target node")
    after = log_lines(target.bundle)[len(at_checkpoint):]
    assert after[0] == (token, last_count + 1, kernel & mask)  # same token, next count: a restore, not a restart
    assert [c for _, c, _ in after] == list(range(last_count + 1, last_count + 1 + len(after)))
    pid = target.pid("counter-b")
    seen_from_outside = parse_auxv(Path(f"/proc/{pid}/auxv").read_bytes()).hwcap[0]
    assert seen_from_outside == kernel & mask != kernel
