"""glibc under the webhook's GLIBC_TUNABLES: what its own cpu_features and ld.so report."""

from __future__ import annotations

import pytest

from hwcap_operator import features
from hwcap_operator.mask import FeatureMask
from hwcap_operator.presets import preset
from tests.runtimes.conftest import EnvFor, hide, machine_has
from tests.runtimes.probes import glibc_diagnostics, glibc_features, glibc_hwcaps_subdirs

SPELLED = [f for f in features.features("amd64") if f.glibc]
VERIFIABLE = [f for f in SPELLED if machine_has(f)]


def test_glibc_sees_what_cpuinfo_shows_under_the_catalog_spelling() -> None:
    seen = glibc_features({})
    for f in VERIFIABLE:
        assert f.glibc in seen, f"{f.name}: glibc has no feature named {f.glibc!r}"
        assert seen[f.glibc] == (True, True), f"{f.name}: glibc {f.glibc} present/active = {seen[f.glibc]}"


@pytest.mark.parametrize("feature", VERIFIABLE, ids=lambda f: f.name)
def test_each_glibc_knob_switches_its_feature_off(feature: features.Feature, machine: FeatureMask,
                                                  env_for: EnvFor) -> None:  # fmt: skip
    env = env_for(hide(machine, SPELLED))
    seen = glibc_features(env)
    assert seen[feature.glibc or ""] == (True, False), f"{env['GLIBC_TUNABLES']}: {feature.glibc} still active"


def test_a_misspelt_knob_changes_nothing() -> None:
    """The probe tells a wrong spelling from a right one: glibc ignores names it does not know."""
    assert glibc_features({"GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX512_F"})["AVX512F"] == (True, True)
    assert glibc_features({"GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX512F"})["AVX512F"] == (True, False)


def test_demo_domain_x86_64_v3_marks_v4_libraries_unsupported(machine: FeatureMask, env_for: EnvFor) -> None:
    assert "avx512f" in machine, "this suite needs an AVX-512 machine to hide something from glibc"
    env = env_for(preset("x86-64-v3") & machine)
    assert glibc_hwcaps_subdirs({})["x86-64-v4"] is True
    subdirs = glibc_hwcaps_subdirs(env)
    assert subdirs == {"x86-64-v4": False, "x86-64-v3": True, "x86-64-v2": True}, env
    seen = glibc_features(env)
    assert seen["AVX512F"] == (True, False)
    assert seen["AVX2"] == (True, True)
    # ld.so's own diagnostics: the x86-64-v4 subdirectory (bit 0 of the active mask) is no longer searched.
    # (x86.cpu_features.isa_1 stays 0xf: glibc 2.36 computes it before the tunable applies.)
    before, after = glibc_diagnostics({}), glibc_diagnostics(env)
    assert int(before["dl_hwcaps_subdirs_active"], 16) == 0x7 and int(after["dl_hwcaps_subdirs_active"], 16) == 0x6
