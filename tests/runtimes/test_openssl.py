"""OpenSSL under the webhook's OPENSSL_ia32cap: the capability vectors it reports using."""

from __future__ import annotations

import pytest

from hwcap_operator import features
from hwcap_operator.mask import FeatureMask
from hwcap_operator.presets import preset
from tests.runtimes.conftest import EnvFor, hide, machine_has
from tests.runtimes.probes import openssl_ia32cap

SPELLED = [f for f in features.features("amd64") if f.openssl]
#: Not comparable with /proc/cpuinfo: OpenSSL rewrites LV0 bit 28 (HTT: kept only for Intel CPUs with shared
#: caches); /proc/cpuinfo never lists osxsave (OpenSSL reads the CPUID bit).
REWRITTEN = {"ht", "osxsave"}


def _bit(vectors: tuple[int, int], feature: features.Feature) -> bool:
    vector, bit = feature.openssl or (0, 0)
    return bool(vectors[vector] >> bit & 1)


@pytest.mark.parametrize("feature", [f for f in SPELLED if f.name not in REWRITTEN], ids=lambda f: f.name)
def test_openssl_bit_is_the_feature(feature: features.Feature) -> None:
    """OpenSSL's own vector has the catalog's bit set exactly when /proc/cpuinfo lists the feature."""
    assert _bit(openssl_ia32cap({}), feature) == machine_has(feature), feature.openssl


@pytest.mark.parametrize("feature", [f for f in SPELLED if machine_has(f)], ids=lambda f: f.name)
def test_each_openssl_bit_is_cleared(feature: features.Feature, machine: FeatureMask, env_for: EnvFor) -> None:
    env = env_for(hide(machine, SPELLED))
    assert not _bit(openssl_ia32cap(env), feature), f"OPENSSL_ia32cap={env['OPENSSL_ia32cap']}"


def test_demo_domain_x86_64_v3_keeps_aes_ni_for_openssl(machine: FeatureMask, env_for: EnvFor) -> None:
    assert "avx512f" in machine, "this suite needs an AVX-512 machine to hide something from OpenSSL"
    env = env_for(preset("x86-64-v3") & machine)
    vectors = openssl_ia32cap(env)
    assert not _bit(vectors, features.lookup("amd64", "avx512f"))
    assert _bit(vectors, features.lookup("amd64", "avx2"))
    for name in ("aes", "pclmulqdq", "rdrand"):  # every v3 CPU has them; Haswell has no RDSEED, SHA-NI
        assert _bit(vectors, features.lookup("amd64", name)), name
