"""The four conditions of a MigrationDomain, decided from the outcome of an evaluation.

- Ready: may the webhook inject this domain's mask (a mask is published, members exist, it validated)?
- MaskValid: is the mask sound (spec names known, no security feature hidden, the exec model agrees)?
- Degraded: it works, but not everything selected is served (exclusions, a refused mask, stranded pods).
- KernelSupport: will the wrapped process's descendants see the mask (the members' kernels inherit)?
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hwcap_operator.domain.id_registers import IdRegisterVerdict
from hwcap_operator.domain.mask_checks import MaskFinding
from hwcap_operator.domain.status import ConditionUpdate, listing
from hwcap_operator.mask import FeatureMask


@dataclass(frozen=True)
class Verdict:
    """What the conditions are decided from (plain values, so each rule is readable and testable)."""

    kernel_inheritance: str
    mask: FeatureMask | None
    selected: int
    members: int
    excluded: int
    stranded_pods: int
    kernel_unsupported: tuple[str, ...] = ()
    kernel_unknown: tuple[str, ...] = ()
    findings: tuple[MaskFinding, ...] = ()
    #: Set when the spec names an unknown preset/feature: (condition reason, message).
    spec_error: tuple[str, str] | None = None
    #: A computed mask refused for hiding security features: the mask, the features, the nodes.
    refused: FeatureMask | None = None
    refused_hides: tuple[str, ...] = ()
    refused_on: tuple[str, ...] = ()
    #: arm64: what the published mask does with HWCAP_CPUID (None elsewhere).
    id_registers: IdRegisterVerdict | None = None


def is_bad(update: ConditionUpdate) -> bool:
    """Conditions whose abnormal state deserves a Warning Event (Degraded is abnormal when True)."""
    return update.status == "True" if update.type == "Degraded" else update.status != "True"


def _mask_valid(v: Verdict, kept: str) -> ConditionUpdate:
    errors = [f for f in v.findings if f.severity == "error"]
    if v.spec_error is not None:
        return ConditionUpdate("MaskValid", "False", v.spec_error[0], f"{v.spec_error[1]}{kept}")
    if v.refused is not None:
        return ConditionUpdate(
            "MaskValid",
            "False",
            "SecurityFeatureHidden",
            f"the computed mask {v.refused.mask_id} would hide security features {', '.join(v.refused_hides)} "
            f"of {listing(list(v.refused_on))}{kept}. Set spec.allowHidingSecurityFeatures: true, or select "
            "nodes that agree on them",
        )
    if v.mask is None:
        return ConditionUpdate("MaskValid", "Unknown", "NoMask", "no eligible node to compute a mask from")
    if errors:
        return ConditionUpdate("MaskValid", "False", errors[0].code, "; ".join(f.message for f in errors[:5]))
    warnings = [f.message for f in v.findings if f.severity == "warning"]
    message = f"mask {v.mask.mask_id} validated by the exec model"
    reason = "Valid"
    if v.id_registers is not None:
        message += "; " + v.id_registers.note()
        # Still a sound mask, but the ID registers tell MRS readers what it hides: say so in the reason.
        reason = "HiddenFeaturesInIdRegisters" if v.id_registers.exposes_hidden else reason
    return ConditionUpdate("MaskValid", "True", reason, message + ("; " + "; ".join(warnings[:5]) if warnings else ""))


def _ready(v: Verdict, kept: str) -> ConditionUpdate:
    if v.spec_error is not None:
        return ConditionUpdate("Ready", "False", "SpecInvalid", f"{v.spec_error[1]}{kept}")
    if v.mask is None and v.refused is not None:
        return ConditionUpdate("Ready", "False", "MaskRefused", "the computed mask was refused (see MaskValid)")
    if v.mask is None:
        return ConditionUpdate("Ready", "False", "NoEligibleNodes", f"{v.selected} node(s) selected, none eligible")
    if not v.members:
        return ConditionUpdate("Ready", "False", "NoMembers", f"no selected node fits mask {v.mask.mask_id}")
    if any(f.severity == "error" for f in v.findings):
        return ConditionUpdate("Ready", "False", "MaskInvalid", f"mask {v.mask.mask_id} failed validation")
    return ConditionUpdate("Ready", "True", "MaskPublished", f"mask {v.mask.mask_id} on {v.members} member node(s)")


def _degraded(v: Verdict) -> ConditionUpdate:
    problems: list[str] = []
    if v.refused is not None:
        problems.append("computed mask refused")
    if v.excluded:
        problems.append(f"{v.excluded} node(s) excluded")
    if v.stranded_pods:
        problems.append(f"{v.stranded_pods} pod(s) fit no member")
    if not problems:
        return ConditionUpdate("Degraded", "False", "AllNodesMembers", "every selected node is a member")
    reason = "MaskRefused" if v.refused is not None else ("NodesExcluded" if v.excluded else "PodsStranded")
    return ConditionUpdate("Degraded", "True", reason, "; ".join(problems))


def _kernel_support(v: Verdict) -> ConditionUpdate:
    if v.kernel_inheritance == "Off":
        return ConditionUpdate("KernelSupport", "Unknown", "NotChecked", "kernelInheritance is Off")
    if v.kernel_unsupported:
        return ConditionUpdate(
            "KernelSupport",
            "False",
            "InheritanceUnsupported",
            f"{len(v.kernel_unsupported)} member(s) cannot inherit HWCAPs across exec "
            f"({listing(list(v.kernel_unsupported))}): only the wrapped process itself sees the mask there",
        )
    if v.kernel_unknown:
        return ConditionUpdate(
            "KernelSupport",
            "Unknown",
            "InheritanceUnknown",
            f"{len(v.kernel_unknown)} member(s) have not reported HWCAP inheritance "
            f"({listing(list(v.kernel_unknown))})",
        )
    if v.members:
        return ConditionUpdate("KernelSupport", "True", "InheritanceSupported", "every member inherits HWCAPs")
    return ConditionUpdate("KernelSupport", "Unknown", "NoMembers", "no member to check")


def domain_conditions(verdict: Verdict) -> Sequence[ConditionUpdate]:
    """Ready, MaskValid, Degraded and KernelSupport for one evaluation."""
    kept = f"; keeping mask {verdict.mask.mask_id}" if verdict.mask is not None else "; no mask is published"
    return (_ready(verdict, kept), _mask_valid(verdict, kept), _degraded(verdict), _kernel_support(verdict))
