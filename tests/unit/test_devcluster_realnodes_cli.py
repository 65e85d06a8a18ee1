"""``hwcap-dev cluster up --real-nodes`` refuses what cannot work, and ``down`` cleans up after a crashed run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hwcap_dev.devcluster.cli import main
from hwcap_dev.devcluster.realnodes import STATE_FILE, stop_recorded_nodes


def test_negative_node_count_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--state-dir", str(tmp_path), "up", "--real-nodes", "-1"]) == 2
    assert "--real-nodes needs N >= 0" in capsys.readouterr().err
    assert not (tmp_path / "state.json").exists()  # nothing was started


def test_down_after_a_crash_removes_the_recorded_node_directory(tmp_path: Path) -> None:
    base = tmp_path / "run" / "n0"
    (base / "kubelet" / "pods").mkdir(parents=True)
    record = {"registry": None, "images": None, "nodes": [{
        "name": "real-0", "base": str(base), "bridge": "hwcnotthere-0", "cgroup_root": "/hwcap-dev-test-absent",
        "kubelet_port": 1, "processes": [{"name": "real-0/kubelet", "pid": 2**22 - 1, "program": "/bin/false"}]}]}
    (tmp_path / STATE_FILE).write_text(json.dumps(record))
    said = stop_recorded_nodes(tmp_path)
    assert said == []  # the pid is long gone and nothing is left to report
    assert not base.exists() and not (tmp_path / STATE_FILE).exists()
    assert stop_recorded_nodes(tmp_path) == []  # idempotent


def test_an_unknown_node_runtime_is_a_usage_error(tmp_path: Path) -> None:
    assert main(["--state-dir", str(tmp_path), "up", "--real-nodes", "1", "--runtime", "podman"]) == 2
    assert not (tmp_path / "state.json").exists()  # nothing was started

