"""spec.enforcement.nodeLeveling in the domain policy, on nodes built from the real dumps.

Expectations from the dump text and the override table's data (FIELDS), not from the policy's output.
"""

from __future__ import annotations

from typing import Any

from tests.support.profiles import raw_feature_words
from tests.unit.domaindata import G2, G4, at, node, roundtrip, spec

from hwcap_operator.domain.policy import evaluate
from hwcap_operator.features.data_idreg_overrides import FIELDS

#: Graviton4 without the SVE family: exactly what arm64.nosve takes away, so G4 is levellable to it.
SVE_FAMILY = set(FIELDS["id_aa64pfr0.sve"].removed_by(0))
G4_WITHOUT_SVE = sorted(raw_feature_words(G4) - SVE_FAMILY)


def explicit(mode: str) -> dict[str, Any]:
    return {"baseline": {"mode": "Explicit", "features": G4_WITHOUT_SVE}, "enforcement": {"nodeLeveling": mode}}


def test_off_by_default_reports_nothing() -> None:
    off = explicit("Off")
    del off["enforcement"]
    state = evaluate(spec(**off), [node("g4", G4)], None, 1, now=at(0))
    assert state.status.node_leveling == []
    assert state.members == ("g4",)


def test_report_names_the_parameters_and_keeps_the_member() -> None:
    state = evaluate(spec(**explicit("Report")), [node("g4", G4)], None, 1, now=at(0))
    [entry] = roundtrip(state.status).node_leveling
    assert (entry.name, entry.state, entry.parameters) == ("g4", "Available", ["arm64.nosve"])
    assert entry.message == "levelling available: arm64.nosve"
    assert state.members == ("g4",)


def test_required_excludes_the_member_with_the_exact_command_line() -> None:
    state = evaluate(spec(**explicit("Required")), [node("g4", G4)], None, 1, now=at(0))
    assert state.members == ()
    excluded = state.excluded["g4"]
    assert excluded.reason == "NodeNotLevelled"
    assert "`arm64.nosve`" in excluded.message


def test_a_member_no_override_reaches_is_not_levellable_with_what_stays() -> None:
    nodes = [node("g2", G2), node("g4", G4)]
    # Without it the G2 x G4 mask is refused (it hides G4's bti, paca, ...).
    allow: dict[str, Any] = {"allowHidingSecurityFeatures": True}
    state = evaluate(spec(enforcement={"nodeLeveling": "Report"}, **allow), nodes, None, 1, now=at(0))
    entries = {e.name: e for e in state.status.node_leveling}
    assert entries["g2"].state == "AtMask"
    g4 = entries["g4"]
    assert g4.state == "NotLevellable"
    # i8mm and bf16 are on Graviton4 and not on Graviton2, and no kernel has an override for them.
    assert {"i8mm", "bf16"} <= (raw_feature_words(G4) - raw_feature_words(G2))
    assert {"i8mm", "bf16"} <= set(g4.remaining)
    assert set(g4.parameters) == {"arm64.nosve", "arm64.nobti", "arm64.nopauth"}
    assert g4.message.startswith("not levellable: no override on kernel 6.12.57 for ")
    required = evaluate(spec(enforcement={"nodeLeveling": "Required"}, **allow), nodes, None, 1, now=at(0))
    assert "g4" in required.excluded and "g2" in required.members
