"""Which MigrationDomain (if any) owns a pod: label selectors, never-touched namespaces, opt-out.

Selection is the webhook's first and most safety-critical step: a wrong "yes" wraps a pod that was never
meant to run under a mask (NFD reading its own HWCAPs would shrink every baseline forever), a silent
"pick one" between two domains would make placement depend on dict order. So: explicit exclusions first,
then Kubernetes label-selector semantics, and two matching domains are an error naming both.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

from hwcap_operator import keys
from hwcap_operator.selectors import LabelSelector as LabelSelector
from hwcap_operator.selectors import Requirement as Requirement
from hwcap_operator.selectors import SelectorError as SelectorError

#: Namespaces the webhook never mutates whatever the configuration says (the control plane's own pods).
ALWAYS_EXCLUDED_NAMESPACES: frozenset[str] = frozenset({"kube-system"})

#: Annotation the kubelet puts on mirror pods of static pods; their spec comes from a file on the node,
#: so mutating the API copy would only make it lie about what runs.
MIRROR_POD_ANNOTATION = "kubernetes.io/config.mirror"


class Selectable(Protocol):
    """What selection needs to know about a domain (``DomainView`` satisfies it)."""

    @property
    def name(self) -> str: ...
    @property
    def namespace_selector(self) -> LabelSelector | None: ...
    @property
    def pod_selector(self) -> LabelSelector: ...
    @property
    def excluded_namespaces(self) -> frozenset[str]: ...
    @property
    def forbid_opt_out(self) -> bool: ...


D = TypeVar("D", bound=Selectable)


def never_touched_namespaces(
    operator_namespace: str, nfd_namespace: str, extra: Iterable[str] = ()
) -> frozenset[str]:
    """The operator's own namespace, NFD's, kube-system and any configured extras.

    NFD must read unmasked HWCAPs (masking it would shrink every baseline forever); the operator's node
    agent likewise; kube-system hosts the control plane, which must never depend on our webhook.
    """
    return ALWAYS_EXCLUDED_NAMESPACES | {operator_namespace, nfd_namespace} | frozenset(extra)


def opted_out(pod: Mapping[str, Any]) -> bool:
    """The per-pod opt-out: ``hwcap.dev/inject: "false"`` (case-insensitive) as annotation or label.

    The label form is what the chart's webhook ``objectSelector`` filters on (the pod is then never even
    sent to us); honouring it here too keeps the opt-out working where that selector is not installed.
    """
    meta = pod.get("metadata") or {}
    for source in (meta.get("annotations") or {}, meta.get("labels") or {}):
        value = source.get(keys.POD_OPT_OUT_ANNOTATION)
        if isinstance(value, str) and value.strip().lower() == "false":
            return True
    return False


def is_mirror_pod(pod: Mapping[str, Any]) -> bool:
    """Mirror pods of static pods are only a reflection of a file on the node: never mutate them."""
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    return MIRROR_POD_ANNOTATION in annotations


def any_selects_namespace(namespace: str, namespace_labels: Mapping[str, str], domains: Sequence[D]) -> bool:
    """Could any domain select a pod in ``namespace`` (its namespace selector alone)? False: nothing about the
    pod itself can change the answer "untouched", so the webhook decides without reading the pod."""
    return any(d.namespace_selector is not None and namespace not in d.excluded_namespaces
               and d.namespace_selector.matches(namespace_labels) for d in domains)  # fmt: skip


def matching_domains(
    namespace: str,
    namespace_labels: Mapping[str, str],
    pod_labels: Mapping[str, str],
    domains: Sequence[D],
) -> list[D]:
    """Every domain whose namespace selector and pod selector both match, sorted by name.

    A domain without a namespace selector selects no namespace: injecting into a whole cluster must be
    asked for explicitly (with ``{}``), never happen because a field was left out.
    """
    found = [
        d
        for d in domains
        if d.namespace_selector is not None
        and namespace not in d.excluded_namespaces
        and d.namespace_selector.matches(namespace_labels)
        and d.pod_selector.matches(pod_labels)
    ]
    return sorted(found, key=lambda d: d.name)


def opt_out_refusal(
    pod: Mapping[str, Any],
    namespace: str,
    namespace_labels: Mapping[str, str],
    domains: Sequence[D],
    never_touched: frozenset[str],
) -> str | None:
    """The denial message for a pod that opts out although a domain selecting it forbids opting out.

    Any tenant can write ``hwcap.dev/inject: "false"``; a domain with ``workloads.optOut: Forbid`` makes that
    a refusal naming the domain instead of an unmasked pod. None: nothing to refuse (not opted out, never
    touched, a mirror pod, or no selecting domain forbids it).
    """
    meta = pod.get("metadata") if isinstance(pod, Mapping) else None
    if not isinstance(meta, Mapping) or namespace in never_touched or is_mirror_pod(pod) or not opted_out(pod):
        return None  # a malformed pod is left to the mutation's own checks
    labels = meta.get("labels")
    labels = labels if isinstance(labels, Mapping) else {}
    forbidding = [d.name for d in matching_domains(namespace, namespace_labels, labels, domains) if d.forbid_opt_out]
    if not forbidding:
        return None
    return (f"hwcap-operator: MigrationDomain {', '.join(forbidding)} forbids opting out "
            f"({keys.POD_OPT_OUT_ANNOTATION}=false) in namespace {namespace}: remove the opt-out or ask the "
            "domain's owner (spec.workloads.optOut)")  # fmt: skip
