"""MaskValid from the exec model: simulate the init step under the domain's mask on each kind of member.

The exec model (:func:`hwcap_operator.execmodel.pod_simulation.validate`) runs the pod's process tree (the init
binary, the entrypoint, a grandchild, a setuid helper, an AArch32 child) on a simulated kernel with the
series' v5 semantics and reports typed findings. Two of its findings are decided elsewhere in the domain,
so they are left out here: a hidden security feature (the policy refuses it, or the user allowed it with
``allowHidingSecurityFeatures``), a kernel that cannot inherit (the KernelSupport condition, which knows
each node's real kernel; here every member is simulated as patched to ask "is the mask itself sound?") and
HWCAP_CPUID advertised while the mask hides features (the domain's ID-register verdict, domain.id_registers).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Literal

from hwcap_operator.domain.node_features import NodeFeatures
from hwcap_operator.execmodel import pod_simulation as execmodel
from hwcap_operator.execmodel.kernel import ModelError
from hwcap_operator.mask import FeatureMask


@dataclass(frozen=True, slots=True)
class MaskFinding:
    """One validation finding: ``error`` findings make MaskValid False; ``code`` is a condition reason."""

    code: str
    message: str
    severity: Literal["error", "warning"] = "error"
    node: str | None = None


#: Validates a mask against member nodes (the policy passes one representative per distinct feature set).
MaskValidator = Callable[[FeatureMask, Sequence[NodeFeatures]], Sequence[MaskFinding]]


def no_validation(mask: FeatureMask, members: Sequence[NodeFeatures]) -> Sequence[MaskFinding]:
    """A validator that finds nothing (for callers that validate elsewhere)."""
    return ()


#: Findings the domain reports through other rules (see module doc), and the severity that is only a note.
_DECIDED_ELSEWHERE = frozenset(
    {execmodel.SECURITY_FEATURE_HIDDEN, execmodel.INHERITANCE_UNSUPPORTED, execmodel.ID_REGISTERS_REVEAL_HIDDEN}
)


def reason_of(code: str) -> str:
    """A finding code (``cross-abi-exec-drops-mask``) as a condition reason (``CrossAbiExecDropsMask``)."""
    return "".join(part[:1].upper() + part[1:] for part in code.split("-") if part)


#: Stands for the node's name inside cached findings (a NUL byte never occurs in a Kubernetes name).
_ANY_NODE = "\x00node\x00"


@lru_cache(maxsize=4096)
def _findings_for(mask: FeatureMask, node_mask: FeatureMask) -> tuple[execmodel.Finding, ...]:
    # Cached on (mask, node features) only, not the node's name: the domains of one cluster share a few
    # hardware kinds, so after a restart 100 domains over 5,000 nodes run a few dozen simulations, not 400.
    spec = execmodel.NodeSpec.from_mask(_ANY_NODE, node_mask, patch="v5")
    return tuple(execmodel.validate(mask, spec).findings)


def _node_findings(mask: FeatureMask, node_name: str, node_mask: FeatureMask) -> tuple[execmodel.Finding, ...]:
    """The exec model's findings for ``mask`` on a node with ``node_mask``, naming ``node_name``."""
    return tuple(replace(f, message=f.message.replace(_ANY_NODE, node_name)) if _ANY_NODE in f.message else f
                 for f in _findings_for(mask, node_mask))  # fmt: skip


def exec_model_validator(mask: FeatureMask, members: Sequence[NodeFeatures]) -> list[MaskFinding]:
    """Validate ``mask`` on each member (one per distinct feature set is enough); one finding per code."""
    by_code: dict[str, tuple[execmodel.Finding, list[str]]] = {}
    for node in members:
        if node.mask is None:
            continue
        try:
            # features of the mask no source of this node can observe count as present (silence is not absence)
            findings = _node_findings(mask, node.name, node.mask | (mask - node.lacks(mask)))
        except ModelError as exc:
            # Last line of defence: node_features already excludes reports the model cannot take (bits in a
            # word the arch does not define); anything else it refuses is a finding, never a crashed reconcile.
            return [MaskFinding("MaskNotModelled", f"the exec model cannot run this mask on {node.name}: {exc}",
                                "error", node.name)]  # fmt: skip
        for finding in findings:
            if finding.code in _DECIDED_ELSEWHERE or finding.severity == "info":
                continue
            by_code.setdefault(finding.code, (finding, []))[1].append(node.name)
    out: list[MaskFinding] = []
    for code, (finding, nodes) in sorted(by_code.items()):
        detail = f" ({', '.join(finding.features[:12])})" if finding.features else ""
        severity: Literal["error", "warning"] = "error" if finding.severity == "error" else "warning"
        out.append(MaskFinding(reason_of(code), f"{finding.message}{detail}", severity, nodes[0]))
    return out
