"""A CRI-O node's configuration (issue 17): what the trial learnt, kept where a regression would show."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
import yaml

from hwcap_dev.devcluster import build, crio
from hwcap_dev.devcluster.node_config import NodeLayout, kubelet_config

LAYOUT = NodeLayout("real-0", Path("/run/hwcap-dev/abcd1234/n0"), "hwcabcd12-0", "10.213.0.0/24",
                    "/hwcap-dev-abcd1234-n0", 41001, 41002)
CONFIG = crio.crio_config(LAYOUT, runc=Path("/usr/sbin/runc"), conmon=Path("/usr/bin/conmon"),
                          pinns=Path("/cache/pinns"), cni_bin_dir=Path("/usr/lib/cni"), path_env="/criu/bin:/usr/bin",
                          sandbox_image="127.0.0.1:5000/pause:1", registry_host="127.0.0.1:5000")  # fmt: skip


def test_crio_restores_with_criu_runs_runc_on_cgroupfs_and_keeps_everything_under_the_node() -> None:
    doc = tomllib.loads(CONFIG)
    runtime = doc["crio"]["runtime"]
    assert runtime["enable_criu_support"] is True and runtime["cgroup_manager"] == "cgroupfs"
    runc = runtime["runtimes"]["runc"]
    assert runc["runtime_path"] == "/usr/sbin/runc" and runc["monitor_path"] == "/usr/bin/conmon"
    assert runc["monitor_env"] == ["PATH=/criu/bin:/usr/bin"]  # conmon runs `runc restore`: the pinned CRIU first
    for path in (doc["crio"]["root"], doc["crio"]["runroot"], doc["crio"]["api"]["listen"],
                 runtime["namespaces_dir"], runc["runtime_root"], doc["crio"]["network"]["network_dir"],
                 doc["crio"]["image"]["namespaced_auth_dir"], doc["crio"]["image"]["signature_policy_dir"]):
        assert path.startswith(str(LAYOUT.base) + "/")
    assert doc["crio"]["api"]["stream_address"] == "127.0.0.1"


def test_no_signature_policy_setting_since_crio_refuses_every_restore_under_one() -> None:
    assert "signature_policy" not in tomllib.loads(CONFIG)["crio"]["image"]
    env = crio.crio_env(LAYOUT)
    assert env["HOME"] == str(crio.crio_home(LAYOUT))  # the policy is found as $HOME/.config/containers/policy.json


def test_registries_conf_makes_the_loopback_registry_plain_http() -> None:
    doc = tomllib.loads(crio.registries_conf("127.0.0.1:5000"))
    assert doc["registry"] == [{"location": "127.0.0.1:5000", "insecure": True}]


def test_the_kubelet_of_a_crio_node_talks_to_crio() -> None:
    doc = yaml.safe_load(kubelet_config(LAYOUT, client_ca=Path("/ca"), serving_cert=Path("/c"), serving_key=Path("/k"),
                                        runtime_socket=LAYOUT.crio_socket))  # fmt: skip
    assert doc["containerRuntimeEndpoint"] == f"unix://{LAYOUT.base}/crio.sock"


def test_the_hugetlb_patch_applies_once_and_a_release_without_the_spot_fails_the_build(tmp_path: Path) -> None:
    relative, find, replace = crio.HUGETLB_PATCH
    target = tmp_path / relative
    target.parent.mkdir(parents=True)
    target.write_text(f"func x() {{\n{find}}}\n")
    crio.apply_patch(tmp_path, relative, find, replace)
    assert "cgroupHasHugetlb = false" in target.read_text()
    target.write_text("func x() {}\n")  # a release that changed the spot
    with pytest.raises(build.BuildError, match="does not apply"):
        crio.apply_patch(tmp_path, relative, find, replace)
