"""Userspace fallbacks: environment settings that make runtimes ignore features the mask drops.

A HWCAP mask only hides what a runtime learns from the auxv. On x86 the interesting features (AVX2,
AVX-512, ...) are CPUID-only, and glibc, Go and OpenSSL probe CPUID directly (docs/kernel.md#x86-cpuid), so
for them these variables are the real enforcement (docs/kernel.md#userspace-fallbacks):

- ``GLIBC_TUNABLES=glibc.cpu.hwcaps=-AVX2,-AVX512F`` (glibc on x86, s390x, powerpc; not aarch64)
- ``GODEBUG=cpu.avx2=off,...`` (Go's internal/cpu and x/sys/cpu)
- ``OPENSSL_ia32cap=LV0:LV1:...`` with ``~0x..`` clearing bits per 64-bit vector
- ``JAVA_TOOL_OPTIONS=... -XX:UseAVX=2 -XX:-UseSHA`` (OpenJDK HotSpot; ``features.data_hotspot``)
- ``NPY_DISABLE_CPU_FEATURES=X86_V4 AVX512_ICL ...`` (numpy's dispatch targets; ``features.data_numpy``)
- ``OPENSSL_armcap=0x..`` (OpenSSL on arm64: the whole word, it replaces detection; ``features.data_openssl_armcap``)
- ``OPENBLAS_CORETYPE=Haswell`` / ``ONEDNN_MAX_CPU_ISA=AVX2`` / ``MKL_ENABLE_INSTRUCTIONS=AVX2`` (the libraries'
  own dispatch levels; ``features.data_openblas``, ``data_onednn``, ``data_mkl``)

They are **merged** into what a container already sets, never overwritten, with one rule: for a feature
the mask drops, the mask wins. A user's ``cpu.avx2=on`` or ``glibc.cpu.hwcaps=AVX2`` would otherwise let
a process use an instruction that a member node lacks — exactly the crash after migration the domain
exists to prevent (and Go cannot enable a feature via GODEBUG anyway). Everything else the user wrote
(other tunables, other GODEBUG keys, other OpenSSL bits) is kept in its original order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol, get_args

from hwcap_operator.features.data_godebug import GODEBUG_KEYS_EVERYWHERE
from hwcap_operator.features.data_hotspot import hotspot_options
from hwcap_operator.features.data_hotspot_arm64 import hotspot_options_arm64
from hwcap_operator.features.data_mkl import MKL_LEVELS, mkl_max_instructions
from hwcap_operator.features.data_numpy import numpy_disable
from hwcap_operator.features.data_onednn import ONEDNN_ISAS, onednn_max_isa
from hwcap_operator.features.data_openblas import CORETYPES, openblas_coretype
from hwcap_operator.features.data_openssl_armcap import armcap_word
from hwcap_operator.features.isa_levels import Levels, rank

GLIBC_TUNABLES = "GLIBC_TUNABLES"
GODEBUG = "GODEBUG"
OPENSSL_IA32CAP = "OPENSSL_ia32cap"
JAVA_TOOL_OPTIONS = "JAVA_TOOL_OPTIONS"
NPY_DISABLE_CPU_FEATURES = "NPY_DISABLE_CPU_FEATURES"
OPENSSL_ARMCAP = "OPENSSL_armcap"
OPENBLAS_CORETYPE = "OPENBLAS_CORETYPE"
ONEDNN_MAX_CPU_ISA = "ONEDNN_MAX_CPU_ISA"
MKL_ENABLE_INSTRUCTIONS = "MKL_ENABLE_INSTRUCTIONS"
_U32 = (1 << 32) - 1

_GLIBC_HWCAPS_TUNABLE = "glibc.cpu.hwcaps"
#: OpenSSL 3 reads at most five 64-bit logical vectors (LV0..LV4).
OPENSSL_VECTORS = 5
_U64 = (1 << 64) - 1


class FallbackMergeError(ValueError):
    """An existing value we cannot merge safely; the message names the variable and the bad token."""


def merge_glibc_tunables(existing: str | None, disable: Iterable[str]) -> str | None:
    """Add ``-NAME`` for each of ``disable`` to ``glibc.cpu.hwcaps`` inside a GLIBC_TUNABLES value.

    Other tunables are kept verbatim and in order. In an existing hwcaps list, entries for the names we
    disable (``NAME`` enabling or ``-NAME``) are replaced by ours; all other entries are kept.
    Returns ``existing`` unchanged when there is nothing to disable.
    """
    names = list(dict.fromkeys(disable))
    if not names:
        return existing
    ours = [f"-{n}" for n in names]
    items = [i for i in (existing or "").split(":") if i] if existing else []
    out: list[str] = []
    user_hwcaps: list[str] = []
    hwcaps_at: int | None = None
    for item in items:
        name, sep, value = item.partition("=")
        if sep and name == _GLIBC_HWCAPS_TUNABLE:
            if hwcaps_at is None:
                hwcaps_at = len(out)
                out.append("")  # placeholder: all hwcaps items are merged into the first one's place
            user_hwcaps.extend(e for e in value.split(",") if e)
        else:
            out.append(item)
    taken = set(names)
    kept = [e for e in user_hwcaps if e.lstrip("-+") not in taken]
    merged = f"{_GLIBC_HWCAPS_TUNABLE}={','.join(kept + ours)}"
    if hwcaps_at is None:
        out.append(merged)
    else:
        out[hwcaps_at] = merged
    return ":".join(out)


def merge_godebug(existing: str | None, disable: Iterable[str]) -> str | None:
    """Add ``cpu.NAME=off`` for each of ``disable`` to a GODEBUG value (the mask wins for those keys).

    Entries for other keys keep their order; ours go last, and since Go applies later GODEBUG settings
    over earlier ones, that order is also what Go would honour if a duplicate slipped through.
    """
    keys = [f"cpu.{n}" for n in dict.fromkeys(disable)]
    if not keys:
        return existing
    taken = set(keys)
    items = [i for i in (existing or "").split(",") if i]
    kept = [i for i in items if i.partition("=")[0].strip() not in taken]
    return ",".join(kept + [f"{k}=off" for k in keys])


def _parse_c_uint(token: str, where: str) -> int:
    """Parse like C ``strtoull(s, NULL, 0)``: 0x hex, leading-0 octal, else decimal; must fit 64 bits."""
    t = token.strip()
    try:
        if t.lower().startswith("0x"):
            value = int(t[2:], 16)
        elif len(t) > 1 and t.startswith("0"):
            value = int(t[1:], 8)
        else:
            value = int(t, 10)
    except ValueError:
        raise FallbackMergeError(f"{OPENSSL_IA32CAP}: cannot parse {token!r} in {where}") from None
    if value < 0 or value > _U64:
        raise FallbackMergeError(f"{OPENSSL_IA32CAP}: {token!r} in {where} does not fit 64 bits")
    return value


def merge_openssl_ia32cap(existing: str | None, clear: Mapping[int, int]) -> str | None:
    """Clear ``clear[vector]`` bits in an OPENSSL_ia32cap value ("LV0:LV1:..:LV4").

    Per vector: empty → ``~0xBITS``; ``~0xU`` (user already clears) → ``~0x(U|BITS)``; a plain value
    ``0xV`` (user sets the vector) → ``0x(V & ~BITS)``, which is right whether OpenSSL replaces or ANDs.
    Raises :class:`FallbackMergeError` naming the token when the existing value cannot be parsed.
    """
    bits = {v: b & _U64 for v, b in clear.items() if b & _U64}
    if not bits:
        return existing
    for v in bits:
        if not 0 <= v < OPENSSL_VECTORS:
            raise ValueError(f"OpenSSL vector index {v} out of range 0..{OPENSSL_VECTORS - 1}")
    fields = (existing or "").split(":") if existing else []
    if len(fields) > OPENSSL_VECTORS:
        raise FallbackMergeError(
            f"{OPENSSL_IA32CAP}: {len(fields)} ':'-separated vectors in {existing!r}, at most {OPENSSL_VECTORS}"
        )
    fields += [""] * (max(bits) + 1 - len(fields))
    for v, b in sorted(bits.items()):
        current = fields[v].strip()
        where = f"vector LV{v} of {existing!r}"
        if not current:
            fields[v] = f"~0x{b:x}"
        elif current.startswith("~"):
            fields[v] = f"~0x{_parse_c_uint(current[1:], where) | b:x}"
        else:
            fields[v] = f"0x{_parse_c_uint(current, where) & ~b & _U64:x}"
    for v, f in enumerate(fields):  # validate the vectors we leave alone too: never pass on garbage silently
        if v not in bits and f.strip():
            _parse_c_uint(f.strip().removeprefix("~"), f"vector LV{v} of {existing!r}")
    return ":".join(fields)


def merge_java_tool_options(existing: str | None, options: Iterable[str]) -> str | None:
    """Append HotSpot ``options`` to a JAVA_TOOL_OPTIONS value; the user's text is kept verbatim before them.

    HotSpot applies -XX flags left to right, so ours, last, win over a user's ``-XX:UseAVX=3`` (the mask wins
    for its features) while quoting and every other option the user wrote stay exactly as written.
    """
    ours = " ".join(dict.fromkeys(options))
    if not ours:
        return existing
    kept = (existing or "").strip()
    if kept == ours or kept.endswith(f" {ours}"):
        return existing  # already merged (a re-admitted pod): merging twice is merging once
    return f"{kept} {ours}" if kept else ours


def merge_numpy_disable(existing: str | None, targets: Iterable[str]) -> str | None:
    """Add numpy ``targets`` to a NPY_DISABLE_CPU_FEATURES value (names separated by spaces or commas)."""
    ours = list(dict.fromkeys(targets))
    if not ours:
        return existing
    kept = [t for t in (existing or "").replace(",", " ").split() if t]
    return " ".join(kept + [t for t in ours if t not in kept])


def merge_openssl_armcap(existing: str | None, word: int, clear: int) -> str | None:
    """The OPENSSL_armcap value: ``word`` when unset; a user's own word without the ``clear`` bits otherwise.

    OpenSSL replaces its detected word with the variable (``strtoul(v, NULL, 0)``), so a user's value stays the
    user's choice except for the features the mask drops. Raises :class:`FallbackMergeError` for a value
    strtoul would not read as a whole number (OpenSSL would silently take a prefix or 0).
    """
    if not clear:
        return existing
    current = (existing or "").strip()
    if not current:
        return f"0x{word:x}"
    try:
        value = _parse_c_uint(current, OPENSSL_ARMCAP)
    except FallbackMergeError:
        raise FallbackMergeError(f"{OPENSSL_ARMCAP}: cannot parse {existing!r} as a number") from None
    if value > _U32:
        raise FallbackMergeError(f"{OPENSSL_ARMCAP}: {existing!r} does not fit OpenSSL's 32-bit word")
    return f"0x{value & ~clear & _U32:x}"


def merge_level(existing: str | None, ours: str | None, levels: Levels) -> str | None:
    """A dispatch-level variable: a user's level at or below ``ours`` is kept; anything else becomes ``ours``.

    Anything else includes names the library does not know: it would ignore them and use every feature
    the node has, which is what the mask forbids.
    """
    if ours is None:
        return existing
    mine = rank(levels, existing or "")
    return existing if mine is not None and mine <= (rank(levels, ours) or 0) else ours


@dataclass(frozen=True)
class FallbackPlan:
    """What a domain's mask drops, in each runtime's spelling; computed once per domain, applied per container."""

    glibc_hwcaps: tuple[str, ...] = ()
    godebug_cpu: tuple[str, ...] = ()
    openssl_clear: Mapping[int, int] = field(default_factory=dict)
    java_tool_options: tuple[str, ...] = ()
    numpy_disable: tuple[str, ...] = ()
    #: OPENSSL_armcap: the word for the kept features, and the bits of the dropped ones (0: not set).
    openssl_armcap: int = 0
    openssl_armcap_clear: int = 0
    openblas_coretype: str | None = None
    #: the domain's arch (the OpenBLAS core type names differ per arch)
    arch: str = "amd64"
    onednn_max_isa: str | None = None
    mkl_instructions: str | None = None

    def is_empty(self) -> bool:
        """True when no runtime variable would change."""
        return not self.variables()

    def merge(self, variable: str, current: str | None) -> str:
        """The new value of ``variable`` (one of :meth:`variables`) merged with ``current`` (None = unset).

        Raises :class:`FallbackMergeError` for a value that cannot be merged (the caller warns and keeps it).
        """
        if variable == GLIBC_TUNABLES:
            merged = merge_glibc_tunables(current, self.glibc_hwcaps)
        elif variable == GODEBUG:
            merged = merge_godebug(current, self.godebug_cpu)
        elif variable == OPENSSL_IA32CAP:
            merged = merge_openssl_ia32cap(current, self.openssl_clear)
        elif variable == JAVA_TOOL_OPTIONS:
            merged = merge_java_tool_options(current, self.java_tool_options)
        elif variable == NPY_DISABLE_CPU_FEATURES:
            merged = merge_numpy_disable(current, self.numpy_disable)
        elif variable == OPENSSL_ARMCAP:
            merged = merge_openssl_armcap(current, self.openssl_armcap, self.openssl_armcap_clear)
        elif variable == OPENBLAS_CORETYPE:
            merged = merge_level(current, self.openblas_coretype, CORETYPES.get(self.arch, ()))
        elif variable == ONEDNN_MAX_CPU_ISA:
            merged = merge_level(current, self.onednn_max_isa, ONEDNN_ISAS)
        elif variable == MKL_ENABLE_INSTRUCTIONS:
            merged = merge_level(current, self.mkl_instructions, MKL_LEVELS)
        else:
            raise ValueError(f"not a fallback variable: {variable!r}")
        return merged or ""

    def variables(self) -> tuple[str, ...]:
        """The environment variable names this plan sets."""
        names = []
        if self.glibc_hwcaps:
            names.append(GLIBC_TUNABLES)
        if self.godebug_cpu:
            names.append(GODEBUG)
        if any(self.openssl_clear.values()):
            names.append(OPENSSL_IA32CAP)
        if self.java_tool_options:
            names.append(JAVA_TOOL_OPTIONS)
        if self.numpy_disable:
            names.append(NPY_DISABLE_CPU_FEATURES)
        if self.openssl_armcap_clear:
            names.append(OPENSSL_ARMCAP)
        for name, value in ((OPENBLAS_CORETYPE, self.openblas_coretype), (ONEDNN_MAX_CPU_ISA, self.onednn_max_isa),
                            (MKL_ENABLE_INSTRUCTIONS, self.mkl_instructions)):  # fmt: skip
            if value is not None:
                names.append(name)
        return tuple(names)


FallbackKind = Literal["glibcTunables", "goDebug", "opensslIa32cap", "javaToolOptions", "numpyCpuFeatures",
                       "opensslArmcap", "openblasCoretype", "onednnMaxCpuIsa", "mklEnableInstructions"]
FALLBACK_KINDS: tuple[FallbackKind, ...] = get_args(FallbackKind)


class SpelledFeature(Protocol):
    """The catalog's runtime spellings of one feature (``hwcap_operator.features.Feature`` satisfies it)."""

    @property
    def arch(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def glibc(self) -> str | None: ...
    @property
    def godebug(self) -> str | None: ...
    @property
    def openssl(self) -> tuple[int, int] | None: ...


def plan_fallbacks(
    dropped: Iterable[SpelledFeature], wanted: Iterable[FallbackKind], kept: Iterable[str] = ()
) -> FallbackPlan:
    """The fallbacks a domain asked for (``spec.enforcement.userspaceFallbacks``) for the features it drops.

    ``dropped`` are catalog entries of the features some member has but the mask does not advertise; the
    spellings come from the catalog (the one place bit tables live). Features a runtime has no switch
    for are simply absent from that runtime's list. A Go key is written only when every targeted Go
    consumer knows it (``features.data_godebug``): an unknown key makes every Go program print a warning
    at start. Output order follows the catalog order of ``dropped``. ``kept`` are the mask's feature names:
    the knobs that replace or force a runtime's choice (OPENSSL_armcap, OPENBLAS_CORETYPE) may only name
    what every member has.
    """
    kinds = set(wanted)
    features = list(dropped)
    glibc = tuple(dict.fromkeys(f.glibc for f in features if f.glibc)) if "glibcTunables" in kinds else ()
    go_keys = GODEBUG_KEYS_EVERYWHERE.get(features[0].arch, frozenset()) if features else frozenset()
    godebug = (
        tuple(dict.fromkeys(f.godebug for f in features if f.godebug and f.godebug in go_keys))
        if "goDebug" in kinds
        else ()
    )
    clear: dict[int, int] = {}
    if "opensslIa32cap" in kinds:
        for f in features:
            if f.openssl is not None:
                vector, bit = f.openssl
                clear[vector] = clear.get(vector, 0) | (1 << bit)
    arch = features[0].arch if features else ""
    names = [f.name for f in features]
    kept_names = list(kept)
    java: tuple[str, ...] = ()
    if "javaToolOptions" in kinds:
        java = hotspot_options(names) if arch == "amd64" else hotspot_options_arm64(names) if arch == "arm64" else ()
    on_x86 = arch == "amd64"
    numpy = numpy_disable(names) if "numpyCpuFeatures" in kinds and on_x86 else ()
    armcap_clear = armcap_word(names) if "opensslArmcap" in kinds and arch == "arm64" else 0
    return FallbackPlan(
        glibc_hwcaps=glibc, godebug_cpu=godebug, openssl_clear=clear, java_tool_options=java, numpy_disable=numpy,
        openssl_armcap=armcap_word(kept_names) if armcap_clear else 0, openssl_armcap_clear=armcap_clear,
        openblas_coretype=openblas_coretype(names, kept_names, arch) if "openblasCoretype" in kinds else None,
        onednn_max_isa=onednn_max_isa(names) if "onednnMaxCpuIsa" in kinds and on_x86 else None,
        mkl_instructions=mkl_max_instructions(names) if "mklEnableInstructions" in kinds and on_x86 else None,
        arch=arch or "amd64",
    )
