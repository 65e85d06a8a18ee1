"""Derive the kernel's ID-register -> HWCAP mapping from a Linux source tree (arm64), as product data.

Run by hand when the mapping should follow another kernel:
``python tests/data/kernel_idregs/extract.py ~/.cache/hwcap-operator/kernel/src-6.12.118-1_deb12u1``
(the kernel lab unpacks Debian's linux-source-6.12 there). It reads ``arch/arm64/kernel/cpufeature.c``
(``arm64_elf_hwcaps[]`` and the PAuth match lists), ``arch/arm64/tools/sysreg`` (field positions, signedness
and enum values) and ``arch/arm64/kernel/cpuinfo.c`` (``hwcap_str[]``: the /proc/cpuinfo names), and writes
``src/hwcap_operator/features/data_arm_idregs.py``. tests/unit/test_arm_models.py checks the written table
against hand-decoded rows of the same source, so an edit of either shows.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

TABLE = Path(__file__).resolve().parents[3] / "src" / "hwcap_operator" / "features" / "data_arm_idregs.py"


def sysreg_fields(text: str) -> dict[tuple[str, str], tuple[int, int, bool, dict[str, int]]]:
    """(register, field) -> (shift, width, signed, enum name -> value) from arch/arm64/tools/sysreg."""
    out: dict[tuple[str, str], tuple[int, int, bool, dict[str, int]]] = {}
    reg = ""
    current: tuple[str, int, int, bool, dict[str, int]] | None = None
    for line in text.splitlines():
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "Sysreg":
            reg = parts[1]
        elif parts[0] in {"UnsignedEnum", "SignedEnum", "Enum"} and reg:
            hi, _, low = parts[1].partition(":")
            hi, lo = int(hi), int(low or hi)
            current = (parts[2], lo, hi - lo + 1, parts[0] == "SignedEnum", {})
        elif parts[0] == "EndEnum" and current is not None:
            name, lo, width, signed, values = current
            out[(reg, name)] = (lo, width, signed, values)
            current = None
        elif current is not None and parts[0].startswith("0b") and len(parts) > 1:
            current[4][parts[1]] = int(parts[0], 2)
        elif parts[0] == "EndSysreg":
            reg = ""
    return out


def cpuinfo_names(text: str) -> dict[str, str]:
    """KERNEL_HWCAP_X -> its /proc/cpuinfo name (hwcap_str[] in cpuinfo.c)."""
    return dict(re.findall(r'\[(KERNEL_HWCAP_\w+)\]\s*=\s*"(\w+)"', text))


def rows(cpufeature: str, fields: dict[tuple[str, str], tuple[int, int, bool, dict[str, int]]],
         names: dict[str, str]) -> list[tuple[str, str, int, int, bool, int, str, str]]:  # fmt: skip
    """(cpuinfo name, register, shift, width, signed, min value, requires, config guard) per match."""
    lists: dict[str, list[tuple[str, str, str]]] = {}
    for name, body in re.findall(r"struct arm64_cpu_capabilities (ptr_auth_hwcap_\w+)\[\] = \{(.*?)\n\};", cpufeature,
                                 re.S):  # fmt: skip
        lists[name] = re.findall(r"HWCAP_CPUID_MATCH\((\w+), (\w+), (\w+)\)", body)
    table = cpufeature.split("arm64_elf_hwcaps[] = {", 1)[1].split("\n};", 1)[0]
    out: list[tuple[str, str, int, int, bool, int, str, str]] = []
    guard = ""

    def add(reg: str, field: str, minimum: str, cap: str, requires: str) -> None:
        shift, width, signed, values = fields[(reg, field)]
        out.append((names[cap], reg, shift, width, signed, values[minimum], requires, guard))

    for line in table.splitlines():
        line = line.strip()
        if line.startswith("#ifdef"):
            guard = line.split()[1]
        elif line.startswith("#endif"):
            guard = ""
        elif m := re.match(r"HWCAP_CAP\((\w+), (\w+), (\w+), CAP_HWCAP, (\w+)\)", line):
            add(*m.groups(), "")
        elif m := re.match(r"HWCAP_CAP_MATCH_ID\(has_(sve|sme)_feature, (\w+), (\w+), (\w+), CAP_HWCAP, (\w+)\)", line):
            add(m[2], m[3], m[4], m[5], m[1])
        elif m := re.match(r"HWCAP_MULTI_CAP\((\w+), CAP_HWCAP, (\w+)\)", line):
            for reg, field, minimum in lists[m[1]]:
                add(reg, field, minimum, m[2], "")
    return out


def ssbs_erratum_parts(errata: str, cputype: str) -> list[tuple[int, int]]:
    """(implementer, part number) of every core in ``erratum_spec_ssbs_list[]`` (erratum 3194386): on those the
    kernel clears ID_AA64PFR1_EL1.SSBS from the user-visible mask, so HWCAP_SSBS goes (``user_feature_fixup``)."""
    body = errata.split("erratum_spec_ssbs_list[] = {", 1)[1].split("};", 1)[0]
    consts = {k: int(v, 16) for k, v in re.findall(r"#define (\w+)\s+(0x[0-9A-Fa-f]+)", cputype)}
    midrs = dict(re.findall(r"#define (MIDR_\w+)\s+MIDR_CPU_MODEL\((\w+, \w+)\)", cputype))
    out = []
    for name in re.findall(r"MIDR_ALL_VERSIONS\((MIDR_\w+)\)", body):
        imp, part = midrs[name].split(", ")
        out.append((consts[imp], consts[part]))
    return out


def main() -> None:
    src = Path(sys.argv[1])
    fields = sysreg_fields((src / "arch/arm64/tools/sysreg").read_text())
    names = cpuinfo_names((src / "arch/arm64/kernel/cpuinfo.c").read_text())
    table = rows((src / "arch/arm64/kernel/cpufeature.c").read_text(), fields, names)
    ssbs = ssbs_erratum_parts(
        (src / "arch/arm64/kernel/cpu_errata.c").read_text(), (src / "arch/arm64/include/asm/cputype.h").read_text()
    )
    version = re.findall(r"^(VERSION|PATCHLEVEL|SUBLEVEL) = (\d+)", (src / "Makefile").read_text(), re.M)
    release = ".".join(v for _, v in version)
    lines = [
        '"""The arm64 kernel\'s ID-register -> HWCAP mapping, as data: GENERATED, do not edit.',
        "",
        f"Source: Linux {release} (Debian linux-source-6.12, the kernel lab's tree), arch/arm64/kernel/cpufeature.c",
        "``arm64_elf_hwcaps[]`` (AT_HWCAP/AT_HWCAP2 rows; ``ptr_auth_hwcap_{addr,gen}_matches[]`` for paca/pacg),",
        "field positions and enum values from arch/arm64/tools/sysreg, names from cpuinfo.c ``hwcap_str[]``;",
        "written by tests/data/kernel_idregs/extract.py. The kernel sets a HWCAP when the sanitised register's",
        'field is at least ``minimum`` (signed fields compared signed: 0xf is -1, "not implemented"); several rows',
        "of one name mean any of them suffices (PAuth: APA, APA3 or API). ``requires`` names the HWCAP whose",
        "support the row also needs (``has_sve_feature``/``has_sme_feature``); ``config`` the #ifdef around it.",
        "Not in this table: evtstrm (the arch timer driver, CONFIG_ARM_ARCH_TIMER_EVTSTREAM) and cpuid (set",
        "whenever the kernel emulates MRS, i.e. always). ``SSBS_ERRATUM_PARTS``: the cores of",
        "cpu_errata.c ``erratum_spec_ssbs_list[]`` (erratum 3194386, CONFIG_ARM64_ERRATUM_3194386, default y), on",
        "which ``user_feature_fixup()`` hides ID_AA64PFR1_EL1.SSBS, so the kernel publishes no ``ssbs``.",
        '"""',
        "",
        "from __future__ import annotations",
        "",
        f'KERNEL_RELEASE = "{release}"',
        "",
        "#: (cpuinfo name, register, shift, width, signed, minimum, requires, config)",
        "ROWS: tuple[tuple[str, str, int, int, bool, int, str, str], ...] = (",
        *(f"    {r!r}," for r in table),
        ")",
        "",
        "#: (MIDR implementer, MIDR part number) of the cores on which the kernel hides SSBS (erratum 3194386).",
        "SSBS_ERRATUM_PARTS: tuple[tuple[int, int], ...] = (",
        *(f"    ({imp:#04x}, {part:#05x})," for imp, part in ssbs),
        ")",
    ]
    TABLE.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
