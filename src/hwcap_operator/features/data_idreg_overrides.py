"""arm64 ID-register override tables (``arch/arm64/kernel/pi/idreg-override.c``), per kernel release, as data.

These boot parameters lower a field of a sanitised ID register before the kernel computes its HWCAPs, so the
field disappears from AT_HWCAP*, /proc/cpuinfo *and* the ID registers a process reads with MRS (the kernel
emulates MRS from the same sanitised value). They act per node, at boot. Facts: docs/kernel.md#idreg-override.

Sources (each table read from the file, nothing typed from memory):
- 6.12: Debian ``linux-source-6.12`` (Makefile 6.12.118), ``arch/arm64/kernel/pi/idreg-override.c``;
  HWCAP dependencies from the same tree's ``arch/arm64/kernel/cpufeature.c`` (``arm64_elf_hwcaps[]``,
  ``ptr_auth_hwcap_{addr,gen}_matches[]``);
- 6.6: GrapheneOS/kernel_common-6.6@bfb7423bece244afdfff7c0393ba8e06cc1da98b
  ``arch/arm64/kernel/idreg-override.c`` (the Android common kernel 6.6, which may carry backports);
- 6.1: GrapheneOS/kernel_common-6.1@3f93799956903b08fa8c72cb26c6bede7627f220
  ``arch/arm64/kernel/idreg-override.c`` (the Android common kernel 6.1; its ``id_aa64pfr0.el0`` and
  ``arm64.no32bit_el0`` may be an Android backport absent from mainline 6.1.y).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

#: Every HWCAP derived from ID_AA64ZFR0_EL1 in 6.12's cpufeature.c: ``pfr0_sve_filter`` zeroes that register.
_SVE_FAMILY: tuple[str, ...] = (
    "sve2", "sve2p1", "sveaes", "svepmull", "svebitperm", "sveb16b16", "svebf16", "sveebf16",
    "svesha3", "svesm4", "svei8mm", "svef32mm", "svef64mm",
)  # fmt: skip
#: Every HWCAP derived from ID_AA64SMFR0_EL1 in 6.12's cpufeature.c: ``pfr1_sme_filter`` zeroes that register.
_SME_FAMILY: tuple[str, ...] = (
    "smefa64", "smelutv2", "sme2p1", "sme2", "smei16i64", "smef64f64", "smei16i32", "smeb16b16",
    "smef16f16", "smef8f16", "smef8f32", "smei8i32", "smef16f32", "smeb16f32", "smebi32i32",
    "smef32f32", "smesf8fma", "smesf8dp4", "smesf8dp2",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class OverrideField:
    """One ``<register>.<field>=<value>`` the kernel accepts, and the HWCAPs that depend on the field.

    ``shift``/``width`` place the field in the 64-bit register (6.12's arch/arm64/tools/sysreg).
    ``provides`` holds (lowest field value the HWCAPs need, their /proc/cpuinfo names): an override to a
    value below that threshold removes them, unless another field also provides them (PAuth: APA, API and
    APA3 each provide ``paca``; the HWCAP goes only when all are lowered). ``side_effect`` names the other
    ID registers the kernel lowers at the same time and ``family`` the HWCAPs read from them, which all go
    when this field is set to 0 whatever else provides them; ``note`` says what else the field does.
    """

    register: str
    field: str
    shift: int
    width: int = 4
    provides: tuple[tuple[int, tuple[str, ...]], ...] = ()
    side_effect: str = ""
    family: tuple[str, ...] = ()
    note: str = ""

    def value_in(self, register_value: int) -> int:
        """This field's value in a raw 64-bit register value (as MRS returns it)."""
        return (register_value >> self.shift) & ((1 << self.width) - 1)

    @property
    def key(self) -> str:
        """``id_aa64pfr0.sve``: the left-hand side of the boot parameter."""
        return f"{self.register}.{self.field}"

    def removed_by(self, value: int) -> frozenset[str]:
        """HWCAP names whose threshold is above ``value`` (before the other providers are considered), plus the
        family when ``value`` is 0."""
        own = {n for threshold, names in self.provides if value < threshold for n in names}
        return frozenset(own | set(self.family)) if value == 0 else frozenset(own)


_FIELDS: tuple[OverrideField, ...] = (
    OverrideField("id_aa64mmfr1", "vh", 8, note="VHE at EL2 (KVM host mode); no HWCAP"),
    OverrideField("id_aa64mmfr2", "varange", 16, note="52-bit virtual addresses (LVA); no HWCAP"),
    OverrideField(
        "id_aa64pfr0",
        "sve",
        32,
        provides=((1, ("sve",)),),
        family=_SVE_FAMILY,
        side_effect="id_aa64zfr0 (every field 0) when set to 0",
    ),
    OverrideField(
        "id_aa64pfr0",
        "el0",
        0,
        note="1 = AArch64-only EL0: no 32-bit processes, so every COMPAT_HWCAP "
        "word goes; the native AT_HWCAP words are unchanged",
    ),
    OverrideField("id_aa64pfr1", "bt", 0, provides=((1, ("bti",)),)),
    OverrideField("id_aa64pfr1", "mte", 8, provides=((2, ("mte",)), (3, ("mte3",)))),
    OverrideField(
        "id_aa64pfr1",
        "sme",
        24,
        provides=((1, ("sme",)),),
        family=_SME_FAMILY,
        side_effect="id_aa64smfr0 (every field 0) when set to 0",
    ),
    OverrideField("id_aa64isar1", "gpi", 28, provides=((1, ("pacg",)),)),
    OverrideField("id_aa64isar1", "gpa", 24, provides=((1, ("pacg",)),)),
    OverrideField("id_aa64isar1", "api", 8, provides=((1, ("paca",)),)),
    OverrideField("id_aa64isar1", "apa", 4, provides=((1, ("paca",)),)),
    OverrideField("id_aa64isar2", "gpa3", 8, provides=((1, ("pacg",)),)),
    OverrideField("id_aa64isar2", "apa3", 12, provides=((1, ("paca",)),)),
    OverrideField("id_aa64isar2", "mops", 16, provides=((1, ("mops",)),)),
    OverrideField("id_aa64smfr0", "smever", 56, provides=((1, ("sme2",)), (2, ("sme2p1",)))),
    OverrideField("id_aa64smfr0", "fa64", 63, width=1, provides=((1, ("smefa64",)),)),
)
FIELDS: Mapping[str, OverrideField] = MappingProxyType({f.key: f for f in _FIELDS})


@dataclass(frozen=True, slots=True)
class OverrideTable:
    """What one kernel release's idreg-override.c accepts: field keys and aliases (alias -> settings)."""

    release: tuple[int, int]
    source: str
    fields: tuple[str, ...]
    aliases: Mapping[str, tuple[tuple[str, int], ...]]
    #: how a value is read: 6.12 takes one hex digit (``parse_hexdigit``), 6.1/6.6 any u64 (``kstrtou64``)
    value_syntax: str = "single hex digit"

    @property
    def name(self) -> str:
        return f"{self.release[0]}.{self.release[1]}"


_PAUTH: tuple[tuple[str, int], ...] = tuple(
    (k, 0) for k in ("id_aa64isar1.gpi", "id_aa64isar1.gpa", "id_aa64isar1.api", "id_aa64isar1.apa",
                     "id_aa64isar2.gpa3", "id_aa64isar2.apa3")
)  # fmt: skip
_COMMON_ALIASES: dict[str, tuple[tuple[str, int], ...]] = {
    "arm64.nosme": (("id_aa64pfr1.sme", 0),),
    "arm64.nobti": (("id_aa64pfr1.bt", 0),),
    "arm64.nopauth": _PAUTH,
    "arm64.nomte": (("id_aa64pfr1.mte", 0),),
    "arm64.no32bit_el0": (("id_aa64pfr0.el0", 1),),
}
_V61_FIELDS = ("id_aa64mmfr1.vh", "id_aa64pfr0.sve", "id_aa64pfr0.el0", "id_aa64pfr1.bt", "id_aa64pfr1.mte",
               "id_aa64pfr1.sme", "id_aa64isar1.gpi", "id_aa64isar1.gpa", "id_aa64isar1.api", "id_aa64isar1.apa",
               "id_aa64isar2.gpa3", "id_aa64isar2.apa3", "id_aa64smfr0.fa64")  # fmt: skip
_V66_FIELDS = (*_V61_FIELDS, "id_aa64isar2.mops", "id_aa64smfr0.smever")
_V612_FIELDS = (*_V66_FIELDS, "id_aa64mmfr2.varange")

TABLES: tuple[OverrideTable, ...] = (
    OverrideTable(
        (6, 1),
        "GrapheneOS/kernel_common-6.1@3f93799956903b08fa8c72cb26c6bede7627f220:arch/arm64/kernel/idreg-override.c",
        _V61_FIELDS,
        MappingProxyType({**_COMMON_ALIASES, "arm64.nosve": (("id_aa64pfr0.sve", 0), ("id_aa64pfr1.sme", 0))}),
        value_syntax="kstrtou64 (decimal or 0x hex)",
    ),
    OverrideTable(
        (6, 6),
        "GrapheneOS/kernel_common-6.6@bfb7423bece244afdfff7c0393ba8e06cc1da98b:arch/arm64/kernel/idreg-override.c",
        _V66_FIELDS,
        MappingProxyType(
            {**_COMMON_ALIASES, "arm64.nosve": (("id_aa64pfr0.sve", 0),), "arm64.nomops": (("id_aa64isar2.mops", 0),)}
        ),
        value_syntax="kstrtou64 (decimal or 0x hex)",
    ),
    OverrideTable(
        (6, 12),
        "Debian linux-source-6.12 (6.12.118):arch/arm64/kernel/pi/idreg-override.c",
        _V612_FIELDS,
        MappingProxyType(
            {
                **_COMMON_ALIASES,
                "arm64.nosve": (("id_aa64pfr0.sve", 0),),
                "arm64.nomops": (("id_aa64isar2.mops", 0),),
                "arm64.nolva": (("id_aa64mmfr2.varange", 0),),
            }
        ),
    ),
)
