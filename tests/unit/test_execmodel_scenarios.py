"""Scenarios (the lab's shared language) and the hwcap-exec model. Expectations from
docs/kernel.md (cited as kernel.md#<anchor>)."""

from __future__ import annotations

import errno
import json

import pytest
from execmodel_dumps import COMPAT_WORDS, GRAVITON2, GRAVITON4, arm64_words

from hwcap_operator.auxv import AT_HWCAP, AT_HWCAP2, AT_HWCAP3, AT_HWCAP4, AT_NULL, AT_PAGESZ
from hwcap_operator.execmodel.hwcap_exec import apply_mask, masked_vector
from hwcap_operator.execmodel.kernel import CAP_SYS_RESOURCE, Creds, Kernel, KernelConfig, PatchLevel, PrctlMmMap
from hwcap_operator.execmodel.scenarios import (
    AuxvEdit,
    Observation,
    Scenario,
    ScenarioError,
    Step,
    lab_scenarios,
    run,
)

G2 = arm64_words(GRAVITON2)
# Graviton4's words plus HWCAP3 bit 0 (MTE_FAR, kernel.md#hwcap-bit-tables) so that the third word is
# visible in the tests.
NODE = (*arm64_words(GRAVITON4)[:2], 0x1)
MASK = (G2[0], G2[1], 0x1)
WORD = 2**64 - 1


def config(patch: PatchLevel = "v5", whole: bool = False) -> KernelConfig:
    return KernelConfig.for_arch("arm64", NODE, COMPAT_WORDS, patch=patch, set_auxv_copies_whole_buffer=whole)


def by_name(name: str) -> Scenario:
    return next(s for s in lab_scenarios(MASK) if s.name == name)


def observed(name: str, cfg: KernelConfig) -> dict[str, Observation]:
    return {o.proc: o for o in run(by_name(name), cfg).observations if o.op == "observe"}


def masked() -> tuple[int, ...]:
    return tuple(n & m for n, m in zip(NODE, MASK, strict=True))


# ------------------------------------------------------------------------------------ hwcap-exec


def test_masked_vector_ands_dedups_and_adds_missing_words_the_kernel_provides() -> None:
    """The binary's header, step 3: a missing word is added as (kernel's value & mask)."""
    pairs = [(AT_PAGESZ, 4096), (AT_HWCAP, 0xFF), (AT_HWCAP, 0xF0), (AT_NULL, 0)]
    provided = {AT_HWCAP: 0xFF, AT_HWCAP2: 0x6}
    expected = [(AT_PAGESZ, 4096), (AT_HWCAP, 0x30), (AT_HWCAP2, 0x2), (AT_NULL, 0)]
    assert masked_vector(pairs, (0x3C, 0x3), provided) == expected


def test_masked_vector_never_adds_a_word_the_kernel_does_not_provide() -> None:
    """--hwcap3/--hwcap4 on a kernel without ELF_HWCAP3/4 (x86): no entry, whatever the mask says."""
    pairs = [(AT_HWCAP, 0xFF), (AT_PAGESZ, 4096), (AT_NULL, 0)]
    provided = {AT_HWCAP: 0xFF, AT_HWCAP2: 0x6}
    expected = [(AT_HWCAP, 0x0F), (AT_PAGESZ, 4096), (AT_HWCAP2, 0x4), (AT_NULL, 0)]
    assert masked_vector(pairs, (0x0F, 0x5, 0x1, 0x1), provided) == expected
    assert masked_vector(pairs, (0x0F,), {}) == [(AT_HWCAP, 0x0F), (AT_PAGESZ, 4096), (AT_NULL, 0)]


def test_masked_vector_keeps_a_word_whose_option_is_not_given_whole_but_once() -> None:
    pairs = [(AT_HWCAP2, 0x1), (AT_HWCAP, 0xFF), (AT_HWCAP2, 0x7), (AT_NULL, 0)]
    assert masked_vector(pairs, (0x3, None), {AT_HWCAP3: 0x5}) == [
        (AT_HWCAP2, 0x7), (AT_HWCAP, 0x3), (AT_HWCAP3, 0x5), (AT_NULL, 0)
    ]  # fmt: skip


def test_apply_mask_adds_back_a_dropped_word_from_the_stack_but_no_word_arm64_lacks() -> None:
    """An earlier write dropped AT_HWCAP2 from saved_auxv: hwcap-exec re-adds it from its own stack. arm64
    has no ELF_HWCAP4 (kernel.md#hwcap-words-per-arch), so a --hwcap4 word adds nothing."""
    k = Kernel(config())
    pid = k.spawn("u", creds=Creds.user(65534))
    layout = k.config.native_layout
    saved = [(t, v) for t, v in layout.pairs(k.proc_auxv(pid)) if t not in (AT_HWCAP2, AT_NULL)]
    assert k.prctl_set_mm_map(pid, PrctlMmMap(k.proc_stat_layout(pid), layout.encode([*saved, (AT_NULL, 0)]))) == 0
    # An all-ones --hwcap2 word: the re-added entry must carry the node's value, not the mask word.
    assert apply_mask(k, pid, (MASK[0], WORD, MASK[2], WORD)).method == "PR_SET_MM_MAP"
    after = layout.pairs(k.proc_auxv(pid))
    hwcaps = [(t, v) for t, v in after if t in (AT_HWCAP, AT_HWCAP2, AT_HWCAP3, AT_HWCAP4)]
    assert hwcaps == [(AT_HWCAP, NODE[0] & MASK[0]), (AT_HWCAP3, NODE[2] & MASK[2]), (AT_HWCAP2, NODE[1])]


def test_apply_prefers_map_and_falls_back_to_auxv_with_cap_sys_resource() -> None:
    k = Kernel(config())
    assert apply_mask(k, k.spawn("u", creds=Creds.user(65534)), MASK).method == "PR_SET_MM_MAP"
    no_cr = Kernel(KernelConfig.for_arch("arm64", NODE, checkpoint_restore=False))
    root = no_cr.spawn("r", creds=Creds.user(0, caps=frozenset({CAP_SYS_RESOURCE})))
    result = apply_mask(no_cr, root, MASK)
    assert (result.method, result.map_result, result.auxv_result) == ("PR_SET_MM_AUXV", -errno.EINVAL, 0)
    user = no_cr.spawn("u", creds=Creds.user(65534))
    assert not apply_mask(no_cr, user, MASK).applied


def test_apply_mask_in_a_non_dumpable_process_needs_no_dumpable_fixup() -> None:
    """A non-dumpable process still reads its own /proc/self/stat layout (measured by the kernel lab on
    6.12.117), so the binary's dumpable fix-up (header step 4) is not triggered and PR_SET_MM_MAP works
    without any capability."""
    k = Kernel(config())
    pid = k.spawn("r", creds=Creds())
    assert k.setresuid(pid, 65534, 65534, 65534) == 0 and not k.task(pid).mm.dumpable
    assert not k.task(pid).creds.caps  # no PR_SET_MM_AUXV fallback: PR_SET_MM_MAP has to work
    result = apply_mask(k, pid, MASK)
    assert (result.method, result.dumpable_fixup) == ("PR_SET_MM_MAP", False)
    assert not k.task(pid).mm.dumpable
    assert not [e for e in k.trace if e.op.startswith("prctl(PR_SET_DUMPABLE")]


def test_apply_mask_refuses_a_vector_larger_than_saved_auxv_before_any_prctl() -> None:
    """build_masked: adding a word back must fit sizeof(saved_auxv); otherwise nothing is written."""
    k = Kernel(config())
    pid = k.spawn("r", creds=Creds.user(0, caps=frozenset({CAP_SYS_RESOURCE})))
    size = k.config.saved_auxv_bytes
    layout = k.config.native_layout
    kept = [(t, v) for t, v in layout.pairs(k.proc_auxv(pid)) if t not in (AT_HWCAP2, AT_NULL)]
    filler = [(AT_PAGESZ, 4096)] * (size // 16 - 1 - len(kept))
    assert k.prctl_set_mm_map(pid, PrctlMmMap(k.proc_stat_layout(pid), layout.encode([*kept, *filler]))) == 0
    before, trace = k.proc_auxv(pid), len(k.trace)
    result = apply_mask(k, pid, MASK)
    assert not result.applied and (result.map_result, result.auxv_result) == (None, None)
    assert result.refused == f"the masked auxv needs {size + 16} bytes, saved_auxv holds {size}"
    assert [e.op for e in k.trace[trace:]] == ["prctl(PR_GET_AUXV)"] and k.proc_auxv(pid) == before


def test_hwcap_exec_step_reports_the_exec_like_the_guest_even_when_the_mask_did_not_take() -> None:
    """The lab's guest runs hwcap-exec --on-failure=warn: the step's result is the program's exec."""
    no_cr = KernelConfig.for_arch("arm64", NODE, checkpoint_restore=False)
    spawn = Step("spawn", "init", uid=65534)
    r = run(Scenario("warn", "", (spawn, Step("hwcap_exec", "init", mask=MASK), Step("observe", "init"))), no_cr)
    assert [o.result for o in r.observations] == [0, 0, 0]
    assert r.observations[-1].hwcap == NODE


# ------------------------------------------------------------------------------------ serialisation


def test_every_lab_scenario_round_trips_through_json() -> None:
    for scenario in lab_scenarios(MASK):
        text = json.dumps(scenario.to_dict())
        assert Scenario.from_dict(json.loads(text)) == scenario


def test_bad_scenario_json_names_the_field() -> None:
    data = by_name("auxv-with-cap").to_dict()
    data["steps"][1]["op"] = "frobnicate"
    with pytest.raises(ScenarioError, match=r"steps\.1\.op"):
        Scenario.from_dict(data)


def test_unknown_process_is_named() -> None:
    bad = Scenario("bad", "", (Step("spawn", "init"), Step("fork", "ghost", child="c")))
    with pytest.raises(ScenarioError, match="ghost"):
        run(bad, config())


def test_auxv_edit_keep_through_cuts_without_terminator() -> None:
    edit = AuxvEdit(mask=((AT_HWCAP, 0x1),), keep_through=AT_HWCAP)
    assert edit.apply([(AT_PAGESZ, 1), (AT_HWCAP, 0x3), (AT_HWCAP2, 0x3), (AT_NULL, 0)]) == [
        (AT_PAGESZ, 1),
        (AT_HWCAP, 0x1),
    ]


# ------------------------------------------------------------------------------------ lab scenarios on the model


def test_map_unprivileged_masks_a_depth_three_chain() -> None:
    seen = observed("map-unprivileged", config())
    assert seen["init"].hwcap == NODE  # its own stack copy does not change (kernel.md#getauxval-enoent)
    assert seen["init"].saved == {"AT_HWCAP": MASK[0] & NODE[0], "AT_HWCAP2": MASK[1] & NODE[1], "AT_HWCAP3": 1}
    assert [seen[c].hwcap for c in ("c1", "c2", "c3")] == [masked()] * 3


def test_auxv_without_cap_is_eperm_and_nothing_is_inherited() -> None:
    r = run(by_name("auxv-without-cap"), config())
    assert [o.result for o in r.observations if o.op == "set_auxv"] == [-errno.EPERM]
    assert r.observations[-1].hwcap == NODE


@pytest.mark.parametrize(("whole", "expected_tail"), [(False, NODE[1:]), (True, (0, 0))])
def test_short_vector_keeps_or_zeroes_the_tail(whole: bool, expected_tail: tuple[int, ...]) -> None:
    # kernel.md#prctl-set-mm-auxv: the v5 base copies len bytes (old AT_HWCAP2/3 survive), Debian 6.12.117
    # zeroes the rest.
    seen = observed("short-vector", config(whole=whole))
    assert seen["c1"].hwcap == (NODE[0] & MASK[0], *expected_tail)


@pytest.mark.parametrize(("patch", "hwcap2"), [("v5", 0), ("v4", NODE[1])])
def test_missing_hwcap2(patch: PatchLevel, hwcap2: int) -> None:
    assert observed("missing-hwcap2", config(patch))["c1"].hwcap == (masked()[0], hwcap2, masked()[2])


@pytest.mark.parametrize(("patch", "hwcap3"), [("v5", 0), ("v4", NODE[2])])
def test_prepended_duplicate_ends_the_scan_before_hwcap3(patch: PatchLevel, hwcap3: int) -> None:
    # kernel.md#inherit-hwcap: AT_HWCAP=0, AT_HWCAP=masked, AT_HWCAP2 use up n = 3: AT_HWCAP3 is never read.
    assert observed("duplicate-prepended", config(patch))["c1"].hwcap == (*masked()[:2], hwcap3)


def test_appended_duplicate_is_never_reached() -> None:
    assert observed("duplicate-appended", config())["c1"].hwcap == masked()


def test_thread_exec_and_setuid_child() -> None:
    assert observed("thread-exec", config())["t1"].hwcap == masked()
    suid = observed("setuid-child", config())["s"]
    assert (suid.hwcap, suid.secure) == (masked(), 1)


def test_non_dumpable_then_dumpable() -> None:
    r = run(by_name("non-dumpable"), config())
    assert [o.result for o in r.observations if o.op == "set_mm_map"] == [0, 0]
    assert r.observations[-1].hwcap == masked()


@pytest.mark.parametrize(
    ("patch", "a32", "a64"),
    [
        ("v5", COMPAT_WORDS, NODE),  # arch switch clears the flag (kernel.md#arch-switch)
        ("none", COMPAT_WORDS, NODE),
    ],
)
def test_compat_child(patch: PatchLevel, a32: tuple[int, ...], a64: tuple[int, ...]) -> None:
    seen = observed("compat-child", config(patch))
    assert (seen["a32"].hwcap, seen["a64"].hwcap) == (a32, a64)


def test_v4_compat_child_gets_arm64_bits_and_its_child_a_misread_vector() -> None:
    # kernel.md#v4-compat-regression: the AArch32 child gets the (masked) arm64 words, truncated to 32 bits.
    seen = observed("compat-child", config("v4"))
    assert seen["a32"].hwcap == (MASK[0] & NODE[0] & 0xFFFFFFFF, *masked()[1:])
    # kernel.md#v4-vs-v5: v4 reads the AArch32 task's packed u32 pairs as 64-bit pairs. A 64-bit "type" word equals
    # AT_HWCAP only for a (16, 0) pair, so AT_HWCAP stays alloc_bprm's native ELF_HWCAP: unmasked.
    assert seen["a64"].hwcap[0] == NODE[0] != masked()[0]


def test_patch_none_children_always_see_the_node() -> None:
    for scenario in lab_scenarios(MASK):
        for o in run(scenario, config("none")).observations:
            if o.op == "observe" and o.proc != "init":
                assert o.hwcap in (NODE, COMPAT_WORDS), (scenario.name, o)


def test_observations_serialise() -> None:
    lines = [o.to_dict() for o in run(by_name("setuid-child"), config()).observations]
    assert json.loads(json.dumps(lines))[-1]["hwcap"] == [f"{w:#x}" for w in masked()]
    assert all(isinstance(e.to_dict()["saved"], dict) for e in run(by_name("setuid-child"), config()).trace)
