"""hwcapctl explain --domain: the channels that still reveal each dropped feature, from the published mask."""

from __future__ import annotations

from hwcap_operator.cli.verbs_coverage import coverage_document
from hwcap_operator.domain.api import MaskBasis, MigrationDomainSpec, MigrationDomainStatus
from hwcap_operator.domain.status import mask_status
from hwcap_operator.mask import FeatureMask


def _status(mask: FeatureMask, dropped: list[str]) -> MigrationDomainStatus:
    basis = MaskBasis(baseline_mode="Auto", fingerprint="f", relevel_generation=0)
    return MigrationDomainStatus(dropped_features=dropped, mask=mask_status(mask, basis))


def test_arm64_domain_without_cpuid_lists_the_id_registers_as_unadvertised() -> None:
    spec = MigrationDomainSpec.model_validate({"arch": "arm64", "workloads": {"namespaceSelector": {}},
                                               "enforcement": {"userspaceFallbacks": ["goDebug"]}})  # fmt: skip
    without = _status(FeatureMask.from_names("arm64", ["fp", "asimd", "atomics"]), ["sve", "sha512"])
    doc = coverage_document("d", spec, without)
    assert doc["idRegistersAdvertised"] is False
    channels = {tuple(g["channels"]) for g in doc["channelCoverage"]}
    assert channels == {("IDRegistersUnadvertised", "MIDR", "ProcCpuinfo")}
    assert "software that ignores the rule" in doc["channels"]["IDRegistersUnadvertised"]
    sha512 = next(g for g in doc["channelCoverage"] if "sha512" in g["features"])
    assert sha512["coveredBy"] == ["goDebug"]  # cpu.sha512 is a key every Go consumer knows
    with_cpuid = _status(FeatureMask.from_names("arm64", ["fp", "asimd", "atomics", "cpuid"]), ["sve"])
    assert coverage_document("d", spec, with_cpuid)["channelCoverage"][0]["channels"][0] == "IDRegisters"
