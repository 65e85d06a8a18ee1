"""Read any node description a user hands us (a file's text) and dispatch to the right parser.

Accepted: /proc/cpuinfo or lscpu text; a Kubernetes Node or NFD NodeFeature object (YAML or JSON,
also inside a ``List``); a YAML/JSON mapping of labels; ``key=value`` label lines. cpuinfo text is
itself valid YAML ("key: value"), so structured input is only assumed when it looks like Kubernetes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

from hwcap_operator.features.cpuinfo import parse_cpuinfo
from hwcap_operator.features.nfd import parse_nfd_labels, parse_node, parse_node_feature
from hwcap_operator.features.result import FeatureParseError, FeatureSet
from hwcap_operator.keys import NFD_CPUID_LABEL_PREFIX

_LABEL_HINT = "feature.node.kubernetes.io/"


def _label_lines(text: str) -> dict[str, str] | None:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines or not all("=" in ln and ":" not in ln.partition("=")[0] for ln in lines):
        return None
    if not any(ln.startswith(_LABEL_HINT) or ln.startswith("kubernetes.io/") for ln in lines):
        return None
    return dict(ln.split("=", 1) for ln in lines)


def parse_document(text: str, source: str = "<input>", arch: str | None = None) -> FeatureSet:
    """Parse ``text`` (a file's content; ``source`` names it in messages) into a FeatureSet."""
    labels = _label_lines(text)
    if labels is not None:
        return parse_nfd_labels(labels, source, arch)
    doc: Any = None
    if text.lstrip().startswith(("{", "apiVersion", "kind", "metadata", "---", "items")) or _LABEL_HINT in text:
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise FeatureParseError(source, str(e).splitlines()[0], "not valid YAML/JSON") from e
    if isinstance(doc, Mapping):
        return parse_object(doc, source, arch)
    return parse_cpuinfo(text, source, arch)


def parse_object(doc: Mapping[str, Any], source: str = "<object>", arch: str | None = None) -> FeatureSet:
    """Dispatch an already-loaded mapping: Node, NodeFeature, a one-item List, or a label mapping."""
    kind = doc.get("kind")
    if kind == "Node":
        return parse_node(doc, source, arch)
    if kind == "NodeFeature":
        return parse_node_feature(doc, source, arch)
    if kind == "List" or (kind is None and "items" in doc):
        items = doc.get("items") or []
        if len(items) != 1 or not isinstance(items[0], Mapping):
            raise FeatureParseError(source, f"{len(items)} items", "expected exactly one object in the list")
        return parse_object(items[0], source, arch)
    if kind is None and any(isinstance(k, str) and k.startswith(NFD_CPUID_LABEL_PREFIX) for k in doc):
        return parse_nfd_labels(doc, source, arch)
    if kind is None and isinstance(doc.get("metadata"), Mapping):
        return parse_node(doc, source, arch)
    raise FeatureParseError(source, str(kind), "unsupported object (expected Node, NodeFeature or labels)")
