"""status.channelCoverage: per dropped feature, the channels that still reveal it and the domain's fallbacks that
cover it, grouped so the status does not grow with the pool. Expected channels come from what each arch offers
a process (x86: CPUID is not trapped; arm64: MRS is emulated, MIDR names the core; /proc/cpuinfo everywhere),
and the HWCAP_CPUID state from the published mask itself."""

from __future__ import annotations

import json

from domaindata import G2, G3, at, node, roundtrip, spec

from hwcap_operator.domain.policy import evaluate

ZEN4 = "x86_64-amd-zen4-genoa-epyc9654.txt"
ZEN3 = "x86_64-amd-zen3-milan-epyc7763-azure-vm.txt"


def _group_of(status: object, feature: str) -> dict[str, list[str]]:
    wire = roundtrip(status).to_wire()  # type: ignore[arg-type]
    return next(g for g in wire["channelCoverage"] if feature in g["features"])


def test_x86_dropped_features_stay_visible_through_cpuid_and_show_their_fallbacks() -> None:
    pool = [node("zen4", ZEN4, node_feature=True), node("zen3", ZEN3, node_feature=True)]
    domain = spec("amd64", enforcement={"userspaceFallbacks": ["glibcTunables", "goDebug"]})
    status = evaluate(domain, pool, None, 1, now=at(0)).status
    avx512f = _group_of(status, "avx512f")  # Zen 4 has AVX-512, Zen 3 has not
    assert avx512f["channels"] == ["CPUID", "ProcCpuinfo"]
    assert avx512f["coveredBy"] == ["glibcTunables", "goDebug"]  # glibc's AVX512F name, Go's cpu.avx512f
    grouped = [f for g in roundtrip(status).to_wire()["channelCoverage"] for f in g["features"]]
    assert sorted(grouped) == sorted(status.dropped_features)  # every dropped feature, once


def test_arm64_mask_that_clears_hwcap_cpuid_marks_the_id_registers_unadvertised() -> None:
    """Graviton3 with Graviton2: the mask hides SVE & co. With HWCAP_CPUID cleared MRS is only read by software
    that ignores the kernel's rule; MIDR and /proc/cpuinfo still tell."""
    pool = [node("g3", G3), node("g2", G2)]
    cleared = spec(allowHidingSecurityFeatures=True, enforcement={"idRegisterAccess": "Clear"})
    status = evaluate(cleared, pool, None, 1, now=at(0)).status
    assert status.mask is not None and "cpuid" not in status.mask.features
    assert _group_of(status, "sve")["channels"] == ["IDRegistersUnadvertised", "MIDR", "ProcCpuinfo"]
    kept = evaluate(spec(allowHidingSecurityFeatures=True, enforcement={"idRegisterAccess": "Keep"}), pool, None, 1,
                    now=at(0)).status  # fmt: skip
    assert _group_of(kept, "sve")["channels"][0] == "IDRegisters"
    assert not _group_of(kept, "sve").get("coveredBy")  # no fallback enabled


def test_status_size_does_not_grow_with_the_pool() -> None:
    few = [node("zen4-0", ZEN4, node_feature=True), node("zen3-0", ZEN3, node_feature=True)]
    many = few + [node(f"zen4-{i}", ZEN4, node_feature=True) for i in range(1, 40)]
    domain = spec("amd64", enforcement={"userspaceFallbacks": ["goDebug"]})
    small = evaluate(domain, few, None, 1, now=at(0)).status.to_wire()["channelCoverage"]
    large = evaluate(domain, many, None, 1, now=at(0)).status.to_wire()["channelCoverage"]
    assert small == large and len(json.dumps(large)) < 4096
