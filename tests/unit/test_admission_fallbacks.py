"""Userspace fallbacks: GLIBC_TUNABLES / GODEBUG / OPENSSL_ia32cap merged with what a container already sets.

Expected strings are written from the runtimes' documented syntax (docs/kernel.md#userspace-fallbacks): e.g. the
OpenSSL man page's LV1 = CPUID.7.0 EBX with AVX2 at bit 5, so "disable AVX2 only" is ``:~0x20``.
"""

from __future__ import annotations

import pytest

from hwcap_operator import features
from hwcap_operator.admission.fallbacks import (
    FallbackMergeError,
    FallbackPlan,
    merge_glibc_tunables,
    merge_godebug,
    merge_openssl_ia32cap,
    plan_fallbacks,
)

AVX2_LV1 = 1 << 5  # OPENSSL_ia32cap LV1 bit 5 (man page: #64+5 AVX2)
AESNI_LV0 = 1 << 57  # LV0 bit 57 (#57 AES-NI)


# ------------------------------------------------------------------------------------------- glibc


def test_glibc_added_when_unset() -> None:
    assert merge_glibc_tunables(None, ["AVX2", "AVX512F"]) == "glibc.cpu.hwcaps=-AVX2,-AVX512F"


def test_glibc_other_tunables_kept_in_order() -> None:
    existing = "glibc.malloc.check=3:glibc.cpu.x86_shstk=on"
    assert merge_glibc_tunables(existing, ["AVX2"]) == existing + ":glibc.cpu.hwcaps=-AVX2"


def test_glibc_hwcaps_list_merged_and_mask_wins_over_an_enable() -> None:
    existing = "glibc.cpu.hwcaps=AVX2,-ERMS:glibc.malloc.check=3"
    assert merge_glibc_tunables(existing, ["AVX2", "AVX512F"]) == (
        "glibc.cpu.hwcaps=-ERMS,-AVX2,-AVX512F:glibc.malloc.check=3"
    )


def test_glibc_two_hwcaps_items_become_one() -> None:
    existing = "glibc.cpu.hwcaps=-ERMS:glibc.malloc.check=3:glibc.cpu.hwcaps=-FSRM"
    assert merge_glibc_tunables(existing, ["AVX2"]) == "glibc.cpu.hwcaps=-ERMS,-FSRM,-AVX2:glibc.malloc.check=3"


def test_glibc_nothing_to_disable_leaves_value_alone() -> None:
    assert merge_glibc_tunables("glibc.malloc.check=3", []) == "glibc.malloc.check=3"
    assert merge_glibc_tunables(None, []) is None


# ------------------------------------------------------------------------------------------- GODEBUG


def test_godebug_added_when_unset() -> None:
    assert merge_godebug(None, ["avx", "sse41"]) == "cpu.avx=off,cpu.sse41=off"  # x/sys/cpu's own example


def test_godebug_other_keys_kept_and_mask_wins_for_its_keys() -> None:
    assert merge_godebug("http2client=0,cpu.avx2=on,madvdontneed=1", ["avx2"]) == (
        "http2client=0,madvdontneed=1,cpu.avx2=off"
    )


# ------------------------------------------------------------------------------------------- OpenSSL


@pytest.mark.parametrize(
    ("existing", "clear", "expected"),
    [
        (None, {1: AVX2_LV1}, ":~0x20"),
        ("", {1: AVX2_LV1}, ":~0x20"),
        (":~0x8", {1: AVX2_LV1}, ":~0x28"),  # user already clears BMI1 (#64+3): masks are ORed
        (":0xffff", {1: AVX2_LV1}, ":0xffdf"),  # a plain value keeps its meaning minus our bits
        ("~0x200000000000000", {1: AVX2_LV1}, "~0x200000000000000:~0x20"),
        (None, {0: AESNI_LV0, 1: AVX2_LV1}, "~0x200000000000000:~0x20"),
        ("::~0x1", {1: AVX2_LV1}, ":~0x20:~0x1"),
        (":32", {1: AVX2_LV1}, ":0x0"),  # decimal, as C strtoull(…, 0) reads it
    ],
)
def test_openssl_vectors_merged(existing: str | None, clear: dict[int, int], expected: str) -> None:
    assert merge_openssl_ia32cap(existing, clear) == expected


@pytest.mark.parametrize("existing", ["zz", ":~0xnothex", "1:2:3:4:5:6", ":0x1ffffffffffffffff"])
def test_openssl_garbage_is_reported_with_the_token(existing: str) -> None:
    with pytest.raises(FallbackMergeError) as err:
        merge_openssl_ia32cap(existing, {1: AVX2_LV1})
    assert "OPENSSL_ia32cap" in str(err.value)
    assert existing in str(err.value)


def test_merging_twice_is_merging_once() -> None:
    plan = FallbackPlan(glibc_hwcaps=("AVX2",), godebug_cpu=("avx2",), openssl_clear={1: AVX2_LV1})
    for var, start in [("GLIBC_TUNABLES", "glibc.cpu.hwcaps=AVX2"), ("GODEBUG", "x=1"), ("OPENSSL_ia32cap", ":0xff")]:
        once = plan.merge(var, start)
        assert plan.merge(var, once) == once


# ------------------------------------------------------------------------------------- plan from catalog


def test_plan_uses_catalog_spellings_and_only_the_wanted_runtimes() -> None:
    dropped = [features.lookup("amd64", n) for n in ("avx2", "avx512f", "aes")]
    plan = plan_fallbacks(dropped, ["glibcTunables", "opensslIa32cap"])
    assert plan.glibc_hwcaps == ("AVX2", "AVX512F")  # aes has no glibc.cpu.hwcaps name in the catalog
    assert plan.godebug_cpu == ()  # not asked for
    assert plan.openssl_clear == {1: AVX2_LV1 | (1 << 16), 0: AESNI_LV0}  # AVX512F = #64+16
    assert plan.variables() == ("GLIBC_TUNABLES", "OPENSSL_ia32cap")


# ---------------------------------------------------------------------------------- OpenJDK (HotSpot)


def test_java_options_follow_the_dropped_features_levels_first() -> None:
    dropped = [features.lookup("amd64", n) for n in ("avx512f", "sha_ni", "sse4_2", "abm")]
    plan = plan_fallbacks(dropped, ["javaToolOptions"])
    assert plan.java_tool_options == ("-XX:UseAVX=2", "-XX:UseSSE=3", "-XX:-UseSHA",
                                      "-XX:-UseCountLeadingZerosInstruction")  # fmt: skip
    assert plan.variables() == ("JAVA_TOOL_OPTIONS",)
    avx = plan_fallbacks([features.lookup("amd64", "avx")], ["javaToolOptions"])
    assert avx.java_tool_options == ("-XX:UseAVX=0",)
    assert plan_fallbacks(dropped, ["goDebug"]).java_tool_options == ()  # not asked for


def test_java_options_go_after_the_users_own_and_merge_once() -> None:
    plan = FallbackPlan(java_tool_options=("-XX:UseAVX=2",))
    assert plan.merge("JAVA_TOOL_OPTIONS", None) == "-XX:UseAVX=2"
    merged = plan.merge("JAVA_TOOL_OPTIONS", '-Dname="a b" -XX:UseAVX=3')
    assert merged == '-Dname="a b" -XX:UseAVX=3 -XX:UseAVX=2'  # HotSpot: the last -XX setting wins
    assert plan.merge("JAVA_TOOL_OPTIONS", merged) == merged


def test_arm64_features_get_the_aarch64_flags() -> None:
    assert plan_fallbacks([features.lookup("arm64", "sve")], ["javaToolOptions"]).java_tool_options == (
        "-XX:UseSVE=0",
    )


# ----------------------------------------------------------------------------------------------- numpy


def test_numpy_targets_cover_every_target_above_a_dropped_feature() -> None:
    plan = plan_fallbacks([features.lookup("amd64", "avx512_vnni")], ["numpyCpuFeatures"])
    assert plan.numpy_disable == ("AVX512_ICL", "AVX512_SPR", "AVX512_CLX")  # not X86_V4: it needs no VNNI
    assert plan.variables() == ("NPY_DISABLE_CPU_FEATURES",)
    avx2 = plan_fallbacks([features.lookup("amd64", "avx2")], ["numpyCpuFeatures"]).numpy_disable
    assert {"X86_V3", "X86_V4", "AVX2", "AVX512_SKX"} <= set(avx2) and not {"SSE42", "X86_V2"} & set(avx2)
    sse = plan_fallbacks([features.lookup("amd64", "sse4_2")], ["numpyCpuFeatures"])
    assert sse.is_empty()  # never a baseline name: that would stop numpy from importing


def test_numpy_list_merges_with_the_users_once() -> None:
    plan = FallbackPlan(numpy_disable=("X86_V4",))
    assert plan.merge("NPY_DISABLE_CPU_FEATURES", "AVX512_SPR,X86_V4") == "AVX512_SPR X86_V4"
    once = plan.merge("NPY_DISABLE_CPU_FEATURES", None)
    assert once == "X86_V4" and plan.merge("NPY_DISABLE_CPU_FEATURES", once) == once


def test_arm64_godebug_keys_are_the_ones_every_go_consumer_knows() -> None:
    dropped = [features.lookup("arm64", n) for n in ("atomics", "sha3", "sve", "aes", "paca")]
    assert plan_fallbacks(dropped, ["goDebug"]).godebug_cpu == ("atomics", "aes")  # sha3: go1.26+; sve: x/sys only
