"""Image references and pull-secret credentials, parsed the way the kubelet parses them (pure, no I/O).

- image references are normalised as the kubelet does (``nginx`` → ``docker.io/library/nginx:latest``);
- credentials come from the pod's ``imagePullSecrets`` (``.dockerconfigjson`` ``auths``), matched to the
  registry host the way the kubelet matches them (scheme/path ignored, ``*`` globs, Docker Hub aliases);
- a multi-arch index is resolved to the domain's ``linux/<arch>`` manifest, as the member node would;
- an image config's ENTRYPOINT/CMD, and a fetched body checked against its digest.

The network half (registry requests, caches, timeouts) is :mod:`hwcap_operator.kube.registry`.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hwcap_operator.admission.entrypoint import ImageEntrypoint, Unresolvable

DOCKER_HUB = "docker.io"
_DOCKER_HUB_API = "registry-1.docker.io"
_DOCKER_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"})

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
ACCEPT_MANIFESTS = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST]

#: (namespace, imagePullSecrets names) → the decoded ``.dockerconfigjson`` documents, in secret order.
CredentialSource = Callable[[str, Sequence[str]], Sequence[Mapping[str, Any]]]


@dataclass(frozen=True)
class ImageRef:
    """A normalised image reference: ``registry`` as users write it, ``api_host`` where the API lives."""

    registry: str
    repository: str
    tag: str | None
    digest: str | None

    @property
    def api_host(self) -> str:
        """Docker Hub's API is not served on docker.io itself."""
        return _DOCKER_HUB_API if self.registry == DOCKER_HUB else self.registry

    @property
    def reference(self) -> str:
        """The digest if pinned, else the tag: what the manifest endpoint is asked for."""
        return self.digest or self.tag or "latest"

    def __str__(self) -> str:
        return f"{self.registry}/{self.repository}" + (f"@{self.digest}" if self.digest else f":{self.tag}")


def parse_image_ref(image: str) -> ImageRef:
    """Normalise like the container runtime: default registry docker.io, ``library/``, tag ``latest``.

    Raises :class:`Unresolvable` naming the reference when it is malformed.
    """
    text = image.strip()
    if not text or any(c.isspace() for c in text):
        raise Unresolvable(f"bad image reference {image!r}")
    name, _, digest = text.partition("@")
    if digest and (":" not in digest or not digest.split(":", 1)[1]):
        raise Unresolvable(f"bad digest in image reference {image!r}")
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        registry, path = first, rest
    else:
        registry, path = DOCKER_HUB, name
    tag: str | None = None
    last_slash = path.rfind("/")
    colon = path.rfind(":")
    if colon > last_slash:
        path, tag = path[:colon], path[colon + 1 :]
        if not tag:
            raise Unresolvable(f"empty tag in image reference {image!r}")
    if not path or path.startswith("/") or path.endswith("/") or "//" in path or path != path.lower():
        raise Unresolvable(f"bad repository in image reference {image!r}")
    if registry in _DOCKER_HUB_ALIASES:
        registry = DOCKER_HUB
        if "/" not in path:
            path = f"library/{path}"
    return ImageRef(registry, path, tag if tag or digest else "latest", digest or None)


def _host_of(key: str) -> str:
    """``https://index.docker.io/v1/`` → ``index.docker.io``: dockerconfig keys may carry scheme and path."""
    host = key.split("://", 1)[-1]
    return host.split("/", 1)[0].lower()


def _host_matches(pattern: str, host: str) -> bool:
    if pattern in _DOCKER_HUB_ALIASES and host in _DOCKER_HUB_ALIASES:
        return True
    return fnmatch.fnmatchcase(host, pattern) if "*" in pattern else pattern == host


@dataclass(frozen=True)
class Credential:
    """One username/password pair from a pull secret (``repr`` hides the password)."""

    username: str
    password: str

    def __repr__(self) -> str:
        return f"Credential(username={self.username!r}, password=***)"

    @property
    def fingerprint(self) -> str:
        """A cache-key component that does not reveal the secret."""
        return hashlib.sha256(f"{self.username}:{self.password}".encode()).hexdigest()[:16]


def credentials_for(registry: str, configs: Iterable[Mapping[str, Any]]) -> list[Credential]:
    """Every credential whose ``auths`` key matches ``registry``, in secret order (the kubelet tries each)."""
    host = DOCKER_HUB if registry in _DOCKER_HUB_ALIASES else registry.lower()
    found: list[Credential] = []
    for config in configs:
        auths = config.get("auths", config)  # legacy .dockercfg is the auths map itself
        if not isinstance(auths, Mapping):
            continue
        for key, entry in auths.items():
            if not isinstance(entry, Mapping) or not _host_matches(_host_of(str(key)), host):
                continue
            user, password = entry.get("username"), entry.get("password")
            if (not user or password is None) and isinstance(entry.get("auth"), str):
                try:
                    user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
                except (ValueError, UnicodeDecodeError):
                    continue
            if isinstance(user, str) and user and isinstance(password, str):
                found.append(Credential(user, password))
    return found


def verify_digest(body: bytes, digest: str | None, what: str) -> None:
    """Content addressing is what makes the digest cache safe: check it."""
    if not digest:
        return
    algorithm, _, expected = digest.partition(":")
    if algorithm not in ("sha256", "sha512"):
        raise Unresolvable(f"{what}: unsupported digest algorithm {algorithm!r}")
    if hashlib.new(algorithm, body).hexdigest() != expected:
        raise Unresolvable(f"{what}: content does not match digest {digest}")


def platform_manifest(index: Mapping[str, Any], arch: str, ref: str) -> str:
    """The ``linux/<arch>`` entry of an image index, as the kubelet on a member node would pick it."""
    seen: list[str] = []
    for entry in index.get("manifests") or []:
        platform = entry.get("platform") or {}
        seen.append(f"{platform.get('os')}/{platform.get('architecture')}")
        wanted = platform.get("os") == "linux" and platform.get("architecture") == arch
        if wanted and isinstance(entry.get("digest"), str):
            return str(entry["digest"])
    raise Unresolvable(f"{ref} has no linux/{arch} image (index has {', '.join(seen) or 'no entries'})")


def entrypoint_from_config(blob: bytes, ref: str = "image") -> ImageEntrypoint:
    """``config.Entrypoint`` and ``config.Cmd`` of an OCI/Docker image config (null or absent = empty)."""
    try:
        doc = json.loads(blob)
    except ValueError:
        raise Unresolvable(f"config of {ref} is not JSON") from None
    config = doc.get("config") if isinstance(doc, dict) else None
    config = config if isinstance(config, dict) else {}
    parts: list[tuple[str, ...]] = []
    for field in ("Entrypoint", "Cmd"):
        value = config.get(field) or []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise Unresolvable(f"config of {ref}: {field} is not a list of strings")
        parts.append(tuple(value))
    return ImageEntrypoint(entrypoint=parts[0], cmd=parts[1])
