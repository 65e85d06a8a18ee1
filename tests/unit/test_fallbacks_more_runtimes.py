"""OPENSSL_armcap, the AArch64 HotSpot flags and the dispatch-level knobs (OpenBLAS, oneDNN, MKL): planning and merging.

Expected values are written from the libraries' own tables as cited in the data modules (OpenSSL's
crypto/arm_arch.h bits, HotSpot's flag names, the level names), not from the functions under test.
"""

from __future__ import annotations

import pytest

from hwcap_operator import features
from hwcap_operator.admission.fallbacks import (
    MKL_ENABLE_INSTRUCTIONS,
    ONEDNN_MAX_CPU_ISA,
    OPENBLAS_CORETYPE,
    OPENSSL_ARMCAP,
    FallbackKind,
    FallbackMergeError,
    plan_fallbacks,
)
from hwcap_operator.features.knobs import covering_kinds
from hwcap_operator.presets import preset


def _arm(*names: str) -> list[features.Feature]:
    return [features.lookup("arm64", n) for n in names]


def _x86(*names: str) -> list[features.Feature]:
    return [features.lookup("amd64", n) for n in names]


def test_openssl_armcap_is_the_word_of_the_kept_features() -> None:
    # kept asimd (NEON, bit 0), aes (2), pmull (5), sha1 (3), sha2 (4); dropped sha512 (6)
    plan = plan_fallbacks(_arm("sha512", "sve"), ["opensslArmcap"], kept=["fp", "asimd", "aes", "pmull", "sha1",
                                                                           "sha2", "atomics"])  # fmt: skip
    assert plan.merge(OPENSSL_ARMCAP, None) == "0x3d"
    assert plan.merge(OPENSSL_ARMCAP, "0xfd") == "0xbd"  # a user's word keeps its bits but the dropped ones
    assert plan.merge(OPENSSL_ARMCAP, "253") == "0xbd"  # strtoul(.., 0): decimal too


def test_openssl_armcap_is_not_written_when_openssl_uses_nothing_dropped() -> None:
    plan = plan_fallbacks(_arm("atomics", "dcpop"), ["opensslArmcap"], kept=["asimd", "aes"])
    assert OPENSSL_ARMCAP not in plan.variables()


@pytest.mark.parametrize("bad", ["~0x4", "0xfd junk", "0x1ffffffff"])
def test_an_openssl_armcap_value_openssl_would_misread_is_refused(bad: str) -> None:
    plan = plan_fallbacks(_arm("aes"), ["opensslArmcap"], kept=["asimd"])
    with pytest.raises(FallbackMergeError, match=OPENSSL_ARMCAP):
        plan.merge(OPENSSL_ARMCAP, bad)


def test_aarch64_hotspot_flags() -> None:
    java = plan_fallbacks(_arm("sve2", "atomics", "aes", "sha512", "crc32", "pmull"), ["javaToolOptions"])
    assert java.java_tool_options == ("-XX:UseSVE=1", "-XX:-UseLSE", "-XX:-UseAES", "-XX:-UseSHA", "-XX:-UseCRC32",
                                      "-XX:+UnlockDiagnosticVMOptions", "-XX:-UseAESCTRIntrinsics",
                                      "-XX:-UseCRC32CIntrinsics", "-XX:-UseGHASHIntrinsics")  # fmt: skip
    assert plan_fallbacks(_arm("sve", "sve2"), ["javaToolOptions"]).java_tool_options == ("-XX:UseSVE=0",)


def test_x86_64_v3_levels_for_the_blas_and_dnn_libraries() -> None:
    node = preset("x86-64-v4")
    mask = preset("x86-64-v3")
    plan = plan_fallbacks((node - mask).features(), ["openblasCoretype", "onednnMaxCpuIsa", "mklEnableInstructions"],
                          kept=mask.names())  # fmt: skip
    env = {v: plan.merge(v, None) for v in plan.variables()}
    assert env == {OPENBLAS_CORETYPE: "Haswell", ONEDNN_MAX_CPU_ISA: "AVX2", MKL_ENABLE_INSTRUCTIONS: "AVX2"}


def test_level_knobs_cap_at_the_first_level_that_needs_a_dropped_feature() -> None:
    plan = plan_fallbacks(_x86("avx512_bf16"), ["onednnMaxCpuIsa", "mklEnableInstructions"])
    assert (plan.onednn_max_isa, plan.mkl_instructions) == ("AVX512_CORE_VNNI", "AVX512_E2")
    assert plan_fallbacks(_x86("avx2"), ["onednnMaxCpuIsa"]).onednn_max_isa == "AVX"
    amx = plan_fallbacks(_x86("amx_tile"), ["onednnMaxCpuIsa"])
    assert amx.onednn_max_isa == "AVX512_CORE_BF16"  # the FP16 level's name differs by version: never written


def test_a_users_lower_level_stays_and_a_higher_or_unknown_one_is_replaced() -> None:
    kinds: list[FallbackKind] = ["mklEnableInstructions", "openblasCoretype"]
    plan = plan_fallbacks(_x86("avx512f"), kinds, kept=preset("x86-64-v3").names())
    assert plan.merge(MKL_ENABLE_INSTRUCTIONS, "SSE4_2") == "SSE4_2"
    assert plan.merge(MKL_ENABLE_INSTRUCTIONS, "AVX512_E1") == "AVX2"
    assert plan.merge(MKL_ENABLE_INSTRUCTIONS, "AVX3000") == "AVX2"
    assert plan.merge(OPENBLAS_CORETYPE, "sandybridge") == "sandybridge"  # OpenBLAS compares case-insensitively
    assert plan.merge(OPENBLAS_CORETYPE, "Zen") == "Haswell"  # not in the table: replaced


def test_openblas_is_forced_only_to_a_core_type_every_member_can_run() -> None:
    plan = plan_fallbacks(_x86("avx2"), ["openblasCoretype"], kept=preset("x86-64-v2").names())
    assert plan.openblas_coretype == "Nehalem"
    assert plan_fallbacks(_x86("sha_ni"), ["openblasCoretype"], kept=preset("x86-64-v3").names()).is_empty()


def test_covering_kinds_name_the_new_knobs() -> None:
    assert {"openblasCoretype", "onednnMaxCpuIsa", "mklEnableInstructions"} <= covering_kinds(
        features.lookup("amd64", "avx512f"))
    assert {"opensslArmcap", "javaToolOptions", "goDebug"} <= covering_kinds(features.lookup("arm64", "aes"))
    assert covering_kinds(features.lookup("arm64", "sve")) == {"opensslArmcap", "javaToolOptions", "openblasCoretype"}


def test_openblas_on_arm64_falls_back_to_neoverse_n1_or_armv8() -> None:
    n1 = preset("neoverse-n1")
    plan = plan_fallbacks((preset("neoverse-v1") - n1).features(), ["openblasCoretype"], kept=n1.names())
    assert plan.merge(OPENBLAS_CORETYPE, None) == "NEOVERSEN1"
    assert plan.merge(OPENBLAS_CORETYPE, "armv8") == "armv8"  # a lower family the user chose stays
    assert plan.merge(OPENBLAS_CORETYPE, "Haswell") == "NEOVERSEN1"  # not an arm64 family: replaced
    old = plan_fallbacks(_arm("atomics"), ["openblasCoretype"], kept=["fp", "asimd", "aes"])
    assert old.openblas_coretype == "ARMV8"
    assert plan_fallbacks(_arm("sm4"), ["openblasCoretype"], kept=preset("armv8.0").names()).is_empty()
