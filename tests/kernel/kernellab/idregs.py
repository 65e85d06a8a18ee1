"""HWCAP_CPUID in the lab (issue 15 item 6, docs/kernel.md#hwcap-cpuid): what a masked process learns from the ID
registers, with HWCAP_CPUID kept and cleared, on the real kernel and in the exec model.

Two scenarios run in every arm64 boot: ``/hwcap-exec`` applies a mask hiding aes, pmull, atomics and sve, once
keeping HWCAP_CPUID (``idregs-cpuid-kept``) and once clearing it (``idregs-cpuid-cleared``, whose exec'd child
reads too); each process then reads ID_AA64ISAR0_EL1/ID_AA64PFR0_EL1 the way a rule-following reader does
(MRS only with HWCAP_CPUID) and with MRS regardless. The register values are decoded with the kernel's own
rule, read from the lab's kernel tree (``arm64_elf_hwcaps[]`` rows of those two registers, field positions from
``arch/arm64/tools/sysreg``), not with the product's tables.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Any

from hwcap_operator.execmodel.kernel import Binary
from hwcap_operator.execmodel.scenarios import Observation, Scenario, Step
from hwcap_operator.features import catalog

from .build import LabError, source_tree

#: AT_HWCAP bits the scenarios hide: aes (3), pmull (4), atomics (8), sve (22); HWCAP_CPUID is bit 11.
HIDDEN = ("aes", "pmull", "atomics", "sve")
_HIDE_BITS = (1 << 3) | (1 << 4) | (1 << 8) | (1 << 22)
CPUID_BIT = 1 << 11
_ALL = 0xFFFFFFFFFFFFFFFF
MASK_KEPT: tuple[int, int] = (_ALL & ~_HIDE_BITS, _ALL)
MASK_CLEARED: tuple[int, int] = (MASK_KEPT[0] & ~CPUID_BIT, _ALL)
REGISTERS = {"id_aa64isar0": "ID_AA64ISAR0_EL1", "id_aa64pfr0": "ID_AA64PFR0_EL1"}


def scenarios() -> list[Scenario]:
    """The two scenarios (arm64 guests only)."""
    native = Binary("/probe")
    spawn = Step("spawn", "init", binary=native, uid=65534)
    return [
        Scenario("idregs-cpuid-kept", "hwcap-exec hides aes/pmull/atomics/sve, keeps HWCAP_CPUID; MRS reveals them",
                 (spawn, Step("hwcap_exec", "init", mask=MASK_KEPT, binary=native), Step("idregs", "init"))),
        Scenario("idregs-cpuid-cleared", "the same mask without HWCAP_CPUID: a rule-following reader backs off; "
                 "raw MRS still works, in the exec'd child too",
                 (spawn, Step("hwcap_exec", "init", mask=MASK_CLEARED, binary=native), Step("idregs", "init"),
                  Step("fork", "init", child="c1"), Step("exec", "c1", binary=native), Step("idregs", "c1"))),
    ]  # fmt: skip


@dataclass(frozen=True)
class FieldRule:
    """One ``HWCAP_CAP(reg, field, value, ...)`` row: the HWCAP is set when the field is at least ``minimum``."""

    name: str
    register: str
    shift: int
    width: int
    signed: bool
    minimum: int

    def present(self, value: int) -> bool:
        raw = (value >> self.shift) & ((1 << self.width) - 1)
        field = raw - (1 << self.width) if self.signed and raw >> (self.width - 1) else raw
        return field >= self.minimum


def _sysreg_fields(text: str, register: str) -> dict[str, tuple[int, int, bool, dict[str, int]]]:
    """field -> (shift, width, signed, {enum name: value}) of one register in arch/arm64/tools/sysreg."""
    block = re.search(rf"^Sysreg\s+{register}\b.*?^EndSysreg", text, re.M | re.S)
    if block is None:
        raise LabError(f"arch/arm64/tools/sysreg has no {register}")
    out: dict[str, tuple[int, int, bool, dict[str, int]]] = {}
    for m in re.finditer(r"^(Signed|Unsigned)Enum\s+(\d+):(\d+)\s+(\w+)\n(.*?)^EndEnum", block.group(0), re.M | re.S):
        kind, high, low, field, body = m.groups()
        values = {name: int(bits, 2) for bits, name in re.findall(r"0b([01]+)\s+(\w+)", body)}
        width = int(high) - int(low) + 1
        signed = kind == "Signed"
        values = {k: v - (1 << width) if signed and v >> (width - 1) else v for k, v in values.items()}
        out[field] = (int(low), width, signed, values)
    return out


@cache
def field_rules() -> tuple[FieldRule, ...]:
    """The kernel's HWCAP rules for ID_AA64ISAR0_EL1 and ID_AA64PFR0_EL1, read from the lab's kernel tree."""
    tree = source_tree()
    cpufeature = (tree / "arch/arm64/kernel/cpufeature.c").read_text()
    sysreg = (tree / "arch/arm64/tools/sysreg").read_text()
    rules: list[FieldRule] = []
    for register in REGISTERS.values():
        fields = _sysreg_fields(sysreg, register)
        for field, value, macro in re.findall(
            rf"HWCAP_CAP\({register}, (\w+), (\w+), CAP_HWCAP, KERNEL_HWCAP_(\w+)\)", cpufeature
        ):
            shift, width, signed, values = fields[field]
            feature = catalog.find("arm64", macro.lower())
            if feature is None:
                raise LabError(f"KERNEL_HWCAP_{macro} ({register}.{field}) is not in the feature catalog")
            rules.append(FieldRule(feature.name, register, shift, width, signed, values[value]))
    if len({r.name for r in rules}) < 15:
        raise LabError(f"only {len(rules)} HWCAP rules found for {', '.join(REGISTERS.values())}: parser out of date?")
    return tuple(rules)


def decode(registers: dict[str, Any]) -> set[str]:
    """Feature names the ID_AA64ISAR0/PFR0 values (the probe's hex strings) imply."""
    values = {REGISTERS[k]: int(v, 16) for k, v in registers.items() if k in REGISTERS}
    if set(values) != set(REGISTERS.values()):
        raise LabError(f"expected {sorted(REGISTERS)} in the probe's line, got {sorted(registers)}")
    return {r.name for r in field_rules() if r.present(values[r.register])}


def decodable() -> set[str]:
    """Every feature these two registers can show."""
    return {r.name for r in field_rules()}


def compare(obs: Observation, line: dict[str, Any], where: str) -> list[str]:
    """Model vs guest for one ``idregs`` step: the reader's choice, and what raw MRS shows (both registers)."""
    problems: list[str] = []
    if obs.reader != line.get("reader"):
        problems.append(f"{where}: reader model {obs.reader} guest {line.get('reader')}")
    if obs.mrs is not None:
        model = {n for n in _names(obs.mrs) if n in decodable()}
        guest = decode(line["mrs"])
        if model != guest:
            problems.append(f"{where}: MRS model {sorted(model)} guest {sorted(guest)}")
    regs = line.get("reader_regs") or {}
    if (line.get("reader") == "mrs") != bool(regs):
        problems.append(f"{where}: reader {line.get('reader')} but reader_regs {regs}")
    if regs and decode(regs) != decode(line["mrs"]):
        problems.append(f"{where}: the reader's registers {regs} differ from the raw read {line['mrs']}")
    return problems


def _names(words: tuple[int, ...]) -> list[str]:
    out: list[str] = []
    for i, w in enumerate(words):
        out += catalog.bit_names("arm64", i, w)
    return out
