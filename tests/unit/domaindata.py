"""Nodes and domain specs for the MigrationDomain policy tests, built from the real dumps in tests/data/profiles.

Nodes are built the way the cluster builds them: a Node object from a dump (devcluster.nodes, with NFD
labels or not), the node agent's annotations (its own formatting function), an NFD NodeFeature object;
then the code under test (``domain.nodes.node_features``) reads them. Expected feature sets come from
``tests.support.profiles.raw_feature_words`` (the dump's Features line, split by whitespace), never from the parsers.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.support.profiles import PROFILES_DIR

from hwcap_dev.devcluster.simulated_nodes import load_profile, node_feature_manifest, node_manifest
from hwcap_operator import keys
from hwcap_operator.agent.report import format_words
from hwcap_operator.domain import api
from hwcap_operator.domain.node_features import NodeFeatures, node_features
from hwcap_operator.mask import FeatureMask

G1 = "arm64-aws-graviton1-cortex-a72.txt"
G2 = "arm64-aws-graviton2-neoverse-n1.txt"
G3 = "arm64-aws-graviton3-neoverse-v1.txt"
G4 = "arm64-aws-graviton4-neoverse-v2.txt"
ALTRA = "arm64-ampere-altra-neoverse-n1.txt"
ZEN2 = "x86_64-amd-zen2-rome-epyc7742.txt"
SKYLAKE = "x86_64-intel-skylake-sp-gold6132.txt"

#: The security features named in issue 2 (cpuinfo spelling) — an expectation independent of the catalog.
ARM64_SECURITY = frozenset(
    {"paca", "pacg", "gcs", "bti", "mte", "mte3", "mtefar", "mtestoreonly", "poe", "ssbs", "sb", "dit"}
)

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def at(minutes: int) -> datetime:
    """A fixed point in time, ``minutes`` after T0 (evaluations are given their clock)."""
    return T0 + timedelta(minutes=minutes)


def node_object(
    name: str,
    dump: str,
    *,
    labels: dict[str, str] | None = None,
    agent: bool = True,
    nfd_labels: bool = False,
    inheritance: str = "supported",
    release: str = "6.12.57",
) -> dict[str, Any]:
    """A Node object for ``dump``: agent annotations (AT_HWCAP* words of the dump) and/or NFD labels."""
    profile = load_profile(PROFILES_DIR / dump)
    manifest = node_manifest(name, profile, labels=labels, nfd=nfd_labels)
    if agent:
        words = FeatureMask.from_features(profile.arch, profile.features).hwcap
        manifest["metadata"]["annotations"] = {
            keys.AGENT_HWCAP_ANNOTATION: format_words(words),
            keys.AGENT_INHERITANCE_ANNOTATION: inheritance,
            keys.AGENT_KERNEL_RELEASE_ANNOTATION: release,
        }
    return manifest


def node(name: str, dump: str, **kwargs: Any) -> NodeFeatures:
    """NodeFeatures of a node built from ``dump`` (see :func:`node_object`)."""
    with_node_feature = kwargs.pop("node_feature", False)
    manifest = node_object(name, dump, **kwargs)
    feature = None
    if with_node_feature:
        feature = node_feature_manifest(name, load_profile(PROFILES_DIR / dump), "node-feature-discovery")
    return node_features(manifest, feature)


def spec(arch: str = "arm64", **fields: Any) -> api.MigrationDomainSpec:
    """A domain spec: everything in the namespace ``apps``, plus ``fields`` (wire spelling)."""
    document: dict[str, Any] = {
        "arch": arch,
        "workloads": {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "apps"}}},
    }
    document.update(fields)
    return api.MigrationDomainSpec.model_validate(document)


def roundtrip(status: api.MigrationDomainStatus) -> api.MigrationDomainStatus:
    """What the next operator process reads back from the apiserver: the wire form, re-parsed."""
    return api.MigrationDomainStatus.model_validate(status.to_wire())


def condition(status: api.MigrationDomainStatus, kind: str) -> api.Condition:
    (found,) = [c for c in status.conditions if c.type == kind]
    return found
