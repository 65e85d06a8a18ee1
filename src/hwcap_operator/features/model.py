"""The shape of one catalog entry, and the auxv facts every table is keyed by.

A feature is identified by (arch, word, bit): the word is the index of the auxv HWCAP entry
(0..3 = AT_HWCAP..AT_HWCAP4), because that is what the kernel passes and what a mask can hide.
x86 CPUID features that no HWCAP word carries have ``word = bit = None``: the operator still has
to talk about them (baselines, fallbacks), it just cannot hide them with a HWCAP mask.
"""

from __future__ import annotations

from dataclasses import dataclass

from hwcap_operator.arch import Arch

# Re-exported under their catalog names (``X as X``): the numbers live only in hwcap_operator.auxv.
from hwcap_operator.auxv import AT_HWCAP as AT_HWCAP
from hwcap_operator.auxv import AT_HWCAP2 as AT_HWCAP2
from hwcap_operator.auxv import AT_HWCAP3 as AT_HWCAP3
from hwcap_operator.auxv import AT_HWCAP4 as AT_HWCAP4
from hwcap_operator.auxv import HWCAP_TYPES
from hwcap_operator.auxv import KERNEL_HWCAP_WORDS as KERNEL_HWCAP_WORDS
from hwcap_operator.keys import NFD_CPUID_LABEL_PREFIX

#: auxv entry types of the four HWCAP words, indexed by word: auxv.HWCAP_TYPES under the catalog's name.
HWCAP_AUXV_TYPES: tuple[int, int, int, int] = HWCAP_TYPES
#: Lower-case word names used in canonical strings and unknown-bit names ("hwcap2.bit5").
WORD_NAMES: tuple[str, str, str, str] = ("hwcap", "hwcap2", "hwcap3", "hwcap4")
N_WORDS = len(HWCAP_TYPES)
WORD_BITS = 64


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
