"""Evaluate one MigrationDomain: membership, the mask, leveling, security refusal, pod impact.

``evaluate(spec, nodes, previous_status, generation)`` is the whole reconciler logic as one pure function:
it reads the spec, the :class:`NodeFeatures` of the nodes that may concern the domain, and the status the
domain had (which is how a restarted operator finds its frozen mask again), and returns a
:class:`DomainState`: the mask, full member and exclusion lists (for node labels), the status to write,
Events and metric values. Same inputs, same output; no clock read unless ``now`` is omitted.

Rules, in order (the why: prior-art lessons, Deckhouse froze its baseline after moving it under running VMs):

1. Selection: the node's arch equals ``spec.arch`` and ``spec.nodeSelector`` matches its labels; other
   nodes are not mentioned at all.
2. Eligibility: a selected node is excluded when its feature data is unusable (``NodeFeaturesInvalid``),
   when ``enforcement.kernelInheritance: Required`` and its kernel is not known to inherit HWCAPs
   (``KernelCannotInherit``), or when it lacks a ``require``d feature (``MissingRequiredFeatures``).
3. Target mask: Auto = intersection of the eligible nodes; Preset / Explicit = the named features;
   minus ``exclude``.
4. Leveling: a Frozen domain keeps the mask its status records while the basis (arch, baseline,
   exclude, relevelGeneration) is unchanged; anything else (first time, re-level request, baseline
   change, Follow) takes the target. A node lacking features of the mask is then excluded
   (``MissingMaskFeatures``) or, with ``onMissingFeatures: Lower``, lowers the mask. With no eligible
   node at all the last mask stays published (pods keep running under it) and Ready says NoMembers.
5. Security: unless ``allowHidingSecurityFeatures``, a *new* mask that hides a security feature a member
   has is refused (MaskValid=False, ``SecurityFeatureHidden``; the previous mask, if any, stays); for a
   kept frozen mask, a richer node whose security features it would hide is excluded instead
   (``SecurityFeaturesHidden``), and a Lower that would hide one is refused (``LowerRefused``).
6. HWCAP_CPUID (arm64): a newly computed mask that hides a feature some member has no longer advertises it,
   unless ``enforcement.idRegisterAccess: Keep`` (:mod:`~hwcap_operator.domain.id_registers`); MaskValid says
   which hidden features the ID registers would reveal, or do reveal.
7. The exec model's validation (a :class:`MaskValidator`) decides MaskValid for an accepted mask.

A spec naming a preset or feature unknown for its arch changes nothing: the published mask stays, members
are judged against it, and Ready/MaskValid say SpecInvalid/UnknownFeature|UnknownPreset.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from hwcap_operator.domain import api, id_registers
from hwcap_operator.domain.baseline import (
    SpecError,
    basis,
    check_spec_names,
    feature_names,
    hidden_security,
    mask_from_names,
    previous_mask,
    security_mask,
    target_baseline,
)
from hwcap_operator.domain.conditions import Verdict, domain_conditions, is_bad
from hwcap_operator.domain.impact import InjectedPod, pod_impact
from hwcap_operator.domain.leveling_status import leveling_entries, not_levelled
from hwcap_operator.domain.mask_checks import MaskFinding, MaskValidator, exec_model_validator, no_validation
from hwcap_operator.domain.node_features import NodeFeatures
from hwcap_operator.domain.status import (
    DomainEvent,
    Exclusion,
    channel_coverage,
    condition_changed,
    excluded_nodes,
    listing,
    mask_status,
    merge_conditions,
    node_names,
)
from hwcap_operator.features.catalog import find
from hwcap_operator.features.knobs import covering_kinds
from hwcap_operator.mask import FeatureMask
from hwcap_operator.selectors import LabelSelector, SelectorError

__all__ = [
    "DomainMetrics",
    "DomainState",
    "MaskFinding",
    "MaskValidator",
    "SpecError",
    "domains_affected_by",
    "evaluate",
    "exec_model_validator",
    "no_validation",
]

# ---------------------------------------------------------------------------------------------- state


@dataclass(frozen=True, slots=True)
class DomainMetrics:
    """Per-domain gauge values (``hwcap_domain_*`` in kube.metrics)."""

    members: int
    excluded: int
    mask_features: int
    stale_pods: int
    kernel_unsupported: int
    node_source_issues: int


@dataclass(frozen=True)
class DomainState:
    """Everything the reconciler does after an evaluation: label members, write status, post Events.

    ``members`` and ``excluded`` are complete (the status keeps only the first names); ``mask`` is the
    published mask (None when none could be established); ``status.to_wire()`` is the status patch.
    """

    mask: FeatureMask | None
    members: tuple[str, ...]
    excluded: Mapping[str, Exclusion]
    dropped: tuple[str, ...]
    kernel_unsupported: tuple[str, ...]
    kernel_unknown: tuple[str, ...]
    status: api.MigrationDomainStatus
    events: tuple[DomainEvent, ...]
    metrics: DomainMetrics
    findings: tuple[MaskFinding, ...] = field(default=())


# ------------------------------------------------------------------------------------------- helpers


def node_selector(spec: api.MigrationDomainSpec) -> LabelSelector:
    """The compiled node selector (same semantics as the webhook's pod/namespace selectors)."""
    return LabelSelector.parse(spec.node_selector.to_wire(), field="spec.nodeSelector")


def selects(
    spec: api.MigrationDomainSpec, selector: LabelSelector, arch: str | None, labels: Mapping[str, str]
) -> bool:
    """Is a node with ``arch`` and ``labels`` a candidate of the domain? Another arch never is."""
    return arch == spec.arch and selector.matches(labels)


def domains_affected_by(
    node_labels: Mapping[str, str],
    node_arch: str | None,
    domains: Mapping[str, api.MigrationDomainSpec],
    *,
    old_labels: Mapping[str, str] | None = None,
) -> list[str]:
    """Names of the domains a node change concerns: those selecting it now or (given ``old_labels``) before.

    The reconciler re-evaluates only these, so a node event costs O(domains) selector checks, not a
    re-evaluation of every domain. A node being deleted: pass its last labels as ``node_labels``.
    """
    hit: list[str] = []
    for name, spec in domains.items():
        try:
            selector = node_selector(spec)
        except SelectorError:
            continue
        if selects(spec, selector, node_arch, node_labels) or (
            old_labels is not None and selects(spec, selector, node_arch, old_labels)
        ):
            hit.append(name)
    return sorted(hit)


# ------------------------------------------------------------------------------------------ evaluate


@dataclass
class _Work:
    """Mutable scratch of one evaluation (kept private; the result is the frozen DomainState)."""

    excluded: dict[str, Exclusion] = field(default_factory=dict)
    events: list[DomainEvent] = field(default_factory=list)

    def exclude(self, node: NodeFeatures, reason: str, message: str, missing: Iterable[str] = ()) -> None:
        self.excluded[node.name] = Exclusion(node.name, reason, message, tuple(missing))


def _eligible(spec: api.MigrationDomainSpec, selected: Sequence[NodeFeatures], work: _Work) -> list[NodeFeatures]:
    required = mask_from_names(spec.arch, spec.require, "spec.require")
    inheritance_needed = spec.enforcement.kernel_inheritance == "Required"
    eligible: list[NodeFeatures] = []
    for node in selected:
        if not node.usable or node.mask is None:
            problems = list(node.errors) or ["no usable feature data"]
            work.exclude(node, "NodeFeaturesInvalid", "; ".join(problems))
            continue
        if inheritance_needed and node.kernel_inheritance != "supported":
            work.exclude(
                node,
                "KernelCannotInherit",
                f"kernelInheritance is Required and the kernel ({node.kernel_release or 'release unknown'}) "
                f"inheritance support is {node.kernel_inheritance}",
            )
            continue
        lacking = node.lacks(required)
        if not lacking.is_empty:
            names = feature_names(lacking)
            work.exclude(node, "MissingRequiredFeatures", f"lacks required {', '.join(names)}", names)
            continue
        eligible.append(node)
    return eligible


def _exclude_lacking(mask: FeatureMask, nodes: Iterable[NodeFeatures], work: _Work, why: str = "") -> None:
    for node in nodes:
        missing = feature_names(node.lacks(mask)) if node.mask is not None else ()
        note = why
        if node.unobserved and set(missing) & node.unobserved:
            note += f" (its source {node.source} cannot show some of them)"
        work.exclude(node, "MissingMaskFeatures", f"lacks {', '.join(missing)} of mask {mask.mask_id}{note}", missing)


def _fit(
    spec: api.MigrationDomainSpec, mask: FeatureMask, eligible: Sequence[NodeFeatures], work: _Work, *, kept: bool
) -> tuple[FeatureMask, list[NodeFeatures], list[NodeFeatures]]:
    """Apply Exclude/Lower to nodes lacking features of ``mask``; returns (mask, members, nodes that lowered it).

    Lower never lowers for a node that would stay out anyway because the mask hides its security features.
    For a ``kept`` (frozen) mask, a Lower that would take a security feature away from nodes that have it
    is refused: the weaker nodes are excluded (``LowerRefused``) and the mask stays.
    """
    lacking = [n for n in eligible if n.mask is not None and not n.lacks(mask).is_empty]
    out = {n.name for n in lacking}
    if not lacking:
        return mask, list(eligible), []
    if spec.leveling.on_missing_features == "Exclude":
        _exclude_lacking(mask, lacking, work)
        return mask, [n for n in eligible if n.name not in out], []
    guard = not spec.allow_hiding_security_features
    hopeless: list[NodeFeatures] = []
    for node in lacking:
        hidden = hidden_security(mask, node.mask) if guard and node.mask is not None else None
        if hidden is not None and not hidden.is_empty:
            hopeless.append(node)
            hides = ", ".join(feature_names(hidden))
            why = f"; lowering would not admit it: the mask hides its security features {hides}"
            _exclude_lacking(mask, [node], work, why)
    lowerers = [n for n in lacking if n not in hopeless]
    rest = [n for n in eligible if n.name not in {h.name for h in hopeless}]
    if not lowerers:
        return mask, rest, []
    lowered = mask - FeatureMask.empty(spec.arch).union(*(n.lacks(mask) for n in lowerers if n.mask is not None))
    lost_security = (mask - lowered) & security_mask(spec.arch)
    victims = [
        n.name
        for n in rest
        if n.mask is not None and not lost_security.is_empty and not (lost_security & n.mask).is_empty
    ]
    if not (kept and victims and guard):
        return lowered, rest, lowerers
    for node in lowerers:
        missing = feature_names(node.lacks(mask)) if node.mask is not None else ()
        work.exclude(
            node,
            "LowerRefused",
            f"lacks {', '.join(missing)}; lowering the mask to it would hide security features "
            f"{', '.join(feature_names(lost_security))} of {listing(sorted(victims))}",
            missing,
        )
    return mask, [n for n in eligible if n.name not in out], []


def _uncovered(spec: api.MigrationDomainSpec, dropped: FeatureMask | None) -> list[str]:
    """Fallback-only dropped features that none of the domain's own fallback kinds switches off."""
    if dropped is None:
        return []
    wanted = set(spec.enforcement.userspace_fallbacks)
    return [n for n in sorted(dropped.cpuid) if (f := find(spec.arch, n)) is None or not covering_kinds(f) & wanted]


def _representatives(members: Sequence[NodeFeatures]) -> list[NodeFeatures]:
    """One member per distinct (feature set, kernel inheritance): what the exec model needs to see."""
    seen: dict[tuple[str, str], NodeFeatures] = {}
    for node in members:
        if node.mask is not None:
            seen.setdefault((node.mask.canonical(), node.kernel_inheritance), node)
    return list(seen.values())


@dataclass(frozen=True)
class _Outcome:
    """The decisions of one evaluation before they are rendered into a status."""

    mask: FeatureMask | None
    basis: api.MaskBasis | None
    members: list[NodeFeatures]
    lowering: list[NodeFeatures]
    refused: FeatureMask | None = None
    refused_on: tuple[str, ...] = ()
    spec_error: SpecError | None = None
    #: The mask was computed now (first time, re-level, Follow, Lower), not kept: the HWCAP_CPUID rule applies.
    fresh: bool = False


def _decide(
    spec: api.MigrationDomainSpec,
    selected: Sequence[NodeFeatures],
    previous_status: api.MigrationDomainStatus | None,
    work: _Work,
) -> _Outcome:
    new_basis = basis(spec)
    old_mask = previous_mask(spec, previous_status)
    old_basis = previous_status.mask.basis if previous_status and previous_status.mask else None
    try:
        check_spec_names(spec)
    except SpecError as err:
        # Keep serving the mask pods already run under; membership is judged against it alone.
        usable = [n for n in selected if n.usable]
        if old_mask is None:
            return _Outcome(None, None, [], [], spec_error=err)
        mask, members, _ = _fit(spec.model_copy(update={"leveling": api.Leveling()}), old_mask, usable, work, kept=True)
        return _Outcome(mask, old_basis, members, [], spec_error=err)

    eligible = _eligible(spec, selected, work)
    keep = spec.leveling.mode == "Frozen" and old_mask is not None and old_basis == new_basis
    if keep and old_mask is not None:
        mask, members, lowering = _fit(spec, old_mask, eligible, work, kept=True)
        return _Outcome(mask, new_basis, members, lowering, fresh=bool(lowering))
    target = target_baseline(spec, eligible)
    if target is None:  # nothing eligible: keep the last mask rather than publish none
        return _Outcome(old_mask, old_basis, [], [])
    trial = _Work(dict(work.excluded))
    candidate, members, lowering = _fit(spec, target, eligible, trial, kept=False)
    refused_on = tuple(
        n.name for n in members if n.mask is not None and not hidden_security(candidate, n.mask).is_empty
    )
    if refused_on and not spec.allow_hiding_security_features:
        if old_mask is None:
            return _Outcome(None, None, [], [], refused=candidate, refused_on=refused_on)
        mask, members, lowering = _fit(spec, old_mask, eligible, work, kept=True)
        return _Outcome(
            mask, old_basis, members, lowering, refused=candidate, refused_on=refused_on, fresh=bool(lowering)
        )
    work.excluded = trial.excluded
    return _Outcome(candidate, new_basis, members, lowering, fresh=True)


def _drop_hiding_members(spec: api.MigrationDomainSpec, outcome: _Outcome, work: _Work) -> list[NodeFeatures]:
    """Exclude members whose security features the published mask hides (unless allowed)."""
    if outcome.mask is None or spec.allow_hiding_security_features:
        return outcome.members
    kept: list[NodeFeatures] = []
    for node in outcome.members:
        hidden = hidden_security(outcome.mask, node.mask) if node.mask is not None else None
        if hidden is None or hidden.is_empty:
            kept.append(node)
            continue
        names = feature_names(hidden)
        work.exclude(
            node, "SecurityFeaturesHidden", f"the mask would hide its security features {', '.join(names)}", names
        )
    return kept


def _drop_unlevelled_members(
    spec: api.MigrationDomainSpec, mask: FeatureMask | None, members: list[NodeFeatures], work: _Work
) -> list[NodeFeatures]:
    """enforcement.nodeLeveling Required: exclude members still above the mask, naming the command line."""
    why = not_levelled(spec, mask, members)
    for node in members:
        if node.name in why:
            work.exclude(node, "NodeNotLevelled", why[node.name])
    return [n for n in members if n.name not in why]


def evaluate(
    spec: api.MigrationDomainSpec,
    nodes: Iterable[NodeFeatures],
    previous_status: api.MigrationDomainStatus | None,
    generation: int,
    *,
    pods: Iterable[InjectedPod] = (),
    validate: MaskValidator = exec_model_validator,
    now: datetime | None = None,
) -> DomainState:
    """Evaluate a domain (see the module doc for the rules); never raises on bad nodes or spec names.

    ``nodes`` may include nodes the domain does not select (they are filtered here; pass only the
    candidates from an index to keep the cost O(candidates)). ``pods`` are the pods injected for this
    domain (for the impact report). ``validate`` is the check behind MaskValid (default: the exec model). ``now`` is
    the time written into changed conditions (default: the clock).
    """
    when = (now or datetime.now(UTC)).replace(microsecond=0)  # metav1.Time has second precision
    selector = node_selector(spec)
    selected = sorted((n for n in nodes if selects(spec, selector, n.arch, n.labels)), key=lambda n: n.name)
    work = _Work()
    outcome = _decide(spec, selected, previous_status, work)
    members = _drop_hiding_members(spec, outcome, work)
    members = _drop_unlevelled_members(spec, outcome.mask, members, work)
    if outcome.fresh and outcome.mask is not None:
        outcome = replace(outcome, mask=id_registers.apply_policy(spec, outcome.mask, members))
    old_mask = previous_mask(spec, previous_status)
    old_basis = previous_status.mask.basis if previous_status and previous_status.mask else None
    if outcome.mask is not None and outcome.basis is not None:
        _leveling_events(spec, outcome.mask, old_mask, old_basis, outcome.basis, outcome.lowering, work)
    findings: tuple[MaskFinding, ...] = ()
    if outcome.mask is not None and members and outcome.spec_error is None:
        findings = tuple(validate(outcome.mask, _representatives(members)))
    return _finish(spec, outcome, members, work, findings, selected, previous_status, generation, when, pods)


def _leveling_events(
    spec: api.MigrationDomainSpec,
    mask: FeatureMask,
    old_mask: FeatureMask | None,
    old_basis: api.MaskBasis | None,
    new_basis: api.MaskBasis,
    lowering: Sequence[NodeFeatures],
    work: _Work,
) -> None:
    if old_mask is None:
        work.events.append(
            DomainEvent("MaskEstablished", f"mask {mask.mask_id} with {mask.popcount} features", "Normal")
        )
        return
    if mask == old_mask:
        return
    lost = feature_names(old_mask - mask)
    gained = feature_names(mask - old_mask)
    change = f"mask {old_mask.mask_id} → {mask.mask_id}"
    if lost:
        change += f"; removed {', '.join(lost)}"
    if gained:
        change += f"; added {', '.join(gained)}"
    if lowering:
        work.events.append(
            DomainEvent("MaskLowered", f"{change} (to admit {listing([n.name for n in lowering])})", "Warning")
        )
    elif old_basis is not None and old_basis.relevel_generation != new_basis.relevel_generation:
        work.events.append(
            DomainEvent("MaskReleveled", f"{change} (relevelGeneration {new_basis.relevel_generation})", "Normal")
        )
    elif old_basis is not None and old_basis.fingerprint != new_basis.fingerprint:
        work.events.append(DomainEvent("BaselineChanged", change, "Normal"))
    else:
        work.events.append(DomainEvent("MaskFollowed", f"{change} (leveling {spec.leveling.mode})", "Normal"))


def _kernel_lists(members: Sequence[NodeFeatures]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    unsupported = tuple(n.name for n in members if n.kernel_inheritance == "unsupported")
    unknown = tuple(n.name for n in members if n.kernel_inheritance == "unknown")
    return unsupported, unknown


def _node_issues(selected: Sequence[NodeFeatures]) -> list[api.NodeSourceIssue]:
    issues = [
        api.NodeSourceIssue(
            name=n.name,
            source=n.source or "none",
            errors=[p[:1024] for p in (*n.errors, *n.warnings)][:16],
            unknown_features=list(n.unknown_features[: api.FEATURE_CAP]),
        )
        for n in selected
        if n.errors or n.warnings or n.unknown_features
    ]
    return issues[: api.NAME_CAP]


def _source_events(
    selected: Sequence[NodeFeatures], previous: api.MigrationDomainStatus | None, cap: int = 10
) -> list[DomainEvent]:
    """Warnings about a node's feature sources, once: not again while the status still lists them."""
    reported = {(i.name, tuple(i.errors)) for i in previous.node_issues} if previous else set()
    events: list[DomainEvent] = []
    for node in selected:
        problems = tuple(p[:1024] for p in (*node.errors, *node.warnings))[:16]
        if problems and (node.name, problems) not in reported:
            reason = "NodeFeaturesInvalid" if node.errors else "NodeSourceDisagreement"
            events.append(DomainEvent(reason, f"node {node.name}: {'; '.join(problems)}", "Warning", node.name))
    return events[:cap]


def _finish(
    spec: api.MigrationDomainSpec,
    outcome: _Outcome,
    members: Sequence[NodeFeatures],
    work: _Work,
    findings: Sequence[MaskFinding],
    selected: Sequence[NodeFeatures],
    previous: api.MigrationDomainStatus | None,
    generation: int,
    now: datetime,
    pods: Iterable[InjectedPod],
) -> DomainState:
    mask = outcome.mask
    previous_conditions = previous.conditions if previous else []
    member_names = tuple(sorted(n.name for n in members))
    dropped: FeatureMask | None = None
    if mask is not None and members:
        dropped = FeatureMask.empty(spec.arch).union(*(n.mask for n in members if n.mask is not None)) - mask
    dropped_names = feature_names(dropped) if dropped is not None else ()
    unsupported, unknown = _kernel_lists(members)
    impact = pod_impact(pods, mask, members)
    refused_hides: set[str] = set()
    if outcome.refused is not None:
        by_name = {n.name: n for n in selected}
        for name in outcome.refused_on:
            node_mask = by_name[name].mask if name in by_name else None
            if node_mask is not None:
                refused_hides.update(feature_names(hidden_security(outcome.refused, node_mask)))
    verdict = Verdict(
        kernel_inheritance=spec.enforcement.kernel_inheritance,
        mask=mask,
        selected=len(selected),
        members=len(members),
        excluded=len(work.excluded),
        stranded_pods=impact.stranded_pods,
        kernel_unsupported=unsupported,
        kernel_unknown=unknown,
        findings=tuple(findings),
        spec_error=(outcome.spec_error.reason, str(outcome.spec_error)) if outcome.spec_error else None,
        refused=outcome.refused,
        refused_hides=tuple(sorted(refused_hides)),
        refused_on=outcome.refused_on,
        id_registers=id_registers.verdict(spec, mask, members),
    )
    updates = domain_conditions(verdict)
    events = list(work.events)
    events += [
        DomainEvent(u.reason, u.message, "Warning")
        for u in updates
        if is_bad(u) and condition_changed(previous_conditions, u)
    ]
    events += _source_events(selected, previous)
    mask_basis = outcome.basis or basis(spec)
    status = api.MigrationDomainStatus(
        observed_generation=generation,
        mask=mask_status(mask, mask_basis) if mask is not None else None,
        members=node_names(member_names),
        excluded=excluded_nodes(list(work.excluded.values())),
        dropped_features=list(dropped_names),
        fallback_only_features=sorted(dropped.cpuid) if dropped is not None else [],
        uncovered_features=_uncovered(spec, dropped),
        channel_coverage=channel_coverage(dropped, mask, spec.enforcement.userspace_fallbacks),
        kernel=api.KernelSupportStatus(unsupported=node_names(unsupported), unknown=node_names(unknown)),
        node_issues=_node_issues(selected),
        pod_impact=impact,
        node_leveling=leveling_entries(spec, mask, members),
        conditions=merge_conditions(previous_conditions, updates, generation, now),
    )
    return DomainState(
        mask=mask,
        members=member_names,
        excluded=dict(sorted(work.excluded.items())),
        dropped=dropped_names,
        kernel_unsupported=unsupported,
        kernel_unknown=unknown,
        status=status,
        events=tuple(events),
        metrics=DomainMetrics(
            members=len(member_names),
            excluded=len(work.excluded),
            mask_features=mask.popcount if mask is not None else 0,
            stale_pods=impact.stale_pods,
            kernel_unsupported=len(unsupported),
            node_source_issues=sum(1 for n in selected if n.errors),
        ),
        findings=tuple(findings),
    )
