"""The pod webhook's decision: AdmissionReview request → pure mutation over the in-memory domain view.

Decided inline on the event loop whenever no image-registry lookup is needed (every container has a
``command`` or an entrypoint annotation, or the pod is not selected): a thread hand-off would cost more
than the decision. A pod that needs a lookup raises :class:`WouldBlock` inline and is decided again in a
worker thread with the real resolver. The per-domain parts of the patch are computed once per snapshot
of the served domains (the view replaces the snapshot whole when a domain's status changes).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hwcap_operator.admission.entrypoint import EntrypointResolver, ImageEntrypoint, ImageRequest
from hwcap_operator.admission.model import DomainView, MutationConfig
from hwcap_operator.admission.mutate import DomainPieces, domain_pieces, mutate_pod
from hwcap_operator.admission.pod_shape import pod_shape_problem
from hwcap_operator.admission.selection import any_selects_namespace, never_touched_namespaces, opt_out_refusal
from hwcap_operator.kube.http_server import AdmissionDecider, AdmissionOutcome, Decider, DecisionUnavailable, WouldBlock
from hwcap_operator.kube.view import ClusterView


class _NoWait:
    """The resolver of the inline attempt: any lookup means "decide again in a worker thread"."""

    def resolve(self, request: ImageRequest) -> ImageEntrypoint:
        raise WouldBlock(request.image)


class _PiecesBySnapshot:
    """Domain pieces for the current snapshot of served domains, rebuilt when the snapshot is replaced."""

    def __init__(self, config: MutationConfig) -> None:
        self._config = config
        self._current: tuple[Sequence[DomainView], dict[str, DomainPieces]] = ((), {})

    def lookup(self, domains: Sequence[DomainView]) -> dict[str, DomainPieces]:
        snapshot, table = self._current  # one read: a worker thread may replace it meanwhile
        if snapshot is not domains:
            table = {d.name: domain_pieces(d, self._config) for d in domains}
            self._current = (domains, table)
        return table


def make_decider(view: ClusterView, config: MutationConfig, resolver: EntrypointResolver) -> Decider:
    """A decider reading ``view`` (snapshotted per request; no API call on the request path)."""

    never_touched = never_touched_namespaces(config.operator_namespace, config.nfd_namespace,
                                             config.extra_excluded_namespaces)  # fmt: skip
    pieces = _PiecesBySnapshot(config)

    def decider(lookups: EntrypointResolver) -> AdmissionDecider:
        def decide(request: Mapping[str, Any]) -> AdmissionOutcome:
            if not view.loaded:  # an empty view would answer "untouched": let the failurePolicy decide instead
                raise DecisionUnavailable("not ready: the cluster view is still loading")
            kind = request["kind"].get("kind")
            if kind != "Pod" or request.get("operation") != "CREATE" or request.get("subResource"):
                return AdmissionOutcome(allowed=True, result="untouched")
            domains = view.webhook_domains  # one immutable snapshot for the whole decision
            namespace = request.get("namespace")
            if isinstance(namespace, str) and namespace and not any_selects_namespace(
                    namespace, view.namespaces.get(namespace, {}), domains):
                # Most pods of a cluster: no domain selects their namespace, so their shape is not ours to judge
                # (the API server validates it after admission) and nothing of them is read.
                return AdmissionOutcome(allowed=True, result="untouched")
            pod = request.get("object")
            if (problem := pod_shape_problem(pod)) is not None:
                return AdmissionOutcome(allowed=False, result="error", code=400,
                                        message=f"hwcap-operator: malformed pod in the AdmissionReview: {problem}")
            assert isinstance(pod, dict)
            namespace = str(namespace or (pod.get("metadata") or {}).get("namespace") or "default")
            table = pieces.lookup(domains)
            ns_labels = view.namespaces.get(namespace, {})
            if refusal := opt_out_refusal(pod, namespace, ns_labels, domains, never_touched):
                return AdmissionOutcome(allowed=False, result="denied", message=refusal)
            decision = mutate_pod(pod, namespace=namespace, namespace_labels=ns_labels, domains=domains,
                                  config=config, resolver=lookups,
                                  pieces=lambda d: table.get(d.name) or domain_pieces(d, config))  # fmt: skip
            events = () if request.get("dryRun") else tuple(  # a dry run must leave no trace
                (view.domains[e.domain].body, e.type, e.reason, e.message)
                for e in decision.events
                if e.domain in view.domains
            )
            return AdmissionOutcome(allowed=decision.allowed, result=decision.result, patch=decision.patch,
                                    warnings=decision.warnings, message=decision.message, events=events)  # fmt: skip

        return decide

    return Decider(blocking=decider(resolver), inline=decider(_NoWait()))
