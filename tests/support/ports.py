"""A free TCP port on loopback: the dev cluster's helper (it needs one for every component it starts)."""

from __future__ import annotations

from hwcap_dev.devcluster.runner import free_port

__all__ = ["free_port"]
