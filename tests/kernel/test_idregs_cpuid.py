"""HWCAP_CPUID on real kernels (issue 15 item 6, docs/kernel.md#hwcap-cpuid): under a mask that hides aes, pmull,
atomics and sve, the ID registers read with MRS show them while HWCAP_CPUID is advertised (the leak); with the
mask that clears HWCAP_CPUID a reader following the kernel's rule backs off and reports only the masked HWCAPs,
while MRS itself still works (what remains). On the unpatched kernel the cleared bit does not survive the exec.

Expectations: the hidden set is the scenarios' mask; the register values are decoded with the rule read from the
lab's kernel tree (kernellab.idregs); the model comparison of every step is ``test_matrix_matches_model``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from kernellab.idregs import HIDDEN, MASK_CLEARED, MASK_KEPT, decode
from kernellab.lab import ModelRun, compare

from hwcap_operator.domain.api import MigrationDomainSpec
from hwcap_operator.domain.id_registers import apply_policy, verdict
from hwcap_operator.domain.node_features import NodeFeatures
from hwcap_operator.execmodel.scenarios import run as run_model
from hwcap_operator.mask import FeatureMask

pytestmark = pytest.mark.kernel


def _run(lab_runs: list[ModelRun], variant: str, model: str = "arm64/max") -> ModelRun:
    found = [r for r in lab_runs if r.variant == variant and r.model.key == model]
    if not found:
        pytest.fail(f"{variant} {model} is not in this run's subset (HWCAP_LAB_MODELS?)")
    return found[0]


def _lines(run: ModelRun, scenario: str) -> dict[str, dict[str, Any]]:
    return {r["proc"]: r for r in run.boot.records if r.get("scn") == scenario and r.get("op") == "idregs"}


def _stack_names(line: dict[str, Any]) -> set[str]:
    return set(FeatureMask.from_words("arm64", *(int(w, 16) for w in line["stack"])).names())


def test_max_has_the_hidden_features_so_the_scenarios_can_show_a_leak(lab_runs: list[ModelRun]) -> None:
    native, _ = _run(lab_runs, "v5").baseline()
    assert set(HIDDEN) | {"cpuid"} <= set(FeatureMask.from_words("arm64", *native).names())


def test_with_hwcap_cpuid_kept_the_id_registers_reveal_what_the_mask_hides(lab_runs: list[ModelRun]) -> None:
    line = _lines(_run(lab_runs, "v5"), "idregs-cpuid-kept")["init"]
    assert not set(HIDDEN) & _stack_names(line) and "cpuid" in _stack_names(line)
    assert line["reader"] == "mrs"
    assert set(HIDDEN) <= decode(line["reader_regs"]), "the rule-following reader finds every hidden feature"


def test_with_hwcap_cpuid_cleared_the_reader_backs_off_and_mrs_still_works(lab_runs: list[ModelRun]) -> None:
    lines = _lines(_run(lab_runs, "v5"), "idregs-cpuid-cleared")
    assert set(lines) == {"init", "c1"}, "the exec'd child reads too"
    for proc, line in lines.items():
        assert "cpuid" not in _stack_names(line) and not set(HIDDEN) & _stack_names(line), proc
        assert (line["reader"], line["reader_regs"]) == ("hwcap", {}), proc
        assert set(HIDDEN) <= decode(line["mrs"]), f"{proc}: raw MRS still shows the node (no SIGILL)"
        assert int(line["mrs"]["midr"], 16) != 0, f"{proc}: MIDR still readable"


def test_without_the_series_the_cleared_bit_does_not_reach_the_exec_d_program(lab_runs: list[ModelRun]) -> None:
    lines = _lines(_run(lab_runs, "none"), "idregs-cpuid-cleared")
    for proc, line in lines.items():
        assert "cpuid" in _stack_names(line) and set(HIDDEN) <= _stack_names(line), proc
        assert line["reader"] == "mrs", proc


def test_the_domain_policy_clears_hwcap_cpuid_for_this_mask_and_names_what_mrs_showed(lab_runs: list[ModelRun]) -> None:
    """The product's decision on the guest's own features: the lab's cleared mask is what the policy publishes."""
    run = _run(lab_runs, "v5")
    native, _ = run.baseline()
    node_mask = FeatureMask.from_words("arm64", *native)
    node = NodeFeatures(name="max", arch="arm64", labels={}, mask=node_mask, source="agent")
    hiding = node_mask - FeatureMask.from_names("arm64", HIDDEN)
    spec = MigrationDomainSpec.model_validate(
        {"arch": "arm64", "workloads": {"namespaceSelector": {}}, "allowHidingSecurityFeatures": True}
    )
    published = apply_policy(spec, hiding, [node])
    assert published.hwcap[:2] == (native[0] & MASK_CLEARED[0], native[1] & MASK_CLEARED[1])
    found = verdict(spec, published, [node])
    assert found is not None and found.outcome == "Cleared"
    leaked = decode(_lines(run, "idregs-cpuid-kept")["init"]["reader_regs"]) - set(hiding.names())
    assert leaked == set(HIDDEN) and leaked <= set(found.revealed)


@pytest.mark.parametrize(
    ("scenario", "wrong_rule", "caught"),
    [
        # a model in which the mask reached the ID registers (what the review said the kernel does not do)
        ("idregs-cpuid-kept", lambda o: replace(o, mrs=tuple(w & m for w, m in zip(o.mrs, MASK_KEPT, strict=True))),
         "MRS model"),
        # a model in which readers ignore HWCAP_CPUID
        ("idregs-cpuid-cleared", lambda o: replace(o, reader="mrs"), "reader model"),
    ],
)
def test_a_wrong_id_register_rule_in_the_model_is_caught(
    lab_runs: list[ModelRun], scenario: str, wrong_rule: Any, caught: str
) -> None:
    run = _run(lab_runs, "v5")
    [sc] = [s for s in run.scenarios if s.name == scenario]
    predicted = run_model(sc, run.kernel_config()).observations
    guest = [r for r in run.boot.records if r.get("scn") == scenario]
    assert compare(predicted, guest) == []
    wrong = [wrong_rule(o) if o.op == "idregs" else o for o in predicted]
    assert any(caught in problem for problem in compare(wrong, guest))
