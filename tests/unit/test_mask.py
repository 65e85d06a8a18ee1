"""FeatureMask algebra: round trips, errors naming the token, and property tests of the laws."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hwcap_operator import features as F
from hwcap_operator.mask import ArchMismatchError, FeatureMask, MaskParseError, intersect_all

U64 = st.integers(min_value=0, max_value=(1 << 64) - 1)
X86_CPUID = sorted(f.name for f in F.features("amd64") if not f.in_hwcap)


@st.composite
def masks(draw: st.DrawFn, arch: str | None = None) -> FeatureMask:
    a = arch or draw(st.sampled_from(["arm64", "amd64"]))
    words = draw(st.tuples(U64, U64, U64, U64))
    cpuid = draw(st.frozensets(st.sampled_from(X86_CPUID), max_size=12)) if a == "amd64" else frozenset()
    return FeatureMask(a, words, cpuid)  # type: ignore[arg-type]


def same_arch_pair() -> st.SearchStrategy[tuple[FeatureMask, FeatureMask]]:
    return st.sampled_from(["arm64", "amd64"]).flatmap(lambda a: st.tuples(masks(a), masks(a)))


def same_arch_triple() -> st.SearchStrategy[tuple[FeatureMask, FeatureMask, FeatureMask]]:
    return st.sampled_from(["arm64", "amd64"]).flatmap(lambda a: st.tuples(masks(a), masks(a), masks(a)))


@given(same_arch_pair())
def test_intersection_commutes_and_is_a_subset(p: tuple[FeatureMask, FeatureMask]) -> None:
    a, b = p
    assert a & b == b & a
    assert a & b <= a and a & b <= b
    assert (a & b).popcount <= min(a.popcount, b.popcount)


@given(same_arch_triple())
def test_intersection_is_associative(t: tuple[FeatureMask, FeatureMask, FeatureMask]) -> None:
    a, b, c = t
    assert (a & b) & c == a & (b & c) == intersect_all([a, b, c])


@given(masks())
def test_intersection_is_idempotent_and_canonical_round_trips(a: FeatureMask) -> None:
    assert a & a == a
    assert FeatureMask.parse(a.canonical()) == a
    assert FeatureMask.from_names(a.arch, a.names()) == a
    assert a.mask_id == hashlib.sha256(a.canonical().encode()).hexdigest()[:12]


@given(same_arch_pair())
def test_difference_is_disjoint_and_rebuilds_self(p: tuple[FeatureMask, FeatureMask]) -> None:
    a, b = p
    d = a - b
    assert (d & b).is_empty
    assert d | (a & b) == a
    assert d.popcount + (a & b).popcount == a.popcount


@given(same_arch_pair())
def test_subset_matches_intersection_and_popcount_is_monotone(p: tuple[FeatureMask, FeatureMask]) -> None:
    a, b = p
    assert (a <= b) == (a & b == a)
    u = a | b
    assert a <= u and a.popcount <= u.popcount


def test_canonical_format_is_documented_shape() -> None:
    m = FeatureMask.from_names("aarch64", ["fp", "asimd", "sve2", "mtefar"])
    assert m.canonical() == "arm64:hwcap=0x3;hwcap2=0x2;hwcap3=0x1;hwcap4=0x0"
    x = FeatureMask.from_names("x86_64", ["sse2", "fsgsbase", "avx2", "avx"])
    assert x.canonical() == "amd64:hwcap=0x4000000;hwcap2=0x2;hwcap3=0x0;hwcap4=0x0;cpuid=avx,avx2"
    assert FeatureMask.empty("amd64").canonical().endswith(";cpuid=")
    assert x.hex_words() == ("0x4000000", "0x2", "0x0", "0x0")
    assert str(x) == x.canonical() and len(x.mask_id) == 12


def test_parse_accepts_any_word_order_and_defaults() -> None:
    assert FeatureMask.parse(" arm64:hwcap2=0X2;hwcap=3 ") == FeatureMask.from_words("arm64", 3, 2)


@pytest.mark.parametrize(
    ("text", "token"),
    [("arm64", "arm64"), ("sparc:hwcap=0x1", "sparc"), ("arm64:hwcap=0xzz", "0xzz"),
     ("arm64:hwcap5=0x1", "hwcap5"), ("arm64:hwcap=0x1;hwcap=0x2", "hwcap"), ("arm64:hwcap", "hwcap"),
     ("arm64:hwcap=0x1;cpuid=avx", "cpuid=avx"), ("arm64:hwcap=0x10000000000000000", "0x10000000000000000")],
)
def test_parse_errors_name_the_token(text: str, token: str) -> None:
    with pytest.raises(MaskParseError) as e:
        FeatureMask.parse(text)
    assert e.value.token == token and repr(token) in str(e.value)


def test_unknown_bits_are_kept_and_named() -> None:
    m = FeatureMask.from_words("arm64", 1 | 1 << 60, 0, 1 << 33)
    assert m.names() == ["fp", "hwcap.bit60", "hwcap3.bit33"]
    assert m.unknown_names() == ["hwcap.bit60", "hwcap3.bit33"]
    assert "hwcap.bit60" in m and "fp" in m and "asimd" not in m
    assert FeatureMask.from_names("arm64", m.names()) == m


def test_from_names_reports_every_unknown_name() -> None:
    with pytest.raises(F.UnknownFeatureError) as e:
        FeatureMask.from_names("arm64", ["fp", "warp", "sve", "hyper"])
    assert e.value.names == ("warp", "hyper") and "warp" in str(e.value) and "hyper" in str(e.value)


def test_mixing_arches_raises_naming_both() -> None:
    a, x = FeatureMask.from_names("arm64", ["fp"]), FeatureMask.from_names("amd64", ["fpu"])
    for op in (lambda: a & x, lambda: a <= x, lambda: a - x, lambda: a | x):
        with pytest.raises(ArchMismatchError, match=r"arm64.*amd64"):
            op()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"arch": "arm64", "cpuid": frozenset({"avx"})}, "no CPUID-only"),
     ({"arch": "amd64", "cpuid": frozenset({"sse2"})}, "carried by hwcap"),
     ({"arch": "amd64", "cpuid": frozenset({"AVX 2"})}, "bad CPUID flag"),
     ({"arch": "arm64", "hwcap": (1 << 64, 0, 0, 0)}, "unsigned 64-bit"),
     ({"arch": "arm64", "hwcap": (1, 2, 3)}, "4 HWCAP words")],
)
def test_invalid_masks_are_rejected(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        FeatureMask(**kwargs)  # type: ignore[arg-type]


def test_security_features_and_from_features() -> None:
    m = FeatureMask.from_names("arm64", ["paca", "sve", "bti"])
    assert [f.name for f in m.security_features()] == ["paca", "bti"]
    assert FeatureMask.from_features("arm64", m.features()) == m
    with pytest.raises(ArchMismatchError):
        FeatureMask.from_features("arm64", [F.lookup("arm64", "neon", compat=True)])


def test_intersect_all_needs_input() -> None:
    with pytest.raises(ValueError, match="no masks"):
        intersect_all([])


def test_unknown_cpuid_names_survive_a_canonical_round_trip() -> None:
    m = FeatureMask.parse("amd64:hwcap=0x1;hwcap2=0x0;hwcap3=0x0;hwcap4=0x0;cpuid=avx2,future_flag")
    assert "future_flag" in m.cpuid and m.unknown_names() == ["future_flag"]
    assert FeatureMask.parse(m.canonical()) == m
