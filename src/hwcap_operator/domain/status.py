"""Status building: conditions that move only when they change, capped name lists, Events worth emitting.

A status is read by people (``kubectl get mdom -o yaml``), by the webhook (the mask) and by the next operator
process (the frozen mask after a restart), so it must be stable: the same inputs give the same bytes, a
condition keeps its ``lastTransitionTime`` until its ``status`` flips, and lists of thousands of nodes are
cut to a count plus the first :data:`~hwcap_operator.domain.api.NAME_CAP` names.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Literal, NamedTuple

from hwcap_operator.admission.coverage import channel_groups, domain_coverage
from hwcap_operator.admission.fallbacks import FallbackKind
from hwcap_operator.domain import api
from hwcap_operator.mask import FeatureMask

ConditionType = Literal["Ready", "MaskValid", "Degraded", "KernelSupport"]
#: The order conditions appear in; foreign condition types (another controller's) follow, untouched.
CONDITION_ORDER: tuple[ConditionType, ...] = ("Ready", "MaskValid", "Degraded", "KernelSupport")
ConditionStatus = Literal["True", "False", "Unknown"]
EventType = Literal["Normal", "Warning"]


class DomainEvent(NamedTuple):
    """An Event to post: on the domain, or on ``node`` as well when one node is concerned."""

    reason: str
    message: str
    type: EventType
    node: str | None = None


@dataclass(frozen=True, slots=True)
class ConditionUpdate:
    """The wanted state of one condition; :func:`merge_conditions` adds the times."""

    type: ConditionType
    status: ConditionStatus
    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class Exclusion:
    """Why one selected node is not a member (full, uncapped; the status keeps the first ones)."""

    node: str
    reason: str
    message: str
    missing: tuple[str, ...] = ()


def merge_conditions(
    previous: Sequence[api.Condition],
    updates: Iterable[ConditionUpdate],
    generation: int,
    now: datetime,
) -> list[api.Condition]:
    """Apply ``updates`` to ``previous`` like ``meta.SetStatusCondition``.

    ``lastTransitionTime`` is kept while ``status`` is unchanged (reason and message may still move), so
    alerts keyed on it do not refire on every reconcile; conditions of other types are carried over.
    """
    before = {c.type: c for c in previous}
    wanted = {u.type: u for u in updates}
    merged: list[api.Condition] = []
    for kind in CONDITION_ORDER:
        update = wanted.get(kind)
        if update is None:
            if kind in before:
                merged.append(before[kind])
            continue
        old = before.get(kind)
        moved = old is None or old.status != update.status
        merged.append(
            api.Condition(
                type=kind,
                status=update.status,
                reason=update.reason,
                message=update.message[:32768],
                observed_generation=generation,
                last_transition_time=now if moved or old is None else old.last_transition_time,
            )
        )
    merged.extend(c for c in previous if c.type not in CONDITION_ORDER)
    return merged


def condition_changed(previous: Sequence[api.Condition], update: ConditionUpdate) -> bool:
    """True when ``update`` differs from the previous condition of its type in status or reason."""
    for old in previous:
        if old.type == update.type:
            return (old.status, old.reason) != (update.status, update.reason)
    return True


def node_names(names: Iterable[str], cap: int = api.NAME_CAP) -> api.NodeNames:
    """A count plus the first ``cap`` names in sorted order (deterministic whatever the input order)."""
    ordered = sorted(names)
    return api.NodeNames(count=len(ordered), names=ordered[:cap])


def excluded_nodes(exclusions: Sequence[Exclusion], cap: int = api.NAME_CAP) -> api.ExcludedNodes:
    """The excluded count plus the first ``cap`` entries by node name, missing features capped too."""
    ordered = sorted(exclusions, key=lambda e: e.node)
    return api.ExcludedNodes(
        count=len(ordered),
        nodes=[
            api.ExcludedNode(
                name=e.node,
                reason=e.reason,
                message=e.message[:4096],
                missing_features=list(e.missing[: api.FEATURE_CAP]),
            )
            for e in ordered[:cap]
        ],
    )


def listing(names: Sequence[str], cap: int = 10) -> str:
    """``a, b, c`` or ``a, b, … (+N more)`` for messages that must stay readable with 5,000 nodes."""
    if len(names) <= cap:
        return ", ".join(names)
    return f"{', '.join(names[:cap])}, … (+{len(names) - cap} more)"


def node_change_events(
    before_members: Iterable[str],
    before_excluded: Mapping[str, Exclusion],
    after_members: Iterable[str],
    after_excluded: Mapping[str, Exclusion],
    cap: int = 20,
) -> list[DomainEvent]:
    """Per-node Events for nodes that joined, were excluded (or changed reason) or left, at most ``cap``.

    The reconciler keeps the previous full membership in memory and calls this after each evaluation;
    the status alone cannot drive it because its lists are capped. Beyond ``cap`` one summary Event
    replaces the rest so a 5,000-node relabel does not flood the Event store.
    """
    old_members, new_members = set(before_members), set(after_members)
    events: list[DomainEvent] = []
    for node in sorted(new_members - old_members):
        events.append(DomainEvent("NodeJoined", f"node {node} is now a member", "Normal", node))
    for node in sorted(after_excluded):
        now, then = after_excluded[node], before_excluded.get(node)
        if then is None or (then.reason, then.missing) != (now.reason, now.missing):
            events.append(DomainEvent(now.reason, f"node {node} excluded: {now.message}", "Warning", node))
    for node in sorted((old_members | set(before_excluded)) - new_members - set(after_excluded)):
        events.append(DomainEvent("NodeLeft", f"node {node} is no longer selected", "Normal", node))
    if len(events) <= cap:
        return events
    rest = len(events) - cap
    summary = DomainEvent("NodesChanged", f"{rest} more node changes not reported one by one", "Normal")
    return [*events[:cap], summary]


def mask_status(mask: FeatureMask, mask_basis: api.MaskBasis) -> api.MaskStatus:
    """The published mask: hex words, names, canonical string (read back after a restart), id."""
    hwcap, hwcap2, hwcap3, hwcap4 = mask.hex_words()
    return api.MaskStatus(
        id=mask.mask_id,
        canonical=mask.canonical(),
        hwcap=hwcap,
        hwcap2=hwcap2,
        hwcap3=hwcap3,
        hwcap4=hwcap4,
        cpuid=sorted(mask.cpuid),
        features=mask.names(),
        popcount=mask.popcount,
        basis=mask_basis,
    )


def channel_coverage(
    dropped: FeatureMask | None, mask: FeatureMask | None, fallbacks: Sequence[FallbackKind]
) -> list[api.ChannelCoverage]:
    """status.channelCoverage: the dropped features grouped by the channels still showing them (the ID registers
    as advertised or not, by the mask's own ``cpuid``) and the domain's fallbacks covering them."""
    if dropped is None:
        return []
    cpuid = mask is None or mask.arch != "arm64" or "cpuid" in mask
    return [
        api.ChannelCoverage.model_validate({"features": list(names), "channels": chans, "coveredBy": kinds})
        for chans, kinds, names in _channel_groups(dropped, cpuid, tuple(fallbacks))
    ]


@lru_cache(maxsize=256)
def _channel_groups(dropped: FeatureMask, cpuid_advertised: bool, fallbacks: tuple[FallbackKind, ...]
                    ) -> tuple[tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]], ...]:  # fmt: skip
    # Cached: every evaluation of a domain asks again with the same inputs, and folding ~100 dropped features
    # through the runtime table costs about as much as the rest of the evaluation (~1.3 ms).
    cover = domain_coverage(dropped.features(), fallbacks, cpuid_advertised=cpuid_advertised)
    return tuple((chans, kinds, tuple(names)) for chans, kinds, names in channel_groups(cover))
