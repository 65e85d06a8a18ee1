"""Nodes into the view without kopf: one paged LIST, then a WATCH from the list's resourceVersion.

Why not kopf: kopf gates every object of an indexed resource's initial listing with a toggle of its own, and
each toggle dropped wakes every waiting object worker, so listing N nodes costs O(N²) wake-ups (5,000 nodes:
~25 million; it dominated the operator's first convergence). Even as a plain event handler, kopf re-lists
and runs each node through its per-object machinery (~3 ms each on a loaded 2-core machine: 20 s of a
restart at 5,000 nodes) and keeps per-object state. Nodes need none of that: no handler writes to them but
the member label. :func:`list_nodes` runs in the startup handler (before any daemon, so the first evaluation
of every domain sees every node); :class:`NodeFollower` then applies watch events on the event loop. The
watch reconnects from the last resourceVersion (bookmarks keep it fresh) and re-lists on 410 Gone or any
error, dropping nodes the new list no longer holds.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from typing import Any

from kubernetes import client
from kubernetes.watch.watch import iter_resp_lines

from hwcap_operator.kube import raw_api
from hwcap_operator.kube.view import ClusterView, Json, slim_node

log = logging.getLogger("hwcap_operator.nodes")

#: Seconds a single WATCH request lasts before it is renewed (the stop flag is checked in between).
WATCH_SECONDS = 60


def list_nodes(api: client.ApiClient, page_size: int = 500) -> tuple[list[Json], str]:
    """Every Node, slimmed as the view keeps it, and the list's resourceVersion (pages; raw JSON, no models)."""
    nodes: list[Json] = []
    cont: str | None = None
    while True:
        page = raw_api.list_nodes_page(api, page_size, cont)
        nodes.extend(slim_node(item) for item in page.get("items") or [])
        meta = page.get("metadata") or {}
        cont = meta.get("continue")
        if not cont:
            return nodes, str(meta.get("resourceVersion") or "")


def replace_nodes(view: ClusterView, nodes: list[Json]) -> None:
    """Make the view's nodes exactly ``nodes`` (a fresh list), waking the domains each change concerns."""
    listed = {str(n["metadata"]["name"]) for n in nodes}
    for gone in [name for name in view.nodes if name not in listed]:
        view.wake(view.delete_node(gone))
    for node in nodes:
        view.wake(view.update_node(node))


class NodeFollower:
    """Watches Nodes in a thread of its own and applies each event to the view on the event loop."""

    def __init__(self, api: client.ApiClient, view: ClusterView) -> None:
        self.api, self.view = api, view
        self.stopped = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self, page_size: int = 500) -> None:
        """LIST page by page into the view, then follow from the list's resourceVersion.

        Each page is applied as it arrives while the next one is fetched in a worker thread: the operator
        never holds the whole list besides the view (at 5,000 nodes that list was ~12 MiB of its peak RSS).
        """
        listed: set[str] = set()
        fetching = asyncio.create_task(asyncio.to_thread(raw_api.list_nodes_page, self.api, page_size))
        while True:
            page = await fetching
            meta = page.get("metadata") or {}
            cont = meta.get("continue")
            if cont:
                fetching = asyncio.create_task(asyncio.to_thread(raw_api.list_nodes_page, self.api, page_size, cont))
            for item in page.get("items") or []:
                node = slim_node(item)
                listed.add(str(node["metadata"]["name"]))
                self.view.wake(self.view.update_node(node))
            del page
            if not cont:
                break
        for gone in [name for name in self.view.nodes if name not in listed]:
            self.view.wake(self.view.delete_node(gone))
        version = str(meta.get("resourceVersion") or "")
        self._loop = asyncio.get_running_loop()
        threading.Thread(target=self._follow, args=(version,), name="node-watch", daemon=True).start()

    def stop(self) -> None:
        self.stopped.set()

    def _post(self, fn: Any, *args: Any) -> bool:
        """Run ``fn(*args)`` on the loop; False once the loop is gone (the operator stopped)."""
        assert self._loop is not None
        try:
            self._loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:
            return False
        return True

    def _apply(self, kind: str, node: Json) -> None:
        name = str(node["metadata"]["name"])
        self.view.wake(self.view.delete_node(name) if kind == "DELETED" else self.view.update_node(node))

    def _follow(self, version: str) -> None:
        failures = 0
        while not self.stopped.is_set():
            try:
                version = self._watch_once(version)
                failures = 0
            except Exception as exc:  # 410 Gone, a dropped connection, an apiserver restart: re-list
                failures += 1
                log.warning("node watch interrupted; listing the nodes again",
                            extra={"error": str(exc), "attempt": failures})  # fmt: skip
                if self.stopped.wait(min(30.0, 0.5 * 2 ** min(failures, 6))):
                    return
                try:
                    nodes, version = list_nodes(self.api)
                except Exception:
                    log.exception("listing the nodes failed; retrying")
                    continue
                if not self._post(replace_nodes, self.view, nodes):
                    return

    def _watch_once(self, version: str) -> str:
        """One WATCH request; returns the resourceVersion to continue from. Raises to ask for a re-list."""
        response = raw_api.watch_nodes(self.api, version, WATCH_SECONDS)
        try:
            for line in iter_resp_lines(response):  # type: ignore[no-untyped-call]
                if self.stopped.is_set():
                    break
                if not line:
                    continue
                event = json.loads(line)
                kind, obj = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    raise RuntimeError(f"watch error {obj.get('code')}: {obj.get('message')}")
                version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
                if kind in ("ADDED", "MODIFIED", "DELETED") and not self._post(self._apply, kind, slim_node(obj)):
                    self.stopped.set()
        finally:
            response.release_conn()
        return version
