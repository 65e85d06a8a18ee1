"""Arm core presets: the kernel's ID-register mapping as read from its source, QEMU's models through it, and
each preset against the real dumps of its core (feature words read independently with str.split).

Expected values come from outside the code under test: rows of Linux 6.12's cpufeature.c and sysreg decoded
by hand, fields of QEMU's register values decoded by hand, the AT_HWCAP words the kernel lab measured on
QEMU 7.2.22 guests, and /proc/cpuinfo of real machines.
"""

from __future__ import annotations

import importlib

import pytest
from tests.support.profiles import raw_feature_words

from hwcap_operator.features.data_arm_idregs import ROWS, SSBS_ERRATUM_PARTS
from hwcap_operator.features.data_arm_models import ARM_MODELS
from hwcap_operator.features.data_idreg_overrides import FIELDS
from hwcap_operator.features.idreg_hwcaps import field_value, hwcaps_from_idregs, midr_part
from hwcap_operator.mask import FeatureMask
from hwcap_operator.presets import ARM_CORE_LEFT_OUT, preset, preset_left_out

#: Real dumps per core (tests/data/profiles): a core preset must be a subset of every one of them.
DUMPS: dict[str, tuple[str, ...]] = {
    "cortex-a53": ("arm64-cortex-a53-raspberrypi3b.txt",),
    "cortex-a72": ("arm64-cortex-a72-raspberrypi4.txt", "arm64-aws-graviton1-cortex-a72.txt"),
    "cortex-a72+crypto": ("arm64-aws-graviton1-cortex-a72.txt",),
    "neoverse-n1": ("arm64-aws-graviton2-neoverse-n1.txt", "arm64-ampere-altra-neoverse-n1.txt"),
    "neoverse-v1": ("arm64-aws-graviton3-neoverse-v1.txt",),
    "neoverse-n2": ("arm64-neoverse-n2-archspec.txt", "arm64-neoverse-n2-github-runner.txt"),
    "neoverse-v2": ("arm64-aws-graviton4-neoverse-v2.txt",),
}


def dump(name: str) -> FeatureMask:
    return FeatureMask.from_names("arm64", raw_feature_words(name))


def test_mapping_rows_are_the_kernels() -> None:
    """Rows decoded by hand from Linux 6.12 cpufeature.c + arch/arm64/tools/sysreg."""
    rows = {(r[0], r[1], r[2]): r for r in ROWS}
    # HWCAP_CAP(ID_AA64ISAR0_EL1, ATOMIC, IMP, ...): ATOMIC is bits 23:20, IMP = 0b0010
    assert rows[("atomics", "ID_AA64ISAR0_EL1", 20)][3:6] == (4, False, 2)
    # HWCAP_CAP(ID_AA64PFR0_EL1, FP, IMP, ...): FP is a SignedEnum at 19:16, IMP = 0b0000
    assert rows[("fp", "ID_AA64PFR0_EL1", 16)][3:6] == (4, True, 0)
    # HWCAP_CAP(ID_AA64PFR1_EL1, SSBS, SSBS2, ...): SSBS2 = 0b0010
    assert rows[("ssbs", "ID_AA64PFR1_EL1", 4)][5] == 2
    # HWCAP_CAP_MATCH_ID(has_sve_feature, ID_AA64ZFR0_EL1, SVEver, SVE2, ...)
    assert rows[("sve2", "ID_AA64ZFR0_EL1", 0)][5:7] == (1, "sve")
    # ptr_auth_hwcap_addr_matches: APA (ISAR1 7:4), APA3 (ISAR2 15:12), API (ISAR1 11:8)
    assert {(r[1], r[2]) for r in ROWS if r[0] == "paca"} == {
        ("ID_AA64ISAR1_EL1", 4), ("ID_AA64ISAR2_EL1", 12), ("ID_AA64ISAR1_EL1", 8)}  # fmt: skip
    # erratum_spec_ssbs_list: MIDR_NEOVERSE_N1 = (ARM 0x41, 0xD0C); Cortex-A53 (0xD03) is not on it
    assert (0x41, 0xD0C) in SSBS_ERRATUM_PARTS and (0x41, 0xD03) not in SSBS_ERRATUM_PARTS


def test_extractor_reads_the_kernels_notation() -> None:
    """The extractor that wrote the table turns a sysreg enum and a HWCAP_CAP line into the row the kernel means."""
    extract = importlib.import_module("tests.data.kernel_idregs.extract")
    sysreg = ("Sysreg\tID_AA64PFR0_EL1\t3\t0\t0\t4\t0\nSignedEnum\t19:16\tFP\n\t0b0000\tIMP\n\t0b0001\tFP16\n"
              "\t0b1111\tNI\nEndEnum\nEndSysreg\n")  # fmt: skip
    fields = extract.sysreg_fields(sysreg)
    src = ("static const struct arm64_cpu_capabilities arm64_elf_hwcaps[] = {\n"
           "\tHWCAP_CAP(ID_AA64PFR0_EL1, FP, FP16, CAP_HWCAP, KERNEL_HWCAP_FPHP),\n};\n")  # fmt: skip
    assert extract.rows(src, fields, {"KERNEL_HWCAP_FPHP": "fphp"}) == [
        ("fphp", "ID_AA64PFR0_EL1", 16, 4, True, 1, "", "")
    ]


def test_signed_field_not_implemented_is_negative() -> None:
    assert field_value(0xF << 16, 16, 4, True) == -1 and field_value(0xF << 16, 16, 4, False) == 15
    assert "fp" not in hwcaps_from_idregs({"ID_AA64PFR0_EL1": 0x000F0000})
    assert midr_part(0x414FD0C1) == (0x41, 0xD0C)


def test_cortex_a76_decoded_by_hand() -> None:
    """QEMU's cortex-a76: ISAR0 0x0000100010211120 (AES=2 SHA1=1 SHA2=1 CRC32=1 ATOMIC=2 RDM=1 DP=1),
    ISAR1 0x100001 (DPB=1 LRCPC=1), PFR0 0x1100000010111112 (FP=1 AdvSIMD=1: half precision), PFR1 0x10
    (SSBS=1: no HWCAP_SSBS, which needs SSBS2)."""
    assert set(hwcaps_from_idregs(ARM_MODELS["cortex-a76"], evtstrm=False, ssbs_erratum=False)) == {
        "aes", "pmull", "sha1", "sha2", "crc32", "atomics", "asimdrdm", "asimddp", "fp", "fphp", "asimd",
        "asimdhp", "dcpop", "lrcpc", "cpuid"}  # fmt: skip


def test_ssbs_erratum_hides_ssbs_on_n1_only_when_enabled() -> None:
    """Neoverse N1 (PFR1.SSBS = 2) is on the erratum 3194386 list: a kernel with the workaround hides ssbs."""
    assert "ssbs" in hwcaps_from_idregs(ARM_MODELS["neoverse-n1"], ssbs_erratum=False)
    assert "ssbs" not in hwcaps_from_idregs(ARM_MODELS["neoverse-n1"])


#: AT_HWCAP measured by the kernel lab (2026-12-08: QEMU 7.2.22, Debian 6.12.118 + v5, no evtstream, no
#: SSBS erratum workaround; `python -m kernellab matrix --variant v5`): AT_HWCAP2 was 0 on all six.
LAB_AT_HWCAP = {"cortex-a53": 0x8FB, "cortex-a57": 0x8FB, "cortex-a72": 0x8FB, "cortex-a76": 0x119FFB,
                "neoverse-n1": 0x10119FFB, "a64fx": 0x415FFB}  # fmt: skip


@pytest.mark.parametrize(("model", "word"), LAB_AT_HWCAP.items())
def test_lab_measured_words(model: str, word: int) -> None:
    derived = FeatureMask.from_names("arm64", hwcaps_from_idregs(ARM_MODELS[model], ssbs_erratum=False, evtstrm=False))
    assert derived.hwcap[:2] == (word, 0), hex(derived.hwcap[0])


@pytest.mark.parametrize(("core", "dumps"), DUMPS.items())
def test_core_preset_is_on_every_real_machine_of_that_core(core: str, dumps: tuple[str, ...]) -> None:
    for name in dumps:
        assert preset(core) <= dump(name), (name, (preset(core) - dump(name)).names())


@pytest.mark.parametrize("core", ["cortex-a53", "cortex-a72", "neoverse-n2"])
def test_every_left_out_feature_is_missing_on_a_real_machine(core: str) -> None:
    """A preset leaves a feature of its QEMU model out only when a real machine of that core lacks it
    (MTE aside: it needs tag memory from the system, and no dump has it)."""
    model = FeatureMask.from_names("arm64", hwcaps_from_idregs(ARM_MODELS[ARM_CORE_LEFT_OUT[core][0]]))
    lacking = {n for d in DUMPS[core] for n in (model - dump(d)).names()}
    assert set(preset_left_out(core)) - {"mte"} <= lacking, set(preset_left_out(core)) - lacking


def test_reconciled_names_keep_their_meaning() -> None:
    """The old names stay: cortex-a53/-a72 without the optional crypto (as before), Neoverse presets now
    from QEMU's models; SSBS (erratum 3194386) and MTE are never in a core preset."""
    assert preset("cortex-a53").names() == ["fp", "asimd", "evtstrm", "crc32", "cpuid"]
    assert {"aes", "sha2"} <= set(preset("cortex-a72+crypto").names())
    assert preset("neoverse-n1") < preset("neoverse-v1") and "sve" in preset("a64fx")
    assert {"sveaes", "svebitperm", "svesha3"} <= set(preset("neoverse-n2").names())
    for core in ARM_CORE_LEFT_OUT:
        assert not {"ssbs", "mte"} & set(preset(core).names()), core


def test_override_table_thresholds_agree_with_the_generated_mapping() -> None:
    """data_idreg_overrides (typed from idreg-override.c + cpufeature.c) and data_arm_idregs (generated from
    cpufeature.c + sysreg) describe the same fields: every HWCAP an override field provides is a row of that
    register and shift with the same minimum."""
    rows = {(r[0], r[1], r[2]): r[5] for r in ROWS}
    checked = 0
    for field in FIELDS.values():
        register = f"{field.register.upper()}_EL1"
        for threshold, names in field.provides:
            for name in names:
                assert rows.get((name, register, field.shift)) == threshold, (field.key, name)
                checked += 1
    assert checked >= 15
