"""Node levelling proven on the UNPATCHED lab kernel (Debian 6.12): boot with the boot parameters
``plan_leveling`` computes, read AT_HWCAP/AT_HWCAP2 and the ID registers with MRS in the guest, compare.

The node is what the guest reports without parameters; the mask is that node intersected with a real dump
(Graviton2, Neoverse N1): so every feature above it is one a real cluster would have to hide. Predicted:
words = baseline words minus the plan's removed words, and every overridden ID-register field reads the value
set, SVE's ZFR0 reading 0 entirely (kernellab/leveling.py; the matrix table shows the same check as its
``idreg-leveling`` row on the ``none`` columns).
"""

from __future__ import annotations

import pytest
from kernellab.leveling import boot_with, idregs, mismatches, plan_for, words

from hwcap_operator.features.data_idreg_overrides import FIELDS
from hwcap_operator.mask import FeatureMask

#: (CPU model, allowHidingSecurityFeatures): qemu max has SVE, PAuth, BTI; a64fx has SVE only.
CASES = [("max", True), ("max", False), ("a64fx", False)]


@pytest.mark.parametrize(("model", "allow"), CASES)
def test_the_computed_parameters_give_exactly_the_predicted_words_and_id_registers(model: str, allow: bool) -> None:
    base = boot_with(model, "")
    plan = plan_for(base, allow_hiding_security=allow)
    assert plan.parameters, f"{model}: nothing to level; the case proves nothing"
    levelled = boot_with(model, plan.cmdline)
    assert mismatches(base, plan, levelled) == []
    # Independent of the comparison helper: SVE and the words really changed, ZFR0 reads 0.
    assert words(levelled) != words(base)
    assert "sve" in plan.removed and idregs(levelled)["id_aa64zfr0"] == 0


def test_security_features_stay_without_permission_on_max() -> None:
    plan = plan_for(boot_with("max", ""), allow_hiding_security=False)
    assert {"paca", "pacg", "bti"} <= set(plan.blocked_security)
    hwcap, hwcap2 = words(boot_with("max", plan.cmdline))
    kept = FeatureMask.from_names("arm64", ["paca", "pacg", "bti"]).hwcap
    assert hwcap & kept[0] == kept[0] and hwcap2 & kept[1] == kept[1]


def test_a_wrong_prediction_is_caught() -> None:
    """The comparison can fail: claim arm64.nosve also removed `fp`, and the guest disagrees."""
    base = boot_with("a64fx", "")
    plan = plan_for(base)
    wrong = type(plan)(**{**{s: getattr(plan, s) for s in plan.__slots__},
                          "removed_mask": plan.removed_mask | FeatureMask.from_names("arm64", ["fp"])})  # fmt: skip
    assert any("AT_HWCAP* predicted" in m for m in mismatches(base, wrong, boot_with("a64fx", plan.cmdline)))


@pytest.mark.parametrize("model", ["cortex-a53", "cortex-a57", "cortex-a72", "cortex-a76", "neoverse-n1"])
def test_models_without_overridable_features_get_no_parameters(model: str) -> None:
    """These models have nothing an override reaches (no SVE, SME, PAuth, BTI, MTE, MOPS): the plan is empty and
    everything above the target mask is reported as beyond any override, never as removed."""
    base = boot_with(model, "")
    plan = plan_for(base)
    overridable = {n for f in FIELDS.values() for n in f.removed_by(0)}
    assert not set(FeatureMask.from_words("arm64", *words(base)).names()) & overridable
    assert plan.parameters == () and plan.removed == ()
    assert set(plan.remaining) == set(plan.no_override)
