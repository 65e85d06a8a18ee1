"""Node levelling proven on the UNPATCHED lab kernel (Debian 6.12): boot with the boot parameters
``plan_leveling`` computes, read AT_HWCAP/AT_HWCAP2 and the ID registers with MRS in the guest, compare.

The node is what the guest reports without parameters; the mask is that node intersected with a real dump
(Graviton2, Neoverse N1): so every feature above it is one a real cluster would have to hide. Predicted:
words = baseline words minus the plan's removed words, and every overridden ID-register field reads the value
set (after reading non-zero without the parameters), SVE's ZFR0 reading 0 entirely.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest
from kernellab.build import build
from kernellab.guest import BootResult, boot, initramfs_for, model_by_key

from hwcap_operator.cli.inputs import read_feature_file
from hwcap_operator.domain.leveling import LevelingPlan, plan_leveling
from hwcap_operator.features.data_idreg_overrides import FIELDS
from hwcap_operator.mask import FeatureMask

PROFILES = Path(__file__).resolve().parents[1] / "data" / "profiles"
TARGET = "arm64-aws-graviton2-neoverse-n1.txt"
#: (CPU model, allowHidingSecurityFeatures): qemu max has SVE, PAuth, BTI, MOPS; a64fx has SVE only.
CASES = [("max", True), ("max", False), ("a64fx", False)]


@cache
def _boot(model: str, cmdline: str) -> BootResult:
    kernel = build("arm64", "none")
    initrd = initramfs_for("arm64", {"index": b"\n"})
    return boot(model_by_key(model), kernel.image, initrd, extra_cmdline=cmdline)


def _words(result: BootResult) -> tuple[int, int]:
    [init] = [r for r in result.records if r.get("op") == "observe" and r.get("proc") == "init"]
    return int(init["stack"][0], 16), int(init["stack"][1], 16)


def _idregs(result: BootResult) -> dict[str, int]:
    [regs] = [r for r in result.records if r.get("event") == "idregs"]
    return {k: int(v, 16) for k, v in regs.items() if k.startswith("id_aa64")}


def _plan(model: str, allow: bool) -> tuple[BootResult, LevelingPlan]:
    base = _boot(model, "")
    node = FeatureMask.from_words("arm64", *_words(base))
    mask = node & read_feature_file(str(PROFILES / TARGET)).mask
    return base, plan_leveling(node, mask, kernel_release(), allow_hiding_security=allow)


def kernel_release() -> str:
    """The lab kernel's Debian version (6.12.x): the override table the plan uses is chosen from it."""
    return str(build("arm64", "none").source_version)


@pytest.mark.parametrize(("model", "allow"), CASES)
def test_the_computed_parameters_give_exactly_the_predicted_words_and_id_registers(model: str, allow: bool) -> None:
    base, plan = _plan(model, allow)
    assert plan.parameters, f"{model}: nothing to level against {TARGET}; the case proves nothing"
    levelled = _boot(model, plan.cmdline)
    removed = plan.removed_mask.hwcap
    before, after = _words(base), _words(levelled)
    assert after == (before[0] & ~removed[0], before[1] & ~removed[1]), (plan.cmdline, [hex(w) for w in after])
    regs_before, regs_after = _idregs(base), _idregs(levelled)
    lowered: set[str] = set()
    for key, value in plan.settings:
        f = FIELDS[key]
        assert f.value_in(regs_after[f.register]) == value, f"{model}: {key} reads {f.value_in(regs_after[f.register])}"
        if f.value_in(regs_before[f.register]) > value:
            lowered.add(key)
    # Each removed HWCAP was reported by the hardware through at least one field the parameters lowered (PAuth:
    # a CPU implements one of APA/API/APA3, the others read 0 before and after).
    for name in plan.removed:
        sources = {k for k, v in plan.settings if name in FIELDS[k].removed_by(v)}
        assert sources & lowered, f"{model}: {name} removed but none of {sorted(sources)} read higher before"
    if ("id_aa64pfr0.sve", 0) in plan.settings:
        # ZFR0 goes to 0 whole (a64fx's SVE1 already reads 0 there; max's SVE2 does not).
        assert regs_after["id_aa64zfr0"] == 0
        assert (regs_before["id_aa64zfr0"] != 0) == bool(set(plan.removed) & set(FIELDS["id_aa64pfr0.sve"].family))


def test_security_features_stay_without_permission_on_max() -> None:
    _, plan = _plan("max", False)
    assert {"paca", "pacg", "bti"} <= set(plan.blocked_security)
    levelled = _boot("max", plan.cmdline)
    hwcap, hwcap2 = _words(levelled)
    kept = FeatureMask.from_names("arm64", ["paca", "pacg", "bti"]).hwcap
    assert hwcap & kept[0] == kept[0] and hwcap2 & kept[1] == kept[1]


@pytest.mark.parametrize("model", ["cortex-a53", "cortex-a57", "cortex-a72", "cortex-a76", "neoverse-n1"])
def test_models_without_overridable_features_get_no_parameters(model: str) -> None:
    """These models have nothing an override reaches (no SVE, SME, PAuth, BTI, MTE, MOPS): the plan is empty and
    everything above the target mask is reported as beyond any override, never as removed."""
    base, plan = _plan(model, True)
    overridable = {n for f in FIELDS.values() for n in f.removed_by(0)}
    node_names = set(FeatureMask.from_words("arm64", *_words(base)).names())
    assert not node_names & overridable
    assert plan.parameters == () and plan.removed == ()
    assert set(plan.remaining) == set(plan.no_override)
