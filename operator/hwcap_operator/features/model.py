"""The shape of one catalog entry, and the auxv facts every table is keyed by.

A feature is identified by (arch, word, bit): the word is the index of the auxv HWCAP entry
(0..3 = AT_HWCAP..AT_HWCAP4), because that is what the kernel passes and what a mask can hide.
x86 CPUID features that no HWCAP word carries have ``word = bit = None``: the operator still has
to talk about them (baselines, fallbacks), it just cannot hide them with a HWCAP mask.
"""

from __future__ import annotations

from dataclasses import dataclass

from hwcap_operator.arch import Arch
from hwcap_operator.keys import NFD_CPUID_LABEL_PREFIX

#: auxv entry types of the four HWCAP words, indexed by word (include/uapi/linux/auxvec.h).
AT_HWCAP = 16
AT_HWCAP2 = 26
AT_HWCAP3 = 29
AT_HWCAP4 = 30
HWCAP_AUXV_TYPES: tuple[int, int, int, int] = (AT_HWCAP, AT_HWCAP2, AT_HWCAP3, AT_HWCAP4)
#: Lower-case word names used in canonical strings and unknown-bit names ("hwcap2.bit5").
WORD_NAMES: tuple[str, str, str, str] = ("hwcap", "hwcap2", "hwcap3", "hwcap4")
N_WORDS = 4
WORD_BITS = 64

#: How many HWCAP words each arch's kernel provides (ELF_HWCAPn defined), kernel-facts.md §2.5/§3.
#: arm64: ELF_HWCAP..ELF_HWCAP3 (no ELF_HWCAP4); x86: ELF_HWCAP + ELF_HWCAP2; powerpc: HWCAP + HWCAP2
#: (whether newer powerpc defines HWCAP3/4 is unverified, §7); s390x and riscv: AT_HWCAP only.
KERNEL_HWCAP_WORDS: dict[Arch, int] = {"arm64": 3, "amd64": 2, "ppc64le": 2, "s390x": 1, "riscv64": 1}


@dataclass(frozen=True, slots=True)
class Feature:
    """One CPU feature as the kernel, /proc/cpuinfo, NFD and userspace runtimes spell it.

    ``name`` is the canonical lower-case /proc/cpuinfo spelling and the key users write in masks.
    ``word``/``bit`` are None for x86 CPUID-only features (no HWCAP carries them). ``compat`` marks
    the arm64 AArch32 tables (COMPAT_HWCAP/COMPAT_HWCAP2), whose bits mean different things.
    ``security`` marks features whose loss weakens a process (pointer auth, shadow stacks, ...):
    the operator refuses or warns when a mask would hide them.
    ``openssl`` is (vector index LV0..LV4, bit within that 64-bit vector) of OPENSSL_ia32cap.
    """

    arch: Arch
    name: str
    word: int | None
    bit: int | None
    macro: str | None = None
    nfd: str | None = None
    security: bool = False
    compat: bool = False
    glibc: str | None = None
    godebug: str | None = None
    openssl: tuple[int, int] | None = None
    aliases: tuple[str, ...] = ()
    note: str = ""

    @property
    def in_hwcap(self) -> bool:
        """True when a HWCAP word carries the feature, i.e. a HWCAP mask can hide it."""
        return self.word is not None and self.bit is not None

    @property
    def bitmask(self) -> int:
        """The feature's bit as a value within its word (0 for CPUID-only features)."""
        return 0 if self.bit is None else 1 << self.bit

    @property
    def nfd_label(self) -> str | None:
        """The full NFD label key (``feature.node.kubernetes.io/cpu-cpuid.<NFD>``) or None."""
        return None if self.nfd is None else NFD_CPUID_LABEL_PREFIX + self.nfd
