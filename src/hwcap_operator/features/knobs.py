"""Which userspace fallback kinds have a switch for a feature: the one table status, CLI and webhook agree on.

A kind covers a feature when the runtime it targets has a knob for it that the webhook writes: glibc a
``glibc.cpu.hwcaps`` name, Go a GODEBUG key every targeted consumer knows (``data_godebug``), OpenSSL an
``OPENSSL_ia32cap`` bit, OpenJDK a HotSpot flag (``data_hotspot``), numpy a dispatch target (``data_numpy``).
The kind names are the CRD's ``spec.enforcement.userspaceFallbacks`` values.
"""

from __future__ import annotations

from hwcap_operator.features.data_godebug import GODEBUG_KEYS_EVERYWHERE
from hwcap_operator.features.data_hotspot import hotspot_covers
from hwcap_operator.features.data_numpy import numpy_covers
from hwcap_operator.features.model import Feature


def covering_kinds(feature: Feature) -> frozenset[str]:
    """The fallback kinds that switch ``feature`` off in their runtime."""
    kinds: set[str] = set()
    if feature.godebug is not None and feature.godebug in GODEBUG_KEYS_EVERYWHERE.get(feature.arch, frozenset()):
        kinds.add("goDebug")
    if feature.arch == "amd64":
        if feature.glibc is not None:
            kinds.add("glibcTunables")
        if feature.openssl is not None:
            kinds.add("opensslIa32cap")
        if hotspot_covers(feature.name):
            kinds.add("javaToolOptions")
        if numpy_covers(feature.name):
            kinds.add("numpyCpuFeatures")
    return frozenset(kinds)
