"""Read Node Feature Discovery output: node labels, NodeFeature objects, and whole Node objects.

Two NFD facts shape this module (Node Feature Discovery's docs/usage/features.md and source/cpu/cpuid_*.go):
- labels (``feature.node.kubernetes.io/cpu-cpuid.<NAME>=true``) are *filtered*: by default NFD does not
  label BMI1, BMI2, CLMUL, CMOV, CX16, ... on x86, and its arm64 map stops at HWCAP bit 31 / HWCAP2 bit
  33. Features it cannot show are returned in ``unobserved`` (absent label != missing feature);
- NodeFeature objects carry the *unfiltered* flags in ``spec.features.flags["cpu.cpuid"].elements``.
On x86, ``cpu-cpuid.X86_64_V<n>=true`` implies the psABI level's features and is expanded.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from hwcap_operator.arch import ARCHES, Arch, UnknownArchError, normalize_arch
from hwcap_operator.features import catalog
from hwcap_operator.features.data_amd64 import NFD_DEFAULT_LABEL_DENYLIST, X86_64_LEVELS
from hwcap_operator.features.model import Feature
from hwcap_operator.features.result import FeatureParseError, FeatureSet, ParseIssue
from hwcap_operator.keys import NFD_CPUID_LABEL_PREFIX

ARCH_LABELS = ("kubernetes.io/arch", "beta.kubernetes.io/arch")
_LEVEL = re.compile(r"^X86_64_V([1-4])$")
#: NFD cpuid entries that are attributes or levels, not single features.
_ATTRIBUTE_NAMES = frozenset({"AVX10_VERSION"})
#: NFD cpuid names that sound like a catalog feature but mean something else: HTT is klauspost/cpuid's
#: "more than one thread per core" (nfd-worker v0.18.2 leaves it out on an SMT-less VM whose CPUID.1:EDX[28]
#: is set, tests/data/nfd), so it says nothing about the ``ht`` bit either way.
_NOT_THE_FEATURE = frozenset({"HTT"})
_NFD_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")
_X86_VENDORS = frozenset({"Intel", "AMD", "GenuineIntel", "AuthenticAMD", "Hygon", "HygonGenuine"})


def _level_features(level: int) -> list[Feature]:
    names = [n for i, lv in enumerate(X86_64_LEVELS.values(), start=1) if i <= level for n in lv]
    return [catalog.lookup("amd64", n) for n in names]


def _infer_arch(source: str, names: list[str]) -> Arch:
    """The single arch whose NFD vocabulary knows the most of ``names`` (ties are an error)."""
    if not names:
        raise FeatureParseError(source, "", "no cpu-cpuid features and no architecture given")
    scores = {a: sum(1 for n in names if catalog.by_nfd(a, n) or _LEVEL.match(n)) for a in ARCHES}
    best = max(scores.values())
    winners = [a for a, s in scores.items() if s == best]
    if best == 0 or len(winners) > 1:
        raise FeatureParseError(source, ",".join(sorted(names)[:5]),
                                "cannot tell the architecture from these NFD names; pass arch")
    return winners[0]


def _features_from_nfd_names(
    source: str, arch: Arch, names: list[str], errors: list[ParseIssue], *, filtered: bool
) -> FeatureSet:
    found: dict[str, Feature] = {}
    unknown: list[str] = []
    for n in names:
        lv = _LEVEL.match(n) if arch == "amd64" else None
        if lv:
            for f in _level_features(int(lv.group(1))):
                found.setdefault(f.name, f)
            continue
        if n in _ATTRIBUTE_NAMES or (arch == "amd64" and n in _NOT_THE_FEATURE):
            continue
        hit = catalog.by_nfd(arch, n)
        if hit is None:
            unknown.append(n)
        else:
            found.setdefault(hit.name, hit)
    unobserved = [f for f in catalog.features(arch) if f.nfd is None]
    if filtered and arch == "amd64":
        unobserved += [f for f in catalog.features(arch) if f.nfd in NFD_DEFAULT_LABEL_DENYLIST]
    order = catalog.catalog_order(arch)
    feats = tuple(sorted(found.values(), key=lambda f: order[f]))
    unobs = tuple(dict.fromkeys(f.name for f in sorted(unobserved, key=lambda f: order[f]) if f.name not in found))
    warnings: list[str] = []
    if unobs:
        what = "labels" if filtered else "NodeFeature flags"
        warnings.append(f"NFD {what} cannot show {len(unobs)} {arch} catalog features (see unobserved)")
    return FeatureSet(source, arch, feats, tuple(unknown), tuple(errors), tuple(warnings), unobs)


def parse_nfd_labels(labels: Mapping[str, Any], source: str = "<labels>", arch: str | None = None) -> FeatureSet:
    """Features from a node's labels (only ``cpu-cpuid.*`` keys matter; other labels are ignored).

    The arch comes from ``arch``, else the ``kubernetes.io/arch`` label, else the label names.
    A cpu-cpuid label whose value is not ``true`` is reported as an error naming the label.
    """
    if not isinstance(labels, Mapping):
        raise FeatureParseError(source, type(labels).__name__, "labels must be a mapping of strings")
    errors: list[ParseIssue] = []
    names: list[str] = []
    for key, value in labels.items():
        if not isinstance(key, str) or not key.startswith(NFD_CPUID_LABEL_PREFIX):
            continue
        name = key[len(NFD_CPUID_LABEL_PREFIX):]
        if not _NFD_NAME.match(name):
            errors.append(ParseIssue(source, key, "malformed NFD cpuid label name"))
            continue
        if name in _ATTRIBUTE_NAMES:
            if not str(value).isdigit():
                errors.append(ParseIssue(source, f"{key}={value}", "malformed NFD label value (expected a number)"))
            continue
        if value is True or value == "true":
            names.append(name)
        else:
            errors.append(ParseIssue(source, f"{key}={value}", "malformed NFD label value (NFD writes 'true')"))
    a = _arch_from(source, arch, labels, names)
    return _features_from_nfd_names(source, a, names, errors, filtered=True)


def _arch_from(source: str, arch: str | None, labels: Mapping[str, Any], names: list[str]) -> Arch:
    given = arch
    if given is None:
        given = next((str(labels[k]) for k in ARCH_LABELS if k in labels), None)
    if given is None:
        return _infer_arch(source, names)
    try:
        return normalize_arch(given)
    except UnknownArchError as e:
        raise FeatureParseError(source, given, "unknown architecture") from e


def _dig(source: str, obj: Any, path: tuple[str, ...]) -> Any:
    cur = obj
    for i, p in enumerate(path):
        if not isinstance(cur, Mapping) or p not in cur:
            raise FeatureParseError(source, ".".join(path[: i + 1]), "missing field")
        cur = cur[p]
    return cur


def _expect_kind(source: str, obj: object, kind: str) -> None:
    """A Kubernetes object of ``kind`` (or without a kind): anything else is named in the error, not crashed on."""
    if not isinstance(obj, Mapping):
        raise FeatureParseError(source, type(obj).__name__, f"a {kind} must be a mapping")
    found = obj.get("kind")
    if found is not None and found != kind:
        raise FeatureParseError(source, str(found), f"expected kind {kind}")


def parse_node_feature(obj: Mapping[str, Any], source: str = "<NodeFeature>", arch: str | None = None) -> FeatureSet:
    """Features from an NFD ``NodeFeature`` object (dict as returned by the API), unfiltered flags.

    The arch comes from ``arch``, else the object's labels, else ``cpu.model`` vendor, else the names.
    """
    _expect_kind(source, obj, "NodeFeature")
    elements = _dig(source, obj, ("spec", "features", "flags", "cpu.cpuid", "elements"))
    if not isinstance(elements, Mapping):
        raise FeatureParseError(source, "spec.features.flags.cpu.cpuid.elements", "must be a mapping")
    errors: list[ParseIssue] = []
    names: list[str] = []
    for n in elements:
        if isinstance(n, str) and _NFD_NAME.match(n):
            names.append(n)
        else:
            errors.append(ParseIssue(source, str(n), "malformed NFD cpuid flag name"))
    labels = obj.get("metadata", {}).get("labels") or {}
    if arch is None and not any(k in labels for k in ARCH_LABELS):
        model = obj.get("spec", {}).get("features", {}).get("attributes", {}).get("cpu.model", {})
        vendor = (model.get("elements") or {}).get("vendor_id") if isinstance(model, Mapping) else None
        if vendor in _X86_VENDORS:
            arch = "amd64"
    a = _arch_from(source, arch, labels, names)
    return _features_from_nfd_names(source, a, names, errors, filtered=False)


def parse_node(obj: Mapping[str, Any], source: str = "<Node>", arch: str | None = None) -> FeatureSet:
    """Features from a Kubernetes ``Node`` object via its NFD labels.

    The arch comes from ``arch``, the ``kubernetes.io/arch`` label or ``status.nodeInfo.architecture``.
    """
    _expect_kind(source, obj, "Node")
    meta = obj.get("metadata")
    if not isinstance(meta, Mapping):
        raise FeatureParseError(source, "metadata", "missing field")
    labels = meta.get("labels") or {}
    if arch is None and not any(k in labels for k in ARCH_LABELS):
        arch = (obj.get("status") or {}).get("nodeInfo", {}).get("architecture")
    name = meta.get("name")
    return parse_nfd_labels(labels, f"{source} (node {name})" if name else source, arch)
