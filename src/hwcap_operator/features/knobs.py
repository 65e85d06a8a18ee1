"""Which userspace fallback kinds have a switch for a feature: the one table status, CLI and webhook agree on.

A kind covers a feature when the runtime it targets has a knob for it that the webhook writes: glibc a
``glibc.cpu.hwcaps`` name, Go a GODEBUG key every targeted consumer knows (``data_godebug``), OpenSSL an
``OPENSSL_ia32cap`` bit, OpenJDK a HotSpot flag (``data_hotspot``, ``data_hotspot_arm64``), numpy a dispatch
target (``data_numpy``), OpenSSL on arm64 an ``OPENSSL_armcap`` bit, OpenBLAS/oneDNN/MKL a dispatch level below
the feature. The kind names are the CRD's ``spec.enforcement.userspaceFallbacks`` values; :data:`RUNTIME_KNOBS`
is the one list of which runtime each kind targets on which arch (coverage reports and docs follow it).
"""

from __future__ import annotations

from hwcap_operator.features.data_godebug import GODEBUG_KEYS_EVERYWHERE
from hwcap_operator.features.data_hotspot import hotspot_covers
from hwcap_operator.features.data_hotspot_arm64 import hotspot_arm64_covers
from hwcap_operator.features.data_mkl import mkl_covers
from hwcap_operator.features.data_numpy import numpy_covers
from hwcap_operator.features.data_onednn import onednn_covers
from hwcap_operator.features.data_openblas import openblas_covers
from hwcap_operator.features.data_openssl_armcap import armcap_covers
from hwcap_operator.features.model import Feature

#: (runtime, fallback kind, arches it applies to, why a feature may have no knob): the runtimes with a knob.
RUNTIME_KNOBS: tuple[tuple[str, str, frozenset[str], str], ...] = (
    ("glibc", "glibcTunables", frozenset({"amd64"}), "glibc.cpu.hwcaps has no name for it"),
    ("Go", "goDebug", frozenset({"amd64", "arm64"}), "no GODEBUG cpu key every Go consumer knows"),
    ("OpenSSL", "opensslIa32cap", frozenset({"amd64"}), "no OPENSSL_ia32cap bit"),
    ("OpenSSL", "opensslArmcap", frozenset({"arm64"}), "no OPENSSL_armcap bit"),
    ("OpenJDK", "javaToolOptions", frozenset({"amd64", "arm64"}), "no HotSpot flag"),
    ("numpy", "numpyCpuFeatures", frozenset({"amd64"}), "no numpy dispatch target above AVX uses it"),
    ("OpenBLAS", "openblasCoretype", frozenset({"amd64", "arm64"}), "no OpenBLAS core type above the lowest uses it"),
    ("oneDNN", "onednnMaxCpuIsa", frozenset({"amd64"}), "no oneDNN ISA level above the lowest uses it"),
    ("MKL", "mklEnableInstructions", frozenset({"amd64"}), "no MKL code path above the lowest uses it"),
)


def covering_kinds(feature: Feature) -> frozenset[str]:
    """The fallback kinds that switch ``feature`` off in their runtime."""
    kinds: set[str] = set()
    if feature.godebug is not None and feature.godebug in GODEBUG_KEYS_EVERYWHERE.get(feature.arch, frozenset()):
        kinds.add("goDebug")
    if feature.arch == "arm64":
        if armcap_covers(feature.name):
            kinds.add("opensslArmcap")
        if hotspot_arm64_covers(feature.name):
            kinds.add("javaToolOptions")
        if openblas_covers(feature.name, "arm64"):
            kinds.add("openblasCoretype")
    if feature.arch == "amd64":
        if feature.glibc is not None:
            kinds.add("glibcTunables")
        if feature.openssl is not None:
            kinds.add("opensslIa32cap")
        if hotspot_covers(feature.name):
            kinds.add("javaToolOptions")
        if numpy_covers(feature.name):
            kinds.add("numpyCpuFeatures")
        for kind, covered in (("openblasCoretype", openblas_covers), ("onednnMaxCpuIsa", onednn_covers),
                              ("mklEnableInstructions", mkl_covers)):  # fmt: skip
            if covered(feature.name):
                kinds.add(kind)
    return frozenset(kinds)
