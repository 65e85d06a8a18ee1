"""Arm CPU models as QEMU defines them: MIDR and the AArch64 ID-register values of each model, as data.

QEMU defines a CPU model by its ID registers, not by a feature list; the HWCAPs a Linux guest (or a real
machine with that core) is given follow from them through the kernel's mapping
(:mod:`hwcap_operator.features.idreg_hwcaps`). Values copied from the model's ``*_initfn`` (``SET_IDREG(isar,
ID_AA64..., value)`` or ``cpu->isar.id_aa64... = value``); a register a model does not set is 0.

Sources (read through the stored public-source index):
- ``target/arm/tcg/cpu64.c`` at qemu/qemu@00936783abf77ebb47a78312a2e6500c6a13d938 (the ``SET_IDREG`` era,
  QEMU 10.1 or later): cortex-a72, cortex-a76, cortex-a710, a64fx, neoverse-n1, neoverse-v1, neoverse-n2;
- ``target/arm/cpu64.c`` at qemu/qemu@e73c4443473107ddf11ad3a7fea5bef2001ee802: cortex-a53, cortex-a57 (the two
  models KVM can also run; their values are the same in every later QEMU the index holds).
QEMU has no Neoverse-V2 model. The kernel lab (tests/kernel) boots Debian's QEMU 7.2.22 on cortex-a53/-a57/
-a72/-a76, neoverse-n1 and a64fx and compares the AT_HWCAP the guest kernel publishes with the words derived
from this table (tests/kernel/test_kernel_arm_models.py).

Noticed, left as QEMU has it: QEMU's neoverse-v1 sets ID_AA64ISAR1_EL1.BF16 = 0 (its ID_AA64ZFR0_EL1 has SVE BF16),
so the derived set has ``svebf16`` but not ``bf16``, while Graviton3 (Neoverse V1) reports ``bf16``: the
preset is narrower than the real core there, never wider.
"""

from __future__ import annotations

QEMU_SOURCE = (
    "QEMU target/arm/tcg/cpu64.c @00936783abf7 (cortex-a72/-a76/-a710, a64fx, neoverse-n1/-v1/-n2) and "
    "target/arm/cpu64.c @e73c44434731 (cortex-a53/-a57)"
)

#: QEMU model name -> register -> value (MIDR_EL1 and the AArch64 ID registers the HWCAPs are read from).
ARM_MODELS: dict[str, dict[str, int]] = {
    "cortex-a53": {
        "MIDR_EL1": 0x410FD034,
        "ID_AA64PFR0_EL1": 0x00002222,
        "ID_AA64ISAR0_EL1": 0x00011120,
        "ID_AA64MMFR0_EL1": 0x00001122,
    },
    "cortex-a57": {
        "MIDR_EL1": 0x411FD070,
        "ID_AA64PFR0_EL1": 0x00002222,
        "ID_AA64ISAR0_EL1": 0x00011120,
        "ID_AA64MMFR0_EL1": 0x00001124,
    },
    "cortex-a72": {
        "MIDR_EL1": 0x410FD083,
        "ID_AA64PFR0_EL1": 0x00002222,
        "ID_AA64ISAR0_EL1": 0x00011120,
        "ID_AA64MMFR0_EL1": 0x00001124,
    },
    "cortex-a76": {
        "MIDR_EL1": 0x414FD0B1,
        "ID_AA64ISAR0_EL1": 0x0000100010211120,
        "ID_AA64ISAR1_EL1": 0x0000000000100001,
        "ID_AA64MMFR0_EL1": 0x0000000000101122,
        "ID_AA64MMFR1_EL1": 0x0000000010212122,
        "ID_AA64MMFR2_EL1": 0x0000000000001011,
        "ID_AA64PFR0_EL1": 0x1100000010111112,
        "ID_AA64PFR1_EL1": 0x0000000000000010,
    },
    "cortex-a710": {
        "MIDR_EL1": 0x412FD471,
        "ID_AA64PFR0_EL1": 0x1201111120111112,
        "ID_AA64PFR1_EL1": 0x0000000000000221,
        "ID_AA64ZFR0_EL1": 0x0000110100110021,
        "ID_AA64ISAR0_EL1": 0x0221111110212120,
        "ID_AA64ISAR1_EL1": 0x0010111101211052,
        "ID_AA64MMFR0_EL1": 0x0000022200101122,
        "ID_AA64MMFR1_EL1": 0x0000000010212122,
        "ID_AA64MMFR2_EL1": 0x1221011110101011,
    },
    "a64fx": {
        "MIDR_EL1": 0x461F0010,
        "ID_AA64PFR0_EL1": 0x0000000101111111,
        "ID_AA64PFR1_EL1": 0x0000000000000000,
        "ID_AA64MMFR0_EL1": 0x0000000000001122,
        "ID_AA64MMFR1_EL1": 0x0000000011212100,
        "ID_AA64MMFR2_EL1": 0x0000000000001011,
        "ID_AA64ISAR0_EL1": 0x0000000010211120,
        "ID_AA64ISAR1_EL1": 0x0000000000010001,
        "ID_AA64ZFR0_EL1": 0x0000000000000000,
    },
    "neoverse-n1": {
        "MIDR_EL1": 0x414FD0C1,
        "ID_AA64ISAR0_EL1": 0x0000100010211120,
        "ID_AA64ISAR1_EL1": 0x0000000000100001,
        "ID_AA64MMFR0_EL1": 0x0000000000101125,
        "ID_AA64MMFR1_EL1": 0x0000000010212122,
        "ID_AA64MMFR2_EL1": 0x0000000000001011,
        "ID_AA64PFR0_EL1": 0x1100000010111112,
        "ID_AA64PFR1_EL1": 0x0000000000000020,
    },
    "neoverse-v1": {
        "MIDR_EL1": 0x411FD402,
        "ID_AA64ISAR0_EL1": 0x1011111110212120,
        "ID_AA64ISAR1_EL1": 0x0011000001211032,
        "ID_AA64MMFR0_EL1": 0x0000000000101125,
        "ID_AA64MMFR1_EL1": 0x0000000010212122,
        "ID_AA64MMFR2_EL1": 0x0220011102101011,
        "ID_AA64PFR0_EL1": 0x1101110120111112,
        "ID_AA64PFR1_EL1": 0x0000000000000020,
        "ID_AA64ZFR0_EL1": 0x0000100000100000,
    },
    "neoverse-n2": {
        "MIDR_EL1": 0x410FD493,
        "ID_AA64PFR0_EL1": 0x1201111120111112,
        "ID_AA64PFR1_EL1": 0x0000000000000221,
        "ID_AA64ZFR0_EL1": 0x0000110100110021,
        "ID_AA64ISAR0_EL1": 0x1221111110212120,
        "ID_AA64ISAR1_EL1": 0x0011111101211052,
        "ID_AA64MMFR0_EL1": 0x0000022200101125,
        "ID_AA64MMFR1_EL1": 0x0000000010212122,
        "ID_AA64MMFR2_EL1": 0x1221011112101011,
    },
}
