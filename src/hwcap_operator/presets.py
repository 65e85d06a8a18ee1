"""Ready-made masks: x86-64 psABI levels, arm64 architecture versions and Neoverse cores.

Users name a preset instead of typing bits ("mask: x86-64-v3"), and tests compare real dumps with
them. Every preset is a list of canonical feature names resolved through the catalog, so a typo
fails loudly at import time.

Sources:
- x86-64-v1..v4: the psABI levels (``hwcap_operator.features.data_amd64.X86_64_LEVELS``), cumulative.
- armv8.0..armv8.9, armv9.0: features *mandatory* at each version that Linux reports as a HWCAP, from
  LLVM's AArch64 architecture-extension lists (``HasV8_<n>aOps``: v8.1 CRC/LSE/RDM, v8.2 CCPP,
  v8.3 PAuth/RCPC/JSConv/ComplxNum, v8.4 DotProd/DIT/LSE2/RCPC_IMMO/FlagM, v8.5 SB/SSBS/AltFPCmp/
  FRInt3264/CacheDeepPersist/BTI, v8.6 BF16/I8MM/ECV, v8.7 WFxT, v8.8 HBC/MOPS, v8.9 CSSC; v9.0 =
  v8.5 + SVE2) and the Arm feature list in lelegard/arm-cpusysregs ``docs/features.md`` (which adds AFP
  at v8.7). Optional features (AES, SHA, FP16, SVE on v8.x, RNG, ...) are
  not included: a preset is what every conforming CPU has. Linux-only bits (evtstrm, cpuid) are not
  architecture features and are left out.
- neoverse-*: the feature lists of archspec-json's ``microarchitectures.json`` (archspec project): conservative
  sets every implementation of the core reports on a current kernel. They omit features vendors
  configure differently (e.g. Graviton4 has no sm3/sm4, Grace no paca/pacg/bti, Axion no ssbs);
  tests check each against the real dumps in tests/data/profiles.
"""

from __future__ import annotations

from hwcap_operator.features.data_amd64 import X86_64_LEVELS
from hwcap_operator.mask import FeatureMask

_ARM_VERSIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("armv8.0", ("fp", "asimd")),
    ("armv8.1", ("crc32", "atomics", "asimdrdm")),
    ("armv8.2", ("dcpop",)),
    ("armv8.3", ("paca", "pacg", "lrcpc", "jscvt", "fcma")),
    ("armv8.4", ("asimddp", "dit", "uscat", "ilrcpc", "flagm")),
    ("armv8.5", ("sb", "ssbs", "flagm2", "frint", "dcpodp", "bti")),
    ("armv8.6", ("bf16", "i8mm", "ecv")),
    ("armv8.7", ("wfxt", "afp")),
    ("armv8.8", ("hbc", "mops")),
    ("armv8.9", ("cssc",)),
)
#: Armv9.0 is Armv8.5 plus SVE2 (which implies SVE).
_ARMV9_0_EXTRA: tuple[str, ...] = ("sve", "sve2")

_NEOVERSE_N1 = (
    "aes", "asimd", "asimddp", "asimdhp", "asimdrdm", "atomics", "cpuid", "crc32", "dcpop",
    "evtstrm", "fp", "fphp", "lrcpc", "pmull", "sha1", "sha2",
)
_NEOVERSE_V1 = (*_NEOVERSE_N1, "asimdfhm", "bf16", "dcpodp", "dgh", "dit", "fcma", "flagm", "i8mm",
                "ilrcpc", "jscvt", "rng", "sha3", "sha512", "sve", "svebf16", "svei8mm", "uscat")
_NEOVERSE_V2 = (*(n for n in _NEOVERSE_V1 if n not in {"dgh", "dit", "rng"}), "flagm2", "frint", "sb", "sve2")


def _definitions() -> dict[str, tuple[str, tuple[str, ...]]]:
    out: dict[str, tuple[str, tuple[str, ...]]] = {}
    acc: tuple[str, ...] = ()
    for level, names in X86_64_LEVELS.items():
        acc = (*acc, *names)
        out[level] = ("amd64", acc)
    acc = ()
    for version, names in _ARM_VERSIONS:
        acc = (*acc, *names)
        out[version] = ("arm64", acc)
        if version == "armv8.5":
            out["armv9.0"] = ("arm64", (*acc, *_ARMV9_0_EXTRA))
    out["neoverse-n1"] = ("arm64", _NEOVERSE_N1)
    out["neoverse-v1"] = ("arm64", _NEOVERSE_V1)
    out["neoverse-n2"] = ("arm64", _NEOVERSE_V2)
    out["neoverse-v2"] = ("arm64", _NEOVERSE_V2)
    return out


_DEFS = _definitions()
_MASKS: dict[str, FeatureMask] = {name: FeatureMask.from_names(a, names) for name, (a, names) in _DEFS.items()}


class UnknownPresetError(KeyError):
    """A preset name that does not exist; the message lists the valid ones."""

    def __str__(self) -> str:
        return str(self.args[0])


def preset_names(arch: str | None = None) -> list[str]:
    """All preset names (of ``arch`` when given), in definition order."""
    return [n for n, m in _MASKS.items() if arch is None or m.arch == FeatureMask.empty(arch).arch]


def preset(name: str) -> FeatureMask:
    """The mask of preset ``name`` (case-insensitive); raises :class:`UnknownPresetError`."""
    key = name.strip().lower()
    if key not in _MASKS:
        raise UnknownPresetError(f"unknown preset {name!r}; known: {', '.join(_MASKS)}")
    return _MASKS[key]
