"""The HWCAPs an arm64 Linux kernel publishes for given ID-register values (its ``arm64_elf_hwcaps[]`` rule).

Used to turn QEMU's CPU models, which are ID-register values, into feature sets, and to say which HWCAPs an
ID register read with MRS reveals. The mapping is data (:mod:`.data_arm_idregs`, generated from Linux 6.12);
this module only applies it: a row matches when its field is at least the row's minimum (signed fields
compared signed), a HWCAP is set when any of its rows matches and the HWCAP it ``requires`` is set too.
"""

from __future__ import annotations

from collections.abc import Mapping

from hwcap_operator.features.data_arm_idregs import ROWS, SSBS_ERRATUM_PARTS


def field_value(value: int, shift: int, width: int, signed: bool) -> int:
    """One ID-register field, sign-extended when the kernel treats it as signed (FP, AdvSIMD: 0xf = absent)."""
    raw = (value >> shift) & ((1 << width) - 1)
    return raw - (1 << width) if signed and raw >> (width - 1) else raw


def midr_part(midr: int) -> tuple[int, int]:
    """(implementer, part number) of a MIDR_EL1 value."""
    return (midr >> 24) & 0xFF, (midr >> 4) & 0xFFF


def hwcaps_from_idregs(
    registers: Mapping[str, int], *, ssbs_erratum: bool = True, evtstrm: bool = True
) -> tuple[str, ...]:
    """The /proc/cpuinfo names the kernel would publish, in the kernel's row order.

    ``registers`` maps ``ID_AA64ISAR0_EL1``, ... (and ``MIDR_EL1``) to values; a missing register reads 0.
    ``ssbs_erratum``: the kernel has CONFIG_ARM64_ERRATUM_3194386 (default y) and so hides ``ssbs`` on the
    cores of its list. ``evtstrm``: the arch timer's event stream is on (CONFIG_ARM_ARCH_TIMER_EVTSTREAM,
    default y). ``cpuid`` is always published: the kernel always emulates MRS of the ID registers.
    """
    matched: dict[str, str] = {}
    for name, register, shift, width, signed, minimum, requires, _config in ROWS:
        if name not in matched and field_value(registers.get(register, 0), shift, width, signed) >= minimum:
            matched[name] = requires
    names = [n for n, req in matched.items() if not req or req in matched]
    if ssbs_erratum and midr_part(registers.get("MIDR_EL1", 0)) in SSBS_ERRATUM_PARTS:
        names = [n for n in names if n != "ssbs"]
    return (*names, *(("evtstrm",) if evtstrm else ()), "cpuid")
