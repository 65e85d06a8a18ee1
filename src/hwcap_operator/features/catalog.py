"""The catalog: every known feature, indexed by (arch, word, bit), by name and by NFD spelling.

One source of truth: the ``data_*`` modules hold the facts, this module only indexes them. Everything
else in the product (mask rendering, parsers, fallbacks, policy) looks features up here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import cache
from types import MappingProxyType

from hwcap_operator.arch import Arch, normalize_arch
from hwcap_operator.features import data_amd64, data_arm64, data_other
from hwcap_operator.features.data_godebug import arm64_godebug_key
from hwcap_operator.features.model import N_WORDS, WORD_BITS, WORD_NAMES, Feature


class UnknownFeatureError(KeyError):
    """A feature name the catalog does not know for that arch; carries the arch and the names."""

    def __init__(self, arch: str, names: Iterable[str]) -> None:
        self.arch = arch
        self.names = tuple(names)
        super().__init__(f"unknown {arch} feature name(s): {', '.join(self.names)}")

    def __str__(self) -> str:
        return str(self.args[0])


def _rows_to_features(arch: Arch, rows: Iterable[tuple[int, int, str, str, str | None]]) -> list[Feature]:
    return [Feature(arch=arch, name=n, word=w, bit=b, macro=m, nfd=nfd) for (w, b, m, n, nfd) in rows]


def _build() -> tuple[Feature, ...]:
    feats: list[Feature] = [
        Feature(arch="arm64", name=n, word=w, bit=b, macro=m, nfd=nfd, security=sec, godebug=arm64_godebug_key(n))
        for (w, b, m, n, nfd, sec) in data_arm64.ROWS
    ]
    feats += [
        Feature(arch="arm64", name=n, word=w, bit=b, macro=m, security=sec, compat=True)
        for (w, b, m, n, sec) in data_arm64.COMPAT_ROWS
    ]
    feats += list(data_amd64.FEATURES)
    feats += _rows_to_features("ppc64le", data_other.PPC64LE_ROWS)
    feats += _rows_to_features("s390x", data_other.S390X_ROWS)
    feats += _rows_to_features("riscv64", data_other.RISCV64_ROWS)
    return tuple(feats)


ALL_FEATURES: tuple[Feature, ...] = _build()

_BY_BIT: dict[tuple[Arch, bool, int, int], Feature] = {}
_BY_NAME: dict[tuple[Arch, bool], dict[str, Feature]] = {}
_BY_NFD: dict[Arch, dict[str, Feature]] = {}


def _index() -> None:
    for f in ALL_FEATURES:
        names = _BY_NAME.setdefault((f.arch, f.compat), {})
        for key in (f.name, *f.aliases):
            if key in names:
                raise AssertionError(f"catalog: duplicate {f.arch} name {key!r}")
            names[key] = f
        if f.word is not None and f.bit is not None:
            k = (f.arch, f.compat, f.word, f.bit)
            if k in _BY_BIT:
                raise AssertionError(f"catalog: duplicate bit {k}")
            if not (0 <= f.word < N_WORDS and 0 <= f.bit < WORD_BITS):
                raise AssertionError(f"catalog: bit out of range {k}")
            _BY_BIT[k] = f
        if f.nfd is not None and not f.compat:
            nfd = _BY_NFD.setdefault(f.arch, {})
            if f.nfd in nfd:
                raise AssertionError(f"catalog: duplicate {f.arch} NFD name {f.nfd!r}")
            nfd[f.nfd] = f


_index()


def features(arch: str | None = None, *, compat: bool = False) -> tuple[Feature, ...]:
    """All features of ``arch`` (all arches when None), native or AArch32 compat tables, catalog order."""
    return _features(None if arch is None else normalize_arch(arch), compat)


@cache
def _features(arch: Arch | None, compat: bool) -> tuple[Feature, ...]:
    return tuple(f for f in ALL_FEATURES if (arch is None or f.arch == arch) and f.compat == compat)


@cache
def catalog_order(arch: Arch) -> Mapping[Feature, int]:
    """Position of each native feature of ``arch`` in the catalog, for stable sorting of results."""
    return MappingProxyType({f: i for i, f in enumerate(_features(arch, False))})


def find(arch: str, name: str, *, compat: bool = False) -> Feature | None:
    """The feature called ``name`` (case-insensitive; canonical name or alias), or None."""
    return _BY_NAME.get((normalize_arch(arch), compat), {}).get(name.strip().lower())


def lookup(arch: str, name: str, *, compat: bool = False) -> Feature:
    """Like :func:`find` but raises :class:`UnknownFeatureError` naming the unknown name."""
    f = find(arch, name, compat=compat)
    if f is None:
        raise UnknownFeatureError(normalize_arch(arch), [name])
    return f


def by_bit(arch: str, word: int, bit: int, *, compat: bool = False) -> Feature | None:
    """The feature at (arch, word, bit), or None when the catalog has no name for that bit."""
    return _BY_BIT.get((normalize_arch(arch), compat, word, bit))


def by_nfd(arch: str, nfd_name: str) -> Feature | None:
    """The feature NFD labels ``cpu-cpuid.<nfd_name>`` on ``arch`` (exact, case-sensitive), or None."""
    return _BY_NFD.get(normalize_arch(arch), {}).get(nfd_name)


def nfd_names(arch: str) -> frozenset[str]:
    """Every NFD cpuid name the catalog maps for ``arch``."""
    return frozenset(_BY_NFD.get(normalize_arch(arch), {}))


def unknown_bit_name(word: int, bit: int) -> str:
    """Name used for a set bit the catalog cannot name, e.g. ``hwcap2.bit5``: kept, never dropped."""
    return f"{WORD_NAMES[word]}.bit{bit}"


def parse_unknown_bit_name(name: str) -> tuple[int, int] | None:
    """Inverse of :func:`unknown_bit_name`; None when ``name`` is not of that form."""
    head, sep, tail = name.strip().lower().partition(".bit")
    if not sep or head not in WORD_NAMES or not tail.isdigit():
        return None
    bit = int(tail)
    if bit >= WORD_BITS:
        return None
    return WORD_NAMES.index(head), bit


def bit_names(arch: str, word: int, value: int, *, compat: bool = False) -> list[str]:
    """Names of the set bits of ``value`` in HWCAP word ``word``, ascending bit order.

    Unknown set bits appear as ``hwcapN.bitK`` so nothing is silently lost.
    """
    out: list[str] = []
    v = value
    while v:
        low = v & -v
        bit = low.bit_length() - 1
        f = by_bit(arch, word, bit, compat=compat)
        out.append(f.name if f is not None else unknown_bit_name(word, bit))
        v ^= low
    return out


@cache
def known_word_mask(arch: Arch, word: int, compat: bool = False) -> int:
    """OR of every catalogued bit of ``word`` for ``arch``."""
    m = 0
    for (a, c, w, b), _f in _BY_BIT.items():
        if a == arch and c == compat and w == word:
            m |= 1 << b
    return m

