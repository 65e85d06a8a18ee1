"""``hwcap-dev cluster up --real-nodes 1`` then ``down``, as a user runs them: a pod really ran in between,
and afterwards nothing of the node is left on the machine: no process, mount, network link or namespace."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hwcap_dev.devcluster.node_cleanup import bridge_links, cgroup_dirs, mounts_under, processes_mentioning
from hwcap_dev.devcluster.realnode import node_layout

pytestmark = pytest.mark.needs_root


@pytest.fixture(autouse=True, scope="module")
def _root() -> None:
    """Real nodes start containerd, runc and network namespaces: root only (CI runs as root)."""
    if os.geteuid() != 0:
        pytest.fail("the real-node tests run a kubelet, containerd and runc: run them as root (CI does)")


def _cluster(state: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hwcap_dev.devcluster", "--state-dir", str(state), *args],
                          capture_output=True, text=True, timeout=timeout, check=False)


def _netns_files() -> set[str]:
    return {line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()
            if line.split()[8] == "nsfs"}


def test_up_with_a_real_node_runs_a_pod_and_down_leaves_nothing(tmp_path: Path) -> None:
    state = tmp_path / "cluster"
    links_before, netns_before = set(os.listdir("/sys/class/net")), _netns_files()
    up = _cluster(state, "up", "--real-nodes", "1")
    layout = node_layout(state, "real-0", 0)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert "real nodes Ready: real-0" in up.stdout
        assert "real node real-0: kubelet 127.0.0.1:" in _cluster(state, "status").stdout
        kubeconfig = state / "kubeconfig"
        images = json.loads((state / "realnodes.json").read_text())["images"]
        kubectl = [str(Path(sys.executable).parent / "kubectl"), f"--kubeconfig={kubeconfig}"]
        subprocess.run([*kubectl, "run", "hello", f"--image={images['sample']}", "--restart=Never", "--command",
                        "--", "/bin/echo", "hello from a real node"], check=True, capture_output=True)
        deadline = time.monotonic() + 120
        phase = ""
        while time.monotonic() < deadline and phase != "Succeeded":
            phase = subprocess.run([*kubectl, "get", "pod", "hello", "-o", "jsonpath={.status.phase}"],
                                   capture_output=True, text=True).stdout
            time.sleep(1)
        logs = subprocess.run([*kubectl, "logs", "hello"], capture_output=True, text=True).stdout
        assert logs.strip() == "hello from a real node", (phase, logs)
        assert processes_mentioning(str(layout.base) + "/"), "containerd and kubelet run from the node's directory"
        assert mounts_under(layout.base), "the pod's sandbox mounted something"
        assert bridge_links(layout.bridge), "the node's CNI bridge exists"
    finally:
        down = _cluster(state, "down", timeout=120)
    assert down.returncode == 0, down.stdout + down.stderr
    assert processes_mentioning(str(layout.base) + "/") == []
    assert processes_mentioning(str(state) + "/") == []
    assert mounts_under(layout.base) == []
    assert bridge_links(layout.bridge) == [] and set(os.listdir("/sys/class/net")) <= links_before
    assert _netns_files() <= netns_before
    assert cgroup_dirs(layout.cgroup_root) == []
    assert not layout.base.exists()
