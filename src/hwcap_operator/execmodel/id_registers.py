"""What an arm64 process learns from the ID registers (MRS) beside its HWCAP words (docs/kernel.md#hwcap-cpuid).

The kernel emulates EL0 MRS of the ID registers from its own system-wide sanitised values; no HWCAP mask, prctl
or inheritance reaches them. So MRS shows the node's features: every HWCAP the kernel sets, except the two no
ID-register field carries (``evtstrm``, the arch timer's; ``cpuid``, the emulation itself). A reader that follows
the kernel's rule (glibc, Go) reads the ID registers only when its own AT_HWCAP has HWCAP_CPUID, and otherwise
keeps to the HWCAP words. The kernel lab's ``idregs`` step measures both against this model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from hwcap_operator.mask import FeatureMask

#: arm64 HWCAPs no ID-register field carries (6.12 ``arm64_elf_hwcaps[]``): MRS never shows them.
NOT_IN_ID_REGISTERS: tuple[str, ...] = ("evtstrm", "cpuid")
_ABSENT_FROM_MRS = FeatureMask.from_names("arm64", NOT_IN_ID_REGISTERS)
HWCAP_CPUID = FeatureMask.from_names("arm64", ["cpuid"])

Reader = Literal["mrs", "hwcap"]


def mrs_view(kernel: FeatureMask) -> FeatureMask:
    """The features the ID registers show on a node whose kernel publishes ``kernel`` (any mask, any process)."""
    return kernel - _ABSENT_FROM_MRS


@dataclass(frozen=True, slots=True)
class IdRegisterRead:
    """One process's view: which source a rule-following reader uses, what it reports, what raw MRS shows, and
    the process's own HWCAP words."""

    reader: Reader
    reported: FeatureMask
    mrs: FeatureMask
    hwcap: FeatureMask

    @property
    def leaked(self) -> FeatureMask:
        """Features the reader reports that the process's HWCAP words hide."""
        return self.reported - self.hwcap


def read_id_registers(kernel: FeatureMask, hwcap: FeatureMask) -> IdRegisterRead:
    """A process whose AT_HWCAP* are ``hwcap`` on a kernel publishing ``kernel``: the rule-following reader reads
    MRS only when ``hwcap`` has HWCAP_CPUID; raw MRS shows the node either way."""
    shown = mrs_view(kernel)
    if "cpuid" in hwcap:
        return IdRegisterRead("mrs", shown, shown, hwcap)
    return IdRegisterRead("hwcap", hwcap, shown, hwcap)


def words_mask(words: Sequence[int]) -> FeatureMask:
    """An arm64 mask from the HWCAP words a kernel or a process's stack carries (AT_HWCAP first)."""
    return FeatureMask.from_words("arm64", *words[:4])
