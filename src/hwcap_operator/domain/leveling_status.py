"""spec.enforcement.nodeLeveling: per member, the boot parameters that level it to the domain's mask.

Report fills status.nodeLeveling; Required also excludes a member still above the mask, with the exact command
line it needs (docs/kernel.md#idreg-override). A member's features are what its kernel reports *after* any
override it booted with, so a member levelled by its boot parameters is simply at the mask here.
"""

from __future__ import annotations

from collections.abc import Sequence

from hwcap_operator.domain import api
from hwcap_operator.domain.leveling import DEFAULT_KERNEL, LevelingError, plan_leveling
from hwcap_operator.domain.node_features import NodeFeatures
from hwcap_operator.mask import FeatureMask


def leveling_entry(spec: api.MigrationDomainSpec, mask: FeatureMask, node: NodeFeatures) -> api.NodeLevelingEntry:
    """What ``node`` needs to show exactly ``mask``; its kernel release picks the override table."""
    if node.mask is None:
        return api.NodeLevelingEntry(name=node.name, state="NotLevellable", message="not levellable: no feature data")
    kernel = node.kernel_release or DEFAULT_KERNEL
    try:
        plan = plan_leveling(node.mask, mask, kernel, allow_hiding_security=spec.allow_hiding_security_features)
    except LevelingError as exc:
        return api.NodeLevelingEntry(name=node.name, state="NotLevellable", message=f"not levellable: {exc}"[:4096])
    remaining = list(plan.remaining[: api.FEATURE_CAP])
    if not plan.parameters and not plan.remaining:
        if node.idreg_overrides:
            booted = list(node.idreg_overrides)
            return api.NodeLevelingEntry(name=node.name, state="Levelled", parameters=booted,
                                         message=f"levelled by boot parameters: {' '.join(booted)}")  # fmt: skip
        return api.NodeLevelingEntry(name=node.name, state="AtMask", message="at the mask: nothing to level")
    if plan.levelled:
        return api.NodeLevelingEntry(name=node.name, state="Available", parameters=list(plan.parameters),
                                     message=f"levelling available: {plan.cmdline}")  # fmt: skip
    why = [f"no override on kernel {kernel} for {', '.join(plan.no_override)}"] if plan.no_override else []
    if plan.blocked_security:
        why.append(f"security features {', '.join(plan.blocked_security)} need allowHidingSecurityFeatures")
    partly = f" ({plan.cmdline} removes {', '.join(plan.removed)})" if plan.parameters else ""
    message = f"not levellable: {'; '.join(why)}{partly}"[:4096]
    return api.NodeLevelingEntry(name=node.name, state="NotLevellable", parameters=list(plan.parameters),
                                 remaining=remaining, message=message)  # fmt: skip


def leveling_entries(
    spec: api.MigrationDomainSpec, mask: FeatureMask | None, members: Sequence[NodeFeatures]
) -> list[api.NodeLevelingEntry]:
    """status.nodeLeveling: empty when the option is Off or no mask exists yet."""
    if spec.enforcement.node_leveling == "Off" or mask is None:
        return []
    return [leveling_entry(spec, mask, n) for n in members[: api.NAME_CAP]]


def not_levelled(
    spec: api.MigrationDomainSpec, mask: FeatureMask | None, members: Sequence[NodeFeatures]
) -> dict[str, str]:
    """With Required: member name -> why it is excluded (the command line it needs, or what no override reaches)."""
    if spec.enforcement.node_leveling != "Required" or mask is None:
        return {}
    out: dict[str, str] = {}
    for node in members:
        entry = leveling_entry(spec, mask, node)
        if entry.state == "Available":
            out[node.name] = f"nodeLeveling is Required: boot it with `{' '.join(entry.parameters)}`"
        elif entry.state == "NotLevellable":
            out[node.name] = f"nodeLeveling is Required and it is {entry.message}"
    return out
