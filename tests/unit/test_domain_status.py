"""Status building: condition transition times, foreign conditions, capped lists, per-node Events."""

from __future__ import annotations

from domaindata import at

from hwcap_operator.domain import api
from hwcap_operator.domain.status import (
    ConditionUpdate,
    Exclusion,
    excluded_nodes,
    listing,
    merge_conditions,
    node_change_events,
    node_names,
)


def test_last_transition_time_moves_only_when_status_flips() -> None:
    first = merge_conditions([], [ConditionUpdate("Ready", "True", "MaskPublished", "2 nodes")], 1, at(0))
    same = merge_conditions(first, [ConditionUpdate("Ready", "True", "MaskPublished", "3 nodes")], 2, at(5))
    assert same[0].last_transition_time == at(0)
    assert (same[0].message, same[0].observed_generation) == ("3 nodes", 2)
    flipped = merge_conditions(same, [ConditionUpdate("Ready", "False", "NoMembers", "none")], 3, at(9))
    assert flipped[0].last_transition_time == at(9)


def test_conditions_have_a_fixed_order_and_foreign_types_survive() -> None:
    foreign = api.Condition(
        type="example.com/Audited", status="True", reason="Done", message="", last_transition_time=at(0)
    )
    merged = merge_conditions(
        [foreign],
        [
            ConditionUpdate("KernelSupport", "Unknown", "InheritanceUnknown", ""),
            ConditionUpdate("Ready", "True", "MaskPublished", ""),
        ],
        1,
        at(1),
    )
    assert [c.type for c in merged] == ["Ready", "KernelSupport", "example.com/Audited"]
    assert merged[2] == foreign


def test_name_lists_are_sorted_and_capped() -> None:
    listed = node_names([f"n{i}" for i in reversed(range(60))], cap=50)
    assert listed.count == 60 and listed.names[0] == "n0" and len(listed.names) == 50
    long = excluded_nodes(
        [Exclusion(f"x{i}", "MissingMaskFeatures", "m", tuple(f"f{j}" for j in range(99))) for i in range(3)]
    )
    assert long.count == 3 and len(long.nodes[0].missing_features) == api.FEATURE_CAP
    assert listing([str(i) for i in range(12)], cap=3) == "0, 1, 2, … (+9 more)"


def test_node_change_events_report_joins_exclusions_and_departures_once() -> None:
    excluded = {"g2": Exclusion("g2", "MissingMaskFeatures", "lacks paca", ("paca",))}
    events = node_change_events(["a", "gone"], {}, ["a", "b"], excluded)
    assert [(e.reason, e.node) for e in events] == [
        ("NodeJoined", "b"),
        ("MissingMaskFeatures", "g2"),
        ("NodeLeft", "gone"),
    ]
    assert node_change_events(["a", "b"], excluded, ["a", "b"], excluded) == []
    many = node_change_events([], {}, [f"n{i}" for i in range(30)], {}, cap=20)
    assert len(many) == 21 and many[-1].reason == "NodesChanged" and "10 more" in many[-1].message
