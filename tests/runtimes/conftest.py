"""What the webhook injects for a domain on this machine, as plain environment dictionaries.

The env is computed by the product's own path: ``DomainView.from_mask`` (the per-domain plan the webhook
holds) and ``FallbackPlan.merge`` (what it writes into a container that sets none of the variables). The
node is this machine, read from /proc/cpuinfo exactly as the node agent's fallback source does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

from hwcap_operator.admission.fallbacks import FALLBACK_KINDS, FallbackKind
from hwcap_operator.admission.model import DomainView
from hwcap_operator.features import Feature, FeatureSet, parse_cpuinfo
from hwcap_operator.mask import FeatureMask

CPUINFO = Path("/proc/cpuinfo")

EnvFor = Callable[[FeatureMask], dict[str, str]]


def this_machine() -> FeatureSet:
    """This machine's features (x86_64: the suite runs the native runtimes)."""
    return parse_cpuinfo(CPUINFO.read_text(), source=str(CPUINFO))


def machine_has(feature: Feature) -> bool:
    return feature.name in set(this_machine().names)


def webhook_env(mask: FeatureMask, node: FeatureMask, kinds: Iterable[FallbackKind] = FALLBACK_KINDS) -> dict[str, str]:
    """The variables the webhook adds to a container of a domain with ``mask`` whose member is ``node``."""
    dropped = (node - mask).names()
    view = DomainView.from_mask("conformance", mask, namespace_selector=None, dropped_features=dropped,
                                fallbacks=kinds)  # fmt: skip
    return {var: view.fallbacks.merge(var, None) for var in view.fallbacks.variables()}


@pytest.fixture(scope="session")
def machine() -> FeatureMask:
    features = this_machine()
    assert features.arch == "amd64", f"the native runtime suite runs on x86_64; this machine is {features.arch}"
    return features.mask


@pytest.fixture(scope="session")
def env_for(machine: FeatureMask) -> EnvFor:
    """``env_for(mask)``: the webhook's env for a domain with ``mask`` over this machine."""
    return lambda mask: webhook_env(mask, machine)


def hide(machine: FeatureMask, features: Iterable[Feature]) -> FeatureMask:
    """This machine's mask without ``features`` (a domain whose other member lacks exactly those)."""
    return machine - FeatureMask.from_features("amd64", features)
