"""What the cluster verbs read about nodes, read the way the operator reads it.

The operator judges a node from its Node object *and* NFD's NodeFeature object (before the labels: NFD's
labels leave out many x86 CPUID flags, so a mask naming them would make a node look as if it lacked them;
docs/concepts.md, "a source's silence is not absence"). ``check``, ``what-if`` and ``migrate`` must reach the
same verdict, so they read both through here.
"""

from __future__ import annotations

from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from hwcap_operator import keys
from hwcap_operator.domain.node_features import NodeFeatures, node_features
from hwcap_operator.kube.view import NFD_NODE_NAME_LABEL

NFD_GROUP, NFD_VERSION, NFD_PLURAL = keys.NFD_GROUP, keys.NFD_VERSION, keys.NFD_PLURAL


def node_feature_objects(api: client.ApiClient, node: str | None = None
                         ) -> tuple[dict[str, dict[str, Any]], str | None]:  # fmt: skip
    """NFD's NodeFeature objects by node name (of ``node`` only, or all), skipping our agent's own, as the
    operator does; ``({}, why)`` when they exist but cannot be read (no NFD in the cluster is no problem)."""
    selector = f"{NFD_NODE_NAME_LABEL}={node}" if node else None
    try:
        found: Any = client.CustomObjectsApi(api).list_cluster_custom_object(
            NFD_GROUP, NFD_VERSION, NFD_PLURAL, label_selector=selector)
    except ApiException as exc:
        if exc.status == 404:  # no NFD in this cluster: the labels and the agent's words are all there is
            return {}, None
        return {}, (f"NodeFeature objects could not be read ({exc.status} {exc.reason}); the node's labels "
                    "and agent words alone were used")  # fmt: skip
    out: dict[str, dict[str, Any]] = {}
    for item in found.get("items") or []:
        meta = item.get("metadata") or {}
        labels = meta.get("labels") or {}
        if keys.NODEFEATURE_PUBLISHER_LABEL in labels:
            continue
        out.setdefault(str(labels.get(NFD_NODE_NAME_LABEL) or meta.get("name")), item)
    return out, None


def features_of(api: client.ApiClient, node: dict[str, Any]) -> tuple[NodeFeatures, str | None]:
    """One Node (a dict) as the operator sees it, with its NodeFeature; and why that could not be read, if so."""
    name = str((node.get("metadata") or {}).get("name"))
    objects, unread = node_feature_objects(api, name)
    return node_features(node, objects.get(name)), unread
