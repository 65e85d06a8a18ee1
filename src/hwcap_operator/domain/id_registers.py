"""spec.enforcement.idRegisterAccess: does an arm64 mask advertise HWCAP_CPUID, and what the status says about it.

HWCAP_CPUID (``cpuid``, AT_HWCAP bit 11) tells a process it may read the ID registers with MRS. The kernel
answers those reads with the node's own sanitised values, whatever HWCAP mask the process runs under
(docs/kernel.md#hwcap-cpuid). A mask that hides features but keeps HWCAP_CPUID therefore points software that
follows the kernel's rule (glibc, Go: read MRS only when HWCAP_CPUID is set) at the very features it hides.

The rule (applied only when a mask is computed, so a Frozen mask never moves by itself):

- ``Auto`` (default): cleared when the new mask hides a feature some member has; kept when it hides nothing.
- ``Keep``: left as computed; the status names the hidden features the ID registers reveal.
- ``Clear``: always cleared.

A ``cpuid`` in ``baseline.features`` or a preset is not an opt-in (a feature list copied from /proc/cpuinfo has
it): only ``Keep`` keeps it. ``exclude: [cpuid]`` clears it like any feature. Other arches have no such bit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from hwcap_operator.domain import api
from hwcap_operator.domain.node_features import NodeFeatures
from hwcap_operator.execmodel.id_registers import HWCAP_CPUID as _CPUID
from hwcap_operator.execmodel.id_registers import mrs_view
from hwcap_operator.features import catalog
from hwcap_operator.mask import FeatureMask, MaskParseError

DOC = "docs/kernel.md#hwcap-cpuid"

Outcome = Literal["Cleared", "ClearedBySpec", "NothingHidden", "KeptBySpec", "KeptByFrozenMask", "NotAdvertised"]


@dataclass(frozen=True, slots=True)
class IdRegisterVerdict:
    """What the published mask does with HWCAP_CPUID and which hidden features the ID registers show members."""

    outcome: Outcome
    revealed: tuple[str, ...]

    @property
    def exposes_hidden(self) -> bool:
        """HWCAP_CPUID is advertised while the ID registers show members features the mask hides."""
        return self.outcome in ("KeptBySpec", "KeptByFrozenMask")

    def note(self) -> str:
        """One clause for the MaskValid message (users read it; it states the fact and names the doc)."""
        hidden = f"{len(self.revealed)} hidden feature(s): {', '.join(self.revealed[:16])}"
        if len(self.revealed) > 16:
            hidden += ", …"
        if self.outcome == "Cleared":
            return (f"HWCAP_CPUID cleared: the ID registers would reveal {hidden}; software that checks HWCAP_CPUID "
                    f"before MRS (glibc, Go) does not read them ({DOC})")  # fmt: skip
        if self.outcome == "ClearedBySpec":
            return f"HWCAP_CPUID cleared (spec.enforcement.idRegisterAccess: Clear; {DOC})"
        if self.outcome == "NothingHidden":
            return "HWCAP_CPUID kept: the mask hides no ID-register feature from any member"
        if self.outcome == "KeptBySpec":
            return (f"HWCAP_CPUID kept (spec.enforcement.idRegisterAccess: Keep): the ID registers reveal {hidden} "
                    f"to any process that reads them with MRS ({DOC})")  # fmt: skip
        if self.outcome == "KeptByFrozenMask":
            return (f"HWCAP_CPUID kept by the frozen mask (established while it hid nothing, or before this rule "
                    f"existed): the ID registers reveal {hidden}; bump spec.leveling.relevelGeneration to clear it "
                    f"({DOC})")  # fmt: skip
        return "HWCAP_CPUID not advertised (spec.exclude, or a member lacks it)"


def _arm64(mask: FeatureMask) -> bool:
    return mask.arch == "arm64"


def revealed(mask: FeatureMask, members: Sequence[NodeFeatures]) -> FeatureMask:
    """Features some member has that ``mask`` hides and that an ID-register field shows (MRS)."""
    known = [n.mask for n in members if n.mask is not None]
    if not _arm64(mask) or not known:
        return FeatureMask.empty(mask.arch)
    return mrs_view(known[0].union(*known[1:])) - mask


def apply_policy(spec: api.MigrationDomainSpec, mask: FeatureMask, members: Sequence[NodeFeatures]) -> FeatureMask:
    """A newly computed mask after the HWCAP_CPUID rule (module doc); other arches unchanged."""
    if not _arm64(mask):
        return mask
    mode = spec.enforcement.id_register_access
    if mode == "Clear" or (mode == "Auto" and not revealed(mask, members).is_empty):
        return mask - _CPUID
    return mask


def verdict(
    spec: api.MigrationDomainSpec, mask: FeatureMask | None, members: Sequence[NodeFeatures]
) -> IdRegisterVerdict | None:
    """How the published ``mask`` stands with HWCAP_CPUID on its ``members``; None off arm64 or without a mask."""
    if mask is None or not _arm64(mask):
        return None
    shown = tuple(revealed(mask, members).names())
    mode = spec.enforcement.id_register_access
    if "cpuid" in mask:
        if not shown:
            return IdRegisterVerdict("NothingHidden", ())
        return IdRegisterVerdict("KeptBySpec" if mode == "Keep" else "KeptByFrozenMask", shown)
    if mode == "Clear":
        return IdRegisterVerdict("ClearedBySpec", shown)
    if shown and "cpuid" not in spec.exclude:
        return IdRegisterVerdict("Cleared", shown)
    return IdRegisterVerdict("NotAdvertised", shown)


def from_status(spec: api.MigrationDomainSpec, status: api.MigrationDomainStatus | None) -> IdRegisterVerdict | None:
    """:func:`verdict` from a published status alone (for the CLI): the members together have the mask plus
    ``status.droppedFeatures``, which is all the verdict needs of them."""
    if spec.arch != "arm64" or status is None or status.mask is None:
        return None
    try:
        mask = FeatureMask.parse(status.mask.canonical)
    except MaskParseError:
        return None
    dropped = FeatureMask.from_names("arm64", [n for n in status.dropped_features if catalog.find("arm64", n)])
    members = NodeFeatures(name="members", arch="arm64", labels={}, mask=mask | dropped, source=None)
    return verdict(spec, mask, [members])
