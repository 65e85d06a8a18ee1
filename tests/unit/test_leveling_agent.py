"""The node agent reports the ID-register overrides in /proc/cmdline; the operator tells a levelled member apart.

Command lines are written here by hand from the aliases and fields of docs/kernel.md#idreg-override.
"""

from __future__ import annotations

from pathlib import Path

from tests.unit.domaindata import G4, node_object, spec

from hwcap_operator import keys
from hwcap_operator.agent.report import AgentReport, read_idreg_overrides, report_annotations
from hwcap_operator.domain.leveling import overrides_in_cmdline
from hwcap_operator.domain.leveling_status import leveling_entry
from hwcap_operator.domain.node_features import node_features
from hwcap_operator.mask import FeatureMask

DEBIAN_CMDLINE = "BOOT_IMAGE=/vmlinuz-6.12.48-arm64 root=UUID=1234 ro quiet"


def test_only_override_tokens_are_kept_in_order() -> None:
    line = f"{DEBIAN_CMDLINE} arm64.nosve id_aa64pfr1.mte=2 kvm-arm.mode=nvhe nokaslr arm64.nopauth -- arm64.nobti"
    # kvm-arm.mode=nvhe and nokaslr are parsed by the same code but change no CPU feature: not reported; after
    # "--" the kernel stops parsing.
    assert overrides_in_cmdline(line) == ("arm64.nosve", "id_aa64pfr1.mte=2", "arm64.nopauth")
    assert overrides_in_cmdline(DEBIAN_CMDLINE) == ()


def test_agent_reads_proc_cmdline_and_publishes_an_annotation(tmp_path: Path) -> None:
    cmdline = tmp_path / "cmdline"
    cmdline.write_text(f"{DEBIAN_CMDLINE} arm64.nosve arm64.nomops\n")
    found = read_idreg_overrides(cmdline)
    assert found == ("arm64.nosve", "arm64.nomops")
    assert read_idreg_overrides(tmp_path / "missing") == ()
    report = AgentReport("arm64", (1, 0, 0, 0), "6.12.48-arm64", "unknown", "", found)
    assert report_annotations(report)[keys.AGENT_IDREG_OVERRIDES_ANNOTATION] == "arm64.nosve arm64.nomops"


def test_a_member_at_the_mask_that_booted_with_overrides_is_levelled_by_boot_parameters() -> None:
    manifest = node_object("g4", G4)
    manifest["metadata"]["annotations"][keys.AGENT_IDREG_OVERRIDES_ANNOTATION] = "arm64.nosve"
    member = node_features(manifest)
    assert member.idreg_overrides == ("arm64.nosve",)
    assert member.mask is not None
    mask = FeatureMask.from_names("arm64", member.mask.names())  # the member is exactly at this mask
    entry = leveling_entry(spec(enforcement={"nodeLeveling": "Report"}), mask, member)
    assert (entry.state, entry.message) == ("Levelled", "levelled by boot parameters: arm64.nosve")
    plain = node_features(node_object("g4", G4))
    assert leveling_entry(spec(), mask, plain).state == "AtMask"
