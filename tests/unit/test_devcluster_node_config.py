"""A real node's configuration files: what issue 16's trial learnt, kept where a regression would show."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import yaml

from hwcap_dev.devcluster.node_config import (
    NodeLayout,
    cni_conflist,
    containerd_config,
    kubelet_config,
    registry_hosts_toml,
)
from hwcap_dev.devcluster.realnode import node_layout

LAYOUT = NodeLayout("real-0", Path("/run/hwcap-dev/abcd1234/n0"), "hwcabcd12-0", "10.213.0.0/24",
                    "/hwcap-dev-abcd1234-n0", 41001, 41002)


def test_cni_bridge_routes_nowhere() -> None:
    (plugin,) = json.loads(cni_conflist(LAYOUT))["plugins"]
    assert plugin["type"] == "bridge" and plugin["bridge"] == LAYOUT.bridge
    assert plugin["isGateway"] is False and plugin["ipMasq"] is False  # no host address, no NAT
    assert plugin["ipam"]["ranges"] == [[{"subnet": "10.213.0.0/24"}]]


def test_containerd_uses_runc_cgroupfs_and_keeps_everything_under_the_node() -> None:
    doc = tomllib.loads(containerd_config(LAYOUT, shim_dir=Path("/bin"), runc=Path("/usr/sbin/runc"),
                                          cni_bin_dir=Path("/usr/lib/cni"), sandbox_image="127.0.0.1:5000/pause:1"))
    runtime = doc["plugins"]["io.containerd.cri.v1.runtime"]
    assert runtime["restrict_oom_score_adj"] is True
    assert runtime["netns_mounts_under_state_dir"] is True
    runc = runtime["containerd"]["runtimes"]["runc"]["options"]
    assert runc == {"BinaryName": "/usr/sbin/runc", "SystemdCgroup": False}
    for path in (doc["root"], doc["state"], doc["grpc"]["address"], runtime["cni"]["conf_dir"]):
        assert path.startswith(str(LAYOUT.base) + "/")
    assert doc["plugins"]["io.containerd.grpc.v1.cri"]["stream_server_address"] == "127.0.0.1"
    assert doc["plugins"]["io.containerd.nri.v1.nri"]["disable"] is True
    assert len(doc["grpc"]["address"]) < 108  # unix socket path limit


def test_kubelet_listens_on_loopback_with_webhook_auth_and_its_own_cgroup_root() -> None:
    doc = yaml.safe_load(kubelet_config(LAYOUT, client_ca=Path("/ca"), serving_cert=Path("/c"),
                                        serving_key=Path("/k")))
    assert (doc["address"], doc["healthzBindAddress"], doc["readOnlyPort"]) == ("127.0.0.1", "127.0.0.1", 0)
    assert (doc["port"], doc["healthzPort"]) == (41001, 41002)
    assert doc["authentication"]["anonymous"]["enabled"] is False
    assert doc["authorization"]["mode"] == "Webhook"
    assert (doc["cgroupDriver"], doc["failCgroupV1"], doc["cgroupRoot"]) == ("cgroupfs", False, LAYOUT.cgroup_root)


def test_registry_hosts_speak_plain_http_to_the_loopback_registry() -> None:
    doc = tomllib.loads(registry_hosts_toml("127.0.0.1:5000"))
    assert doc["server"] == "http://127.0.0.1:5000"
    assert doc["host"]["http://127.0.0.1:5000"]["capabilities"] == ["pull", "resolve"]


def test_two_nodes_of_one_cluster_share_no_name_port_or_directory(tmp_path: Path) -> None:
    a, b = node_layout(tmp_path, "real-0", 0), node_layout(tmp_path, "real-1", 1)
    assert a.bridge != b.bridge and len(a.bridge) <= 15
    assert a.subnet != b.subnet and a.cgroup_root != b.cgroup_root and a.base != b.base
    assert len({a.kubelet_port, a.healthz_port, b.kubelet_port, b.healthz_port}) == 4
