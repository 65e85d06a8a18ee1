"""Proof of real watch semantics: a watch opened before a change delivers it, and optimistic concurrency
rejects a write carrying a stale resourceVersion."""

from __future__ import annotations

import contextlib
import queue
import threading
from typing import Any

import pytest
from kubernetes import client, watch


def test_watch_sees_a_change(core_v1: client.CoreV1Api, namespace: str) -> None:
    start_rv = core_v1.list_namespaced_config_map(namespace).metadata.resource_version
    events: queue.Queue[tuple[str, Any]] = queue.Queue()
    watcher = watch.Watch()

    def consume() -> None:
        with contextlib.suppress(Exception):  # the stream is cut when the test ends; that is expected
            for event in watcher.stream(
                core_v1.list_namespaced_config_map, namespace, resource_version=start_rv, timeout_seconds=60
            ):
                events.put((event["type"], event["object"]))

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    try:
        body = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="watched"), data={"step": "1"})
        core_v1.create_namespaced_config_map(namespace, body)
        core_v1.patch_namespaced_config_map("watched", namespace, {"data": {"step": "2"}})
        seen: list[tuple[str, str | None]] = []
        while ("MODIFIED", "2") not in seen:
            kind, obj = events.get(timeout=60)
            seen.append((kind, (obj.data or {}).get("step")))
        assert seen == [("ADDED", "1"), ("MODIFIED", "2")]
    finally:
        watcher.stop()  # takes effect at the next event: make one so the thread ends now
        core_v1.delete_namespaced_config_map("watched", namespace)
        thread.join(timeout=60)
    assert not thread.is_alive()


def test_stale_resource_version_is_a_conflict(core_v1: client.CoreV1Api, namespace: str) -> None:
    body = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="contended"), data={"v": "0"})
    first = core_v1.create_namespaced_config_map(namespace, body)
    core_v1.patch_namespaced_config_map("contended", namespace, {"data": {"v": "1"}})
    first.data = {"v": "stale"}  # still carries the old resourceVersion
    with pytest.raises(client.ApiException) as err:
        core_v1.replace_namespaced_config_map("contended", namespace, first)
    assert err.value.status == 409
    assert core_v1.read_namespaced_config_map("contended", namespace).data == {"v": "1"}
