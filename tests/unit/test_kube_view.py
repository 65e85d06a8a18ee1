"""The operator's in-memory view: which domains a watch event wakes, and what the webhook then serves.

A node change must wake only the domains it concerns (a 5,000-node cluster with 100 domains cannot afford
re-evaluating everything per kubelet heartbeat), and must never lose a node's departure.
"""

from __future__ import annotations

from typing import Any

from tests.support.profiles import PROFILES_DIR

from hwcap_dev.devcluster.simulated_nodes import load_profile, node_manifest
from hwcap_operator import keys
from hwcap_operator.kube.reconcile import merge_patch
from hwcap_operator.kube.view import ClusterView


def node(name: str, profile: str, rv: str = "1", **labels: str) -> dict[str, Any]:
    body = node_manifest(name, load_profile(PROFILES_DIR / f"{profile}.txt"), labels=labels)
    body["metadata"]["resourceVersion"] = rv
    return body


def domain(name: str, team: str, arch: str = "arm64") -> dict[str, Any]:
    return {
        "apiVersion": keys.API_VERSION, "kind": keys.KIND,
        "metadata": {"name": name, "uid": f"uid-{name}", "generation": 1, "resourceVersion": "1"},
        "spec": {"arch": arch, "nodeSelector": {"matchLabels": {"team": team}},
                 "workloads": {"namespaceSelector": {"matchLabels": {"team": team}}}},
    }  # fmt: skip


def view_with_two_domains() -> ClusterView:
    view = ClusterView()
    view.upsert_domain(domain("red", "red"))
    view.upsert_domain(domain("blue", "blue"))
    return view


def test_a_new_node_wakes_only_the_domain_whose_selector_it_matches() -> None:
    view = view_with_two_domains()
    assert view.update_node(node("n1", "arm64-aws-graviton2-neoverse-n1", team="red")) == {"red"}


def test_a_heartbeat_that_changes_nothing_but_the_resource_version_wakes_nobody() -> None:
    view = view_with_two_domains()
    view.update_node(node("n1", "arm64-aws-graviton2-neoverse-n1", "1", team="red"))
    assert view.update_node(node("n1", "arm64-aws-graviton2-neoverse-n1", "2", team="red")) == set()


def test_relabelling_a_node_wakes_the_domain_it_left_and_the_one_it_joined() -> None:
    view = view_with_two_domains()
    view.update_node(node("n1", "arm64-aws-graviton2-neoverse-n1", "1", team="red"))
    assert view.update_node(node("n1", "arm64-aws-graviton2-neoverse-n1", "2", team="blue")) == {"red", "blue"}


def test_a_deleted_node_wakes_the_domain_it_belonged_to() -> None:
    view = view_with_two_domains()
    view.update_node(node("n1", "arm64-aws-graviton2-neoverse-n1", team="red"))
    assert view.delete_node("n1") == {"red"}
    assert view.candidates(view.domains["red"].spec) == []  # type: ignore[arg-type]


def test_nodes_of_another_arch_are_never_candidates() -> None:
    view = view_with_two_domains()
    view.update_node(node("x1", "x86_64-amd-zen2-rome-epyc7742", team="red"))
    view.update_node(node("a1", "arm64-aws-graviton2-neoverse-n1", team="red"))
    spec = view.domains["red"].spec
    assert spec is not None
    assert [n.name for n in view.candidates(spec)] == ["a1"]


def test_node_features_are_parsed_once_per_resource_version() -> None:
    view = view_with_two_domains()
    view.update_node(node("n1", "arm64-aws-graviton2-neoverse-n1", "1", team="red"))
    first = view.node_features("n1")
    assert view.node_features("n1") is first
    view.update_node(node("n1", "arm64-aws-graviton2-neoverse-n1", "2", team="red", extra="x"))
    assert view.node_features("n1") is not first


def test_an_invalid_spec_is_kept_with_its_error_not_dropped() -> None:
    view = ClusterView()
    bad = domain("bad", "red")
    bad["spec"]["arch"] = "sparc64"
    record = view.upsert_domain(bad)
    assert record.spec is None and record.spec_error and "arch" in record.spec_error


def test_the_webhook_serves_only_domains_with_a_published_mask() -> None:
    view = view_with_two_domains()
    view.refresh_webhook_domains()
    assert view.webhook_domains == ()
    red = domain("red", "red")
    red["status"] = {"mask": {"id": "x", "canonical": "arm64:hwcap=0x3;hwcap2=0x0;hwcap3=0x0;hwcap4=0x0",
                              "hwcap": "0x3", "hwcap2": "0x0", "hwcap3": "0x0", "hwcap4": "0x0", "popcount": 2,
                              "basis": {"baselineMode": "Auto", "fingerprint": "f", "relevelGeneration": 0}}}
    view.upsert_domain(red)
    assert view.refresh_webhook_domains() == []
    [served] = view.webhook_domains
    assert served.name == "red" and served.hwcap[0] == 0x3



def with_mask(body: dict[str, Any], hwcap: int) -> dict[str, Any]:
    body["status"] = {"mask": {"id": "x", "canonical": f"arm64:hwcap={hwcap:#x};hwcap2=0x0;hwcap3=0x0;hwcap4=0x0",
                               "hwcap": hex(hwcap), "hwcap2": "0x0", "hwcap3": "0x0", "hwcap4": "0x0",
                               "popcount": bin(hwcap).count("1"),
                               "basis": {"baselineMode": "Auto", "fingerprint": "f", "relevelGeneration": 0}}}
    return body


def test_the_webhook_serves_a_domains_new_mask_and_new_selector_after_a_refresh() -> None:
    """Refreshes reuse unchanged domains' views: a changed mask, spec or a removal must still show."""
    view = view_with_two_domains()
    view.upsert_domain(with_mask(domain("red", "red"), 0x3))
    view.upsert_domain(with_mask(domain("blue", "blue"), 0x3))
    view.refresh_webhook_domains()
    view.upsert_domain(with_mask(domain("red", "red"), 0x7))
    view.refresh_webhook_domains()
    assert {d.name: d.hwcap[0] for d in view.webhook_domains} == {"blue": 0x3, "red": 0x7}
    view.upsert_domain(with_mask(domain("red", "green"), 0x7))
    view.refresh_webhook_domains()
    red = next(d for d in view.webhook_domains if d.name == "red")
    assert red.namespace_selector is not None
    assert red.namespace_selector.matches({"team": "green"}) and not red.namespace_selector.matches({"team": "red"})
    view.remove_domain("blue")
    assert [d.name for d in view.webhook_domains] == ["red"]


def test_merge_patch_nulls_removed_fields_and_replaces_lists() -> None:
    old = {"a": 1, "b": {"c": 2, "d": 3}, "l": [1, 2]}
    new = {"b": {"c": 2}, "l": [2], "e": 5}
    assert merge_patch(old, new) == {"a": None, "b": {"d": None}, "l": [2], "e": 5}
