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
- Arm cores (cortex-a53/-a57/-a72/-a76/-a710, neoverse-n1/-v1/-n2, a64fx): QEMU's CPU models, which are
  ID-register values (``hwcap_operator.features.data_arm_models``, QEMU commits cited there), turned into
  the HWCAPs a Linux 6.12 kernel publishes for them by the kernel's own ``arm64_elf_hwcaps[]`` rule
  (``hwcap_operator.features.idreg_hwcaps``, data generated from the kernel source), with the SSBS erratum
  (3194386) applied as a current kernel does. A preset is what every machine with that core reports, so a
  few features are left out, each with its reason (:data:`ARM_CORE_LEFT_OUT`): options vendors configure
  differently, shown by real dumps of that core in tests/data/profiles. ``<core>+crypto`` keeps the
  optional Cryptographic Extension of the Armv8.0 cores.
- neoverse-v2 (QEMU has no such model): the feature list of archspec-json's ``microarchitectures.json``,
  checked against the Graviton4 dump.
"""

from __future__ import annotations

from hwcap_operator.features.data_amd64 import X86_64_LEVELS
from hwcap_operator.features.data_arm_idregs import KERNEL_RELEASE
from hwcap_operator.features.data_arm_models import ARM_MODELS
from hwcap_operator.features.data_arm_models import QEMU_SOURCE as ARM_QEMU_SOURCE
from hwcap_operator.features.data_x86_models import QEMU_VERSION, X86_MODELS
from hwcap_operator.features.idreg_hwcaps import hwcaps_from_idregs
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

#: Neoverse V2 as archspec-json lists it (QEMU has no V2 model): what Graviton4 and Grace both report.
_NEOVERSE_V2 = (
    "aes", "asimd", "asimddp", "asimdhp", "asimdrdm", "atomics", "cpuid", "crc32", "dcpop", "evtstrm", "fp",
    "fphp", "lrcpc", "pmull", "sha1", "sha2", "asimdfhm", "bf16", "dcpodp", "fcma", "flagm", "i8mm", "ilrcpc",
    "jscvt", "sha3", "sha512", "sve", "svebf16", "svei8mm", "uscat", "flagm2", "frint", "sb", "sve2",
)  # fmt: skip
_CRYPTO_OPTIONAL = "the Cryptographic Extension is optional on this core"
_MTE_SYSTEM = "MTE needs tag memory the SoC provides; no real machine of this generation in the dumps reports it"
#: Per Arm core preset: the QEMU model it derives from, and the features of that model's HWCAPs it leaves out
#: with why. Each reason names the real dump (tests/data/profiles) of that core that lacks the feature.
ARM_CORE_LEFT_OUT: dict[str, tuple[str, dict[str, str]]] = {
    "cortex-a53": ("cortex-a53", dict.fromkeys(("aes", "pmull", "sha1", "sha2"),
                                               f"{_CRYPTO_OPTIONAL} (Raspberry Pi 3 has none)")),
    "cortex-a57": ("cortex-a57", dict.fromkeys(("aes", "pmull", "sha1", "sha2"), _CRYPTO_OPTIONAL)),
    "cortex-a72": ("cortex-a72", dict.fromkeys(("aes", "pmull", "sha1", "sha2"),
                                               f"{_CRYPTO_OPTIONAL} (Raspberry Pi 4 has none; Graviton1 has it)")),
    "cortex-a53+crypto": ("cortex-a53", {}),
    "cortex-a57+crypto": ("cortex-a57", {}),
    "cortex-a72+crypto": ("cortex-a72", {}),
    "cortex-a76": ("cortex-a76", {}),
    "cortex-a710": ("cortex-a710", {"mte": _MTE_SYSTEM}),
    "neoverse-n1": ("neoverse-n1", {}),
    "neoverse-v1": ("neoverse-v1", {}),
    "neoverse-n2": ("neoverse-n2", {
        **dict.fromkeys(("sm3", "sm4", "svesm4"), "SM3/SM4 are optional (the archspec N2 dump has none)"),
        "rng": "FEAT_RNG is optional (neither N2 dump reports rng)",
        **dict.fromkeys(("paca", "pacg"), "pointer authentication is not reported by the archspec N2 dump "
                                          "(hypervisor or kernel configuration)"),
        "bti": "not reported by either N2 dump (hypervisor or kernel configuration)",
        "mte": _MTE_SYSTEM,
        "svepmull": "the GitHub-runner N2 (Azure) reports sveaes but not svepmull",
        **dict.fromkeys(("dit", "dgh"), "the GitHub-runner N2 (Azure) reports neither"),
    }),
    "a64fx": ("a64fx", {}),
}  # fmt: skip


def _arm_core(name: str) -> tuple[str, ...]:
    """The preset's features: the QEMU model's HWCAPs minus what :data:`ARM_CORE_LEFT_OUT` leaves out."""
    model, left_out = ARM_CORE_LEFT_OUT[name]
    return tuple(n for n in hwcaps_from_idregs(ARM_MODELS[model]) if n not in left_out)


#: Where the x86 CPU model presets come from (shown by ``hwcapctl explain presets``).
QEMU_SOURCE = f"QEMU {QEMU_VERSION.removeprefix('QEMU emulator version ')}, target/i386/cpu.c"
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
    for core in ARM_CORE_LEFT_OUT:
        out[core] = ("arm64", _arm_core(core))
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


def preset_kind(name: str) -> str:
    """What a preset is and where its features come from, for people (``hwcapctl explain presets``)."""
    key = name.strip().lower()
    if key.startswith("x86-64-v"):
        return "x86-64 psABI level + the hardware baseline of every CPU of it"
    if key.startswith("armv"):
        return "Arm architecture version (mandatory features)"
    if key in ARM_CORE_LEFT_OUT:
        model = ARM_CORE_LEFT_OUT[key][0]
        return f"Arm core (QEMU model {model}, HWCAPs by the Linux {KERNEL_RELEASE} ID-register rule)"
    if key == "neoverse-v2":
        return "Arm core (archspec-json; QEMU has no Neoverse-V2 model)"
    return f"x86 CPU model ({QEMU_SOURCE})"


def preset_source(name: str) -> str:
    """Where a preset's data was read (the QEMU source and commit, or the project it comes from)."""
    key = name.strip().lower()
    if key in ARM_CORE_LEFT_OUT:
        return f"{ARM_QEMU_SOURCE}; Linux {KERNEL_RELEASE} arch/arm64/kernel/cpufeature.c arm64_elf_hwcaps[]"
    if key == "neoverse-v2":
        return "archspec-json microarchitectures.json"
    if key.startswith("armv"):
        return "LLVM AArch64 architecture-extension lists; lelegard/arm-cpusysregs docs/features.md"
    return QEMU_SOURCE


def preset_left_out(name: str) -> dict[str, str]:
    """Features the preset's source model has that the preset leaves out, with why (empty for most)."""
    entry = ARM_CORE_LEFT_OUT.get(name.strip().lower())
    return dict(entry[1]) if entry else {}
