"""Laws of the domain policy over random clusters of real arm64 nodes (hypothesis).

Whatever the nodes and options: members and exclusions partition the selected nodes, every member has
every feature of the mask, no member loses a security feature unless allowed, a Frozen mask never rises
without a re-level, and re-evaluating with the status just written changes nothing (no flapping).
"""

from __future__ import annotations

from dataclasses import replace
from functools import cache
from typing import Any

from domaindata import ARM64_SECURITY, at, node, roundtrip, spec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.support.profiles import dump_names

from hwcap_operator.domain import api
from hwcap_operator.domain.node_features import NodeFeatures
from hwcap_operator.domain.policy import DomainState, evaluate, no_validation

ARM64_DUMPS = tuple(dump_names("arm64-"))
REQUIRABLE = ("atomics", "sve", "paca", "lrcpc", "bf16")


@cache
def base_node(dump: str) -> NodeFeatures:
    return node("template", dump)


@st.composite
def clusters(draw: st.DrawFn) -> list[NodeFeatures]:
    count = draw(st.integers(min_value=0, max_value=7))
    out = []
    for i in range(count):
        template = base_node(draw(st.sampled_from(ARM64_DUMPS)))
        out.append(
            replace(
                template,
                name=f"n{i}",
                labels={**template.labels, "pool": draw(st.sampled_from(["a", "b"]))},
                kernel_inheritance=draw(st.sampled_from(["supported", "unsupported", "unknown"])),
            )
        )
    return out


@st.composite
def specs(draw: st.DrawFn) -> api.MigrationDomainSpec:
    required = draw(st.sets(st.sampled_from(REQUIRABLE), max_size=2))
    excluded = draw(st.sets(st.sampled_from(REQUIRABLE), max_size=2)) - required
    fields: dict[str, Any] = {
        "require": sorted(required),
        "exclude": sorted(excluded),
        "allowHidingSecurityFeatures": draw(st.booleans()),
        "leveling": {
            "mode": draw(st.sampled_from(["Frozen", "Follow"])),
            "onMissingFeatures": draw(st.sampled_from(["Exclude", "Lower"])),
        },
        "enforcement": {"kernelInheritance": draw(st.sampled_from(["Required", "Preferred", "Off"]))},
    }
    if draw(st.booleans()):
        fields["nodeSelector"] = {"matchLabels": {"pool": "a"}}
    return spec(**fields)


def check_laws(domain: api.MigrationDomainSpec, nodes: list[NodeFeatures], state: DomainState) -> None:
    pool = domain.node_selector.match_labels.get("pool")
    selected = {n.name for n in nodes if pool is None or n.labels["pool"] == pool}
    members, excluded = set(state.members), set(state.excluded)
    assert not members & excluded
    assert members | excluded == selected or (state.mask is None and not members)
    by_name = {n.name: n for n in nodes}
    if state.mask is None:
        return
    names = set(state.mask.names())
    assert not names & set(domain.exclude)
    for name in members:
        member_mask = by_name[name].mask
        assert member_mask is not None and state.mask.issubset(member_mask)
        assert set(domain.require) <= set(member_mask.names())
        if domain.enforcement.kernel_inheritance == "Required":
            assert by_name[name].kernel_inheritance == "supported"
        if not domain.allow_hiding_security_features:
            assert not (set(member_mask.names()) - names) & ARM64_SECURITY


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(domain=specs(), first=clusters(), second=clusters())
def test_policy_laws_hold_across_two_evaluations(
    domain: api.MigrationDomainSpec, first: list[NodeFeatures], second: list[NodeFeatures]
) -> None:
    one = evaluate(domain, first, None, 1, validate=no_validation, now=at(0))
    check_laws(domain, first, one)
    two = evaluate(domain, second, roundtrip(one.status), 1, validate=no_validation, now=at(1))
    check_laws(domain, second, two)
    if domain.leveling.mode == "Frozen" and one.mask is not None and two.mask is not None:
        assert two.mask.issubset(one.mask), "a Frozen mask only ever stays or is lowered"
        if domain.leveling.on_missing_features == "Exclude":
            assert two.mask == one.mask
        elif two.mask != one.mask:
            by_name = {n.name: n for n in second}
            assert any(not one.mask.issubset(by_name[m].mask) for m in two.members), "lowered for nobody"  # type: ignore[arg-type]
    again = evaluate(domain, second, roundtrip(two.status), 1, validate=no_validation, now=at(2))
    assert again.mask == two.mask and again.members == two.members
    assert again.status.to_wire()["mask"] == two.status.to_wire()["mask"] if two.mask else again.mask is None
    assert not [e for e in again.events if e.reason.startswith("Mask")], "no flapping on a no-op re-evaluation"
    assert [c.last_transition_time for c in again.status.conditions] == [
        c.last_transition_time for c in two.status.conditions
    ]
