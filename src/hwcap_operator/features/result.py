"""What every parser returns (and raises), so callers treat cpuinfo, NFD and auxv input alike.

Parsers report, they do not guess: known features, the names the catalog does not know (kept,
never dropped), per-token errors, and the features the source cannot show at all (``unobserved``,
e.g. NFD's default label filter). They raise :class:`FeatureParseError` only when the input cannot
be interpreted at all (no feature list, not a mapping, truncated auxv, ...).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from hwcap_operator.arch import Arch
from hwcap_operator.features.model import Feature
from hwcap_operator.input_error import InputError

if TYPE_CHECKING:
    from hwcap_operator.mask import FeatureMask


class FeatureParseError(InputError):
    """Feature input that cannot be interpreted at all; names the input, the offending token and the problem."""


@dataclass(frozen=True, slots=True)
class ParseIssue:
    """One bad token inside otherwise usable input (reported, the rest is still parsed)."""

    source: str
    token: str
    problem: str

    def __str__(self) -> str:
        return f"{self.source}: {self.problem}: {self.token!r}"


@dataclass(frozen=True, slots=True)
class FeatureSet:
    """Features read from one input (a cpuinfo dump, a Node's labels, a NodeFeature object, ...)."""

    source: str
    arch: Arch
    features: tuple[Feature, ...]
    unknown: tuple[str, ...] = ()
    errors: tuple[ParseIssue, ...] = ()
    warnings: tuple[str, ...] = ()
    #: Canonical names of catalog features this source cannot report either way (absent != missing).
    unobserved: tuple[str, ...] = ()

    @property
    def names(self) -> list[str]:
        """Canonical names of the known features, in catalog order."""
        return [f.name for f in self.features]

    @property
    def mask(self) -> FeatureMask:
        """The known features as a mask (unknown names are in :attr:`unknown`, not in the mask)."""
        from hwcap_operator.mask import FeatureMask

        return FeatureMask.from_features(self.arch, self.features)

    @property
    def possible(self) -> FeatureMask:
        """:attr:`mask` plus the features this source cannot observe: what the node may have.

        A node lacks a feature only when a source that could see it does not report it; the unobserved
        ones are unknown, never missing (NFD, for one, has no name for tsc, pae, clwb, rdpid, ...).
        """
        from hwcap_operator.mask import FeatureMask

        return self.mask | FeatureMask.from_names(self.arch, self.unobserved)

    @property
    def ok(self) -> bool:
        """True when no token was malformed (unknown names alone do not make input bad)."""
        return not self.errors
