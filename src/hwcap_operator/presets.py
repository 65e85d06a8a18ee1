"""Ready-made masks: x86-64 psABI levels, x86 CPU models, arm64 architecture versions and Arm cores.

Users name a preset instead of typing bits ("mask: x86-64-v3"), and tests compare real dumps with
them. Every preset is a list of canonical feature names resolved through the catalog, so a typo
fails loudly at import time.

Sources:
- x86-64-v1..v4: the psABI levels (``hwcap_operator.features.data_amd64.X86_64_LEVELS``), cumulative,
  plus the x86-64 hardware baseline of that level: what every QEMU CPU model meeting the level has (tsc,
  pae, nx, ... at v1; aes, pclmulqdq, rdrand, ... at v3). A psABI list names only what compilers may
  emit; a preset that dropped the rest would hide AES-NI from every v3 machine (and tell Go
  ``cpu.aes=off``: table-based software AES), though every CPU of that level has it.
- x86 CPU models (``haswell``, ``skylake-server``, ``icelake-server``, ``epyc-rome``, ...): QEMU's model
  definitions (``hwcap_operator.features.data_x86_models``, generated from QEMU, version cited there),
  newest version of each model, userspace features only. Hypervisor users level to these names.
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
from hwcap_operator.features.data_x86_models import QEMU_VERSION, X86_MODELS
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
#: Cortex-A53/A72 (Armv8.0): the crypto extension is optional (Raspberry Pi 3/4 have none, Graviton1
#: has it), so the model is what every implementation has.
#: Where the x86 CPU model presets come from (shown by ``hwcapctl explain presets``).
QEMU_SOURCE = f"QEMU {QEMU_VERSION.removeprefix('QEMU emulator version ')}, target/i386/cpu.c"
_CORTEX_A_V8_0 = ("fp", "asimd", "evtstrm", "crc32", "cpuid")
#: QEMU models that are not CPUs (qemu64, kvm64): used for the level baselines, not offered as presets.
_NOT_CPUS = ("qemu64", "kvm64")
#: Left out of the level baselines although every QEMU model has them: AT_HWCAP2 bits say what the kernel
#: enabled (FSGSBASE needs Linux 5.9), not what the CPU has; Xen PV guests hide pse, mtrr, pge, pse36 and
#: rdtscp (tests/data/profiles/x86_64-intel-cascadelake-platinum8280-xen-guest.txt).
_NOT_LEVEL_BASELINE = frozenset({"fsgsbase", "ring3mwait", "pse", "mtrr", "pge", "pse36", "rdtscp"})


def _model_name(qemu_model: str) -> str:
    """``Skylake-Server-v5`` -> ``skylake-server``."""
    return qemu_model.rsplit("-v", 1)[0].lower()


def _level_presets() -> dict[str, tuple[str, ...]]:
    """Each psABI level: its cumulative list plus what every QEMU model meeting it has."""
    out: dict[str, tuple[str, ...]] = {}
    acc: tuple[str, ...] = ()
    for level, names in X86_64_LEVELS.items():
        acc = (*acc, *names)
        meeting = [set(m) for m in X86_MODELS.values() if set(acc) <= set(m)]
        # a higher level's psABI features stay out (QEMU's Opteron_G1 has SSE3, the first K8s had not)
        later = {n for names_ in X86_64_LEVELS.values() for n in names_} - set(acc)
        common = (set.intersection(*meeting) if meeting else set()) - _NOT_LEVEL_BASELINE - later
        first_model = next(m for m in X86_MODELS.values() if set(acc) <= set(m))
        out[level] = (*acc, *(n for n in first_model if n in common and n not in acc))
    return out


def _definitions() -> dict[str, tuple[str, tuple[str, ...]]]:
    out: dict[str, tuple[str, tuple[str, ...]]] = {}
    for level, names in _level_presets().items():
        out[level] = ("amd64", names)
    for model, names in X86_MODELS.items():
        if _model_name(model) not in _NOT_CPUS:
            out[_model_name(model)] = ("amd64", names)
    acc: tuple[str, ...] = ()
    for version, names in _ARM_VERSIONS:
        acc = (*acc, *names)
        out[version] = ("arm64", acc)
        if version == "armv8.5":
            out["armv9.0"] = ("arm64", (*acc, *_ARMV9_0_EXTRA))
    out["neoverse-n1"] = ("arm64", _NEOVERSE_N1)
    out["neoverse-v1"] = ("arm64", _NEOVERSE_V1)
    out["neoverse-n2"] = ("arm64", _NEOVERSE_V2)
    out["neoverse-v2"] = ("arm64", _NEOVERSE_V2)
    out["cortex-a53"] = ("arm64", _CORTEX_A_V8_0)
    out["cortex-a72"] = ("arm64", _CORTEX_A_V8_0)
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
