"""The registry-backed :class:`EntrypointResolver`: an image's ENTRYPOINT/CMD from its OCI config blob.

Uses the ORAS project's Python client (``oras``) for the registry protocol (manifest/blob requests, Basic
and Bearer-token auth). Around it, only what a webhook needs and the library does not do:

- image references are normalised as the kubelet does (``nginx`` → ``docker.io/library/nginx:latest``);
- credentials come from the pod's ``imagePullSecrets`` (``.dockerconfigjson`` ``auths``), matched to the
  registry host the way the kubelet matches them (scheme/path ignored, ``*`` globs, Docker Hub aliases);
- a multi-arch index is resolved to the domain's ``linux/<arch>`` manifest, as the member node would;
- a hard per-request timeout and **no retries with sleeps** (the library's default retry waits minutes,
  far past the API server's webhook timeout): a lookup fails fast and the domain's policy decides;
- caches: config blobs by digest (content-addressed, never stale), tag → result for a short TTL (a
  Deployment's hundred pods cause one lookup, a re-pushed tag is seen after ``tag_ttl`` seconds).

The cache key of a tag lookup includes the credential used, so one namespace's secret never answers for
another namespace that has none.
"""

from __future__ import annotations

import base64
import fnmatch
import functools
import hashlib
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import oras.provider
import requests

from hwcap_operator.admission.entrypoint import ImageEntrypoint, ImageRequest, Unresolvable

log = logging.getLogger(__name__)

DOCKER_HUB = "docker.io"
_DOCKER_HUB_API = "registry-1.docker.io"
_DOCKER_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"})

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
_ACCEPT = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST]

#: (namespace, imagePullSecrets names) → the decoded ``.dockerconfigjson`` documents, in secret order.
CredentialSource = Callable[[str, Sequence[str]], Sequence[Mapping[str, Any]]]
CacheResult = Literal["hit", "miss"]


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


class _TimeoutSession(requests.Session):
    """requests has no session-wide timeout; a webhook must never wait on a registry indefinitely."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self._timeout = timeout

    def request(self, method: str, url: Any, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", self._timeout)
        return super().request(method, url, *args, **kwargs)


class _LRU:
    """A small thread-safe LRU map with optional per-entry expiry."""

    def __init__(self, size: int, clock: Callable[[], float]) -> None:
        self._data: OrderedDict[Any, tuple[Any, float | None]] = OrderedDict()
        self._size = size
        self._clock = clock
        self._lock = threading.Lock()

    def get(self, key: Any) -> Any | None:
        with self._lock:
            item = self._data.get(key)
            if item is None:
                return None
            value, expires = item
            if expires is not None and self._clock() >= expires:
                del self._data[key]
                return None
            self._data.move_to_end(key)
            return value

    def put(self, key: Any, value: Any, ttl: float | None = None) -> None:
        with self._lock:
            self._data[key] = (value, None if ttl is None else self._clock() + ttl)
            self._data.move_to_end(key)
            while len(self._data) > self._size:
                self._data.popitem(last=False)


class OciResolver:
    """Resolve ENTRYPOINT/CMD from registries; safe to share between concurrent admissions.

    ``insecure_registries`` are hosts (``host:port``) spoken to over plain HTTP, like a runtime's insecure
    registry list; everything else is HTTPS with certificate verification (``ca_bundle`` to add a CA).
    ``on_cache`` is called with "hit" or "miss" for metrics.
    """

    def __init__(
        self,
        credentials: CredentialSource,
        *,
        insecure_registries: Iterable[str] = (),
        ca_bundle: str | None = None,
        timeout: float = 5.0,
        tag_ttl: float = 300.0,
        cache_size: int = 4096,
        on_cache: Callable[[CacheResult], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        credential_problems: Callable[[str, Sequence[str]], Sequence[str]] | None = None,
    ) -> None:
        self._credentials = credentials
        self._credential_problems = credential_problems
        self._insecure = frozenset(h.lower() for h in insecure_registries)
        self._tls_verify: bool | str = ca_bundle or True
        self._timeout = timeout
        self._tag_ttl = tag_ttl
        self._by_tag = _LRU(cache_size, clock)
        self._by_digest = _LRU(cache_size, clock)
        self._on_cache = on_cache or (lambda _result: None)

    def resolve(self, request: ImageRequest) -> ImageEntrypoint:
        """The image's ENTRYPOINT/CMD for ``linux/<request.arch>``; raises :class:`Unresolvable` on any failure."""
        ref = parse_image_ref(request.image)
        creds: list[Credential | None] = list(
            credentials_for(ref.registry, self._credentials(request.namespace, request.pull_secrets))
        )
        creds.append(None)  # anonymous last, as the kubelet does when no credential works
        first = creds[0]
        key: tuple[str | None, ...]
        ttl: float | None
        if ref.digest:  # content-addressed: the same for every namespace and forever
            cache, ttl = self._by_digest, None
            key = ("manifest", ref.api_host, ref.repository, ref.digest, request.arch)
        else:
            cache, ttl = self._by_tag, self._tag_ttl
            key = (ref.api_host, ref.repository, ref.tag, request.arch, first.fingerprint if first else None)
        cached = cache.get(key)
        if cached is not None:
            self._on_cache("hit")
            return cached  # type: ignore[no-any-return]
        self._on_cache("miss")
        errors: list[str] = []
        for cred in creds:
            who = f"as {cred.username}" if cred else "anonymously"
            try:
                result = self._fetch(ref, request.arch, cred)
            except Unresolvable as exc:
                errors.append(f"{who}: {exc}")
                continue
            except Exception as exc:  # a library surprise must reach the domain's policy, not fail the webhook
                log.warning("entrypoint lookup of %s failed unexpectedly", ref, exc_info=True)
                errors.append(f"{who}: {exc.__class__.__name__}: {exc}")
                continue
            cache.put(key, result, ttl)
            return result
        if self._credential_problems is not None:  # say why a named pull secret could not be used
            errors += self._credential_problems(request.namespace, request.pull_secrets)
        raise Unresolvable(f"{ref}: " + "; ".join(errors))

    # ------------------------------------------------------------------------------------------ protocol

    def _registry(self, ref: ImageRef, cred: Credential | None) -> Any:
        host = ref.api_host
        insecure = host.lower() in self._insecure
        scheme = self._auth_scheme(host, insecure)
        if scheme == "basic" and cred is None:
            raise Unresolvable("the registry requires a login and no pull secret matches it")
        registry = oras.provider.Registry(
            hostname=host,
            insecure=insecure,
            tls_verify=self._tls_verify,
            auth_backend="basic" if scheme == "basic" else "token",
        )
        session = _TimeoutSession(self._timeout)
        registry.session = session
        registry.auth.session = session
        registry.auth._auth_config = {"auths": {}}  # never read the operator's own ~/.docker/config.json
        # The library's do_request retries any error up to five times with sleeps of minutes in total;
        # call the undecorated function: one attempt (plus the auth handshake) per lookup.
        registry.do_request = functools.partial(oras.provider.Registry.do_request.__wrapped__, registry)
        if cred is not None:
            registry.auth.set_basic_auth(cred.username, cred.password)
        return registry

    @functools.cache  # noqa: B019 - one entry per registry host for the operator's lifetime is intended
    def _auth_scheme(self, host: str, insecure: bool) -> str:
        """Basic or Bearer (token) auth, from the registry's ``/v2/`` challenge; "none" when open."""
        url = f"{'http' if insecure else 'https'}://{host}/v2/"
        try:
            response = _TimeoutSession(self._timeout).get(url, verify=self._tls_verify)
        except requests.RequestException as exc:
            self._auth_scheme.cache_clear()  # do not remember an outage
            raise Unresolvable(f"registry {host} unreachable: {exc.__class__.__name__}") from None
        challenge = response.headers.get("WWW-Authenticate", "").strip().lower()
        if response.status_code == 401 and challenge.startswith("basic"):
            return "basic"
        return "bearer" if response.status_code == 401 else "none"

    def _get_json(self, registry: Any, url: str, accept: Sequence[str], what: str) -> tuple[dict[str, Any], bytes]:
        try:
            response = registry.do_request(url, "GET", headers={"Accept": ", ".join(accept)})
        except (requests.RequestException, ValueError) as exc:
            raise Unresolvable(f"{what}: {exc.__class__.__name__}: {exc}") from None
        if response.status_code != 200:
            raise Unresolvable(f"{what}: HTTP {response.status_code} {response.reason}")
        body: bytes = response.content
        try:
            doc = json.loads(body)
        except ValueError:
            raise Unresolvable(f"{what}: not JSON") from None
        if not isinstance(doc, dict):
            raise Unresolvable(f"{what}: not a JSON object")
        return doc, body

    def _fetch(self, ref: ImageRef, arch: str, cred: Credential | None) -> ImageEntrypoint:
        registry = self._registry(ref, cred)
        container = registry.get_container(f"{ref.api_host}/{ref.repository}:{ref.tag or 'latest'}")
        base = f"{registry.prefix}://{ref.api_host}/v2/{ref.repository}"
        manifest, body = self._get_json(registry, f"{base}/manifests/{ref.reference}", _ACCEPT, "manifest")
        _verify_digest(body, ref.digest, "manifest")
        media = manifest.get("mediaType", "")
        if media in (OCI_INDEX, DOCKER_LIST) or "manifests" in manifest:
            digest = _platform_manifest(manifest, arch, str(ref))
            manifest, body = self._get_json(registry, f"{base}/manifests/{digest}", _ACCEPT, "platform manifest")
            _verify_digest(body, digest, "platform manifest")
        config = manifest.get("config")
        if not isinstance(config, dict) or not isinstance(config.get("digest"), str):
            raise Unresolvable(f"manifest of {ref} has no config descriptor (mediaType {media or 'unset'})")
        config_digest: str = config["digest"]
        cached = self._by_digest.get(("config", config_digest))
        if cached is not None:
            return cached  # type: ignore[no-any-return]
        try:
            response = registry.get_blob(container, config_digest)
        except (requests.RequestException, ValueError) as exc:
            raise Unresolvable(f"config blob: {exc.__class__.__name__}: {exc}") from None
        if response.status_code != 200:
            raise Unresolvable(f"config blob {config_digest}: HTTP {response.status_code} {response.reason}")
        _verify_digest(response.content, config_digest, "config blob")
        result = entrypoint_from_config(response.content, str(ref))
        self._by_digest.put(("config", config_digest), result)
        return result


def _verify_digest(body: bytes, digest: str | None, what: str) -> None:
    """Content addressing is what makes the digest cache safe: check it."""
    if not digest:
        return
    algorithm, _, expected = digest.partition(":")
    if algorithm not in ("sha256", "sha512"):
        raise Unresolvable(f"{what}: unsupported digest algorithm {algorithm!r}")
    if hashlib.new(algorithm, body).hexdigest() != expected:
        raise Unresolvable(f"{what}: content does not match digest {digest}")


def _platform_manifest(index: Mapping[str, Any], arch: str, ref: str) -> str:
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
