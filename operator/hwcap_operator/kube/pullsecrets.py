"""Pull-secret credentials for entrypoint lookups, read on demand and cached briefly.

Only the secrets a pod names are read (``get``, not ``list``/``watch`` of every Secret in the cluster), and
only when an entrypoint is not already cached by digest, so the webhook's steady state makes no API call.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

log = logging.getLogger("hwcap_operator.pullsecrets")
DOCKERCONFIGJSON = ".dockerconfigjson"


class PullSecretReader:
    """A :data:`hwcap_operator.admission.oci.CredentialSource` backed by the API, with a TTL cache."""

    def __init__(self, api_client: client.ApiClient, ttl: float = 60.0) -> None:
        self._core = client.CoreV1Api(api_client)
        self._ttl = ttl
        self._cache: dict[tuple[str, str], tuple[float, Mapping[str, Any] | None]] = {}
        self._lock = threading.Lock()

    def __call__(self, namespace: str, names: Sequence[str]) -> Sequence[Mapping[str, Any]]:
        found = [doc for name in names if (doc := self._read(namespace, name)) is not None]
        return found

    def _read(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get((namespace, name))
            if hit is not None and now - hit[0] < self._ttl:
                return hit[1]
        doc: Mapping[str, Any] | None = None
        try:
            secret = self._core.read_namespaced_secret(name, namespace)
            raw = (secret.data or {}).get(DOCKERCONFIGJSON)
            if raw:
                doc = json.loads(base64.b64decode(raw))
            else:
                log.warning("pull secret has no .dockerconfigjson", extra={"namespace": namespace, "secret": name})
        except ApiException as exc:
            log.warning("cannot read pull secret", extra={"namespace": namespace, "secret": name,
                                                          "status": exc.status})  # fmt: skip
        except ValueError as exc:
            log.warning("pull secret is not valid JSON", extra={"namespace": namespace, "secret": name,
                                                                "error": str(exc)})  # fmt: skip
        with self._lock:
            self._cache[(namespace, name)] = (now, doc)
        return doc
