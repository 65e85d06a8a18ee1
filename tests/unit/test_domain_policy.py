"""MigrationDomain policy on real CPU dumps: membership, frozen vs follow, exclude vs lower, security refusal.

Expected feature sets are the dumps' Features lines split on whitespace (tests.support.profiles.raw_feature_words),
and the security list is issue 2's, not the catalog's flags.
"""

from __future__ import annotations

from collections.abc import Sequence

from domaindata import (
    ALTRA,
    ARM64_SECURITY,
    G1,
    G2,
    G3,
    G4,
    SKYLAKE,
    ZEN2,
    at,
    condition,
    node,
    node_object,
    roundtrip,
    spec,
)
from tests.support.profiles import raw_feature_words

from hwcap_operator import keys
from hwcap_operator.domain import api
from hwcap_operator.domain.impact import InjectedPod
from hwcap_operator.domain.node_features import NodeFeatures, node_features
from hwcap_operator.domain.policy import MaskFinding, domains_affected_by, evaluate
from hwcap_operator.mask import FeatureMask

G2_WORDS, G3_WORDS, G4_WORDS = raw_feature_words(G2), raw_feature_words(G3), raw_feature_words(G4)


def graviton3s(count: int = 2, **kwargs: object) -> list[NodeFeatures]:
    return [node(f"g3-{i}", G3, **kwargs) for i in range(count)]  # type: ignore[arg-type]


def names(mask: FeatureMask | None) -> set[str]:
    assert mask is not None
    return set(mask.names())


def reasons(state_excluded: dict[str, object] | object) -> dict[str, str]:
    return {name: e.reason for name, e in state_excluded.items()}  # type: ignore[attr-defined]


# ------------------------------------------------------------------------------------------ membership


def test_auto_mask_of_identical_nodes_is_their_features() -> None:
    state = evaluate(spec(), [node("g2", G2), node("altra", ALTRA)], None, 1, now=at(0))
    assert names(state.mask) == G2_WORDS == raw_feature_words(ALTRA)
    assert state.members == ("altra", "g2")
    assert state.dropped == ()
    assert condition(state.status, "Ready").status == "True"
    assert condition(state.status, "Degraded").status == "False"
    assert [e.reason for e in state.events] == ["MaskEstablished"]
    wire = state.status.to_wire()
    assert wire["mask"]["id"] == state.mask.mask_id if state.mask else False
    assert wire["members"] == {"count": 2, "names": ["altra", "g2"]}


def test_mask_words_in_status_are_the_dump_features_bits() -> None:
    state = evaluate(spec(), graviton3s(1), None, 1, now=at(0))
    expected = FeatureMask.from_names("arm64", G3_WORDS)
    assert state.status.mask is not None
    assert (state.status.mask.hwcap, state.status.mask.hwcap2) == (hex(expected.hwcap[0]), hex(expected.hwcap[1]))
    assert state.status.mask.popcount == len(G3_WORDS)


def test_other_arch_and_unselected_nodes_are_never_members() -> None:
    domain = spec(nodeSelector={"matchLabels": {"pool": "a"}})
    nodes = [
        node("g3-a", G3, labels={"pool": "a"}),
        node("g3-b", G3, labels={"pool": "b"}),
        node("zen2-a", ZEN2, labels={"pool": "a"}, agent=False, node_feature=True),
    ]
    state = evaluate(domain, nodes, None, 1, now=at(0))
    assert state.members == ("g3-a",)
    assert state.excluded == {}


def test_match_expressions_select_nodes() -> None:
    domain = spec(
        nodeSelector={
            "matchExpressions": [
                {"key": "zone", "operator": "In", "values": ["z1", "z2"]},
                {"key": "spot", "operator": "DoesNotExist"},
            ]
        }
    )
    nodes = [
        node("in-z1", G3, labels={"zone": "z1"}),
        node("in-z3", G3, labels={"zone": "z3"}),
        node("spot-z2", G3, labels={"zone": "z2", "spot": "yes"}),
    ]
    assert evaluate(domain, nodes, None, 1, now=at(0)).members == ("in-z1",)


def test_required_feature_missing_excludes_with_reason() -> None:
    state = evaluate(spec(require=["sve"]), [*graviton3s(), node("g2", G2)], None, 1, now=at(0))
    assert state.excluded["g2"].reason == "MissingRequiredFeatures"
    assert state.excluded["g2"].missing == ("sve",)
    assert names(state.mask) == G3_WORDS
    assert condition(state.status, "Degraded").reason == "NodesExcluded"
    assert state.status.excluded is not None and state.status.excluded.nodes[0].missing_features == ["sve"]


def test_excluded_features_are_never_advertised() -> None:
    hidden = {"sve", "svei8mm", "svebf16"}
    state = evaluate(spec(exclude=sorted(hidden)), graviton3s(), None, 1, now=at(0))
    # The mask hides something, so HWCAP_CPUID goes too (the ID registers would show the rest: domain.id_registers).
    assert names(state.mask) == G3_WORDS - hidden - {"cpuid"}
    assert set(state.dropped) == hidden | {"cpuid"}


# ---------------------------------------------------------------------------------------- frozen domains


def test_graviton2_joining_a_frozen_graviton3_domain_is_excluded_with_missing_features() -> None:
    first = evaluate(spec(), graviton3s(), None, 1, now=at(0))
    assert names(first.mask) == G3_WORDS
    second = evaluate(spec(), [*graviton3s(), node("g2", G2)], roundtrip(first.status), 1, now=at(5))
    assert second.mask == first.mask
    assert second.members == ("g3-0", "g3-1")
    exclusion = second.excluded["g2"]
    assert exclusion.reason == "MissingMaskFeatures"
    assert set(exclusion.missing) == G3_WORDS - G2_WORDS
    assert "paca" in exclusion.message and first.mask is not None and first.mask.mask_id in exclusion.message
    assert condition(second.status, "Ready").status == "True"
    assert condition(second.status, "Degraded").status == "True"
    assert "MaskEstablished" not in [e.reason for e in second.events]


def test_lower_lowers_a_frozen_mask_to_admit_a_weaker_node_when_hiding_is_allowed() -> None:
    domain = spec(leveling={"onMissingFeatures": "Lower"}, allowHidingSecurityFeatures=True)
    first = evaluate(domain, graviton3s(), None, 1, now=at(0))
    second = evaluate(domain, [*graviton3s(), node("g2", G2)], roundtrip(first.status), 1, now=at(5))
    assert names(second.mask) == G2_WORDS & G3_WORDS - {"cpuid"}, "a lowered mask is a new mask: HWCAP_CPUID goes"
    assert second.members == ("g2", "g3-0", "g3-1")
    lowered = [e for e in second.events if e.reason == "MaskLowered"]
    assert len(lowered) == 1 and "g2" in lowered[0].message and "paca" in lowered[0].message
    assert set(second.dropped) == G3_WORDS - G2_WORDS | {"cpuid"}
    # The lowered mask is now the frozen one: the weaker node leaving does not raise it again.
    third = evaluate(domain, graviton3s(), roundtrip(second.status), 1, now=at(9))
    assert third.mask == second.mask


def test_lower_that_would_hide_security_features_is_refused_and_the_node_excluded() -> None:
    domain = spec(leveling={"onMissingFeatures": "Lower"})
    first = evaluate(domain, graviton3s(), None, 1, now=at(0))
    second = evaluate(domain, [*graviton3s(), node("g2", G2)], roundtrip(first.status), 1, now=at(5))
    assert second.mask == first.mask
    assert second.excluded["g2"].reason == "LowerRefused"
    lost_security = sorted((G3_WORDS - G2_WORDS) & ARM64_SECURITY)
    assert lost_security == ["dit", "paca", "pacg"]
    for name in lost_security:
        assert name in second.excluded["g2"].message


def test_frozen_mask_survives_an_operator_restart_and_node_churn() -> None:
    first = evaluate(spec(), graviton3s(3), None, 4, now=at(0))
    stored = roundtrip(first.status)  # what a fresh operator reads from the apiserver
    nodes = [node("g3-2", G3), node("g4", G4), node("g3-0", G3)]  # other order, one node gone, a new one
    second = evaluate(spec(), nodes, stored, 4, now=at(30))
    assert second.mask == first.mask
    assert second.status.mask == first.status.mask
    assert second.excluded["g4"].reason == "MissingMaskFeatures"
    assert set(second.excluded["g4"].missing) == G3_WORDS - G4_WORDS
    ready_before, ready_after = condition(first.status, "Ready"), condition(second.status, "Ready")
    assert ready_after.status == ready_before.status == "True"
    assert ready_after.last_transition_time == ready_before.last_transition_time == at(0)
    assert not [e for e in second.events if e.reason.startswith("Mask")]


def test_relevel_request_recomputes_a_frozen_mask_and_reports_stranded_pods() -> None:
    domain = spec(allowHidingSecurityFeatures=True)
    first = evaluate(domain, graviton3s(), None, 1, now=at(0))
    old = first.mask
    assert old is not None
    pods = [
        InjectedPod("apps", "db-0", old.mask_id, old, node="g3-0"),
        InjectedPod("apps", "db-1", old.mask_id, old, node="g3-1"),
    ]
    nodes = [*graviton3s(), node("g2-a", G2), node("g2-b", G2)]
    kept = evaluate(domain, nodes, roundtrip(first.status), 1, pods=pods, now=at(5))
    assert kept.mask == old and set(kept.excluded) == {"g2-a", "g2-b"}
    assert kept.status.pod_impact == api.PodImpact(stale_pods=0, stranded_pods=0, pods=[])

    bumped = spec(allowHidingSecurityFeatures=True, leveling={"relevelGeneration": 1})
    relevel = evaluate(bumped, nodes, roundtrip(kept.status), 2, pods=pods, now=at(10))
    assert names(relevel.mask) == G2_WORDS & G3_WORDS - {"cpuid"}
    assert relevel.members == ("g2-a", "g2-b", "g3-0", "g3-1")
    assert [e.reason for e in relevel.events if e.reason.startswith("Mask")] == ["MaskReleveled"]
    impact = relevel.status.pod_impact
    assert impact is not None and (impact.stale_pods, impact.stranded_pods) == (2, 0)
    assert [(p.name, p.fits_node, p.movable_to, p.movable_to_nodes) for p in impact.pods] == [
        ("db-0", True, 2, ["g3-0", "g3-1"]),
        ("db-1", True, 2, ["g3-0", "g3-1"]),
    ]
    assert relevel.metrics.stale_pods == 2
    assert relevel.status.mask is not None and relevel.status.mask.basis.relevel_generation == 1


def test_a_pod_whose_mask_no_member_has_is_stranded() -> None:
    g4_mask = FeatureMask.from_names("arm64", G4_WORDS)
    pods = [InjectedPod("apps", "old", g4_mask.mask_id, g4_mask, node="g3-0")]
    state = evaluate(spec(), graviton3s(), None, 1, pods=pods, now=at(0))
    impact = state.status.pod_impact
    assert impact is not None and impact.stranded_pods == 1
    assert impact.pods[0].fits_node is False and impact.pods[0].movable_to == 0
    assert condition(state.status, "Degraded").reason == "PodsStranded"


# ---------------------------------------------------------------------------------------- follow domains


def test_follow_recomputes_on_every_membership_change() -> None:
    domain = spec(leveling={"mode": "Follow"}, allowHidingSecurityFeatures=True)
    mixed = evaluate(domain, [*graviton3s(), node("g2", G2)], None, 1, now=at(0))
    assert names(mixed.mask) == G2_WORDS & G3_WORDS - {"cpuid"}
    alone = evaluate(domain, graviton3s(), roundtrip(mixed.status), 1, now=at(5))
    assert names(alone.mask) == G3_WORDS, "hiding nothing, the mask keeps HWCAP_CPUID again"
    assert [e.reason for e in alone.events if e.reason.startswith("Mask")] == ["MaskFollowed"]
    frozen = spec(allowHidingSecurityFeatures=True)
    kept = evaluate(frozen, graviton3s(), roundtrip(mixed.status), 1, now=at(5))
    assert names(kept.mask) == G2_WORDS & G3_WORDS - {"cpuid"}, "the same change leaves a Frozen mask alone"


def test_follow_keeps_the_last_mask_when_every_node_leaves() -> None:
    domain = spec(leveling={"mode": "Follow"})
    first = evaluate(domain, graviton3s(), None, 1, now=at(0))
    empty = evaluate(domain, [], roundtrip(first.status), 1, now=at(5))
    assert empty.mask == first.mask and empty.members == ()
    assert condition(empty.status, "Ready").reason == "NoMembers"


# -------------------------------------------------------------------------------------- security refusal


def test_auto_mask_hiding_pointer_auth_of_members_is_refused() -> None:
    state = evaluate(spec(), [*graviton3s(), node("g2", G2)], None, 1, now=at(0))
    assert state.mask is None and state.members == ()
    valid = condition(state.status, "MaskValid")
    assert (valid.status, valid.reason) == ("False", "SecurityFeatureHidden")
    for name in sorted((G3_WORDS - G2_WORDS) & ARM64_SECURITY):
        assert name in valid.message
    assert "allowHidingSecurityFeatures" in valid.message
    assert condition(state.status, "Ready").reason == "MaskRefused"
    assert "SecurityFeatureHidden" in [e.reason for e in state.events]


def test_ssbs_alone_is_enough_to_refuse_graviton1_with_graviton2() -> None:
    hidden = (raw_feature_words(G2) - raw_feature_words(G1)) & ARM64_SECURITY
    assert hidden == {"ssbs"}
    state = evaluate(spec(), [node("g1", G1), node("g2", G2)], None, 1, now=at(0))
    assert condition(state.status, "MaskValid").reason == "SecurityFeatureHidden"
    assert "ssbs" in condition(state.status, "MaskValid").message


def test_preset_lacking_pointer_auth_is_refused_on_graviton3_and_accepted_when_allowed() -> None:
    domain = spec(baseline={"mode": "Preset", "preset": "neoverse-n1"})
    state = evaluate(domain, graviton3s(), None, 1, now=at(0))
    assert state.mask is None
    message = condition(state.status, "MaskValid").message
    assert all(name in message for name in ("paca", "pacg", "dit", "ssbs"))
    allowed = spec(baseline={"mode": "Preset", "preset": "neoverse-n1"}, allowHidingSecurityFeatures=True)
    ok = evaluate(allowed, graviton3s(), None, 1, now=at(0))
    assert ok.mask is not None and {"paca", "pacg"} <= set(ok.dropped)
    assert names(ok.mask) <= G3_WORDS


def test_explicit_mask_without_paca_is_refused_naming_paca() -> None:
    features = sorted(G3_WORDS - {"paca"})
    state = evaluate(spec(baseline={"mode": "Explicit", "features": features}), graviton3s(), None, 1, now=at(0))
    valid = condition(state.status, "MaskValid")
    assert valid.reason == "SecurityFeatureHidden" and "paca" in valid.message and "pacg" not in valid.message


def test_a_refused_relevel_keeps_serving_the_frozen_mask() -> None:
    first = evaluate(spec(), graviton3s(), None, 1, now=at(0))
    nodes = [*graviton3s(), node("g2", G2)]
    bumped = spec(leveling={"relevelGeneration": 1})
    state = evaluate(bumped, nodes, roundtrip(first.status), 2, now=at(5))
    assert state.mask == first.mask and state.members == ("g3-0", "g3-1")
    assert condition(state.status, "MaskValid").reason == "SecurityFeatureHidden"
    assert condition(state.status, "Ready").status == "True"
    assert state.status.mask is not None and state.status.mask.basis.relevel_generation == 0, (
        "the refused re-level stays pending"
    )


def test_a_richer_node_whose_security_features_a_frozen_mask_hides_is_excluded() -> None:
    domain = spec()
    first = evaluate(domain, [node("g2", G2), node("altra", ALTRA)], None, 1, now=at(0))
    second = evaluate(domain, [node("g2", G2), node("altra", ALTRA), node("g3", G3)], roundtrip(first.status), 1)
    assert second.mask == first.mask
    assert second.excluded["g3"].reason == "SecurityFeaturesHidden"
    assert set(second.excluded["g3"].missing) == (G3_WORDS - G2_WORDS) & ARM64_SECURITY


# ------------------------------------------------------------------------------------ spec and sources


def test_unknown_feature_in_spec_is_reported_and_keeps_the_old_mask() -> None:
    first = evaluate(spec(), graviton3s(), None, 1, now=at(0))
    state = evaluate(spec(require=["sve9"]), graviton3s(), roundtrip(first.status), 2, now=at(5))
    assert state.mask == first.mask and state.members == ("g3-0", "g3-1")
    valid = condition(state.status, "MaskValid")
    assert valid.reason == "UnknownFeature" and "sve9" in valid.message and "spec.require" in valid.message
    assert condition(state.status, "Ready").reason == "SpecInvalid"


def test_a_preset_of_another_arch_is_reported() -> None:
    state = evaluate(spec(baseline={"mode": "Preset", "preset": "x86-64-v3"}), graviton3s(), None, 1, now=at(0))
    assert state.mask is None
    assert condition(state.status, "MaskValid").reason == "UnknownPreset"


def test_node_with_malformed_agent_data_is_excluded_with_the_bad_token() -> None:
    manifest = node_object("bad", G3)
    manifest["metadata"]["annotations"][keys.AGENT_HWCAP_ANNOTATION] = "0x1,0xzz"
    state = evaluate(spec(), [*graviton3s(), node_features(manifest)], None, 1, now=at(0))
    assert state.excluded["bad"].reason == "NodeFeaturesInvalid"
    assert "'0xzz'" in state.excluded["bad"].message and keys.AGENT_HWCAP_ANNOTATION in state.excluded["bad"].message
    assert state.metrics.node_source_issues == 1
    assert state.status.node_issues[0].name == "bad"
    assert state.members == ("g3-0", "g3-1")


def test_kernel_inheritance_required_excludes_unsupported_and_unknown_kernels() -> None:
    nodes = [node("ok", G3), node("old", G3, inheritance="unsupported"), node("new", G3, inheritance="unknown")]
    required = evaluate(spec(enforcement={"kernelInheritance": "Required"}), nodes, None, 1, now=at(0))
    assert required.members == ("ok",)
    assert reasons(required.excluded) == {"old": "KernelCannotInherit", "new": "KernelCannotInherit"}
    preferred = evaluate(spec(), nodes, None, 1, now=at(0))
    assert preferred.members == ("new", "ok", "old")
    assert preferred.kernel_unsupported == ("old",) and preferred.kernel_unknown == ("new",)
    kernel = condition(preferred.status, "KernelSupport")
    assert (kernel.status, kernel.reason) == ("False", "InheritanceUnsupported") and "old" in kernel.message
    off = evaluate(spec(enforcement={"kernelInheritance": "Off"}), nodes, None, 1, now=at(0))
    assert condition(off.status, "KernelSupport").status == "Unknown"


def test_exec_model_findings_decide_mask_valid() -> None:
    seen: list[tuple[FeatureMask, Sequence[NodeFeatures]]] = []

    def validator(mask: FeatureMask, members: Sequence[NodeFeatures]) -> Sequence[MaskFinding]:
        seen.append((mask, members))
        return [MaskFinding("CrossAbiExecDropsMask", "an AArch32 child loses the mask", "error")]

    state = evaluate(spec(), [*graviton3s(3), node("g2", G2)], None, 1, validate=validator, now=at(0))
    assert state.mask is None and seen == [], "a refused mask is not validated"
    state = evaluate(spec(), graviton3s(3), None, 1, validate=validator, now=at(0))
    assert len(seen) == 1 and len(seen[0][1]) == 1, "identical members are validated once"
    valid = condition(state.status, "MaskValid")
    assert (valid.status, valid.reason) == ("False", "CrossAbiExecDropsMask")
    assert condition(state.status, "Ready").reason == "MaskInvalid"


# ------------------------------------------------------------------------------------------------ x86


def test_x86_preset_domain_from_node_feature_objects_lists_fallback_only_features() -> None:
    nodes = [node(n, d, agent=False, node_feature=True) for n, d in (("zen2", ZEN2), ("skylake", SKYLAKE))]
    # x86-64-v3 cannot promise RDSEED/SHA-NI (Haswell has neither): hiding them must be allowed explicitly
    domain = spec("amd64", baseline={"mode": "Preset", "preset": "x86-64-v3"}, allowHidingSecurityFeatures=True)
    state = evaluate(domain, nodes, None, 1, now=at(0))
    assert state.members == ("skylake", "zen2")
    assert state.mask is not None and {"avx2", "fma", "bmi2"} <= state.mask.cpuid
    assert "avx512f" in state.dropped  # Skylake-SP has AVX-512, the v3 level does not
    assert "avx512f" in state.status.fallback_only_features
    assert "fpu" not in state.status.fallback_only_features  # an AT_HWCAP bit: the kernel can hide it


# ------------------------------------------------------------------------------------------ scale helpers


def test_domains_affected_by_a_node_change() -> None:
    domains = {
        "pool-a": spec(nodeSelector={"matchLabels": {"pool": "a"}}),
        "pool-b": spec(nodeSelector={"matchLabels": {"pool": "b"}}),
        "x86": spec("amd64"),
    }
    assert domains_affected_by({"pool": "a"}, "arm64", domains) == ["pool-a"]
    assert domains_affected_by({"pool": "b"}, "arm64", domains, old_labels={"pool": "a"}) == ["pool-a", "pool-b"]
    assert domains_affected_by({"pool": "a"}, "amd64", domains) == ["x86"]
    assert domains_affected_by({}, None, domains) == []


def test_two_domains_sharing_nodes_evaluate_independently() -> None:
    nodes = [node("g3-a", G3, labels={"team": "x"}), node("g2-a", G2, labels={"team": "x"}), node("g2-b", G2)]
    everything = evaluate(spec(allowHidingSecurityFeatures=True), nodes, None, 1, now=at(0))
    team = evaluate(spec(nodeSelector={"matchLabels": {"team": "x"}}, require=["sve"]), nodes, None, 1, now=at(0))
    assert names(everything.mask) == G2_WORDS - {"cpuid"} and everything.members == ("g2-a", "g2-b", "g3-a")
    assert names(team.mask) == G3_WORDS and team.members == ("g3-a",)
    assert reasons(team.excluded) == {"g2-a": "MissingRequiredFeatures"}


def test_status_lists_are_capped_but_counts_are_complete() -> None:
    nodes = [node(f"n{i:03d}", G3) for i in range(api.NAME_CAP + 10)]
    state = evaluate(spec(), nodes, None, 1, now=at(0))
    assert state.status.members is not None
    assert state.status.members.count == api.NAME_CAP + 10 and len(state.status.members.names) == api.NAME_CAP
    assert len(state.members) == api.NAME_CAP + 10
    assert state.metrics.members == api.NAME_CAP + 10


def test_evaluation_is_deterministic_whatever_the_node_order() -> None:
    nodes = [*graviton3s(3), node("g2", G2), node("g4", G4)]
    a = evaluate(spec(allowHidingSecurityFeatures=True), nodes, None, 1, now=at(0))
    b = evaluate(spec(allowHidingSecurityFeatures=True), list(reversed(nodes)), None, 1, now=at(0))
    assert a.status.to_wire() == b.status.to_wire() and a.events == b.events


# ------------------------------------------------------------------------------------ the real exec model


def test_the_exec_model_accepts_a_graviton_mask_and_warns_about_aarch32_children() -> None:
    state = evaluate(spec(allowHidingSecurityFeatures=True), [*graviton3s(), node("g2", G2)], None, 1, now=at(0))
    valid = condition(state.status, "MaskValid")
    assert (valid.status, valid.reason) == ("True", "Valid"), "hiding was allowed: not the exec model's call"
    assert "cross" in valid.message.lower() and "compat-child" not in valid.message
    assert [f.code for f in state.findings] == ["CrossAbiExecDropsMask"]
    assert all(f.severity == "warning" for f in state.findings)


def test_the_exec_model_says_x86_cpuid_features_need_fallbacks() -> None:
    nodes = [node(n, d, agent=False, node_feature=True) for n, d in (("zen2", ZEN2), ("skylake", SKYLAKE))]
    domain = spec("amd64", baseline={"mode": "Preset", "preset": "x86-64-v3"}, allowHidingSecurityFeatures=True)
    state = evaluate(domain, nodes, None, 1, now=at(0))
    assert "X86CpuidUnhideable" in [f.code for f in state.findings]
    assert "fallbacks" in condition(state.status, "MaskValid").message


def test_a_node_source_problem_is_reported_once_not_on_every_evaluation() -> None:
    manifest = node_object("bad", G3)
    manifest["metadata"]["annotations"][keys.AGENT_INHERITANCE_ANNOTATION] = "perhaps"
    nodes = [*graviton3s(), node_features(manifest)]
    first = evaluate(spec(), nodes, None, 1, now=at(0))
    assert [(e.reason, e.node) for e in first.events if e.node] == [("NodeFeaturesInvalid", "bad")]
    again = evaluate(spec(), nodes, roundtrip(first.status), 1, now=at(5))
    assert [e for e in again.events if e.node] == []
    assert again.status.node_issues == first.status.node_issues


def test_lower_does_not_lower_for_a_node_that_would_stay_out_for_its_security_features() -> None:
    domain = spec(leveling={"onMissingFeatures": "Lower"})
    first = evaluate(domain, graviton3s(), None, 1, now=at(0))
    second = evaluate(domain, [*graviton3s(), node("g4", G4)], roundtrip(first.status), 1, now=at(5))
    assert second.mask == first.mask, "lowering to admit g4 would be pointless: sb and bti stay hidden on it"
    exclusion = second.excluded["g4"]
    assert set(exclusion.missing) == G3_WORDS - G4_WORDS
    assert all(name in exclusion.message for name in sorted((G4_WORDS - G3_WORDS) & ARM64_SECURITY))


# -------------------------------------------------------------------------------------- corrupt agent report


def test_a_bit_in_a_word_the_arch_lacks_excludes_that_node_and_the_domain_stays_valid() -> None:
    corrupt = node_object("g3-bad", G3)
    words = corrupt["metadata"]["annotations"][keys.AGENT_HWCAP_ANNOTATION].split(",")
    corrupt["metadata"]["annotations"][keys.AGENT_HWCAP_ANNOTATION] = ",".join([*words[:3], "0x4"])
    state = evaluate(spec(), [*graviton3s(), node_features(corrupt)], None, 1, now=at(0))
    assert state.members == ("g3-0", "g3-1")
    assert state.excluded["g3-bad"].reason == "NodeFeaturesInvalid"
    assert "AT_HWCAP4=0x4" in state.excluded["g3-bad"].message
    assert condition(state.status, "MaskValid").status == "True"
    assert [(e.reason, e.node) for e in state.events if e.node == "g3-bad"] == [("NodeFeaturesInvalid", "g3-bad")]
