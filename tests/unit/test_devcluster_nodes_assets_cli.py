"""Fake-node objects from real dumps, envtest-style binary lookup, and the devcluster CLI's bad paths."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from tests.support.profiles import PROFILES_DIR

from hwcap_dev.devcluster import assets, build, cli
from hwcap_dev.devcluster import simulated_nodes as nodes
from hwcap_operator.keys import NFD_CPUID_LABEL_PREFIX


def _features_line(name: str) -> list[str]:
    for line in (PROFILES_DIR / f"{name}.txt").read_text().splitlines():
        if line.startswith("Features"):
            return line.split(":", 1)[1].split()
    raise AssertionError(name)


def test_node_from_a_real_dump_carries_nfd_labels_for_exactly_its_features() -> None:
    name = "arm64-aws-graviton3-neoverse-v1"
    prof = nodes.load_profile(PROFILES_DIR / f"{name}.txt")
    assert prof.arch == "arm64"
    manifest = nodes.node_manifest("n1", prof, labels={"team": "a"})
    labels = manifest["metadata"]["labels"]
    cpuid = {k.removeprefix(NFD_CPUID_LABEL_PREFIX) for k in labels if k.startswith(NFD_CPUID_LABEL_PREFIX)}
    assert cpuid == {t.upper() for t in _features_line(name)}
    assert labels["kubernetes.io/arch"] == "arm64" and labels["team"] == "a"


def test_node_feature_lists_every_flag_unfiltered() -> None:
    name = "arm64-aws-graviton2-neoverse-n1"
    prof = nodes.load_profile(PROFILES_DIR / f"{name}.txt")
    nf = nodes.node_feature_manifest("n2", prof, "nfd")
    elements = nf["spec"]["features"]["flags"]["cpu.cpuid"]["elements"]
    assert sorted(elements) == sorted(t.upper() for t in _features_line(name))
    assert nf["metadata"]["labels"][nodes.NFD_NODE_NAME_LABEL] == "n2"


def test_x86_labels_follow_nfd_filtering_but_node_feature_does_not() -> None:
    name = "x86_64-amd-zen3-milan-epyc7763-azure-vm"
    flags = next(ln for ln in (PROFILES_DIR / f"{name}.txt").read_text().splitlines() if ln.startswith("Flags:"))
    assert {"avx2", "sse4_2", "cmov"} <= set(flags.split(":", 1)[1].split())
    prof = nodes.load_profile(PROFILES_DIR / f"{name}.txt")
    assert prof.arch == "amd64"
    labels = nodes.node_manifest("x1", prof)["metadata"]["labels"]
    elements = nodes.node_feature_manifest("x1", prof, "nfd")["spec"]["features"]["flags"]["cpu.cpuid"]["elements"]
    assert labels[NFD_CPUID_LABEL_PREFIX + "AVX2"] == "true"
    # NFD's default label denylist (BMI1, CMOV, SSE42 (its spelling of sse4_2), ...) hides these labels;
    # the NodeFeature object lists them all the same
    for denied in ("CMOV", "SSE42"):
        assert NFD_CPUID_LABEL_PREFIX + denied not in labels
        assert denied in elements


def test_ready_status_is_schedulable() -> None:
    status = nodes.ready_status()["status"]
    assert {c["type"]: c["status"] for c in status["conditions"]}["Ready"] == "True"
    assert status["allocatable"]["pods"] == "110"


def test_a_dump_without_a_feature_line_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "arm64-broken.txt"
    bad.write_text("# source: nowhere\nprocessor : 0\n")
    with pytest.raises(nodes.ProfileError, match=r"arm64-broken\.txt"):
        nodes.load_profile(bad)
    with pytest.raises(nodes.ProfileError, match="nope"):
        nodes.profile_paths(PROFILES_DIR, ["nope"])


def _fake_tool(path: Path) -> Path:
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_kubebuilder_assets_and_test_asset_variables_win(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in assets.NAMES:
        _fake_tool(tmp_path / name)
    special = _fake_tool(tmp_path / "my-etcd")
    monkeypatch.setenv("KUBEBUILDER_ASSETS", str(tmp_path))
    monkeypatch.setenv("TEST_ASSET_ETCD", str(special))
    monkeypatch.setenv("HWCAP_OPERATOR_CACHE", str(tmp_path / "empty-cache"))  # a build would show up here
    found = assets.resolve_binaries(allow_build=False)
    assert found.etcd == special.resolve()
    assert found.kube_apiserver == (tmp_path / "kube-apiserver").resolve()
    assert found.path("kube-scheduler") == (tmp_path / "kube-scheduler").resolve()
    assert not (tmp_path / "empty-cache").exists()


def test_a_bad_test_asset_variable_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_ASSET_KUBE_APISERVER", str(tmp_path / "missing"))
    with pytest.raises(assets.AssetError, match="TEST_ASSET_KUBE_APISERVER"):
        assets.resolve_binaries(allow_build=False)


def test_missing_binaries_without_build_permission_say_how_to_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBEBUILDER_ASSETS", raising=False)
    monkeypatch.setenv("HWCAP_OPERATOR_CACHE", str(tmp_path))
    assert not build.is_built()
    with pytest.raises(assets.AssetError, match="hwcap-dev cluster build"):
        assets.resolve_binaries(allow_build=False)


def test_cli_usage_errors_exit_2_and_no_cluster_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["frobnicate"]) == 2
    assert cli.main(["--state-dir", str(tmp_path), "kubeconfig"]) == 1
    assert "no control plane running" in capsys.readouterr().err
    assert cli.main(["--state-dir", str(tmp_path), "down"]) == 0
