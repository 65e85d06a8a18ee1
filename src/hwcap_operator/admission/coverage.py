"""Coverage of a dropped feature: which channels still reveal it, which fallbacks hide it from which runtime.

A HWCAP mask changes the auxv words and nothing else. A process can still learn of a dropped feature
through the CPUID instruction (x86: no HWCAP word carries most features, and CPUID is not trapped), the
ID registers (arm64: MRS is emulated by the kernel and reports the sanitised system-wide values while
HWCAP_CPUID is set, docs/kernel.md#objection-id-registers), MIDR (arm64: the core's part number names its features) and
/proc/cpuinfo (the kernel's own list, unmasked). Only a runtime that reads a knob the webhook sets is
kept off a feature on those channels; the rest is listed as uncovered, runtime by runtime.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import cast

from hwcap_operator.admission.fallbacks import FallbackKind
from hwcap_operator.features import Feature
from hwcap_operator.features.data_godebug import godebug_consumers
from hwcap_operator.features.knobs import RUNTIME_KNOBS, covering_kinds

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

    def to_dict(self) -> dict[str, object]:
        return {"feature": self.feature, "hiddenFromAuxv": self.hidden_from_auxv, "channels": list(self.channels),
                "coveredBy": list(self.covered_by), "uncovered": list(self.uncovered)}  # fmt: skip


def _channels(feature: Feature) -> tuple[str, ...]:
    if feature.arch == "amd64":
        return ("CPUID instruction", "/proc/cpuinfo")
    if feature.arch == "arm64":
        return ("ID registers (MRS, while HWCAP_CPUID is advertised)", "MIDR (core part number)", "/proc/cpuinfo")
    return ("/proc/cpuinfo",)


def feature_coverage(feature: Feature, wanted: Iterable[FallbackKind]) -> FeatureCoverage:
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
    return FeatureCoverage(feature.name, feature.in_hwcap, _channels(feature), tuple(covered), tuple(uncovered))


def domain_coverage(dropped: Iterable[Feature], wanted: Iterable[FallbackKind]) -> list[FeatureCoverage]:
    """:func:`feature_coverage` for each dropped feature, in the given order."""
    kinds = tuple(wanted)
    return [feature_coverage(f, kinds) for f in dropped]
