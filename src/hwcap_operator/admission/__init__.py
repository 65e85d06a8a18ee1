"""The admission webhook's pure logic: which domain owns a pod and how the pod is rewritten.

No kopf, no Kubernetes client: :func:`mutate_pod` takes the pod, the namespace's labels and the operator's
in-memory domain views and returns an :class:`AdmissionDecision` (allowed/denied, JSON patch, warnings,
Events). The HTTP glue lives in ``hwcap_operator.kube.http_server``.
"""

from hwcap_operator.admission.entrypoint import (
    EntrypointResolver,
    ImageEntrypoint,
    ImageRequest,
    NoResolver,
    Unresolvable,
)
from hwcap_operator.admission.fallbacks import FallbackPlan
from hwcap_operator.admission.model import AdmissionDecision, AdmissionEvent, DomainView, MutationConfig
from hwcap_operator.admission.mutate import mutate_pod
from hwcap_operator.admission.selection import LabelSelector, SelectorError

__all__ = [
    "AdmissionDecision",
    "AdmissionEvent",
    "DomainView",
    "EntrypointResolver",
    "FallbackPlan",
    "ImageEntrypoint",
    "ImageRequest",
    "LabelSelector",
    "MutationConfig",
    "NoResolver",
    "SelectorError",
    "Unresolvable",
    "mutate_pod",
]
