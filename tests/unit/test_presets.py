"""Presets against the real dumps (whose feature words are read independently with str.split)."""

from __future__ import annotations

import importlib
import itertools
import json

import pytest
from tests.support.profiles import raw_feature_words

from hwcap_operator.features.data_x86_models import QEMU_VERSION, X86_MODELS
from hwcap_operator.mask import FeatureMask
from hwcap_operator.presets import UnknownPresetError, preset, preset_names


def dump(name: str) -> FeatureMask:
    arch = "amd64" if name.startswith("x86_64") else "arm64"
    return FeatureMask.from_names(arch, raw_feature_words(name))


@pytest.mark.parametrize(
    ("preset_name", "dump_name"),
    [("neoverse-n1", "arm64-aws-graviton2-neoverse-n1.txt"), ("neoverse-n1", "arm64-ampere-altra-neoverse-n1.txt"),
     ("neoverse-v1", "arm64-aws-graviton3-neoverse-v1.txt"), ("neoverse-v2", "arm64-aws-graviton4-neoverse-v2.txt"),
     ("neoverse-n2", "arm64-neoverse-n2-archspec.txt"), ("neoverse-n2", "arm64-neoverse-n2-github-runner.txt"),
     ("armv8.0", "arm64-cortex-a53-raspberrypi3b.txt"), ("armv8.2", "arm64-aws-graviton2-neoverse-n1.txt"),
     ("armv8.4", "arm64-aws-graviton3-neoverse-v1.txt"), ("armv9.0", "arm64-aws-graviton4-neoverse-v2.txt"),
     ("x86-64-v3", "x86_64-amd-zen1-naples-epyc7301.txt"), ("x86-64-v3", "x86_64-amd-zen2-rome-epyc7742.txt"),
     ("x86-64-v4", "x86_64-intel-skylake-sp-gold6132.txt"), ("x86-64-v4", "x86_64-amd-zen4-genoa-epyc9654.txt"),
     ("x86-64-v4", "x86_64-intel-cascadelake-platinum8280-xen-guest.txt")],
)
def test_cpu_has_its_preset(preset_name: str, dump_name: str) -> None:
    assert preset(preset_name) <= dump(dump_name), (preset(preset_name) - dump(dump_name)).names()


@pytest.mark.parametrize(
    ("preset_name", "dump_name", "missing"),
    [("neoverse-n1", "arm64-aws-graviton1-cortex-a72.txt", {"atomics", "asimddp"}),
     ("armv8.1", "arm64-cortex-a53-raspberrypi3b.txt", {"atomics", "asimdrdm"}),
     # same silicon, older kernel: PAC and the v8.6-era bits are not reported
     ("neoverse-v1", "arm64-aws-graviton3-neoverse-v1-older-kernel.txt", {"i8mm", "dgh", "rng"}),
     ("armv8.4", "arm64-aws-graviton3-neoverse-v1-older-kernel.txt", {"paca", "pacg"}),
     ("x86-64-v4", "x86_64-amd-zen3-milan-epyc7763-azure-vm.txt", {"avx512f"}),
     ("x86-64-v4", "x86_64-amd-zen2-rome-epyc7742.txt", {"avx512vl"})],
)
def test_cpu_lacks_a_higher_preset(preset_name: str, dump_name: str, missing: set[str]) -> None:
    gap = set((preset(preset_name) - dump(dump_name)).names())
    assert missing <= gap


def test_levels_are_cumulative_and_arches_right() -> None:
    assert preset("x86-64-v1") < preset("x86-64-v2") < preset("x86-64-v3") < preset("x86-64-v4")
    chain = ["armv8.0", "armv8.1", "armv8.2", "armv8.3", "armv8.4", "armv8.5", "armv8.6", "armv8.7",
             "armv8.8", "armv8.9"]
    for lo, hi in itertools.pairwise(chain):
        assert preset(lo) < preset(hi)
    assert preset("armv8.5") < preset("armv9.0") and "sve2" in preset("armv9.0")
    assert preset("neoverse-n1") < preset("neoverse-v1")
    assert set(preset_names("arm64")) | set(preset_names("amd64")) == set(preset_names())
    assert preset("X86-64-V2").arch == "amd64"


def test_x86_v1_uses_at_hwcap_bits_and_v3_cpuid() -> None:
    v1 = preset("x86-64-v1")
    assert v1.hwcap[0] != 0 and v1.cpuid == frozenset({"syscall", "lm", "nx"})
    assert {"avx2", "abm", "xsave"} <= preset("x86-64-v3").cpuid


def test_levels_keep_the_x86_64_hardware_baseline() -> None:
    """Every CPU of a level has more than the psABI list: a preset must not hide AES-NI, TSC, NX, ..."""
    assert {"tsc", "pae", "nx", "cx8", "apic"} <= set(preset("x86-64-v1").names())
    assert "pni" not in preset("x86-64-v1")  # the first K8s had no SSE3: v2's feature stays v2's
    v3 = set(preset("x86-64-v3").names())
    assert {"aes", "pclmulqdq", "rdrand"} <= v3
    assert not {"sha_ni", "rdseed", "avx512f", "fsgsbase"} & v3  # Haswell has none; fsgsbase is the kernel's


@pytest.mark.parametrize(
    ("model", "dump_names"),
    [("skylake-server", ["x86_64-intel-skylake-sp-gold6132.txt", "x86_64-intel-skylake-sp-platinum8180.txt"]),
     ("cascadelake-server", ["x86_64-intel-cascadelake-platinum8260m.txt"]),
     ("icelake-server", ["x86_64-intel-icelake-sp-platinum8370c-azure-vm.txt"]),
     ("epyc", ["x86_64-amd-zen1-naples-epyc7301.txt"]), ("epyc-rome", ["x86_64-amd-zen2-rome-epyc7742.txt"]),
     ("epyc-milan", ["x86_64-amd-zen3-milan-epyc7763-azure-vm.txt"]),
     ("x86-64-v4", ["x86_64-amd-zen4-genoa-epyc9654.txt", "x86_64-intel-icelake-sp-platinum8370c-azure-vm.txt"])],
)
def test_qemu_cpu_model_is_what_that_generation_reports(model: str, dump_names: list[str]) -> None:
    for name in dump_names:
        assert preset(model) <= dump(name), (name, (preset(model) - dump(name)).names())


def test_qemu_models_table_matches_its_extraction() -> None:
    """The product table is derived from the committed QEMU extraction (nobody edited either by hand)."""
    extract = importlib.import_module("tests.data.qemu_cpu_models.extract")
    data = json.loads(extract.JSON.read_text())
    assert data["qemu"] == QEMU_VERSION
    assert {m: extract.canonical(p) for m, p in data["models"].items()} == {m: list(n) for m, n in X86_MODELS.items()}
    assert "aes" in X86_MODELS["Haswell-v4"] and "sha_ni" in X86_MODELS["EPYC-v3"]


def test_unknown_preset_lists_known_ones() -> None:
    with pytest.raises(UnknownPresetError, match="x86-64-v3"):
        preset("x86-64-v5")
