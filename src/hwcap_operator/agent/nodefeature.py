"""The agent's optional NFD ``NodeFeature``: the same reading as its Node annotations, in NFD's own API, so
NodeFeatureRules (and NFD users' tooling) can use the kernel's HWCAP words and the features they name.

NFD's master merges every NodeFeature that names a node (label ``nfd.node.kubernetes.io/node-name``), from any
namespace it watches, with its worker's own. Ours lives in the agent's namespace under the name
``hwcap-<node>`` and carries :data:`PUBLISHER_LABEL`, which the operator's view skips: it reads NFD's own
reading as an independent source, never our copy of the agent's.

Features published (NodeFeatureRule ``matchFeatures`` names them ``hwcap.auxv`` and ``hwcap.features``):

- attribute feature ``hwcap.auxv``: ``hwcap`` .. ``hwcap4`` (hex words), ``arch``, ``kernelRelease``,
  ``inheritance`` (supported / unsupported / unknown);
- flag feature ``hwcap.features``: one flag per feature the words set, in /proc/cpuinfo spelling.
"""

from __future__ import annotations

from typing import Any, cast

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from hwcap_operator import keys
from hwcap_operator.agent.report import AgentReport
from hwcap_operator.mask import FeatureMask

GROUP, VERSION, PLURAL, KIND = "nfd.k8s-sigs.io", "v1alpha1", "nodefeatures", "NodeFeature"
#: NFD associates a NodeFeature with a node by this label.
NODE_NAME_LABEL = "nfd.node.kubernetes.io/node-name"
#: Marks the NodeFeatures the agent publishes (the operator's view ignores them).
PUBLISHER_LABEL = keys.NODEFEATURE_PUBLISHER_LABEL
PUBLISHER = "hwcap-agent"
FIELD_MANAGER = "hwcap-agent"


def object_name(node_name: str) -> str:
    return f"hwcap-{node_name}"[:253]


def nodefeature(report: AgentReport, node_name: str, namespace: str) -> dict[str, Any]:
    """The whole NodeFeature object for one observation."""
    names = FeatureMask.from_words(report.arch, *report.hwcap).names()
    attributes = {f"hwcap{'' if i == 0 else i + 1}": f"{word:#x}" for i, word in enumerate(report.hwcap)}
    attributes.update(arch=report.arch, kernelRelease=report.kernel_release, inheritance=report.inheritance)
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "metadata": {
            "name": object_name(node_name),
            "namespace": namespace,
            "labels": {NODE_NAME_LABEL: node_name, PUBLISHER_LABEL: PUBLISHER},
        },
        "spec": {
            "features": {
                "attributes": {"hwcap.auxv": {"elements": attributes}},
                "flags": {"hwcap.features": {"elements": {name: {} for name in sorted(names)}}},
            },
        },
    }


def publish(api: client.ApiClient, report: AgentReport, node_name: str, namespace: str) -> bool:
    """Create or replace the node's NodeFeature when it differs; True when something was written."""
    custom = client.CustomObjectsApi(api)
    wanted = nodefeature(report, node_name, namespace)
    name = wanted["metadata"]["name"]
    try:
        current = cast(dict[str, Any], custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name))
    except ApiException as exc:
        if exc.status != 404:
            raise
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, wanted, field_manager=FIELD_MANAGER)
        return True
    labels = (current.get("metadata") or {}).get("labels") or {}
    if current.get("spec") == wanted["spec"] and labels.items() >= wanted["metadata"]["labels"].items():
        return False
    wanted["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]  # a concurrent write conflicts
    custom.replace_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name, wanted,
                                            field_manager=FIELD_MANAGER)  # fmt: skip
    return True
