"""The operator's one LIST of Nodes at startup, before any watch or domain daemon runs.

Why not a kopf index: kopf gates every object of an indexed resource's initial listing with a toggle of its
own, and each toggle dropped wakes every waiting object worker, so listing N nodes costs O(N²) wake-ups
(5,000 nodes: ~25 million; measured, it dominated the operator's first convergence). A paged LIST read as
raw JSON fills the view instead, and a plain kopf event handler keeps it current from then on.

Known gap: a node deleted between this LIST and kopf's own initial LIST is never reported DELETED to us and
stays in the view until the next operator start (a window of well under a second at startup).
"""

from __future__ import annotations

import json
from typing import Any

from kubernetes import client

from hwcap_operator.kube.view import Json, slim_node


def list_nodes(api: client.ApiClient, page_size: int = 500) -> list[Json]:
    """Every Node, slimmed as the view keeps it (pages of ``page_size``; raw JSON, no model objects)."""
    core = client.CoreV1Api(api)
    nodes: list[Json] = []
    cont: str | None = None
    while True:
        kwargs: dict[str, Any] = {"limit": page_size, "_preload_content": False}
        if cont:
            kwargs["_continue"] = cont
        response: Any = core.list_node(**kwargs)  # _preload_content=False: the raw urllib3 response
        page = json.loads(response.data)
        nodes.extend(slim_node(item) for item in page.get("items") or [])
        cont = (page.get("metadata") or {}).get("continue")
        if not cont:
            return nodes
