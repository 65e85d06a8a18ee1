"""Coverage of a dropped feature: which channels still reveal it, which fallbacks hide it from which runtime.

A HWCAP mask changes the auxv words and nothing else. A process can still learn of a dropped feature
through the CPUID instruction (x86: no HWCAP word carries most features, and CPUID is not trapped unless the
kernel enables CPUID faulting, which nothing here does), the ID registers (arm64: MRS is emulated by the kernel
and reports the sanitised system-wide values, docs/kernel.md#objection-id-registers; while the mask advertises
HWCAP_CPUID software following the kernel's rule reads them, without it only software ignoring the rule does),
MIDR (arm64: the core's part number names its features) and /proc/cpuinfo (the node's features, not the mask).
Only a runtime that reads a knob the webhook sets is kept off a feature on those channels; the rest is listed
as uncovered, runtime by runtime. :func:`channel_groups` folds a domain's dropped features into the few groups
its status carries (per distinct channels and covering fallbacks, never per node).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import cast

from hwcap_operator.admission.fallbacks import FallbackKind
from hwcap_operator.features import Feature
from hwcap_operator.features.data_godebug import godebug_consumers
from hwcap_operator.features.knobs import RUNTIME_KNOBS, covering_kinds

#: Channel ids (as in status.channelCoverage) and what each means.
CHANNELS: Mapping[str, str] = MappingProxyType({
    "CPUID": "the CPUID instruction (x86): not trapped, it reports every feature of the node",
    "IDRegisters": "MRS of the ID registers (arm64), emulated by the kernel with the node's values; the mask "
    "advertises HWCAP_CPUID, so software following the kernel's rule reads them",
    "IDRegistersUnadvertised": "MRS of the ID registers (arm64): the mask clears HWCAP_CPUID, so software "
    "following the kernel's rule does not read them; software that ignores the rule still does",
    "MIDR": "MIDR_EL1 (arm64; also /sys/devices/system/cpu/cpu*/regs/identification/midr_el1): names the core, "
    "hence its features",
    "ProcCpuinfo": "/proc/cpuinfo lists the node's features, not the mask",
})  # fmt: skip

#: Runtimes that probe CPU features themselves and have no knob the webhook could set.
NO_KNOB: tuple[str, ...] = ("Rust std_detect (is_x86_feature_detected!)", "GCC/Clang __builtin_cpu_supports",
                            "hand-written CPUID/MRS probes")  # fmt: skip


@dataclass(frozen=True)
class FeatureCoverage:
    """One dropped feature: where it still shows, who is told to ignore it, and who is not."""

    feature: str
    hidden_from_auxv: bool
    channels: tuple[str, ...]
    covered_by: tuple[str, ...]
    uncovered: tuple[str, ...]
    #: the enabled fallback kinds that switch the feature off (``covered_by`` names their runtimes)
    covering: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        return {"feature": self.feature, "hiddenFromAuxv": self.hidden_from_auxv, "channels": list(self.channels),
                "coveredBy": list(self.covered_by), "coveringFallbacks": list(self.covering),
                "uncovered": list(self.uncovered)}  # fmt: skip


def channels(feature: Feature, *, cpuid_advertised: bool = True) -> tuple[str, ...]:
    """The :data:`CHANNELS` ids that still reveal ``feature`` to a process under a mask that drops it.

    ``cpuid_advertised``: the mask keeps ``cpuid`` (HWCAP_CPUID), arm64 only."""
    if feature.arch == "amd64":
        return ("CPUID", "ProcCpuinfo")
    if feature.arch == "arm64":
        return ("IDRegisters" if cpuid_advertised else "IDRegistersUnadvertised", "MIDR", "ProcCpuinfo")
    return ("ProcCpuinfo",)


def feature_coverage(
    feature: Feature, wanted: Iterable[FallbackKind], *, cpuid_advertised: bool = True
) -> FeatureCoverage:
    """How far a domain's mask and the fallbacks it enables (``wanted``) keep runtimes off ``feature``."""
    enabled = set(wanted)
    covered: list[str] = []
    uncovered: list[str] = []

    def runtime(name: str, kind: FallbackKind, spelled: bool, why_not: str) -> None:
        if spelled and kind in enabled:
            covered.append(f"{name} ({kind})")
        elif spelled:
            uncovered.append(f"{name}: the domain does not enable {kind}")
        else:
            uncovered.append(f"{name}: {why_not}")

    knobs = covering_kinds(feature)
    key = feature.godebug
    go_why = ("no GODEBUG cpu key" if key is None else f"key {key!r} is not known to every Go consumer "
              f"({godebug_consumers(feature.arch, key)}); setting it would print a warning")  # fmt: skip
    for name, kind, arches, why_not in RUNTIME_KNOBS:
        if feature.arch in arches:
            runtime(name, cast(FallbackKind, kind), kind in knobs, go_why if kind == "goDebug" else why_not)
    uncovered.extend(f"{r}: no knob" for r in NO_KNOB)
    return FeatureCoverage(feature.name, feature.in_hwcap, channels(feature, cpuid_advertised=cpuid_advertised),
                           tuple(covered), tuple(uncovered), tuple(sorted(knobs & enabled)))  # fmt: skip


def domain_coverage(
    dropped: Iterable[Feature], wanted: Iterable[FallbackKind], *, cpuid_advertised: bool = True
) -> list[FeatureCoverage]:
    """:func:`feature_coverage` for each dropped feature, in the given order."""
    kinds = tuple(wanted)
    return [feature_coverage(f, kinds, cpuid_advertised=cpuid_advertised) for f in dropped]


def channel_groups(cover: Iterable[FeatureCoverage]) -> list[tuple[tuple[str, ...], tuple[str, ...], list[str]]]:
    """(channels, covering fallbacks, features) per distinct pair, features in the given order; groups ordered
    by their first feature. What a domain's status carries: its size follows the feature catalog, not nodes."""
    groups: dict[tuple[tuple[str, ...], tuple[str, ...]], list[str]] = {}
    for c in cover:
        groups.setdefault((c.channels, c.covering), []).append(c.feature)
    return [(chans, kinds, names) for (chans, kinds), names in groups.items()]
