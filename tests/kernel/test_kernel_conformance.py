"""The exec model against real kernels booted under qemu (issue 7).

Expectations here come from outside the code under test: the kernel's HWCAP tables (through the feature
catalog), what the qemu CPU models implement, the masks the scenarios apply, and the patch's rules read as
relations between observations (a child of a masked parent sees baseline & mask). The model comparison
itself is ``test_matrix_matches_model``; the flipped-rule tests prove that comparison can fail.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from kernellab.e2e import domain_baseline, observed_words, run_init_step
from kernellab.lab import MASKS, ModelRun, report

from hwcap_operator.execmodel.kernel import Kernel, KernelConfig
from hwcap_operator.features.catalog import lookup

pytestmark = pytest.mark.kernel


def _observations(run: ModelRun, scenario: str) -> dict[str, dict[str, Any]]:
    return {r["proc"]: r for r in run.boot.records if r.get("scn") == scenario and r.get("op") == "observe"}


def _stack(record: dict[str, Any]) -> tuple[int, int]:
    w0, w1 = (int(w, 16) for w in record["stack"])
    return w0, w1


def test_matrix_matches_model(lab_runs: list[ModelRun]) -> None:
    text, cells = report(lab_runs)
    print(text)
    bad = [f"{c.variant} {c.model} {c.scenario}: {m}" for c in cells if not c.ok for m in c.mismatches]
    assert not bad, "model and kernel disagree:\n" + "\n".join(bad)
    assert len({r.model.key for r in lab_runs if r.model.arch == "arm64" and r.variant == "v5"}) >= 6
    assert any(r.model.arch == "amd64" for r in lab_runs)


def _bit(arch: str, name: str) -> tuple[int, int]:
    f = lookup(arch, name)
    assert f.word is not None
    return f.word, f.bit


@pytest.mark.parametrize(
    ("model", "present", "absent"),
    [
        # Armv8.0 cores: no LSE atomics, no SVE.
        ("arm64/cortex-a53", ["fp", "asimd", "aes", "crc32"], ["atomics", "sve"]),
        ("arm64/cortex-a72", ["fp", "asimd", "aes", "crc32"], ["atomics", "sve"]),
        # Armv8.2 cores: LSE atomics and dot product, no SVE.
        ("arm64/neoverse-n1", ["atomics", "asimddp", "lrcpc"], ["sve"]),
        # A64FX and qemu's max implement SVE.
        ("arm64/a64fx", ["sve", "atomics"], []),
        ("arm64/max", ["sve", "sve2", "atomics", "paca"], []),
    ],
)
def test_cpu_models_report_their_features(
    lab_runs: list[ModelRun], model: str, present: list[str], absent: list[str]
) -> None:
    runs = [r for r in lab_runs if r.model.key == model]
    if not runs:
        pytest.fail(f"{model} is not in this run's subset (HWCAP_LAB_MODELS?)")
    for run in runs:
        words, _ = run.baseline()
        for name in present + absent:
            word, bit = _bit("arm64", name)
            have = bool(words[word] >> bit & 1)
            assert have == (name in present), f"{model} ({run.variant}): {name} {'missing' if not have else 'set'}"


def test_masked_parent_children_see_baseline_and_mask(lab_runs: list[ModelRun]) -> None:
    """v5: every exec'd descendant of a PR_SET_MM_MAP'd process sees kernel words & mask (depth 3)."""
    for run in (r for r in lab_runs if r.variant == "v5"):
        native, _ = run.baseline()
        mask = MASKS[run.model.arch]
        expected = (native[0] & mask[0], native[1] & mask[1])
        obs = _observations(run, "map-unprivileged")
        for proc in ("c1", "c2", "c3"):
            assert _stack(obs[proc]) == expected, f"{run.model.key} {proc}"
        # the masking process itself keeps what it got at its own exec
        assert _stack(obs["init"]) == native


def test_unpatched_kernel_never_inherits(lab_runs: list[ModelRun]) -> None:
    runs = [r for r in lab_runs if r.variant == "none"]
    assert runs, "the subset has no unpatched kernel"
    for run in runs:
        native, compat = run.baseline()
        for scenario in run.scenarios:
            for proc, rec in _observations(run, scenario.name).items():
                want = compat if rec["abi"] == "compat" else native
                assert _stack(rec) == want, f"{run.model.key} {scenario.name} {proc}"


def test_aarch32_child_gets_full_compat_hwcaps_on_v5(lab_runs: list[ModelRun]) -> None:
    """v5's arm64 arch-switch rule: the AArch32 child of a masked AArch64 parent is not masked (and not
    handed arm64 bits, the v4 regression); its AArch64 grandchild is not masked either."""
    runs = [r for r in lab_runs if r.variant == "v5" and r.model.compat and r.model.arch == "arm64"]
    assert runs
    for run in runs:
        native, compat = run.baseline()
        obs = _observations(run, "compat-child")
        assert obs["a32"]["abi"] == "compat"
        assert _stack(obs["a32"]) == compat
        assert _stack(obs["a64"]) == native


def _flip_arch_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(KernelConfig, "clears_flag_on_arch_switch", property(lambda self: False))


def _flip_short_copy(monkeypatch: pytest.MonkeyPatch) -> None:
    original = KernelConfig.__post_init__

    def post_init(self: KernelConfig) -> None:
        original(self)
        object.__setattr__(self, "set_auxv_copies_whole_buffer", not self.set_auxv_copies_whole_buffer)

    monkeypatch.setattr(KernelConfig, "__post_init__", post_init)


def _flip_duplicates(monkeypatch: pytest.MonkeyPatch) -> None:
    """A model that reads every HWCAP entry up to AT_NULL (no ``n`` countdown): the first one wins."""

    def inherit(self: Kernel, task: Any, bprm: list[int]) -> None:
        cfg = self.config
        words = cfg.layout(task.abi).words(bytes(task.mm.saved_auxv))
        types = [16, 26, 29, 30][: len(cfg.hwcap)]
        seen: set[int] = set()
        for i in range(0, len(words) - 1, 2):
            if words[i] == 0:
                break
            if words[i] in types and words[i] not in seen:
                seen.add(words[i])
                bprm[types.index(words[i])] = words[i + 1]

    monkeypatch.setattr(Kernel, "_inherit_hwcap", inherit)


@pytest.mark.parametrize(
    ("flip", "scenario"),
    [
        (_flip_arch_switch, "compat-child"),
        (_flip_short_copy, "short-vector"),
        (_flip_duplicates, "duplicate-prepended"),
    ],
    ids=["arch-switch", "auxv-copy-length", "duplicate-countdown"],
)
def test_lab_catches_a_wrong_model_rule(
    lab_runs: list[ModelRun],
    monkeypatch: pytest.MonkeyPatch,
    flip: Callable[[pytest.MonkeyPatch], None],
    scenario: str,
) -> None:
    """Re-run the model with one rule changed against the same guest output: the lab must name the cell."""
    flip(monkeypatch)
    _, cells = report([r for r in lab_runs if r.variant == "v5"])
    caught = {(c.model, c.scenario) for c in cells if not c.ok}
    assert any(s == scenario for _, s in caught), f"flipped rule not caught; mismatching cells: {sorted(caught)}"


def test_hwcap_exec_probe_tells_patched_from_unpatched(lab_runs: list[ModelRun]) -> None:
    """The init step's own --probe (what the node agent publishes) agrees with the kernel each guest booted."""
    for run in lab_runs:
        probes = [r for r in run.boot.records if r.get("scn") == "baseline" and r.get("event") == "probe"]
        assert len(probes) == 1, f"{run.model.key} {run.variant}: no hwcap-exec --probe line"
        want = ("unsupported", 3) if run.variant == "none" else ("supported", 0)
        assert (probes[0]["output"], probes[0]["exit"]) == want, f"{run.model.key} {run.variant}: {probes[0]}"


def test_end_to_end_agent_baseline_init_step(lab_runs: list[ModelRun]) -> None:
    """Item 4: agent readings of every arm64 guest -> operator Auto baseline -> hwcap-exec on the richest
    model: the entrypoint, its child and grandchild see exactly the mask (words of the intersection)."""
    v5 = [r for r in lab_runs if r.variant == "v5" and r.model.arch == "arm64"]
    domain = domain_baseline(v5)
    assert all(n.kernel_inheritance == "supported" and n.source == "agent" for n in domain.nodes)
    expected = [0xFFFFFFFFFFFFFFFF, 0xFFFFFFFFFFFFFFFF]
    for run in v5:  # the intersection, computed here from the raw baselines, not by the operator
        native, _ = run.baseline()
        expected = [expected[0] & native[0], expected[1] & native[1]]
    assert tuple(domain.mask.hwcap[:2]) == tuple(expected)
    run = run_init_step(domain)
    seen = observed_words(run, "domain-init-step")
    assert set(seen) == {"entry", "child", "grandchild"}
    for proc, words in seen.items():
        assert words == tuple(expected), f"{proc} on {run.model.key}: {[hex(w) for w in words]}"
    richest, _ = domain.richest.baseline()
    assert tuple(expected) != richest[:2], "the baseline hides nothing on the richest model: a vacuous check"
    _, cells = report([run])
    assert all(c.ok for c in cells), [m for c in cells for m in c.mismatches]


def test_short_auxv_vector_zeroes_or_keeps_the_tail(lab_runs: list[ModelRun]) -> None:
    """PR_SET_MM_AUXV of the pairs through AT_HWCAP only: a kernel that copies the whole buffer (Debian
    6.12.117) leaves no AT_HWCAP2, so the child's word is 0; one that copies len bytes keeps the old tail
    with the unmasked AT_HWCAP2. Which one a kernel is comes from its source (lab-meta), not the guest."""
    runs = [r for r in lab_runs if r.variant != "none"]
    assert runs
    for run in runs:
        native, _ = run.baseline()
        mask = MASKS[run.model.arch]
        child = _stack(_observations(run, "short-vector")["c1"])
        tail = 0 if run.kernel.auxv_whole_buffer_copy else native[1]
        assert child == (native[0] & mask[0], tail), f"{run.model.key} {run.variant}"
