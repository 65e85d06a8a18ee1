"""The mask before leveling, and the facts leveling compares: security features, the basis, the old mask.

Kept apart from the policy so the CLI (``hwcapctl what-if``) and the webhook can compute a domain's target
mask and security check without evaluating membership.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from functools import cache

from hwcap_operator import presets
from hwcap_operator.arch import Arch
from hwcap_operator.domain import api
from hwcap_operator.domain.node_features import NodeFeatures
from hwcap_operator.features import UnknownFeatureError, catalog
from hwcap_operator.mask import FeatureMask, MaskParseError, intersect_all


class SpecError(ValueError):
    """A spec that names an unknown preset or feature for its arch; the message names field and value."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


def mask_from_names(arch: Arch, names: Iterable[str], field_name: str) -> FeatureMask:
    """Features named in a spec field; :class:`SpecError` names the field and the unknown names."""
    try:
        return FeatureMask.from_names(arch, names)
    except UnknownFeatureError as err:
        raise SpecError("UnknownFeature", f"{field_name}: {err}") from err


def target_baseline(spec: api.MigrationDomainSpec, eligible: Sequence[NodeFeatures]) -> FeatureMask | None:
    """The mask before leveling: Auto over ``eligible`` (None when there is none), preset, or explicit."""
    baseline = spec.baseline
    if baseline.mode == "Preset":
        try:
            mask = presets.preset(baseline.preset or "")
        except presets.UnknownPresetError as err:
            raise SpecError("UnknownPreset", f"spec.baseline.preset: {err}") from err
        if mask.arch != spec.arch:
            raise SpecError(
                "UnknownPreset", f"spec.baseline.preset: {baseline.preset!r} is a {mask.arch} preset, not {spec.arch}"
            )
    elif baseline.mode == "Explicit":
        mask = mask_from_names(spec.arch, baseline.features, "spec.baseline.features")
    else:
        known = [(n.mask, n.possible or n.mask) for n in eligible if n.mask is not None]
        if not known:
            return None
        mask = common_features(known)
    return mask - mask_from_names(spec.arch, spec.exclude, "spec.exclude")


def common_features(nodes: Sequence[tuple[FeatureMask, FeatureMask]]) -> FeatureMask:
    """What every node has, given each node's (seen, possible) masks (possible = seen + unobservable).

    A node lacks a feature only if one of its sources could see it and does not report it, so a node
    known only through NFD (which has no name for tsc, pae, clwb, ...) does not pull those out; a feature
    no node's source can see at all stays out (nobody vouches for it).
    """
    possible = intersect_all(p for _, p in nodes)
    seen = nodes[0][0].union(*(s for s, _ in nodes[1:]))
    return possible & seen


@cache
def security_mask(arch: Arch) -> FeatureMask:
    """Every security feature of ``arch`` as one mask, so "does this hide one" is a few int ANDs."""
    return FeatureMask.from_features(arch, [f for f in catalog.features(arch) if f.security])


def hidden_security(mask: FeatureMask, node: FeatureMask) -> FeatureMask:
    """Security features ``node`` has that ``mask`` does not advertise."""
    return (node - mask) & security_mask(node.arch)


def basis(spec: api.MigrationDomainSpec) -> api.MaskBasis:
    """What a Frozen mask is pinned to; node changes are not part of it, so they never re-level."""
    inputs: dict[str, object] = {
        "arch": spec.arch,
        "mode": spec.baseline.mode,
        "preset": spec.baseline.preset,
        "features": sorted(spec.baseline.features),
        "exclude": sorted(spec.exclude),
    }
    # The HWCAP_CPUID rule decides part of the mask (domain.id_registers): changing it re-levels. Left out at its
    # default so that masks frozen before the knob existed keep their basis (the status reports them instead).
    if spec.enforcement.id_register_access != "Auto":
        inputs["idRegisterAccess"] = spec.enforcement.id_register_access
    material = json.dumps(inputs, sort_keys=True)
    return api.MaskBasis(
        baseline_mode=spec.baseline.mode,
        fingerprint=hashlib.sha256(material.encode()).hexdigest()[:16],
        relevel_generation=spec.leveling.relevel_generation,
    )


def previous_mask(spec: api.MigrationDomainSpec, previous: api.MigrationDomainStatus | None) -> FeatureMask | None:
    """The mask a previous status published, if it can be read back and is of the spec's arch."""
    if previous is None or previous.mask is None:
        return None
    try:
        mask = FeatureMask.parse(previous.mask.canonical)
    except MaskParseError:
        return None
    return mask if mask.arch == spec.arch else None


def feature_names(mask: FeatureMask) -> tuple[str, ...]:
    """The mask's feature names as a tuple (for messages and Exclusion.missing)."""
    return tuple(mask.names())


def check_spec_names(spec: api.MigrationDomainSpec) -> None:
    """Raise :class:`SpecError` when the spec names a preset or feature unknown for its arch."""
    mask_from_names(spec.arch, spec.require, "spec.require")
    mask_from_names(spec.arch, spec.exclude, "spec.exclude")
    if spec.baseline.mode != "Auto":
        target_baseline(spec, [])
