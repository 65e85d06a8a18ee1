"""NFD interop on the real API server with NFD's NodeFeature CRD: the agent publishes its reading as a
NodeFeature (the words of its Node annotation, the features they name), rewrites it only when it changes, and
the operator's view keeps reading NFD's own NodeFeature for that node, not the agent's copy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kubernetes import client
from prometheus_client import CollectorRegistry

from hwcap_operator import keys
from hwcap_operator.agent import nodefeature
from hwcap_operator.agent.run import AgentMetrics, run_once
from hwcap_operator.kube.view import ClusterView

PROFILE = "x86_64-amd-zen2-rome-epyc7742"


def cpuinfo_flags() -> set[str]:
    """This machine's feature names as the kernel prints them (the independent expectation)."""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith(("flags", "Features")):
            return set(line.split(":", 1)[1].split())
    raise AssertionError("no flags line in /proc/cpuinfo")


def test_agent_publishes_a_nodefeature_that_nfd_merges_and_the_operator_ignores(
    node_factory: Any, namespace: str, api_client: client.ApiClient, core_v1: client.CoreV1Api
) -> None:
    node = node_factory(PROFILE, node_feature_namespace=namespace)["metadata"]["name"]  # NFD's own NodeFeature too
    metrics = AgentMetrics(CollectorRegistry())
    assert run_once(api_client, node, None, metrics, nodefeature_namespace=namespace) == "patched"

    custom = client.CustomObjectsApi(api_client)
    ours: Any = custom.get_namespaced_custom_object("nfd.k8s-sigs.io", "v1alpha1", namespace, "nodefeatures",
                                               nodefeature.object_name(node))  # fmt: skip
    assert ours["metadata"]["labels"][nodefeature.NODE_NAME_LABEL] == node  # how NFD's master finds the node
    attributes = ours["spec"]["features"]["attributes"]["hwcap.auxv"]["elements"]
    stored: Any = core_v1.read_node(node)
    annotation = stored.metadata.annotations[keys.AGENT_HWCAP_ANNOTATION]
    assert ",".join(attributes[f"hwcap{s}"] for s in ("", "2", "3", "4")) == annotation
    assert attributes["inheritance"] == "unknown"  # no hwcap-exec given to probe with
    flags = set(ours["spec"]["features"]["flags"]["hwcap.features"]["elements"])
    assert flags and flags <= cpuinfo_flags(), flags - cpuinfo_flags()

    # Nothing changed: no write (the resourceVersion stays).
    assert run_once(api_client, node, None, metrics, nodefeature_namespace=namespace) == "unchanged"
    again: Any = custom.get_namespaced_custom_object("nfd.k8s-sigs.io", "v1alpha1", namespace, "nodefeatures",
                                                nodefeature.object_name(node))  # fmt: skip
    assert again["metadata"]["resourceVersion"] == ours["metadata"]["resourceVersion"]

    # The operator's view, fed the namespace's NodeFeatures as its watch would, keeps NFD's reading for the node.
    view = ClusterView()
    listing: Any = custom.list_namespaced_custom_object("nfd.k8s-sigs.io", "v1alpha1", namespace, "nodefeatures")
    listed = listing["items"]
    assert len(listed) == 2
    # The agent's copy arrives last, so that a view which did not skip it would end up holding it.
    for body in sorted(listed, key=lambda b: nodefeature.PUBLISHER_LABEL in b["metadata"].get("labels", {})):
        view.update_nodefeature(body)
    assert keys.NODEFEATURE_PUBLISHER_LABEL not in view.nodefeatures[node]["metadata"].get("labels", {})
    assert "hwcap.features" not in str(view.nodefeatures[node]["spec"])
