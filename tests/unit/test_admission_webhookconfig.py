"""The webhook configuration the operator writes: one entry per served domain, selecting exactly what the
webhook itself would select (so the API server sends us no pod we would leave alone), every other field
from the chart's template entry."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.unit.domaindata import spec

from hwcap_operator import keys
from hwcap_operator.admission.selection import LabelSelector, matching_domains, never_touched_namespaces
from hwcap_operator.admission.webhook_entries import (
    TemplateError,
    and_selectors,
    current_template,
    desired_webhooks,
    plan_sync,
    webhook_name,
)
from hwcap_operator.domain import api

NEVER = never_touched_namespaces("hwcap-system", "node-feature-discovery", ["monitoring"])
NAME_LABEL = "kubernetes.io/metadata.name"
#: The chart's entry as the API server returns it (see charts/hwcap-operator/templates/webhook.yaml).
TEMPLATE: dict[str, Any] = {
    "name": "mutate-pods.hwcap.dev",
    "admissionReviewVersions": ["v1"],
    "sideEffects": "None",
    "failurePolicy": "Fail",
    "timeoutSeconds": 7,
    "reinvocationPolicy": "IfNeeded",
    "matchPolicy": "Equivalent",
    "clientConfig": {"service": {"name": "hwcap-webhook", "namespace": "hwcap-system", "path": "/mutate-pods",
                                 "port": 443}, "caBundle": "Q0EtMQ=="},
    "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"],
               "scope": "Namespaced"}],
    "namespaceSelector": {"matchExpressions": [
        {"key": NAME_LABEL, "operator": "NotIn", "values": ["hwcap-system", "kube-system", "node-feature-discovery"]}]},
    "objectSelector": {"matchExpressions": [{"key": "hwcap.dev/inject", "operator": "NotIn", "values": ["false"]}]},
}  # fmt: skip


def domain(labels: dict[str, str], **workloads: Any) -> api.MigrationDomainSpec:
    return spec(workloads={"namespaceSelector": {"matchLabels": labels}, **workloads})


def test_one_entry_per_domain_with_its_selector_and_everything_else_from_the_template() -> None:
    hooks = desired_webhooks(TEMPLATE, [("web", domain({"team": "web"}, excludedNamespaces=["web-legacy"])),
                                        ("batch", domain({"team": "batch"}))], NEVER)  # fmt: skip
    assert [h["name"] for h in hooks] == ["batch.pods.hwcap.dev", "web.pods.hwcap.dev"]
    for hook in hooks:
        for field in ("admissionReviewVersions", "sideEffects", "failurePolicy", "timeoutSeconds",
                      "reinvocationPolicy", "matchPolicy", "clientConfig", "rules"):  # fmt: skip
            assert hook[field] == TEMPLATE[field], field
    web = hooks[1]
    assert web["namespaceSelector"] == {
        "matchLabels": {"team": "web"},
        "matchExpressions": [{"key": NAME_LABEL, "operator": "NotIn",
                              "values": sorted({"hwcap-system", "kube-system", "node-feature-discovery",
                                                "monitoring", "web-legacy"})}],
    }  # fmt: skip
    assert web["objectSelector"] == {"matchExpressions": [
        {"key": keys.POD_OPT_OUT_ANNOTATION, "operator": "NotIn", "values": ["false"]}]}


def test_no_served_domain_means_no_entry() -> None:
    assert desired_webhooks(TEMPLATE, [], NEVER) == []


def test_the_template_is_not_modified() -> None:
    before = copy.deepcopy(TEMPLATE)
    desired_webhooks(TEMPLATE, [("a", domain({"x": "1"}))], NEVER)
    assert before == TEMPLATE


def test_platform_opt_in_label_of_the_template_stays_anded() -> None:
    """``webhook.namespaceSelector`` of the chart (e.g. an opt-in label) still restricts every entry."""
    template = {**TEMPLATE, "namespaceSelector": {"matchLabels": {"hwcap.dev/injection": "enabled"}}}
    (hook,) = desired_webhooks(template, [("a", domain({"team": "a"}))], NEVER)
    selector = LabelSelector.parse(hook["namespaceSelector"])
    assert selector.matches({"team": "a", "hwcap.dev/injection": "enabled", NAME_LABEL: "apps"})
    assert not selector.matches({"team": "a", NAME_LABEL: "apps"})


def test_conflicting_match_labels_select_nothing_as_and_means() -> None:
    merged = and_selectors({"matchLabels": {"tier": "a"}}, {"matchLabels": {"tier": "b"}})
    selector = LabelSelector.parse(merged)
    assert not selector.matches({"tier": "a"}) and not selector.matches({"tier": "b"})


def test_pod_selector_narrows_the_object_selector() -> None:
    (hook,) = desired_webhooks(TEMPLATE, [("a", domain({"team": "a"}, podSelector={
        "matchExpressions": [{"key": "app", "operator": "Exists"}]}))], NEVER)  # fmt: skip
    selector = LabelSelector.parse(hook["objectSelector"])
    assert selector.matches({"app": "x"})
    assert not selector.matches({})
    assert not selector.matches({"app": "x", keys.POD_OPT_OUT_ANNOTATION: "false"})
    # What the API server stores: no empty values list for Exists.
    assert {"key": "app", "operator": "Exists"} in hook["objectSelector"]["matchExpressions"]


def test_entry_names_are_fully_qualified_dns_names_for_the_longest_domain_name() -> None:
    name = webhook_name("d" * 63)
    assert len(name) <= 253 and name.count(".") >= 2
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*", name)
    assert all(len(label) <= 63 for label in name.split("."))


LABELS = st.dictionaries(st.sampled_from(["team", "tier", "env"]), st.sampled_from(["a", "b"]), max_size=3)
NAMESPACES = st.sampled_from(["apps", "web", "kube-system", "hwcap-system", "node-feature-discovery",
                              "monitoring", "legacy"])  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(specs=st.lists(st.tuples(LABELS, LABELS, st.booleans()), max_size=3), namespace=NAMESPACES,
       ns_labels=LABELS, pod_labels=LABELS, opt_out=st.booleans())  # fmt: skip
def test_the_api_server_calls_us_exactly_for_pods_the_webhook_would_select(
    specs: list[tuple[dict[str, str], dict[str, str], bool]], namespace: str, ns_labels: dict[str, str],
    pod_labels: dict[str, str], opt_out: bool,
) -> None:  # fmt: skip
    """Entry selectors evaluated like the API server does ⇔ the webhook's own selection (incl. exclusions)."""
    domains = [(f"d{i}", domain(ns, podSelector={"matchLabels": pod}, excludedNamespaces=["legacy"] if ex else []))
               for i, (ns, pod, ex) in enumerate(specs)]  # fmt: skip
    hooks = desired_webhooks(TEMPLATE, domains, NEVER)
    namespace_labels = {**ns_labels, NAME_LABEL: namespace}
    labels = {**pod_labels, **({keys.POD_OPT_OUT_ANNOTATION: "false"} if opt_out else {})}
    called = {h["name"] for h in hooks if LabelSelector.parse(h["namespaceSelector"]).matches(namespace_labels)
              and LabelSelector.parse(h["objectSelector"]).matches(labels)}  # fmt: skip

    class View:
        def __init__(self, name: str, s: api.MigrationDomainSpec) -> None:
            self.name = name
            self.namespace_selector = LabelSelector.parse(s.workloads.namespace_selector.to_wire())
            self.pod_selector = LabelSelector.parse(s.workloads.pod_selector.to_wire())
            self.excluded_namespaces = frozenset(s.workloads.excluded_namespaces)

    selected = set() if opt_out or namespace in NEVER else {
        webhook_name(d.name) for d in matching_domains(namespace, namespace_labels, labels,
                                                       [View(n, s) for n, s in domains])}  # fmt: skip
    assert called == selected


# --- template handling ---------------------------------------------------------------------------------------


def configuration(webhooks: list[dict[str, Any]], annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": "hwcap", "resourceVersion": "1", "annotations": annotations or {}},
            "webhooks": webhooks}  # fmt: skip


def apply(live: dict[str, Any], domains: list[tuple[str, api.MigrationDomainSpec]]) -> dict[str, Any]:
    plan = plan_sync(live, domains, NEVER)
    return {**live, "metadata": {**live["metadata"], "annotations": plan.annotations}, "webhooks": plan.webhooks}


def test_first_sync_takes_the_chart_entry_and_keeps_it_for_later_syncs() -> None:
    live = configuration([TEMPLATE])
    after = apply(live, [("a", domain({"team": "a"}))])
    assert [h["name"] for h in after["webhooks"]] == ["a.pods.hwcap.dev"]
    assert json.loads(after["metadata"]["annotations"][keys.WEBHOOK_TEMPLATE_ANNOTATION]) == TEMPLATE
    assert not plan_sync(after, [("a", domain({"team": "a"}))], NEVER).changed  # idempotent: no write
    emptied = apply(after, [])
    assert emptied["webhooks"] == []
    again = apply(emptied, [("b", domain({"team": "b"}))])  # the list was empty: the annotation still serves
    assert again["webhooks"][0]["clientConfig"] == TEMPLATE["clientConfig"]


def test_a_re_added_chart_entry_replaces_the_stored_template() -> None:
    """``helm upgrade`` with a new failurePolicy puts the chart's entry back beside ours: it wins."""
    after = apply(configuration([TEMPLATE]), [("a", domain({"team": "a"}))])
    upgraded = {**TEMPLATE, "failurePolicy": "Ignore", "timeoutSeconds": 3}
    live = {**after, "webhooks": [*after["webhooks"], upgraded]}
    (hook,) = apply(live, [("a", domain({"team": "a"}))])["webhooks"]
    assert (hook["failurePolicy"], hook["timeoutSeconds"]) == ("Ignore", 3)


def test_a_rotated_ca_bundle_on_the_live_entries_is_kept() -> None:
    """cert-manager's cainjector rewrites caBundle on every entry: never write the stored old one back."""
    after = apply(configuration([TEMPLATE]), [("a", domain({"team": "a"}))])
    rotated = copy.deepcopy(after)
    rotated["webhooks"][0]["clientConfig"]["caBundle"] = "Q0EtMg=="
    template, source = current_template(rotated)
    assert source == "annotation" and template["clientConfig"]["caBundle"] == "Q0EtMg=="
    plan = plan_sync(rotated, [("a", domain({"team": "a"})), ("b", domain({"team": "b"}))], NEVER)
    assert {h["clientConfig"]["caBundle"] for h in plan.webhooks} == {"Q0EtMg=="}


def test_other_annotations_survive() -> None:
    live = configuration([TEMPLATE], {"cert-manager.io/inject-ca-from": "hwcap-system/cert"})
    assert apply(live, [])["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] == "hwcap-system/cert"


@pytest.mark.parametrize(("annotations", "message"), [
    ({}, keys.WEBHOOK_TEMPLATE_ANNOTATION),
    ({keys.WEBHOOK_TEMPLATE_ANNOTATION: "{not json"}, "not JSON"),
    ({keys.WEBHOOK_TEMPLATE_ANNOTATION: "[1]"}, "clientConfig"),
])  # fmt: skip
def test_no_usable_template_is_a_clear_error(annotations: dict[str, str], message: str) -> None:
    with pytest.raises(TemplateError, match=re.escape(message)):
        plan_sync(configuration([], annotations), [("a", domain({"team": "a"}))], NEVER)
