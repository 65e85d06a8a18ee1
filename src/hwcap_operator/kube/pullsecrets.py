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

from hwcap_operator.kube import raw_api

log = logging.getLogger("hwcap_operator.pullsecrets")
DOCKERCONFIGJSON = ".dockerconfigjson"


class PullSecretReader:
    """A :data:`hwcap_operator.admission.image_refs.CredentialSource` backed by the API, with a TTL cache."""

    def __init__(self, api_client: client.ApiClient, ttl: float = 60.0) -> None:
        self._api = api_client
        self._ttl = ttl
        self._cache: dict[tuple[str, str], tuple[float, Mapping[str, Any] | None]] = {}
        self._problems: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()

    def __call__(self, namespace: str, names: Sequence[str]) -> Sequence[Mapping[str, Any]]:
        found = [doc for name in names if (doc := self._read(namespace, name)) is not None]
        return found

    def problems(self, namespace: str, names: Sequence[str]) -> list[str]:
        """Why named pull secrets gave no credentials (forbidden, missing, malformed), for the denial message."""
        with self._lock:
            return [self._problems[(namespace, n)] for n in names if (namespace, n) in self._problems]

    def _read(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get((namespace, name))
            if hit is not None and now - hit[0] < self._ttl:
                return hit[1]
        doc: Mapping[str, Any] | None = None
        problem: str | None = None
        try:
            secret = raw_api.read_secret(self._api, namespace, name)
            raw = (secret.get("data") or {}).get(DOCKERCONFIGJSON)
            if raw:
                doc = json.loads(base64.b64decode(raw))
            else:
                problem = f"pull secret {namespace}/{name} has no {DOCKERCONFIGJSON}"
        except ApiException as exc:
            why = {403: "the operator may not read it (grant get secrets in this namespace: chart value "
                        "operator.pullSecrets.namespaces)", 404: "it does not exist"}.get(exc.status, exc.reason)
            problem = f"pull secret {namespace}/{name} unusable: {why}"
        except ValueError as exc:
            problem = f"pull secret {namespace}/{name} is not valid JSON: {exc}"
        if problem:
            log.warning("pull secret unusable", extra={"namespace": namespace, "secret": name, "problem": problem})
        with self._lock:
            self._cache[(namespace, name)] = (now, doc)
            if problem:
                self._problems[(namespace, name)] = problem
            else:
                self._problems.pop((namespace, name), None)
        return doc
