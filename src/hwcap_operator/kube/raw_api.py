"""The built-in API calls the operator process makes, sent as raw JSON through the client's ``ApiClient``.

Why not ``kubernetes.client.CoreV1Api`` and friends: in the pinned client (37.x) CoreV1Api is one generated
module of ~50,000 lines of pydantic-annotated methods. Loading it costs the operator ~20 MiB of resident
memory and ~1.8 s of start-up (measured: docs/performance.md), for the handful of calls below
(AdmissionregistrationV1Api adds 3.3 MiB for two). ``ApiClient.param_serialize`` and
``call_api`` keep everything that matters from the library (kubeconfig and in-cluster auth, TLS, proxies,
token refresh, ``ApiException`` and its subclasses on an error status) and hand back the raw JSON, which the
operator parses itself anyway: it keeps plain dicts, never the generated models.
"""

from __future__ import annotations

from typing import Any

import orjson
import urllib3
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from hwcap_operator import keys
from hwcap_operator.kube.client import FIELD_MANAGER

Json = dict[str, Any]

_MERGE_PATCH = "application/merge-patch+json"


def _send(api: ApiClient, method: str, path: str, *, path_params: dict[str, str] | None = None,
          query: list[tuple[str, Any]] | None = None, body: Any = None, content_type: str | None = None,
          timeout: Any = None) -> Any:
    """One request; the library's REST response, not yet read. Auth comes from the client's configuration."""
    headers = {"Accept": "application/json"}
    if body is not None:
        headers["Content-Type"] = content_type or "application/json"
    request = api.param_serialize(method=method, resource_path=path, path_params=path_params,
                                  query_params=query or [], header_params=headers, body=body,
                                  auth_settings=["BearerToken"])  # fmt: skip
    return api.call_api(*request, _request_timeout=timeout)


def _raise_for_status(response: Any) -> None:
    if not 200 <= response.status <= 299:
        data = response.read()
        raise ApiException.from_response(http_resp=response, body=data.decode("utf-8", "replace"), data=None)


def _json(api: ApiClient, method: str, path: str, **kwargs: Any) -> Json:
    response = _send(api, method, path, **kwargs)
    _raise_for_status(response)
    parsed: Json = orjson.loads(response.read())
    return parsed



def list_nodes_page(api: ApiClient, limit: int, continue_token: str | None = None) -> Json:
    """One page of ``GET /api/v1/nodes`` as a parsed NodeList (items, metadata.continue, resourceVersion)."""
    query: list[tuple[str, Any]] = [("limit", limit)]
    if continue_token:
        query.append(("continue", continue_token))
    return _json(api, "GET", "/api/v1/nodes", query=query)


def watch_nodes(api: ApiClient, resource_version: str, timeout_seconds: int) -> urllib3.HTTPResponse:
    """An open WATCH of Nodes from ``resource_version`` (with bookmarks): the raw streaming response.

    The caller reads it line by line and must ``release_conn()`` it. An error status raises ``ApiException``
    (410 Gone included) before anything is streamed.
    """
    query = [("watch", "true"), ("resourceVersion", resource_version), ("allowWatchBookmarks", "true"),
             ("timeoutSeconds", timeout_seconds)]  # fmt: skip
    response = _send(api, "GET", "/api/v1/nodes", query=query, timeout=(10, timeout_seconds + 30))
    _raise_for_status(response)
    stream: urllib3.HTTPResponse = response.response
    return stream


def read_node(api: ApiClient, name: str) -> Json:
    """GET one Node as a dict."""
    return _json(api, "GET", "/api/v1/nodes/{name}", path_params={"name": name})


def patch_node(api: ApiClient, name: str, patch: Json) -> None:
    """A JSON merge patch (RFC 7386: ``None`` removes a key) of one Node, under our field manager."""
    _json(api, "PATCH", "/api/v1/nodes/{name}", path_params={"name": name}, body=patch,
          content_type=_MERGE_PATCH, query=[("fieldManager", FIELD_MANAGER)])  # fmt: skip


def read_domain_uid(api: ApiClient, name: str) -> str | None:
    """The uid of the stored MigrationDomain ``name``; None when none is stored (HTTP 404)."""
    try:
        domain = _json(api, "GET", f"/apis/{keys.GROUP}/{keys.VERSION}/{keys.PLURAL}/{{name}}",
                       path_params={"name": name})  # fmt: skip
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    uid = (domain.get("metadata") or {}).get("uid")
    return str(uid) if uid else None


def create_event(api: ApiClient, namespace: str, event: Json) -> None:
    """POST a core/v1 Event (a plain dict) into ``namespace``."""
    _json(api, "POST", "/api/v1/namespaces/{namespace}/events", path_params={"namespace": namespace},
          body=event, query=[("fieldManager", FIELD_MANAGER)])  # fmt: skip


def read_secret(api: ApiClient, namespace: str, name: str) -> Json:
    """GET one Secret as a dict (``data`` values base64, as the API serves them)."""
    return _json(api, "GET", "/api/v1/namespaces/{namespace}/secrets/{name}",
                 path_params={"namespace": namespace, "name": name})  # fmt: skip


_WEBHOOK_CONFIG = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/{name}"


def read_mutating_webhook_configuration(api: ApiClient, name: str) -> Json:
    """GET one MutatingWebhookConfiguration exactly as stored (fields the client's models lack are kept)."""
    return _json(api, "GET", _WEBHOOK_CONFIG, path_params={"name": name})


def json_patch_mutating_webhook_configuration(api: ApiClient, name: str, operations: list[Json]) -> None:
    """An RFC 6902 JSON patch (its ``test`` operations make it conditional) under our field manager."""
    _json(api, "PATCH", _WEBHOOK_CONFIG, path_params={"name": name}, body=operations,
          content_type="application/json-patch+json", query=[("fieldManager", FIELD_MANAGER)])  # fmt: skip
