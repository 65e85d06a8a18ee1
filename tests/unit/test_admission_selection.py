"""Which domain owns a pod: Kubernetes label-selector semantics, exclusions, opt-out, conflicts."""

from __future__ import annotations

from typing import Any

import pytest

from hwcap_operator import keys
from hwcap_operator.admission import (
    DomainView,
    LabelSelector,
    MutationConfig,
    NoResolver,
    SelectorError,
    mutate_pod,
)
from hwcap_operator.admission.selection import matching_domains, never_touched_namespaces

CONFIG = MutationConfig(operator_namespace="hwcap-system", init_image="registry.example/hwcap-operator:0.1.0")


def domain(name: str, ns: dict[str, Any] | None, pods: dict[str, Any] | None = None, **kw: Any) -> DomainView:
    return DomainView(
        name=name,
        arch="arm64",
        hwcap=(0xFF, 0x2, 0x0, 0x0),
        mask_id="m1",
        mask_canonical="arm64:hwcap=0xff,hwcap2=0x2",
        namespace_selector=None if ns is None else LabelSelector.parse(ns),
        pod_selector=LabelSelector.parse(pods),
        **kw,
    )


def pod(labels: dict[str, str] | None = None, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web-0", "labels": labels or {}, "annotations": annotations or {}},
        "spec": {"containers": [{"name": "app", "image": "nginx:1.27", "command": ["nginx"]}]},
    }


def decide(p: dict[str, Any], ns: str, ns_labels: dict[str, str], domains: list[DomainView]) -> Any:
    return mutate_pod(
        p, namespace=ns, namespace_labels=ns_labels, domains=domains, config=CONFIG, resolver=NoResolver()
    )


# ------------------------------------------------------------------------------------ selector semantics

@pytest.mark.parametrize(
    ("expression", "labels", "expected"),
    [
        ({"key": "tier", "operator": "In", "values": ["web", "api"]}, {"tier": "api"}, True),
        ({"key": "tier", "operator": "In", "values": ["web"]}, {}, False),
        ({"key": "tier", "operator": "NotIn", "values": ["web"]}, {}, True),  # missing key satisfies NotIn
        ({"key": "tier", "operator": "NotIn", "values": ["web"]}, {"tier": "web"}, False),
        ({"key": "tier", "operator": "Exists"}, {"tier": ""}, True),
        ({"key": "tier", "operator": "Exists"}, {}, False),
        ({"key": "tier", "operator": "DoesNotExist"}, {}, True),
        ({"key": "tier", "operator": "DoesNotExist"}, {"tier": "x"}, False),
    ],
)
def test_match_expressions_follow_kubernetes(
    expression: dict[str, Any], labels: dict[str, str], expected: bool
) -> None:
    assert LabelSelector.parse({"matchExpressions": [expression]}).matches(labels) is expected


def test_match_labels_and_expressions_are_anded_and_empty_selects_all() -> None:
    sel = LabelSelector.parse(
        {"matchLabels": {"team": "a"}, "matchExpressions": [{"key": "env", "operator": "In", "values": ["prod"]}]}
    )
    assert sel.matches({"team": "a", "env": "prod", "x": "y"})
    assert not sel.matches({"team": "a"})
    assert not sel.matches({"team": "b", "env": "prod"})
    assert LabelSelector.parse({}).matches({})
    assert LabelSelector.parse(None).matches({"anything": "x"})


@pytest.mark.parametrize(
    ("raw", "names"),
    [
        ({"matchExpressions": [{"key": "a", "operator": "Equals", "values": ["x"]}]},
         ["matchExpressions[0].operator", "Equals"]),
        ({"matchExpressions": [{"key": "a", "operator": "In"}]}, ["matchExpressions[0].values", "In"]),
        ({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]},
         ["matchExpressions[0].values", "Exists"]),
        ({"matchLabels": {"a": 1}}, ["matchLabels", "'a'"]),
        ({"matchLabel": {}}, ["matchLabel"]),
        ({"matchExpressions": [{"operator": "Exists"}]}, ["matchExpressions[0].key"]),
    ],
)
def test_bad_selectors_name_the_field(raw: dict[str, Any], names: list[str]) -> None:
    with pytest.raises(SelectorError) as err:
        LabelSelector.parse(raw, field="spec.workloads.namespaceSelector")
    for name in names:
        assert name in str(err.value)
    assert "spec.workloads.namespaceSelector" in str(err.value)


# ------------------------------------------------------------------------------------- who gets selected

def test_namespace_and_pod_selectors_must_both_match() -> None:
    d = domain("gv3", {"matchLabels": {"hwcap": "on"}}, {"matchLabels": {"app": "web"}})
    assert matching_domains("shop", {"hwcap": "on"}, {"app": "web"}, [d]) == [d]
    assert matching_domains("shop", {"hwcap": "on"}, {"app": "db"}, [d]) == []
    assert matching_domains("shop", {}, {"app": "web"}, [d]) == []


def test_a_domain_without_namespace_selector_selects_nothing() -> None:
    assert matching_domains("shop", {"a": "b"}, {}, [domain("gv3", None)]) == []


def test_domain_excluded_namespaces_are_respected() -> None:
    d = domain("gv3", {}, excluded_namespaces=frozenset({"batch"}))
    assert matching_domains("batch", {}, {}, [d]) == []
    assert matching_domains("shop", {}, {}, [d]) == [d]


@pytest.mark.parametrize("ns", ["kube-system", "hwcap-system", keys.NFD_NAMESPACE_DEFAULT, "monitoring"])
def test_never_touched_namespaces_even_when_a_domain_selects_everything(ns: str) -> None:
    config = MutationConfig(
        operator_namespace="hwcap-system",
        init_image="img",
        extra_excluded_namespaces=frozenset({"monitoring"}),
    )
    assert ns in never_touched_namespaces(
        config.operator_namespace, config.nfd_namespace, config.extra_excluded_namespaces
    )
    decision = mutate_pod(
        pod(), namespace=ns, namespace_labels={}, domains=[domain("all", {})], config=config,
        resolver=NoResolver(),
    )
    assert decision.allowed and decision.result == "untouched" and decision.patch == []
    assert ns in decision.message


@pytest.mark.parametrize(("value", "touched"), [("false", False), ("False", False), ("true", True), ("no", True)])
def test_opt_out_annotation(value: str, touched: bool) -> None:
    decision = decide(pod(annotations={keys.POD_OPT_OUT_ANNOTATION: value}), "shop", {}, [domain("gv3", {})])
    assert decision.allowed
    assert bool(decision.patch) is touched


def test_opt_out_label_is_honoured_like_the_annotation() -> None:
    decision = decide(pod(labels={keys.POD_OPT_OUT_ANNOTATION: "false"}), "shop", {}, [domain("gv3", {})])
    assert decision.allowed and decision.patch == []


def test_unselected_pod_gets_no_patch() -> None:
    decision = decide(pod(), "shop", {"hwcap": "off"}, [domain("gv3", {"matchLabels": {"hwcap": "on"}})])
    assert decision.allowed and decision.patch == [] and decision.result == "untouched"


def test_two_domains_deny_naming_both() -> None:
    domains = [domain("graviton3", {}), domain("altra", {"matchLabels": {"team": "a"}}), domain("other", None)]
    decision = decide(pod(), "shop", {"team": "a"}, domains)
    assert not decision.allowed and decision.result == "denied"
    assert "graviton3" in decision.message and "altra" in decision.message
    assert "other" not in decision.message
    assert "shop/web-0" in decision.message
    assert decision.patch == []


def test_mirror_and_windows_pods_are_left_alone() -> None:
    mirror = pod(annotations={"kubernetes.io/config.mirror": "abc"})
    assert decide(mirror, "shop", {}, [domain("gv3", {})]).patch == []
    windows = pod()
    windows["spec"]["os"] = {"name": "windows"}
    assert decide(windows, "shop", {}, [domain("gv3", {})]).patch == []
