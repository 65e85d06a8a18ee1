"""The operator's own Node list+watch against the real apiserver: paged listing, then events.

The follower fills the view page by page while fetching the next page (so the operator never holds the
whole NodeList next to its view), drops nodes the list no longer holds, then follows changes.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from kubernetes import client

from hwcap_operator.kube.node_list import NodeFollower
from hwcap_operator.kube.view import ClusterView

PROFILE = "arm64-aws-graviton3-neoverse-v1"


async def _eventually(check: Any, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("the watch did not deliver the change in time")
        await asyncio.sleep(0.1)


def test_pages_fill_the_view_and_the_watch_follows(node_factory: Any, api_client: client.ApiClient,
                                                   core_v1: client.CoreV1Api) -> None:  # fmt: skip
    made = [node_factory(PROFILE)["metadata"]["name"] for _ in range(5)]
    everything = {n.metadata.name for n in core_v1.list_node().items}
    view = ClusterView(operator_namespace="hwcap-system")
    view.update_node({"metadata": {"name": "gone-before-the-restart", "labels": {}}, "status": {}})

    async def scenario() -> None:
        follower = NodeFollower(api_client, view)
        await follower.start(page_size=2)  # at least three pages for our five nodes
        try:
            assert set(made) <= set(view.nodes) <= everything | set(made)
            assert "gone-before-the-restart" not in view.nodes
            assert view.nodes[made[0]]["metadata"]["labels"]["kubernetes.io/arch"] == "arm64"
            core_v1.patch_node(made[0], {"metadata": {"labels": {"pool": "moved"}}})
            core_v1.delete_node(made[1])
            await _eventually(lambda: view.nodes.get(made[0], {}).get("metadata", {}).get("labels", {})
                              .get("pool") == "moved" and made[1] not in view.nodes)  # fmt: skip
        finally:
            follower.stop()

    asyncio.run(scenario())
