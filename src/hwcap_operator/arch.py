"""Architecture names: one spelling (Kubernetes GOARCH) everywhere, aliases accepted at the edges.

Nodes say ``kubernetes.io/arch=arm64``; kernels and cpuinfo dumps say ``aarch64``/``x86_64``. The product
speaks the Kubernetes spelling so that a MigrationDomain's ``arch`` matches what ``kubectl get nodes`` shows.
"""

from __future__ import annotations

from typing import Literal, get_args

Arch = Literal["arm64", "amd64", "ppc64le", "s390x", "riscv64"]
ARCHES: tuple[Arch, ...] = get_args(Arch)

_ALIASES: dict[str, Arch] = {
    "arm64": "arm64",
    "aarch64": "arm64",
    "amd64": "amd64",
    "x86_64": "amd64",
    "x86-64": "amd64",
    "ppc64le": "ppc64le",
    "ppc64": "ppc64le",
    "powerpc64le": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
}


class UnknownArchError(ValueError):
    """An architecture name we do not know; the message names it and lists the accepted ones."""


def normalize_arch(name: str) -> Arch:
    """Return the canonical (GOARCH) spelling of ``name`` or raise :class:`UnknownArchError`."""
    key = name.strip().lower()
    if key in _ALIASES:
        return _ALIASES[key]
    accepted = ", ".join(sorted(_ALIASES))
    raise UnknownArchError(f"unknown architecture {name!r}; accepted: {accepted}")
