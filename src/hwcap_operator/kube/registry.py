"""The registry-backed :class:`EntrypointResolver`: an image's ENTRYPOINT/CMD from its OCI config blob.

Uses the ORAS project's Python client (``oras``) for the registry protocol (manifest/blob requests, Basic
and Bearer-token auth). Around it, only what a webhook needs and the library does not do:

Parsing of references, credentials, indexes and configs is pure and lives in
:mod:`hwcap_operator.admission.image_refs`. Here:

- a hard per-request timeout and **no retries with sleeps** (the library's default retry waits minutes,
  far past the API server's webhook timeout): a lookup fails fast and the domain's policy decides;
- caches: config blobs by digest (content-addressed, never stale), tag → result for a short TTL (a
  Deployment's hundred pods cause one lookup, a re-pushed tag is seen after ``tag_ttl`` seconds).

The cache key of a tag lookup includes the credential used, so one namespace's secret never answers for
another namespace that has none.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal

import oras.provider
import requests

from hwcap_operator.admission.entrypoint import ImageEntrypoint, ImageRequest, Unresolvable
from hwcap_operator.admission.image_refs import (
    ACCEPT_MANIFESTS,
    DOCKER_LIST,
    OCI_INDEX,
    Credential,
    CredentialSource,
    ImageRef,
    credentials_for,
    entrypoint_from_config,
    parse_image_ref,
    platform_manifest,
    verify_digest,
)

log = logging.getLogger(__name__)

CacheResult = Literal["hit", "miss"]


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
        manifest, body = self._get_json(registry, f"{base}/manifests/{ref.reference}", ACCEPT_MANIFESTS, "manifest")
        verify_digest(body, ref.digest, "manifest")
        media = manifest.get("mediaType", "")
        if media in (OCI_INDEX, DOCKER_LIST) or "manifests" in manifest:
            digest = platform_manifest(manifest, arch, str(ref))
            manifest, body = self._get_json(
                registry, f"{base}/manifests/{digest}", ACCEPT_MANIFESTS, "platform manifest")
            verify_digest(body, digest, "platform manifest")
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
        verify_digest(response.content, config_digest, "config blob")
        result = entrypoint_from_config(response.content, str(ref))
        self._by_digest.put(("config", config_digest), result)
        return result
