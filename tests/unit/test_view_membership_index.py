"""The view's per-domain indexes (selected nodes, member-labelled nodes) must always equal a full scan.

A reconcile reads its candidates from the index instead of every node of its arch; a stale entry would make
a domain miss a node that joined, or keep one that left, so each step below is compared with a recount.
"""

from __future__ import annotations

from typing import Any

from tests.support.profiles import PROFILES_DIR

from hwcap_dev.devcluster.simulated_nodes import load_profile, node_manifest
from hwcap_operator import keys
from hwcap_operator.kube.node_list import replace_nodes
from hwcap_operator.kube.view import ClusterView, slim_node

ARM = "arm64-aws-graviton2-neoverse-n1"
X86 = "x86_64-amd-zen2-rome-epyc7742"


def node(name: str, profile: str, rv: int, **labels: str) -> dict[str, Any]:
    body = node_manifest(name, load_profile(PROFILES_DIR / f"{profile}.txt"), labels=labels)
    body["metadata"]["resourceVersion"] = str(rv)
    return body


def domain(name: str, team: str, rv: int = 1) -> dict[str, Any]:
    return {"apiVersion": keys.API_VERSION, "kind": keys.KIND,
            "metadata": {"name": name, "uid": f"uid-{name}", "generation": rv, "resourceVersion": str(rv)},
            "spec": {"arch": "arm64", "nodeSelector": {"matchLabels": {"team": team}},
                     "workloads": {"namespaceSelector": {"matchLabels": {"team": team}}}}}  # fmt: skip


def candidate_names(view: ClusterView, name: str) -> set[str]:
    spec = view.domains[name].spec
    assert spec is not None
    return {n.name for n in view.candidates(spec)}


def scanned(view: ClusterView, name: str) -> set[str]:
    record = view.domains[name]
    return {n for n, body in view.nodes.items() if record.selects(view._arch(body), body["metadata"]["labels"])}


def member_label(name: str) -> str:
    return f"{keys.DOMAIN_MEMBER_LABEL_PREFIX}{name}"


def test_candidates_follow_relabels_deletions_and_selector_changes() -> None:
    view = ClusterView()
    view.update_node(node("early", ARM, 1, team="red"))  # listed before its domain exists
    view.upsert_domain(domain("red", "red"))
    view.upsert_domain(domain("blue", "blue"))
    view.update_node(node("a", ARM, 1, team="red"))
    view.update_node(node("b", ARM, 1, team="blue"))
    view.update_node(node("x", X86, 1, team="red"))  # another arch: never a candidate
    assert candidate_names(view, "red") == scanned(view, "red") == {"early", "a"}
    view.update_node(node("a", ARM, 2, team="blue"))
    assert candidate_names(view, "red") == scanned(view, "red") == {"early"}
    assert candidate_names(view, "blue") == scanned(view, "blue") == {"a", "b"}
    view.delete_node("b")
    assert candidate_names(view, "blue") == {"a"}
    view.upsert_domain(domain("blue", "red", rv=2))  # blue's selector now matches team=red
    assert candidate_names(view, "blue") == scanned(view, "blue") == {"early"}


def test_labelled_members_follow_label_additions_and_removals() -> None:
    view = ClusterView()
    view.upsert_domain(domain("red", "red"))
    view.update_node(node("a", ARM, 1, team="red", **{member_label("red"): "true"}))
    view.update_node(node("b", ARM, 1, team="red"))
    assert view.labelled_members("red") == {"a"}
    view.update_node(node("b", ARM, 2, team="red", **{member_label("red"): "true"}))
    view.update_node(node("a", ARM, 2, team="red"))
    assert view.labelled_members("red") == {"b"}
    view.delete_node("b")
    assert view.labelled_members("red") == set()


def test_a_relist_drops_the_nodes_it_no_longer_holds_and_wakes_their_domains() -> None:
    view = ClusterView()
    view.upsert_domain(domain("red", "red"))
    view.update_node(node("a", ARM, 1, team="red"))
    view.update_node(node("b", ARM, 1, team="red"))
    view.domains["red"].wake.clear()
    replace_nodes(view, [slim_node(node("a", ARM, 1, team="red"))])  # b was deleted while the watch was down
    assert set(view.nodes) == {"a"}
    assert candidate_names(view, "red") == {"a"}
    assert view.domains["red"].wake.is_set()


def test_nodes_of_the_same_hardware_share_a_parse_but_keep_their_own_name_and_labels() -> None:
    view = ClusterView()
    view.update_node(node("a", ARM, 1, team="red"))
    view.update_node(node("b", ARM, 1, team="blue"))
    view.update_node(node("c", "arm64-aws-graviton3-neoverse-v1", 1, team="red"))
    a, b, c = (view.node_features(n) for n in ("a", "b", "c"))
    assert (a.name, a.labels["team"], b.name, b.labels["team"]) == ("a", "red", "b", "blue")
    assert a.mask == b.mask and a.source == b.source == "nfd-labels"
    assert c.mask != a.mask  # other hardware: a parse of its own


SELECTORS: list[dict[str, Any]] = [
    {"matchLabels": {"team": "red"}},
    {"matchLabels": {"team": "blue", "tier": "gold"}},
    {"matchExpressions": [{"key": "team", "operator": "In", "values": ["red", "blue"]}]},
    {"matchExpressions": [{"key": "team", "operator": "NotIn", "values": ["red"]}]},
    {"matchExpressions": [{"key": "tier", "operator": "Exists"}]},
    {},
]


def test_domains_added_or_changed_after_the_nodes_select_exactly_what_a_scan_selects() -> None:
    """A restart adds every domain after the LIST (its candidates come from the label index); relabels and
    deletions between domain changes must keep that index exact."""
    import random

    rng = random.Random(7)
    view = ClusterView()
    for step in range(400):
        rv = step + 1
        roll = rng.random()
        if roll < 0.6:
            labels = {k: v for k, v in (("team", rng.choice(["red", "blue", "green", None])),
                                        ("tier", rng.choice(["gold", "iron", None]))) if v}  # fmt: skip
            view.update_node(node(f"n{rng.randrange(25)}", rng.choice([ARM, ARM, X86]), rv, **labels))
        elif roll < 0.7 and view.nodes:
            view.delete_node(rng.choice(sorted(view.nodes)))
        else:
            body = domain(f"d{rng.randrange(6)}", "unused", rv)
            body["spec"]["nodeSelector"] = rng.choice(SELECTORS)
            view.upsert_domain(body)
        for name in view.domains:
            assert candidate_names(view, name) - {n for n in view.nodes if view._arch(view.nodes[n]) is None} \
                == scanned(view, name), f"step {step}: domain {name}"
