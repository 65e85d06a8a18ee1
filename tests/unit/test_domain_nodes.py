"""NodeFeatures from Node objects, NFD NodeFeature objects and agent annotations: precedence and bad data."""

from __future__ import annotations

import pytest
from domaindata import G2, G3, G4, ZEN2, node, node_object
from tests.support.profiles import PROFILES_DIR, raw_feature_words

from hwcap_dev.devcluster.simulated_nodes import load_profile, nfd_labels, node_feature_manifest
from hwcap_operator import keys
from hwcap_operator.domain.node_features import node_features, parse_agent_words


def test_agent_words_are_ground_truth_when_nfd_labels_disagree() -> None:
    manifest = node_object("n", G3)
    manifest["metadata"]["labels"].update(nfd_labels(load_profile(PROFILES_DIR / G2)))  # a stale or masked NFD
    features = node_features(manifest)
    assert features.source == "agent" and features.usable
    assert features.mask is not None and set(features.mask.names()) == raw_feature_words(G3)
    (warning,) = features.warnings
    assert "disagree" in warning and "paca" in warning and "nfd-labels" in warning
    assert features.kernel_inheritance == "supported" and features.kernel_release == "6.12.57"


def test_agent_alone_and_nfd_labels_alone_read_the_same_graviton4() -> None:
    from_agent = node("a", G4)
    from_labels = node("l", G4, agent=False, nfd_labels=True)
    assert (from_agent.source, from_labels.source) == ("agent", "nfd-labels")
    assert from_agent.mask == from_labels.mask
    assert from_agent.mask is not None and set(from_agent.mask.names()) == raw_feature_words(G4)
    assert from_labels.kernel_inheritance == "unknown", "only the agent can say"
    assert from_agent.warnings == () and from_agent.errors == ()


def test_node_feature_flags_beat_filtered_labels_on_x86() -> None:
    both = node("zen2", ZEN2, agent=False, nfd_labels=True, node_feature=True)
    labels_only = node("zen2", ZEN2, agent=False, nfd_labels=True)
    assert both.source == "nfd-nodefeature" and labels_only.source == "nfd-labels"
    assert both.mask is not None and labels_only.mask is not None
    for flag in ("cmov", "popcnt", "bmi1"):  # in the dump, hidden by NFD's default label denylist
        assert flag in raw_feature_words(ZEN2)
        assert flag in both.mask and flag not in labels_only.mask
        assert flag in labels_only.unobserved


def test_x86_agent_words_take_cpuid_flags_from_nfd() -> None:
    with_nfd = node("zen2", ZEN2, node_feature=True)
    assert with_nfd.source == "agent" and with_nfd.usable
    assert with_nfd.warnings == (), "the agent and NFD agree on every bit NFD can show"
    assert with_nfd.mask is not None and "avx2" in with_nfd.mask.cpuid and "cmov" in with_nfd.mask
    alone = node("zen2", ZEN2)
    assert not alone.usable and "CPUID flags unknown" in alone.errors[0]


def test_unknown_nfd_flags_are_kept_and_reported_without_excluding_the_node() -> None:
    feature = node_feature_manifest("zen2", load_profile(PROFILES_DIR / ZEN2), "node-feature-discovery")
    feature["spec"]["features"]["flags"]["cpu.cpuid"]["elements"]["QUANTUMLEAP"] = {}
    features = node_features(node_object("zen2", ZEN2, agent=False), feature)
    assert features.usable and "QUANTUMLEAP" in features.unknown_features


@pytest.mark.parametrize(
    ("annotation", "value", "needle"),
    [
        (keys.AGENT_HWCAP_ANNOTATION, "0x1,zz", "'zz'"),
        (keys.AGENT_HWCAP_ANNOTATION, "0x1,0x2,0x3,0x4,0x5", "1 to 4"),
        (keys.AGENT_HWCAP_ANNOTATION, "0x1ffffffffffffffff", "64 bits"),
        (keys.AGENT_INHERITANCE_ANNOTATION, "maybe", "'maybe'"),
        (keys.AGENT_HWCAP_ANNOTATION, "0x0,0x0,0x0,0x1", "AT_HWCAP4=0x1"),  # arm64 defines 3 words (fuzzing)
    ],
)
def test_malformed_agent_annotations_are_errors_naming_key_and_value(annotation: str, value: str, needle: str) -> None:
    manifest = node_object("n", G3, nfd_labels=True)
    manifest["metadata"]["annotations"][annotation] = value
    features = node_features(manifest)
    assert not features.usable
    assert any(annotation in e and needle in e for e in features.errors), features.errors


def test_a_malformed_nfd_label_is_an_error_only_when_labels_are_the_source() -> None:
    labelled = node_object("n", G3, agent=False, nfd_labels=True)
    labelled["metadata"]["labels"][keys.NFD_CPUID_LABEL_PREFIX + "SVE"] = "yes"
    bad = node_features(labelled)
    assert not bad.usable and any("SVE=yes" in e for e in bad.errors)
    with_agent = node_object("n", G3, nfd_labels=True)
    with_agent["metadata"]["labels"][keys.NFD_CPUID_LABEL_PREFIX + "SVE"] = "yes"
    good = node_features(with_agent)
    assert good.usable and any("SVE=yes" in w for w in good.warnings)


def test_nodes_without_arch_or_any_source_are_errors() -> None:
    bare = {"metadata": {"name": "bare", "labels": {"kubernetes.io/arch": "arm64"}}}
    assert "no feature source" in node_features(bare).errors[0]
    odd = {"metadata": {"name": "odd", "labels": {"kubernetes.io/arch": "sparc64"}}}
    assert "'sparc64'" in node_features(odd).errors[0]
    from_status = node_object("s", G3)
    del from_status["metadata"]["labels"]["kubernetes.io/arch"]
    from_status["status"] = {"nodeInfo": {"architecture": "arm64", "kernelVersion": "6.1.0"}}
    features = node_features(from_status)
    assert features.arch == "arm64" and features.usable


def test_kernel_release_falls_back_to_node_info() -> None:
    manifest = node_object("n", G3, agent=False, nfd_labels=True)
    manifest["status"] = {"nodeInfo": {"kernelVersion": "6.1.0-13-arm64"}}
    assert node_features(manifest).kernel_release == "6.1.0-13-arm64"


@pytest.mark.parametrize(
    ("text", "words"),
    [("0x1", (1, 0, 0, 0)), ("0x0,0x2,0x3", (0, 2, 3, 0)), (" 0xff , 0x1 ,0x0,0x0", (255, 1, 0, 0))],
)
def test_agent_word_format(text: str, words: tuple[int, int, int, int]) -> None:
    assert parse_agent_words(text) == words
