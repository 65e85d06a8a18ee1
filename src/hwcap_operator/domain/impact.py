"""Pod impact: which pods run under a mask other than the domain's current one, and where each may still go.

A pod keeps the mask it was started with (the kernel inherits it down its process tree) until it is
restarted, so after a re-level or a Lower the question a user asks before moving such a pod is "which
nodes still have every feature my pod may use?". Nobody else answers it (Deckhouse, EVC); we do, per
distinct old mask (pods share a handful of masks), so the cost is O(distinct masks × members).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from hwcap_operator.domain import api
from hwcap_operator.domain.node_features import NodeFeatures
from hwcap_operator.mask import FeatureMask


@dataclass(frozen=True, slots=True)
class InjectedPod:
    """A pod the webhook wrapped: its mask id and mask from its annotations (None when unreadable)."""

    namespace: str
    name: str
    mask_id: str
    mask: FeatureMask | None
    node: str | None = None


def pod_impact(
    pods: Iterable[InjectedPod], current: FeatureMask | None, members: Sequence[NodeFeatures]
) -> api.PodImpact:
    """Stale pods (mask id differs from the current mask's), whether each fits its node, and its targets.

    A pod whose mask could not be read fits nowhere (we cannot prove it safe). Entries are sorted by
    namespace/name and capped; the counts are complete.
    """
    current_id = current.mask_id if current is not None else None
    by_name = {n.name: n for n in members}
    targets: dict[str, list[str]] = {}
    target_sets: dict[str, frozenset[str]] = {}
    entries: list[api.PodImpactEntry] = []
    stranded = 0
    for pod in sorted(pods, key=lambda p: (p.namespace, p.name)):
        if pod.mask_id == current_id:
            continue
        mask = pod.mask
        if pod.mask_id not in targets:
            targets[pod.mask_id] = (
                []
                if mask is None
                else [
                    n.name for n in members if n.mask is not None and n.mask.arch == mask.arch and mask.issubset(n.mask)
                ]
            )
            target_sets[pod.mask_id] = frozenset(targets[pod.mask_id])
        fits = targets[pod.mask_id]
        if not fits:
            stranded += 1
        fits_node: bool | None = None
        if pod.node is not None:
            here = by_name.get(pod.node)
            fits_node = pod.node in target_sets[pod.mask_id] if here is not None else None
        entries.append(
            api.PodImpactEntry(
                namespace=pod.namespace,
                name=pod.name,
                mask_id=pod.mask_id,
                node=pod.node,
                fits_node=fits_node,
                movable_to=len(fits),
                movable_to_nodes=sorted(fits)[: api.MOVE_TARGET_CAP],
            )
        )
    return api.PodImpact(stale_pods=len(entries), stranded_pods=stranded, pods=entries[: api.NAME_CAP])


UnmaskedReason = Literal["NotInjected", "OptedOut"]


@dataclass(frozen=True, slots=True)
class UnmaskedPod:
    """A running pod the domain selects that carries no mask of it (an escape: nothing enforces the mask)."""

    namespace: str
    name: str
    uid: str
    reason: UnmaskedReason
    node: str | None = None


def with_unmasked(impact: api.PodImpact | None, pods: Iterable[UnmaskedPod]) -> api.PodImpact:
    """``impact`` with the domain's unmasked pods added: the count complete, the entries sorted and capped."""
    ordered = sorted(pods, key=lambda p: (p.namespace, p.name))
    entries = [api.UnmaskedPodEntry(namespace=p.namespace, name=p.name, reason=p.reason, node=p.node)
               for p in ordered[: api.NAME_CAP]]  # fmt: skip
    base = impact or api.PodImpact(stale_pods=0, stranded_pods=0)
    return base.model_copy(update={"unmasked_pods": len(ordered), "unmasked": entries})
