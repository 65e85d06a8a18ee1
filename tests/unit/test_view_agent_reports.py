"""The view's count behind ``hwcap_domain_nodes_without_agent_report``: a domain's selected nodes without the
agent's words, following relabels, reports arriving and nodes leaving (compared with what each step wrote)."""

from __future__ import annotations

from typing import Any

from tests.unit.domaindata import node_object
from tests.unit.test_view_membership_index import domain

from hwcap_operator import keys
from hwcap_operator.kube.view import ClusterView

ARM = "arm64-aws-graviton2-neoverse-n1.txt"


def _node(name: str, rv: int, team: str, *, agent: bool) -> dict[str, Any]:
    body = node_object(name, ARM, labels={"team": team}, agent=agent, nfd_labels=True)
    body["metadata"]["resourceVersion"] = str(rv)
    return body


def test_only_selected_nodes_without_the_agents_words_are_counted() -> None:
    view = ClusterView()
    view.upsert_domain(domain("red", "red"))
    view.update_node(_node("reported", 1, "red", agent=True))
    view.update_node(_node("silent", 1, "red", agent=False))
    view.update_node(_node("elsewhere", 1, "blue", agent=False))  # not selected: not the domain's concern
    assert view.candidates_without_agent_report("red") == ["silent"]
    view.update_node(_node("silent", 2, "red", agent=True))  # the agent reported
    assert view.candidates_without_agent_report("red") == []
    view.update_node(_node("elsewhere", 2, "red", agent=False))  # relabelled into the domain
    assert view.candidates_without_agent_report("red") == ["elsewhere"]
    stale = _node("reported", 2, "red", agent=True)
    stale["metadata"]["annotations"].pop(keys.AGENT_HWCAP_ANNOTATION)
    view.update_node(stale)  # its words removed (a reset node)
    assert view.candidates_without_agent_report("red") == ["elsewhere", "reported"]
    view.delete_node("elsewhere")
    assert view.candidates_without_agent_report("red") == ["reported"]
    assert view.candidates_without_agent_report("unknown-domain") == []
