"""The MutatingWebhookConfiguration the operator keeps in sync with its domains: one entry per domain.

Why: a single entry whose namespaceSelector is "everything but the system namespaces" makes the API server
call the webhook for every pod in the cluster, and with ``failurePolicy: Fail`` an operator outage would
block pods in namespaces no domain cares about. One LabelSelector cannot express "namespaces domain A
selects OR namespaces domain B selects", but one configuration may hold several webhooks, each with its own
selector; the API server calls every one that matches. So each domain with a published mask gets an entry
``<domain>.pods.hwcap.dev`` whose selectors are the domain's own, ANDed with the never-touched namespaces,
the pod opt-out and whatever the platform team's template entry restricts. With no such domain the list is
empty and the API server never calls us. A pod two domains select is sent twice; the webhook denies it on
the first call (its own selection check stays: defence in depth).

The template entry is the one the Helm chart renders (clientConfig, caBundle, failurePolicy, timeout, rules,
...). It is read from the live object, kept in an annotation because the sync replaces the list, and
refreshed whenever an entry not named like ours shows up again (``helm upgrade`` re-adds the chart's).
Pure: no client, no kopf.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hwcap_operator import keys
from hwcap_operator.domain.api import MigrationDomainSpec

Json = dict[str, Any]

#: Every entry the operator writes is named ``<domain>`` + this suffix (a fully qualified name).
DOMAIN_WEBHOOK_SUFFIX = ".pods.hwcap.dev"
#: The label the API server puts on every namespace with the namespace's own name.
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
#: Fields of a webhook entry that the sync computes per domain (everything else comes from the template).
PER_DOMAIN_FIELDS = ("name", "namespaceSelector", "objectSelector")


class TemplateError(ValueError):
    """The configuration offers no usable template entry; the message says what is wrong."""


def webhook_name(domain: str) -> str:
    """``<domain>.pods.hwcap.dev``: domain names are at most 63 characters (the CRD says so), so this is a
    valid fully qualified name."""
    return f"{domain}{DOMAIN_WEBHOOK_SUFFIX}"


def is_domain_webhook(name: str) -> bool:
    """True for the entries the sync owns; any other entry is a (fresh) template."""
    return name.endswith(DOMAIN_WEBHOOK_SUFFIX) and len(name) > len(DOMAIN_WEBHOOK_SUFFIX)


def opt_out_selector() -> Json:
    """Pods labelled ``hwcap.dev/inject: "false"`` are never sent to the webhook."""
    return {"matchExpressions": [{"key": keys.POD_OPT_OUT_ANNOTATION, "operator": "NotIn", "values": ["false"]}]}


def and_selectors(*selectors: Mapping[str, Any] | None) -> Json:
    """One LabelSelector that holds exactly when all of ``selectors`` hold (Kubernetes JSON form).

    ``matchLabels`` are merged; a key two selectors pin to different values becomes an ``In`` expression
    (the result then matches nothing, which is what AND means). ``NotIn`` expressions on the same key are
    unioned into one; exact duplicates are dropped; empty fields are omitted as the API server would.
    """
    labels: dict[str, str] = {}
    expressions: list[Json] = []
    for selector in selectors:
        if not selector:
            continue
        for key, value in (selector.get("matchLabels") or {}).items():
            if labels.get(key, value) == value:
                labels[key] = value
            else:
                expressions.append({"key": key, "operator": "In", "values": [value]})
        for expr in selector.get("matchExpressions") or []:
            expressions.append(_clean_expression(expr))
    merged: list[Json] = []
    not_in: dict[str, Json] = {}
    for expr in expressions:
        if expr["operator"] == "NotIn" and expr["key"] in not_in:
            target = not_in[expr["key"]]
            target["values"] = sorted(set(target["values"]) | set(expr["values"]))
            continue
        if expr in merged:
            continue
        merged.append(expr)
        if expr["operator"] == "NotIn":
            not_in[expr["key"]] = expr
    out: Json = {}
    if labels:
        out["matchLabels"] = labels
    if merged:
        out["matchExpressions"] = merged
    return out


def _clean_expression(expr: Mapping[str, Any]) -> Json:
    values = list(expr.get("values") or [])
    out: Json = {"key": expr["key"], "operator": expr["operator"]}
    if values:
        out["values"] = sorted(values) if expr["operator"] == "NotIn" else values
    return out


def desired_webhooks(template: Mapping[str, Any], domains: Sequence[tuple[str, MigrationDomainSpec]],
                     never_touched: Iterable[str]) -> list[Json]:  # fmt: skip
    """One entry per domain, sorted by domain name; ``domains`` are those with a published mask.

    namespaceSelector = domain's ∧ template's ∧ name NotIn (never-touched ∪ the domain's excluded);
    objectSelector = domain's podSelector ∧ template's ∧ the opt-out (without the opt-out where the domain forbids
    opting out: the webhook must see those pods to deny them). Every other field is the template's.
    """
    base = {k: copy.deepcopy(v) for k, v in template.items() if k not in PER_DOMAIN_FIELDS}
    never = set(never_touched)
    out: list[Json] = []
    for name, spec in sorted(domains, key=lambda d: d[0]):
        workloads = spec.workloads
        exclusion = {"matchExpressions": [{"key": NAMESPACE_NAME_LABEL, "operator": "NotIn",
                                           "values": sorted(never | set(workloads.excluded_namespaces))}]}  # fmt: skip
        entry = copy.deepcopy(base)
        entry["name"] = webhook_name(name)
        entry["namespaceSelector"] = and_selectors(workloads.namespace_selector.to_wire(),
                                                   template.get("namespaceSelector"), exclusion)  # fmt: skip
        if workloads.opt_out == "Forbid":  # opted-out pods must reach the webhook, which denies them
            entry["objectSelector"] = and_selectors(workloads.pod_selector.to_wire(),
                                                    _without_opt_out(template.get("objectSelector")))  # fmt: skip
        else:
            entry["objectSelector"] = and_selectors(workloads.pod_selector.to_wire(),
                                                    template.get("objectSelector"), opt_out_selector())  # fmt: skip
        out.append(entry)
    return out


def _without_opt_out(selector: Mapping[str, Any] | None) -> Json | None:
    """The template's object selector minus any requirement on the opt-out label."""
    if not selector:
        return None
    labels = {k: v for k, v in (selector.get("matchLabels") or {}).items() if k != keys.POD_OPT_OUT_ANNOTATION}
    exprs = [e for e in selector.get("matchExpressions") or [] if e.get("key") != keys.POD_OPT_OUT_ANNOTATION]
    return {**({"matchLabels": labels} if labels else {}), **({"matchExpressions": exprs} if exprs else {})}


@dataclass(frozen=True)
class SyncPlan:
    """What to write: the wanted ``webhooks`` and ``metadata.annotations``; ``changed`` False = write nothing."""

    webhooks: list[Json]
    annotations: dict[str, str]
    changed: bool
    template_source: str = "annotation"


def current_template(configuration: Mapping[str, Any]) -> tuple[Json, str]:
    """The template entry and where it came from (``entry <name>`` or ``annotation``).

    An entry not named like ours is the chart's freshly rendered one (first install, or ``helm upgrade``
    re-added it with new settings) and wins; else the stored annotation. The caBundle is taken from the live
    entries when they have one: cert-manager's cainjector rotates it there, and writing back the stored copy
    would undo the rotation.
    """
    webhooks = list(configuration.get("webhooks") or [])
    fresh = [w for w in webhooks if not is_domain_webhook(str(w.get("name", "")))]
    if fresh:
        return copy.deepcopy(dict(fresh[0])), f"entry {fresh[0].get('name')}"
    annotations = (configuration.get("metadata") or {}).get("annotations") or {}
    raw = annotations.get(keys.WEBHOOK_TEMPLATE_ANNOTATION)
    if raw is None:
        raise TemplateError(f"no webhook entry and no {keys.WEBHOOK_TEMPLATE_ANNOTATION} annotation to copy "
                            "clientConfig/failurePolicy/timeoutSeconds from (install the chart's configuration)")
    try:
        template = json.loads(raw)
    except ValueError as exc:
        raise TemplateError(f"annotation {keys.WEBHOOK_TEMPLATE_ANNOTATION}: not JSON ({exc})") from exc
    if not isinstance(template, dict) or not isinstance(template.get("clientConfig"), dict):
        raise TemplateError(f"annotation {keys.WEBHOOK_TEMPLATE_ANNOTATION}: expected a webhook entry object "
                            "with a clientConfig")
    ca_bundles = [b for w in webhooks if (b := (w.get("clientConfig") or {}).get("caBundle"))]
    if ca_bundles:
        template["clientConfig"]["caBundle"] = ca_bundles[0]
    return template, "annotation"


def plan_sync(configuration: Mapping[str, Any], domains: Sequence[tuple[str, MigrationDomainSpec]],
              never_touched: Iterable[str]) -> SyncPlan:  # fmt: skip
    """Compare the live configuration with what the domains want; raises :class:`TemplateError`."""
    template, source = current_template(configuration)
    wanted = desired_webhooks(template, domains, never_touched)
    annotations = dict((configuration.get("metadata") or {}).get("annotations") or {})
    annotations[keys.WEBHOOK_TEMPLATE_ANNOTATION] = json.dumps(template, sort_keys=True, separators=(",", ":"))
    live_annotations = (configuration.get("metadata") or {}).get("annotations") or {}
    changed = list(configuration.get("webhooks") or []) != wanted or annotations != live_annotations
    return SyncPlan(wanted, annotations, changed, source)
