"""HWCAP_CPUID policy (issue 15 item 6) on real dumps: a mask that hides anything stops advertising HWCAP_CPUID,
unless spec.enforcement.idRegisterAccess keeps it, and MaskValid says which hidden features the ID registers show.

Expected sets come from the dumps' Features lines (tests.support.profiles.raw_feature_words); the features no
ID-register field carries (evtstrm, cpuid) are written out here from the kernel's arm64_elf_hwcaps[]
(docs/kernel.md#hwcap-cpuid), not taken from the module under test.
"""

from __future__ import annotations

import re

from domaindata import G2, G3, SKYLAKE, ZEN2, at, condition, node, roundtrip, spec
from tests.support.profiles import raw_feature_words

from hwcap_operator.cli.verbs_coverage import coverage_document
from hwcap_operator.domain.policy import evaluate
from hwcap_operator.domain.status import mask_status
from hwcap_operator.mask import FeatureMask

G2_WORDS, G3_WORDS = raw_feature_words(G2), raw_feature_words(G3)
#: What G3 has above G2 that the ID registers of a G3 node show (evtstrm and cpuid are no ID-register fields).
G3_ABOVE_G2 = sorted(G3_WORDS - G2_WORDS - {"evtstrm", "cpuid"})
MIXED = [node("g2", G2), node("g3", G3)]


def listed(message: str) -> list[str]:
    """The feature names a MaskValid note lists after "hidden feature(s): "."""
    found = re.search(r"hidden feature\(s\): ([a-z0-9, ]+)", message)
    assert found is not None, message
    return found.group(1).rstrip(", ").split(", ")


def test_the_dumps_disagree_on_enough_features_for_the_tests_to_mean_something() -> None:
    assert "cpuid" in G2_WORDS and "cpuid" in G3_WORDS
    assert {"sve", "i8mm", "bf16"} <= set(G3_ABOVE_G2)


def test_a_mask_that_hides_nothing_keeps_hwcap_cpuid() -> None:
    state = evaluate(spec(), [node("g3-a", G3), node("g3-b", G3)], None, 7, now=at(0))
    assert state.mask is not None and "cpuid" in state.mask
    valid = condition(state.status, "MaskValid")
    assert (valid.status, valid.reason, valid.observed_generation) == ("True", "Valid", 7)
    assert "HWCAP_CPUID kept: the mask hides no ID-register feature" in valid.message


def test_a_mask_that_hides_something_clears_hwcap_cpuid_and_says_what_the_id_registers_would_reveal() -> None:
    state = evaluate(spec(allowHidingSecurityFeatures=True), MIXED, None, 3, now=at(0))
    assert state.mask is not None and "cpuid" not in state.mask
    assert set(state.mask.names()) == G2_WORDS - {"cpuid"}
    valid = condition(state.status, "MaskValid")
    assert (valid.status, valid.reason, valid.observed_generation) == ("True", "Valid", 3)
    assert f"HWCAP_CPUID cleared: the ID registers would reveal {len(G3_ABOVE_G2)} hidden feature(s)" in valid.message
    assert set(listed(valid.message)) <= set(G3_ABOVE_G2) and len(listed(valid.message)) == min(16, len(G3_ABOVE_G2))
    assert "docs/kernel.md#hwcap-cpuid" in valid.message
    assert "cpuid" in state.dropped, "the webhook's fallbacks see it dropped (Go: GODEBUG cpu.cpuid=off)"


def test_keep_leaves_hwcap_cpuid_and_the_status_names_the_features_the_id_registers_reveal() -> None:
    keep = spec(allowHidingSecurityFeatures=True, enforcement={"idRegisterAccess": "Keep"})
    state = evaluate(keep, MIXED, None, 4, now=at(0))
    assert state.mask is not None and set(state.mask.names()) == G2_WORDS
    valid = condition(state.status, "MaskValid")
    assert (valid.status, valid.reason, valid.observed_generation) == ("True", "HiddenFeaturesInIdRegisters", 4)
    assert f"the ID registers reveal {len(G3_ABOVE_G2)} hidden feature(s)" in valid.message
    assert set(listed(valid.message)) <= set(G3_ABOVE_G2)
    assert "idRegisterAccess: Keep" in valid.message


def test_clear_removes_hwcap_cpuid_even_when_nothing_is_hidden() -> None:
    state = evaluate(spec(enforcement={"idRegisterAccess": "Clear"}), [node("g3", G3)], None, 1, now=at(0))
    assert state.mask is not None and set(state.mask.names()) == G3_WORDS - {"cpuid"}
    assert "idRegisterAccess: Clear" in condition(state.status, "MaskValid").message


def test_an_explicit_list_naming_cpuid_is_not_an_opt_in() -> None:
    """A feature list copied from /proc/cpuinfo names cpuid: only idRegisterAccess Keep keeps it."""
    explicit = spec(baseline={"mode": "Explicit", "features": sorted(G2_WORDS)}, allowHidingSecurityFeatures=True)
    hiding = evaluate(explicit, MIXED, None, 1, now=at(0))
    assert hiding.mask is not None and "cpuid" not in hiding.mask
    exact = evaluate(explicit, [node("g2", G2)], None, 1, now=at(0))
    assert exact.mask is not None and "cpuid" in exact.mask, "hiding nothing from its only member: kept"


def test_a_frozen_mask_that_kept_hwcap_cpuid_is_reported_and_cleared_only_on_relevel() -> None:
    domain = spec(allowHidingSecurityFeatures=True)
    first = evaluate(domain, [node("g2", G2)], None, 1, now=at(0))
    assert first.mask is not None and "cpuid" in first.mask
    joined = evaluate(domain, MIXED, roundtrip(first.status), 1, now=at(5))
    assert joined.mask == first.mask, "a Frozen mask never moves by itself"
    valid = condition(joined.status, "MaskValid")
    assert valid.reason == "HiddenFeaturesInIdRegisters"
    assert "kept by the frozen mask" in valid.message and "relevelGeneration" in valid.message
    bumped = spec(allowHidingSecurityFeatures=True, leveling={"relevelGeneration": 1})
    relevel = evaluate(bumped, MIXED, roundtrip(joined.status), 2, now=at(9))
    assert relevel.mask is not None and "cpuid" not in relevel.mask
    assert condition(relevel.status, "MaskValid").reason == "Valid"


def test_switching_to_keep_relevels_and_back_to_auto_clears_again() -> None:
    auto = spec(allowHidingSecurityFeatures=True)
    keep = spec(allowHidingSecurityFeatures=True, enforcement={"idRegisterAccess": "Keep"})
    first = evaluate(auto, MIXED, None, 1, now=at(0))
    kept = evaluate(keep, MIXED, roundtrip(first.status), 2, now=at(5))
    assert kept.mask is not None and "cpuid" in kept.mask
    assert [e.reason for e in kept.events if e.reason.startswith(("Mask", "Baseline"))] == ["BaselineChanged"]
    back = evaluate(auto, MIXED, roundtrip(kept.status), 3, now=at(9))
    assert back.mask == first.mask


def test_node_levelling_asks_nothing_for_a_cleared_hwcap_cpuid() -> None:
    """An ID-register override cannot (and need not) lower HWCAP_CPUID: a node at the mask stays AtMask."""
    report = spec(allowHidingSecurityFeatures=True, enforcement={"nodeLeveling": "Report"})
    state = evaluate(report, MIXED, None, 1, now=at(0))
    assert state.mask is not None and "cpuid" not in state.mask
    entries = {e.name: e for e in state.status.node_leveling}
    assert entries["g2"].state == "AtMask" and "cpuid" not in entries["g3"].remaining
    required = spec(allowHidingSecurityFeatures=True, enforcement={"nodeLeveling": "Required"})
    assert "g2" in evaluate(required, MIXED, None, 1, now=at(0)).members


def test_other_arches_have_no_hwcap_cpuid_rule() -> None:
    nodes = [node(n, d, agent=False, node_feature=True) for n, d in (("zen2", ZEN2), ("skl", SKYLAKE))]
    state = evaluate(spec("amd64", allowHidingSecurityFeatures=True), nodes, None, 1, now=at(0))
    assert state.mask is not None and state.dropped, "the mask hides something, yet nothing arm64-specific happens"
    assert "HWCAP_CPUID" not in condition(state.status, "MaskValid").message


def test_a_mask_frozen_before_the_rule_existed_is_kept_and_reported_not_relevelled() -> None:
    """An operator upgrade must not move frozen masks: a status written by an older operator (the mask hides
    features and still has cpuid, same basis) stays as it is, with the fix in the message."""
    domain = spec(allowHidingSecurityFeatures=True)
    now = evaluate(domain, MIXED, None, 1, now=at(0))
    assert now.status.mask is not None and now.mask is not None
    older_mask = now.mask | FeatureMask.from_names("arm64", ["cpuid"])
    older = now.status.model_copy(update={"mask": mask_status(older_mask, now.status.mask.basis)})
    after = evaluate(domain, MIXED, roundtrip(older), 1, now=at(5))
    assert after.mask == older_mask and not [e for e in after.events if e.reason.startswith(("Mask", "Baseline"))]
    valid = condition(after.status, "MaskValid")
    assert valid.reason == "HiddenFeaturesInIdRegisters" and "before this rule existed" in valid.message


def test_explain_domain_says_why_hwcap_cpuid_is_cleared_or_kept_from_the_published_status() -> None:
    """`hwcapctl explain --domain` reads only spec and status; it reaches the same verdict the operator wrote."""
    for access, outcome, has_cpuid in (("Auto", "Cleared", False), ("Keep", "KeptBySpec", True)):
        domain = spec(allowHidingSecurityFeatures=True, enforcement={"idRegisterAccess": access})
        state = evaluate(domain, MIXED, None, 1, now=at(0))
        document = coverage_document("mixed", domain, roundtrip(state.status))
        assert document["idRegistersAdvertised"] is has_cpuid
        found = document["idRegisters"]
        assert (found["access"], found["outcome"]) == (access, outcome)
        assert sorted(found["revealed"]) == G3_ABOVE_G2
        assert found["note"] in condition(state.status, "MaskValid").message
    x86 = spec("amd64")
    assert coverage_document("x", x86, None)["idRegisters"] is None
