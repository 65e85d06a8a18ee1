"""FeatureMask: an immutable per-arch set of CPU features and its algebra.

A mask is what a domain computes (the intersection of its nodes) and what the init step applies
(AND into every AT_HWCAP* word). It holds the four HWCAP words as raw integers, so bits the catalog
cannot name are kept (rendered ``hwcapN.bitK``), and, on amd64 only, the set of CPUID flags HWCAPs
cannot carry (by canonical /proc/cpuinfo name), because baselines and userspace fallbacks need them.

Canonical string (stable; ``mask_id`` hashes it; ``FeatureMask.parse`` is its inverse)::

    arm64:hwcap=0x7ff;hwcap2=0x0;hwcap3=0x0;hwcap4=0x0
    amd64:hwcap=0x178bfbff;hwcap2=0x2;hwcap3=0x0;hwcap4=0x0;cpuid=avx,avx2,pni

Words are lower-case hex without padding, always all four; amd64 always carries ``;cpuid=`` with the
names sorted and comma-separated (possibly empty); other arches never do.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import cast

from hwcap_operator.arch import Arch, UnknownArchError, normalize_arch
from hwcap_operator.features import catalog
from hwcap_operator.features.model import N_WORDS, WORD_BITS, WORD_NAMES, Feature

Words = tuple[int, int, int, int]
_WORD_LIMIT = 1 << WORD_BITS
_CPUID_TOKEN = re.compile(r"^[a-z0-9][a-z0-9_.+-]*$")
#: Only amd64 has CPUID-only features; everywhere else HWCAP words are the whole story.
CPUID_ARCHES: frozenset[Arch] = frozenset({"amd64"})


class ArchMismatchError(ValueError):
    """Two masks of different architectures were combined; the message names both."""


class MaskParseError(ValueError):
    """A canonical mask string (or part of it) could not be read; carries the input and the token."""

    def __init__(self, text: str, token: str, problem: str) -> None:
        self.text = text
        self.token = token
        self.problem = problem
        super().__init__(f"bad mask {text!r}: {problem}: {token!r}")


@dataclass(frozen=True, slots=True)
class FeatureMask:
    """Immutable feature set of one arch: four raw HWCAP words plus (amd64) CPUID-only flag names."""

    arch: Arch
    hwcap: Words = (0, 0, 0, 0)
    cpuid: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        object.__setattr__(self, "arch", normalize_arch(self.arch))
        words = tuple(self.hwcap)
        if len(words) != N_WORDS:
            raise ValueError(f"a mask has {N_WORDS} HWCAP words, got {len(words)}: {words!r}")
        for i, w in enumerate(words):
            if isinstance(w, bool) or not isinstance(w, int) or not 0 <= w < _WORD_LIMIT:
                raise ValueError(f"{WORD_NAMES[i]} must be an unsigned 64-bit integer, got {w!r}")
        object.__setattr__(self, "hwcap", cast(Words, words))
        names = frozenset(self.cpuid)
        if names and self.arch not in CPUID_ARCHES:
            raise ValueError(f"{self.arch} has no CPUID-only features; got cpuid={sorted(names)}")
        for n in names:
            if not isinstance(n, str) or not _CPUID_TOKEN.match(n):
                raise ValueError(f"bad CPUID flag name {n!r} (lower-case /proc/cpuinfo spelling expected)")
            f = catalog.find(self.arch, n)
            if f is not None and f.in_hwcap:
                raise ValueError(f"{n!r} is carried by {WORD_NAMES[f.word or 0]}, not a CPUID-only flag")
        object.__setattr__(self, "cpuid", names)

    # ----- construction -----------------------------------------------------------------------

    @classmethod
    def _trusted(cls, arch: Arch, words: Words, cpuid: frozenset[str]) -> FeatureMask:
        """Build without re-validating: for algebra results whose inputs were validated already.

        Validation looks every CPUID name up in the catalog; skipping it keeps a 5,000-node fold of
        ``&`` linear and cheap.
        """
        m = object.__new__(cls)
        object.__setattr__(m, "arch", arch)
        object.__setattr__(m, "hwcap", words)
        object.__setattr__(m, "cpuid", cpuid)
        return m

    @classmethod
    def empty(cls, arch: str) -> FeatureMask:
        """The mask with no feature at all (the identity of union, absorbing for intersection)."""
        return cls(normalize_arch(arch))

    @classmethod
    def from_words(cls, arch: str, *words: int, cpuid: Iterable[str] = ()) -> FeatureMask:
        """Mask from up to four raw HWCAP words (missing trailing words are 0)."""
        if len(words) > N_WORDS:
            raise ValueError(f"at most {N_WORDS} HWCAP words, got {len(words)}")
        padded = (*words, *(0,) * (N_WORDS - len(words)))
        return cls(normalize_arch(arch), cast(Words, padded), frozenset(cpuid))

    @classmethod
    def from_features(cls, arch: str, feats: Iterable[Feature]) -> FeatureMask:
        """Mask holding exactly ``feats`` (all of ``arch``, none from the AArch32 compat tables)."""
        a = normalize_arch(arch)
        words = [0] * N_WORDS
        cpuid: set[str] = set()
        for f in feats:
            if f.arch != a or f.compat:
                raise ArchMismatchError(f"feature {f.name!r} ({f.arch}{', compat' if f.compat else ''}) "
                                        f"does not belong in a {a} mask")
            if f.word is not None and f.bit is not None:
                words[f.word] |= 1 << f.bit
            else:
                cpuid.add(f.name)
        return cls(a, cast(Words, tuple(words)), frozenset(cpuid))

    @classmethod
    def from_names(cls, arch: str, names: Iterable[str]) -> FeatureMask:
        """Mask from feature names (canonical, aliases, any case, or ``hwcapN.bitK`` for unnamed bits).

        Raises :class:`~hwcap_operator.features.UnknownFeatureError` listing every unknown name.
        """
        a = normalize_arch(arch)
        words = [0] * N_WORDS
        cpuid: set[str] = set()
        unknown: list[str] = []
        for raw in names:
            name = raw.strip()
            if not name:
                continue
            f = catalog.find(a, name)
            if f is not None:
                if f.word is not None and f.bit is not None:
                    words[f.word] |= 1 << f.bit
                else:
                    cpuid.add(f.name)
                continue
            wb = catalog.parse_unknown_bit_name(name)
            if wb is not None:
                words[wb[0]] |= 1 << wb[1]
            else:
                unknown.append(name)
        if unknown:
            raise catalog.UnknownFeatureError(a, unknown)
        return cls(a, cast(Words, tuple(words)), frozenset(cpuid))

    @classmethod
    def parse(cls, text: str) -> FeatureMask:
        """Read a canonical string (see module doc). Word order is free, missing words are 0.

        Raises :class:`MaskParseError` naming the offending token.
        """
        s = text.strip()
        arch_part, sep, rest = s.partition(":")
        if not sep:
            raise MaskParseError(text, s, "expected '<arch>:hwcap=0x..;...'")
        try:
            arch = normalize_arch(arch_part)
        except UnknownArchError as e:
            raise MaskParseError(text, arch_part, "unknown architecture") from e
        words = [0] * N_WORDS
        seen: set[str] = set()
        cpuid: frozenset[str] = frozenset()
        for item in rest.split(";"):
            key, eq, value = item.strip().partition("=")
            key = key.strip().lower()
            if not eq:
                raise MaskParseError(text, item, "expected key=value")
            if key in seen:
                raise MaskParseError(text, key, "duplicate key")
            seen.add(key)
            if key in WORD_NAMES:
                words[WORD_NAMES.index(key)] = _parse_word(text, value.strip())
            elif key == "cpuid":
                cpuid = frozenset(v.strip().lower() for v in value.split(",") if v.strip())
                if arch not in CPUID_ARCHES and cpuid:
                    raise MaskParseError(text, item, f"{arch} has no CPUID-only features")
            else:
                raise MaskParseError(text, key, f"unknown key (expected {', '.join(WORD_NAMES)} or cpuid)")
        try:
            return cls(arch, cast(Words, tuple(words)), cpuid)
        except ValueError as e:
            raise MaskParseError(text, rest, str(e)) from e

    # ----- algebra ----------------------------------------------------------------------------

    def _check(self, other: FeatureMask) -> None:
        if not isinstance(other, FeatureMask):
            raise TypeError(f"expected a FeatureMask, got {type(other).__name__}")
        if other.arch != self.arch:
            raise ArchMismatchError(f"cannot combine a {self.arch} mask with a {other.arch} mask")

    def intersection(self, *others: FeatureMask) -> FeatureMask:
        """Features present in self and every other (the common baseline of several nodes)."""
        words = list(self.hwcap)
        cpuid = set(self.cpuid)
        for o in others:
            self._check(o)
            words = [a & b for a, b in zip(words, o.hwcap, strict=True)]
            cpuid &= o.cpuid
        return FeatureMask._trusted(self.arch, cast(Words, tuple(words)), frozenset(cpuid))

    def union(self, *others: FeatureMask) -> FeatureMask:
        """Features present in self or any other."""
        words = list(self.hwcap)
        cpuid = set(self.cpuid)
        for o in others:
            self._check(o)
            words = [a | b for a, b in zip(words, o.hwcap, strict=True)]
            cpuid |= o.cpuid
        return FeatureMask._trusted(self.arch, cast(Words, tuple(words)), frozenset(cpuid))

    def difference(self, other: FeatureMask) -> FeatureMask:
        """Features in self that ``other`` lacks (e.g. what a node drops from a baseline)."""
        self._check(other)
        words = tuple(a & ~b for a, b in zip(self.hwcap, other.hwcap, strict=True))
        return FeatureMask._trusted(self.arch, cast(Words, words), self.cpuid - other.cpuid)

    def issubset(self, other: FeatureMask) -> bool:
        """True when every feature of self is also in ``other`` (self may run where other runs)."""
        self._check(other)
        return all(a & ~b == 0 for a, b in zip(self.hwcap, other.hwcap, strict=True)) and (
            self.cpuid <= other.cpuid
        )

    def issuperset(self, other: FeatureMask) -> bool:
        """True when self holds every feature of ``other``."""
        return other.issubset(self)

    def __and__(self, other: FeatureMask) -> FeatureMask:
        return self.intersection(other)

    def __or__(self, other: FeatureMask) -> FeatureMask:
        return self.union(other)

    def __sub__(self, other: FeatureMask) -> FeatureMask:
        return self.difference(other)

    def __le__(self, other: FeatureMask) -> bool:
        return self.issubset(other)

    def __ge__(self, other: FeatureMask) -> bool:
        return other.issubset(self)

    def __lt__(self, other: FeatureMask) -> bool:
        return self.issubset(other) and self != other

    def __gt__(self, other: FeatureMask) -> bool:
        return other.issubset(self) and self != other

    def __contains__(self, name: object) -> bool:
        """``"sve2" in mask``: is the named feature (or ``hwcapN.bitK``) present?"""
        if not isinstance(name, str):
            return False
        f = catalog.find(self.arch, name)
        if f is not None:
            if f.word is not None and f.bit is not None:
                return bool(self.hwcap[f.word] >> f.bit & 1)
            return f.name in self.cpuid
        wb = catalog.parse_unknown_bit_name(name)
        if wb is not None:
            return bool(self.hwcap[wb[0]] >> wb[1] & 1)
        return name.strip().lower() in self.cpuid

    # ----- rendering --------------------------------------------------------------------------

    @property
    def popcount(self) -> int:
        """Number of features: set HWCAP bits plus CPUID-only flags."""
        return sum(w.bit_count() for w in self.hwcap) + len(self.cpuid)

    @property
    def is_empty(self) -> bool:
        """True when the mask holds no feature."""
        return self.popcount == 0

    def hex_words(self) -> tuple[str, str, str, str]:
        """Each HWCAP word as ``0x...`` (lower-case, unpadded), AT_HWCAP first."""
        return cast(tuple[str, str, str, str], tuple(f"0x{w:x}" for w in self.hwcap))

    def names(self) -> list[str]:
        """Feature names: HWCAP bits in (word, bit) order, then sorted CPUID-only flags.

        Bits the catalog does not know appear as ``hwcapN.bitK``.
        """
        out: list[str] = []
        for i, w in enumerate(self.hwcap):
            out += catalog.bit_names(self.arch, i, w)
        return out + sorted(self.cpuid)

    def features(self) -> list[Feature]:
        """Catalog entries of the named features (unknown bits and unknown CPUID names omitted)."""
        out: list[Feature] = []
        for n in self.names():
            f = catalog.find(self.arch, n)
            if f is not None:
                out.append(f)
        return out

    def unknown_names(self) -> list[str]:
        """The names :meth:`names` gives that the catalog does not know (``hwcapN.bitK`` and CPUID)."""
        return [n for n in self.names() if catalog.find(self.arch, n) is None]

    def security_features(self) -> list[Feature]:
        """The security-relevant features present (what hiding would weaken)."""
        return [f for f in self.features() if f.security]

    def canonical(self) -> str:
        """The canonical string; equal masks give equal strings and vice versa."""
        body = ";".join(f"{n}=0x{w:x}" for n, w in zip(WORD_NAMES, self.hwcap, strict=True))
        if self.arch in CPUID_ARCHES:
            body += ";cpuid=" + ",".join(sorted(self.cpuid))
        return f"{self.arch}:{body}"

    @property
    def mask_id(self) -> str:
        """Short stable content id: the first 12 hex digits of sha256(canonical())."""
        return hashlib.sha256(self.canonical().encode()).hexdigest()[:12]

    def __str__(self) -> str:
        return self.canonical()


def _parse_word(text: str, value: str) -> int:
    try:
        w = int(value, 16) if value.lower().startswith("0x") else int(value, 10)
    except ValueError as e:
        raise MaskParseError(text, value, "not an integer (use 0x-prefixed hex)") from e
    if not 0 <= w < _WORD_LIMIT:
        raise MaskParseError(text, value, "does not fit in 64 bits")
    return w


def intersect_all(masks: Iterable[FeatureMask]) -> FeatureMask:
    """Intersection of one or more masks; raises ValueError on an empty input (no baseline exists)."""
    items = list(masks)
    if not items:
        raise ValueError("intersection of no masks is undefined")
    return items[0].intersection(*items[1:])


__all__ = ["CPUID_ARCHES", "ArchMismatchError", "FeatureMask", "MaskParseError", "intersect_all"]
