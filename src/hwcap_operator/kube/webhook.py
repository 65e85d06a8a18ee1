"""The pod webhook's decision: AdmissionReview request → pure mutation over the in-memory domain view."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hwcap_operator.admission.entrypoint import EntrypointResolver
from hwcap_operator.admission.model import MutationConfig
from hwcap_operator.admission.mutate import mutate_pod
from hwcap_operator.kube.http_server import AdmissionDecider, AdmissionOutcome, DecisionUnavailable
from hwcap_operator.kube.view import ClusterView


def make_decider(view: ClusterView, config: MutationConfig, resolver: EntrypointResolver) -> AdmissionDecider:
    """A decider reading ``view`` (snapshotted per request; no API call on the request path)."""

    def decide(request: Mapping[str, Any]) -> AdmissionOutcome:
        if not view.loaded:  # an empty view would answer "untouched": let the failurePolicy decide instead
            raise DecisionUnavailable("not ready: the cluster view is still loading")
        kind = (request.get("kind") or {}).get("kind")
        if kind != "Pod" or request.get("operation") != "CREATE" or request.get("subResource"):
            return AdmissionOutcome(allowed=True, result="untouched")
        pod = request.get("object") or {}
        namespace = str(request.get("namespace") or (pod.get("metadata") or {}).get("namespace") or "default")
        domains = view.webhook_domains  # one immutable snapshot for the whole decision
        decision = mutate_pod(pod, namespace=namespace, namespace_labels=view.namespaces.get(namespace, {}),
                              domains=domains, config=config, resolver=resolver)  # fmt: skip
        events = () if request.get("dryRun") else tuple(  # a dry run must leave no trace
            (view.domains[e.domain].body, e.type, e.reason, e.message)
            for e in decision.events
            if e.domain in view.domains
        )
        return AdmissionOutcome(allowed=decision.allowed, result=decision.result, patch=decision.patch,
                                warnings=decision.warnings, message=decision.message, events=events)  # fmt: skip

    return decide
