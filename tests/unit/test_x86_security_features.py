"""x86 features whose loss weakens a process (AES-NI, PCLMULQDQ, SHA-NI, RDRAND, RDSEED): hiding them is refused
unless ``allowHidingSecurityFeatures``, as for pointer authentication on arm64."""

from __future__ import annotations

from pathlib import Path

import yaml
from domaindata import at, condition, node, spec

from hwcap_operator.domain.api import MigrationDomainSpec
from hwcap_operator.domain.policy import evaluate

ZEN2 = "x86_64-amd-zen2-rome-epyc7742.txt"
SKYLAKE = "x86_64-intel-skylake-sp-gold6132.txt"
POOL = {"example.com/pool": "x86-general"}  # the example's nodeSelector
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "x86-preset-fallbacks.yaml"


def test_a_psabi_level_without_aes_ni_is_refused_on_machines_that_have_it() -> None:
    domain = spec("amd64", baseline={"mode": "Preset", "preset": "x86-64-v2"})
    state = evaluate(domain, [node("rome", ZEN2, node_feature=True)], None, 1, now=at(0))
    assert state.mask is None
    valid = condition(state.status, "MaskValid")
    assert valid.reason == "SecurityFeatureHidden"
    assert all(name in valid.message for name in ("aes", "pclmulqdq", "rdrand", "rdseed", "sha_ni"))
    allowed = spec("amd64", baseline={"mode": "Preset", "preset": "x86-64-v2"}, allowHidingSecurityFeatures=True)
    ok = evaluate(allowed, [node("rome", ZEN2, node_feature=True)], None, 1, now=at(0))
    assert ok.mask is not None and {"aes", "sha_ni"} <= set(ok.dropped)


def test_x86_64_v3_keeps_aes_ni_and_hides_only_what_haswell_lacks() -> None:
    skylake = [node("skylake", SKYLAKE, node_feature=True)]  # Skylake-SP: RDSEED, no SHA-NI
    refused = evaluate(spec("amd64", baseline={"mode": "Preset", "preset": "x86-64-v3"}), skylake, None, 1, now=at(0))
    assert refused.mask is None and "rdseed" in condition(refused.status, "MaskValid").message
    domain = spec("amd64", baseline={"mode": "Preset", "preset": "x86-64-v3"}, allowHidingSecurityFeatures=True)
    state = evaluate(domain, skylake, None, 1, now=at(0))
    assert state.mask is not None, condition(state.status, "MaskValid")
    assert {"aes", "pclmulqdq", "rdrand"} <= set(state.mask.names())
    assert "rdseed" in state.dropped  # Haswell has no RDSEED: v3 cannot promise it


def test_the_demo_x86_domain_hides_no_security_feature_of_its_pool() -> None:
    document = yaml.safe_load(EXAMPLE.read_text())
    domain = MigrationDomainSpec.model_validate(document["spec"])
    dumps = {"zen3": "x86_64-amd-zen3-milan-epyc7763-azure-vm.txt",
             "icelake": "x86_64-intel-icelake-sp-platinum8370c-azure-vm.txt"}  # fmt: skip
    pool = [node(name, dump, node_feature=True, labels=POOL) for name, dump in dumps.items()]
    state = evaluate(domain, pool, None, 1, now=at(0))
    assert state.mask is not None and {"aes", "sha_ni", "rdseed"} <= set(state.mask.names())
    assert "avx512f" in state.dropped  # the zen3 member has no AVX-512: the fallbacks hide it from the others


def test_status_names_the_dropped_features_no_enabled_fallback_covers() -> None:
    pool = [node("zen4", "x86_64-amd-zen4-genoa-epyc9654.txt", node_feature=True, labels=POOL),
            node("zen3", "x86_64-amd-zen3-milan-epyc7763-azure-vm.txt", node_feature=True, labels=POOL)]  # fmt: skip
    base = {"arch": "amd64", "nodeSelector": {"matchLabels": POOL}, "workloads": {"namespaceSelector": {}}}
    go_only = MigrationDomainSpec.model_validate({**base, "enforcement": {"userspaceFallbacks": ["goDebug"]}})
    state = evaluate(go_only, pool, None, 1, now=at(0))
    status = state.status
    assert "avx512f" in status.fallback_only_features and "avx512f" not in status.uncovered_features  # cpu.avx512f
    assert {"avx512cd", "avx512_bf16"} <= set(status.uncovered_features)  # no key every Go knows
    everything = MigrationDomainSpec.model_validate({**base, "enforcement": {"userspaceFallbacks": [
        "glibcTunables", "goDebug", "opensslIa32cap", "javaToolOptions", "numpyCpuFeatures"]}})  # fmt: skip
    covered = evaluate(everything, pool, None, 1, now=at(0)).status
    assert "avx512cd" not in covered.uncovered_features and "avx512_bf16" not in covered.uncovered_features
    assert set(covered.uncovered_features) < set(status.uncovered_features)
