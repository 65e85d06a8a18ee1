"""The catalog against the kernel-derived tables and the real dumps (expectations read from the files)."""

from __future__ import annotations

import pytest
from tests.support.profiles import dump_names, raw_feature_words, read_profile

from hwcap_operator import features as F
from hwcap_operator.features import catalog


def _hwcap_bits_rows() -> list[tuple[int, int, str, str]]:
    rows = []
    for line in read_profile("arm64-hwcap-bits.txt").splitlines():
        if line.startswith("#") or not line.strip():
            continue
        entry, bit, mask, macro, name, _idx = line.split()
        assert int(mask, 16) == 1 << int(bit)
        rows.append(({"AT_HWCAP": 0, "AT_HWCAP2": 1, "AT_HWCAP3": 2}[entry], int(bit), macro, name))
    return rows


def test_arm64_catalog_has_every_kernel_bit_with_its_name_and_macro() -> None:
    rows = _hwcap_bits_rows()
    assert len(rows) == 48 + 64 + 2
    for word, bit, macro, name in rows:
        f = F.by_bit("arm64", word, bit)
        assert f is not None, (word, bit)
        assert (f.name, f.macro, f.compat) == (name, macro, False)


def test_arm64_catalog_has_no_bit_the_kernel_table_lacks_except_newer_hwcap3() -> None:
    kernel = {(w, b) for w, b, _m, _n in _hwcap_bits_rows()}
    ours = {(f.word, f.bit) for f in F.features("arm64")}
    assert ours - kernel == {(2, 2), (2, 3)}  # LSFE, LS64: newer than the v6.17-rc copy


@pytest.mark.parametrize("name", dump_names("arm64-") + dump_names("x86_64-") + dump_names("s390x-"))
def test_every_dump_token_is_in_the_catalog(name: str) -> None:
    arch = {"arm64": "arm64", "x86_64": "amd64", "s390x": "s390x"}[name.split("-")[0]]
    missing = sorted(t for t in raw_feature_words(name) if F.find(arch, t) is None)
    assert missing == []


def test_security_features_are_exactly_the_listed_ones() -> None:
    arm = {f.name for f in F.features("arm64") if f.security}
    assert arm == {"paca", "pacg", "gcs", "bti", "mte", "mte3", "mtefar", "mtestoreonly", "poe", "ssbs", "sb", "dit"}
    x86 = {f.name for f in F.features("amd64") if f.security}
    assert {"shstk", "ibt", "user_shstk"} <= x86


@pytest.mark.parametrize(
    ("name", "bit"),
    # cpufeatures.h word 0 (CPUID.1:EDX), independently of the data module: Intel SDM bit positions.
    [("fpu", 0), ("tsc", 4), ("cx8", 8), ("sep", 11), ("cmov", 15), ("clflush", 19), ("dts", 21),
     ("mmx", 23), ("fxsr", 24), ("sse", 25), ("sse2", 26), ("ss", 27), ("ht", 28), ("tm", 29), ("pbe", 31)],
)
def test_x86_at_hwcap_is_cpuid_1_edx(name: str, bit: int) -> None:
    f = F.lookup("x86_64", name)
    assert (f.word, f.bit) == (0, bit)


def test_x86_hwcap2_and_cpuid_only_features() -> None:
    assert (F.lookup("amd64", "ring3mwait").word, F.lookup("amd64", "ring3mwait").bit) == (1, 0)
    assert (F.lookup("amd64", "fsgsbase").word, F.lookup("amd64", "fsgsbase").bit) == (1, 1)
    avx2 = F.lookup("amd64", "avx2")
    assert not avx2.in_hwcap
    assert (avx2.nfd, avx2.glibc, avx2.godebug, avx2.openssl) == ("AVX2", "AVX2", "avx2", (1, 5))
    assert F.lookup("amd64", "avx512f").nfd == "AVX512F"
    assert F.lookup("amd64", "erms").glibc == "ERMS"


def test_nfd_spelling_arm64_is_upper_case_hwcap_name_up_to_nfds_map() -> None:
    assert F.by_nfd("arm64", "ASIMDRDM") == F.lookup("arm64", "asimdrdm")
    assert F.by_nfd("arm64", "SMEI16I64") == F.lookup("arm64", "smei16i64")
    assert F.lookup("arm64", "sveebf16").nfd == "SVEEBF16"  # HWCAP2 bit 33: last bit NFD maps
    assert F.lookup("arm64", "cssc").nfd is None  # HWCAP2 bit 34
    assert F.lookup("arm64", "gcs").nfd is None  # HWCAP bit 32
    for f in F.features("arm64"):
        if f.nfd is not None:
            assert f.nfd == f.name.upper()
            assert f.nfd_label == "feature.node.kubernetes.io/cpu-cpuid." + f.nfd


def test_other_arches() -> None:
    assert (F.lookup("ppc64le", "vsx").word, F.lookup("ppc64le", "vsx").bit) == (0, 7)
    assert (F.lookup("ppc64le", "arch_3_00").word, F.lookup("ppc64le", "arch_3_00").bit) == (1, 23)
    assert F.lookup("ppc64le", "mma").bitmask == 0x00020000
    assert F.lookup("s390x", "vxe2").bitmask == 32768
    assert F.lookup("s390x", "edat").macro == "HWCAP_S390_HPAGE"
    assert {f.name: f.bit for f in F.features("riscv64")} == {
        "i": 8, "m": 12, "a": 0, "f": 5, "d": 3, "c": 2, "v": 21}


def test_compat_tables_are_separate() -> None:
    assert F.lookup("arm64", "neon", compat=True).bit == 12
    assert F.find("arm64", "neon") is None
    assert F.by_bit("arm64", 1, 0, compat=True) == F.lookup("arm64", "aes", compat=True)
    assert F.by_bit("arm64", 1, 0).name == "dcpodp"


def test_lookup_unknown_names_the_name() -> None:
    with pytest.raises(F.UnknownFeatureError, match="sve9"):
        F.lookup("arm64", "sve9")


def test_bit_names_keep_unknown_bits() -> None:
    assert F.bit_names("arm64", 2, 0b1001 | 1 << 40) == ["mtefar", "ls64", "hwcap3.bit40"]
    assert catalog.parse_unknown_bit_name("hwcap3.bit40") == (2, 40)
    assert catalog.parse_unknown_bit_name("hwcap9.bit1") is None
    assert catalog.parse_unknown_bit_name("hwcap.bit64") is None
