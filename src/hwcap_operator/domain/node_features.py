"""One node's CPU features as the domain policy sees them, merged from up to three sources.

Sources and precedence (first usable one wins, per part of the mask):

1. HWCAP words: the node agent's ``agent.hwcap.dev/hwcap`` annotation (the kernel's AT_HWCAP* words read
   from /proc/self/auxv) is ground truth: it covers HWCAP2/HWCAP3 bits NFD has no label for, and NFD on
   arm64 reads ``getauxval`` of its own process, which a mask reaching it would shrink.
   Without the agent, the words come from the NFD ``NodeFeature`` (unfiltered flags), then NFD labels.
2. x86 CPUID-only flags (no HWCAP carries them, the agent cannot see them): ``NodeFeature`` flags first,
   then labels (NFD's default label filter hides CMOV, CX16, POPCNT, ... so labels can only under-report).
3. Kernel inheritance support and release: the agent's annotations; the release falls back to
   ``status.nodeInfo.kernelVersion``; inheritance is ``unknown`` without the agent.

When the agent and NFD disagree on a bit NFD can observe, the agent wins and the disagreement is kept as
a warning (the reconciler turns it into an Event). Malformed data in a source that is used (a bad hex
word, an unknown inheritance value, an unknown arch, a non-``true`` NFD label) is an *error*: the policy
excludes the node with the reason instead of guessing. Feature names the catalog does not know are kept
in ``unknown_features`` and reported; they cannot be in a mask, so they never make one unsafe.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, cast, get_args

from hwcap_operator import keys
from hwcap_operator.arch import Arch, UnknownArchError, normalize_arch
from hwcap_operator.features import catalog
from hwcap_operator.features.model import KERNEL_HWCAP_WORDS, N_WORDS, WORD_BITS
from hwcap_operator.features.nfd import parse_nfd_labels, parse_node_feature
from hwcap_operator.features.result import FeatureParseError, FeatureSet
from hwcap_operator.mask import FeatureMask

Source = Literal["agent", "nfd-nodefeature", "nfd-labels"]
KernelInheritance = Literal["supported", "unsupported", "unknown"]
ARCH_LABEL = "kubernetes.io/arch"


@dataclass(frozen=True, slots=True)
class NodeFeatures:
    """What the policy needs of one node: identity, labels, features, and how far to trust them.

    ``mask`` is None when no source gave usable features; ``source`` names where the HWCAP words came
    from. ``unobserved`` holds catalog features no source of this node can report either way (absent
    there does not mean missing): a node lacks a feature only if a source that could see it says so.
    """

    name: str
    arch: Arch | None
    labels: Mapping[str, str]
    mask: FeatureMask | None
    source: Source | None
    kernel_inheritance: KernelInheritance = "unknown"
    kernel_release: str | None = None
    #: arm64 ID-register overrides its kernel booted with (agent annotation; docs/kernel.md#idreg-override)
    idreg_overrides: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()
    unknown_features: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    unobserved: frozenset[str] = field(default_factory=frozenset)
    #: ``mask`` plus ``unobserved``: what the node may have. Membership asks this ("does it lack a feature
    #: of the mask?"); fallbacks and security checks use ``mask`` (only what a source saw).
    possible: FeatureMask | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.possible is None and self.mask is not None:
            extra = FeatureMask.from_names(self.mask.arch, self.unobserved) if self.unobserved else None
            object.__setattr__(self, "possible", self.mask | extra if extra is not None else self.mask)

    def lacks(self, mask: FeatureMask) -> FeatureMask:
        """The features of ``mask`` this node lacks: not seen by any source that could have seen them."""
        return mask - (self.possible if self.possible is not None else FeatureMask.empty(mask.arch))

    @property
    def usable(self) -> bool:
        """A node the policy may consider for membership."""
        return not self.errors and self.mask is not None and self.arch is not None


def parse_agent_words(text: str) -> tuple[int, int, int, int]:
    """``0x..,0x..[,..]`` → four words (missing trailing words are 0). ValueError names the bad token."""
    parts = [p.strip() for p in text.split(",")]
    if not 1 <= len(parts) <= N_WORDS:
        raise ValueError(f"expected 1 to {N_WORDS} comma-separated hex words, got {len(parts)}")
    words: list[int] = []
    for part in parts:
        if not part.lower().startswith("0x"):
            raise ValueError(f"word {part!r} is not 0x-prefixed hex")
        try:
            value = int(part, 16)
        except ValueError:
            raise ValueError(f"word {part!r} is not hex") from None
        if not 0 <= value < 1 << WORD_BITS:
            raise ValueError(f"word {part!r} does not fit in 64 bits")
        words.append(value)
    words += [0] * (N_WORDS - len(words))
    return words[0], words[1], words[2], words[3]


def _words_of_arch(words: tuple[int, int, int, int], arch: Arch) -> tuple[int, int, int, int]:
    """``words`` if every set bit lies in a word ``arch``'s kernel defines (docs/kernel.md#hwcap-words-per-arch).

    A bit in AT_HWCAP4 on arm64 cannot come from a real auxv: the report is corrupt, so the node is excluded
    (ValueError) rather than letting one bad report make the exec model refuse the whole domain's mask. Unknown
    bits inside a defined word stay allowed (a kernel newer than the catalog); they become ``unknown_features``.
    """
    count = KERNEL_HWCAP_WORDS[arch]
    extra = [f"AT_HWCAP{i + 1}={w:#x}" for i, w in enumerate(words) if i >= count and w]
    if extra:
        raise ValueError(f"{', '.join(extra)} set, but {arch} kernels define only {count} HWCAP word(s)")
    return words


def _node_arch(node: Mapping[str, Any], labels: Mapping[str, str], errors: list[str]) -> Arch | None:
    raw = labels.get(ARCH_LABEL) or ((node.get("status") or {}).get("nodeInfo") or {}).get("architecture")
    if not raw:
        errors.append(f"no {ARCH_LABEL} label and no status.nodeInfo.architecture")
        return None
    try:
        return normalize_arch(str(raw))
    except UnknownArchError:
        errors.append(f"unknown architecture {raw!r} (label {ARCH_LABEL})")
        return None


def _nfd(
    node_feature: Mapping[str, Any] | None, labels: Mapping[str, str], arch: Arch
) -> tuple[FeatureSet | None, Source | None, list[str]]:
    """The best NFD reading (NodeFeature, else labels) and the errors of a source that could not be read."""
    problems: list[str] = []
    if node_feature is not None:
        try:
            return parse_node_feature(node_feature, "NodeFeature", arch=arch), "nfd-nodefeature", problems
        except FeatureParseError as err:
            problems.append(str(err))
    if any(k.startswith(keys.NFD_CPUID_LABEL_PREFIX) for k in labels):
        try:
            return parse_nfd_labels(labels, "NFD labels", arch=arch), "nfd-labels", problems
        except FeatureParseError as err:
            problems.append(str(err))
    return None, None, problems


def _disagreement(agent: FeatureMask, nfd: FeatureSet, source: Source) -> str | None:
    """Bits NFD can observe on which it and the agent differ, as a readable sentence (or None)."""
    observable = FeatureMask.from_features(
        nfd.arch, [f for f in catalog.features(nfd.arch) if f.in_hwcap and f.name not in set(nfd.unobserved)]
    )
    nfd_words = FeatureMask(nfd.arch, nfd.mask.hwcap) & observable
    agent_words = FeatureMask(agent.arch, agent.hwcap) & observable
    only_agent, only_nfd = agent_words - nfd_words, nfd_words - agent_words
    if only_agent.is_empty and only_nfd.is_empty:
        return None
    parts = []
    if not only_agent.is_empty:
        parts.append(f"only the agent reports {', '.join(only_agent.names())}")
    if not only_nfd.is_empty:
        parts.append(f"only {source} reports {', '.join(only_nfd.names())}")
    return f"agent and {source} disagree ({'; '.join(parts)}); the agent's auxv words win"


def node_features(node: Mapping[str, Any], node_feature: Mapping[str, Any] | None = None) -> NodeFeatures:
    """Build :class:`NodeFeatures` from a Node object (dict), its NFD NodeFeature (if any) and agent annotations.

    Never raises on bad data: every problem is named in ``errors`` or ``warnings`` (see module doc).
    """
    meta = node.get("metadata") or {}
    name = str(meta.get("name") or "<unnamed>")
    labels: dict[str, str] = {str(k): str(v) for k, v in (meta.get("labels") or {}).items()}
    annotations: Mapping[str, Any] = meta.get("annotations") or {}
    errors: list[str] = []
    warnings: list[str] = []
    arch = _node_arch(node, labels, errors)

    inheritance: KernelInheritance = "unknown"
    raw_inheritance = annotations.get(keys.AGENT_INHERITANCE_ANNOTATION)
    if raw_inheritance is not None:
        if raw_inheritance in get_args(KernelInheritance):
            inheritance = cast(KernelInheritance, raw_inheritance)
        else:
            errors.append(
                f"annotation {keys.AGENT_INHERITANCE_ANNOTATION}={raw_inheritance!r}: unknown value "
                f"(expected {'|'.join(get_args(KernelInheritance))})"
            )
    release = annotations.get(keys.AGENT_KERNEL_RELEASE_ANNOTATION) or (
        (node.get("status") or {}).get("nodeInfo") or {}
    ).get("kernelVersion")

    def result(mask: FeatureMask | None, source: Source | None, **extra: Any) -> NodeFeatures:
        return NodeFeatures(
            name=name,
            arch=arch,
            labels=labels,
            mask=mask,
            source=source,
            kernel_inheritance=inheritance,
            kernel_release=str(release) if release else None,
            idreg_overrides=tuple(str(annotations.get(keys.AGENT_IDREG_OVERRIDES_ANNOTATION) or "").split()),
            errors=tuple(errors),
            warnings=tuple(warnings),
            **extra,
        )

    if arch is None:
        return result(None, None)

    agent_words: tuple[int, int, int, int] | None = None
    raw_words = annotations.get(keys.AGENT_HWCAP_ANNOTATION)
    if raw_words is not None:
        try:
            agent_words = _words_of_arch(parse_agent_words(str(raw_words)), arch)
        except ValueError as err:
            errors.append(f"annotation {keys.AGENT_HWCAP_ANNOTATION}={raw_words!r}: {err}")

    nfd, nfd_source, nfd_problems = _nfd(node_feature, labels, arch)
    if nfd is not None and nfd.arch != arch:
        errors.append(f"{nfd_source} say {nfd.arch} but the node is {arch}")
        nfd = None
    if agent_words is None and raw_words is None and nfd is None:
        errors.extend(nfd_problems or ["no feature source: no agent annotation, no NodeFeature, no NFD labels"])
        return result(None, None)
    warnings.extend(nfd_problems)

    if agent_words is not None:
        cpuid = nfd.mask.cpuid if nfd is not None else frozenset[str]()
        if arch == "amd64" and nfd is None:
            errors.append("x86 CPUID flags unknown: the agent sees only HWCAP words and NFD data is missing")
        mask = FeatureMask(arch, agent_words, cpuid)
        if nfd is not None and nfd_source is not None:
            warnings.extend(f"{nfd_source}: {issue}" for issue in nfd.errors)
            disagreement = _disagreement(mask, nfd, nfd_source)
            if disagreement:
                warnings.append(disagreement)
        unknown = tuple(mask.unknown_names()) + (nfd.unknown if nfd is not None else ())
        # the agent observes every HWCAP bit; what NFD cannot show is unobserved only among the CPUID-only ones
        unobserved = (
            frozenset(n for n in nfd.unobserved if not catalog.lookup(arch, n).in_hwcap)
            if arch == "amd64" and nfd is not None
            else frozenset[str]()
        )
        return result(mask, "agent", unknown_features=unknown, unobserved=unobserved)
    if nfd is None or nfd_source is None:  # the agent's words were malformed and no NFD data exists
        return result(None, None)
    errors.extend(str(issue) for issue in nfd.errors)
    return result(nfd.mask, nfd_source, unknown_features=nfd.unknown, unobserved=frozenset(nfd.unobserved))
