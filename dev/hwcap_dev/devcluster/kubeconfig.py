"""Kubeconfig files for the local control plane: client-certificate or bearer-token users, data inline.

Inline data (not file paths) keeps a kubeconfig usable after it is copied elsewhere, e.g. printed by
``devcluster kubeconfig`` into a user's shell.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import yaml


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def build_kubeconfig(
    server: str,
    ca_pem: bytes,
    user: str,
    *,
    cert_pem: bytes | None = None,
    key_pem: bytes | None = None,
    token: str | None = None,
    cluster_name: str = "hwcap-devcluster",
    namespace: str | None = None,
) -> dict[str, Any]:
    """A one-cluster, one-user kubeconfig; exactly one of (cert+key) or token must be given."""
    if (cert_pem is None) != (key_pem is None):
        raise ValueError("a client certificate needs both cert_pem and key_pem")
    if (cert_pem is None) == (token is None):
        raise ValueError("give either a client certificate or a token, not both or neither")
    user_entry: dict[str, str] = {}
    if cert_pem is not None and key_pem is not None:
        user_entry = {"client-certificate-data": _b64(cert_pem), "client-key-data": _b64(key_pem)}
    elif token is not None:
        user_entry = {"token": token}
    context: dict[str, str] = {"cluster": cluster_name, "user": user}
    if namespace:
        context["namespace"] = namespace
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster_name, "cluster": {"server": server, "certificate-authority-data": _b64(ca_pem)}}],
        "users": [{"name": user, "user": user_entry}],
        "contexts": [{"name": f"{user}@{cluster_name}", "context": context}],
        "current-context": f"{user}@{cluster_name}",
        "preferences": {},
    }


def write_kubeconfig(path: Path, config: dict[str, Any]) -> Path:
    """Write a kubeconfig readable only by its owner (it holds a private key or a token)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path
