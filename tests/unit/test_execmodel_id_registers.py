"""The exec model's ID-register view (docs/kernel.md#hwcap-cpuid): MRS shows the kernel's features whatever the
mask; a rule-following reader reads it only with HWCAP_CPUID; without the series the cleared bit stops at the exec.

Words are written out from the arm64 uapi bit numbers (aes 3, pmull 4, atomics 8, cpuid 11, evtstrm 2, sve 22).
"""

from __future__ import annotations

import pytest

from hwcap_operator.execmodel.kernel import Binary, KernelConfig
from hwcap_operator.execmodel.pod_simulation import NodeSpec, validate
from hwcap_operator.execmodel.scenarios import Scenario, ScenarioError, Step, run
from hwcap_operator.mask import FeatureMask

AES, PMULL, EVTSTRM, ATOMICS, CPUID, SVE = 1 << 3, 1 << 4, 1 << 2, 1 << 8, 1 << 11, 1 << 22
NODE = (0b11 | EVTSTRM | AES | PMULL | ATOMICS | CPUID | SVE, 0)  # fp, asimd + the rest
HIDE = AES | PMULL | ATOMICS | SVE


def _scenario(mask: int) -> Scenario:
    native = Binary("/probe")
    return Scenario("idregs", "", (
        Step("spawn", "init", binary=native, uid=65534), Step("hwcap_exec", "init", mask=(mask, ~0), binary=native),
        Step("idregs", "init"), Step("fork", "init", child="c"), Step("exec", "c", binary=native),
        Step("idregs", "c"),
    ))  # fmt: skip


def _reads(mask: int, patch: str = "v5") -> dict[str, tuple[str | None, tuple[int, ...] | None]]:
    config = KernelConfig(arch="arm64", hwcap=NODE, patch=patch)  # type: ignore[arg-type]
    return {o.proc: (o.reader, o.mrs) for o in run(_scenario(mask), config).observations if o.op == "idregs"}


def test_mrs_shows_the_node_minus_evtstrm_and_cpuid_under_any_mask() -> None:
    for mask in (~HIDE, ~HIDE & ~CPUID):
        for reader, mrs in _reads(mask).values():
            assert mrs == (NODE[0] & ~EVTSTRM & ~CPUID, 0), reader


def test_the_rule_following_reader_reads_mrs_only_with_hwcap_cpuid() -> None:
    assert {p: r for p, (r, _) in _reads(~HIDE).items()} == {"init": "mrs", "c": "mrs"}
    assert {p: r for p, (r, _) in _reads(~HIDE & ~CPUID).items()} == {"init": "hwcap", "c": "hwcap"}


def test_without_the_series_the_exec_d_program_has_hwcap_cpuid_again() -> None:
    assert {p: r for p, (r, _) in _reads(~HIDE & ~CPUID, patch="none").items()} == {"init": "mrs", "c": "mrs"}


def test_idregs_on_x86_is_a_scenario_error() -> None:
    config = KernelConfig(arch="amd64", hwcap=(1, 0))  # type: ignore[arg-type]
    scenario = Scenario("x", "", (Step("spawn", "init", binary=Binary("/probe")), Step("idregs", "init")))
    with pytest.raises(ScenarioError, match="arm64"):
        run(scenario, config)


def test_validation_warns_when_a_hiding_mask_advertises_hwcap_cpuid_and_notes_what_remains_when_not() -> None:
    node = FeatureMask.from_words("arm64", *NODE)
    spec = NodeSpec.from_mask("n", node)
    hiding = node - FeatureMask.from_names("arm64", ["sve", "atomics"])
    kept = {f.code: f for f in validate(hiding, spec).findings}
    assert kept["id-registers-reveal-hidden"].severity == "warning"
    assert set(kept["id-registers-reveal-hidden"].features) == {"sve", "atomics"}
    cleared = {f.code: f for f in validate(hiding - FeatureMask.from_names("arm64", ["cpuid"]), spec).findings}
    assert "id-registers-reveal-hidden" not in cleared and cleared["id-registers-remain"].severity == "info"
    assert not {"id-registers-reveal-hidden", "id-registers-remain"} & {f.code for f in validate(node, spec).findings}
