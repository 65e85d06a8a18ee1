"""Events posted from outside kopf's handlers (the webhook), straight through the API in a worker thread.

``kopf.event`` only works inside kopf's per-object tasks: it reads the event queue from context variables
that kopf sets there, so from the aiohttp webhook handler it raised ``LookupError`` and the API server saw a
500 for a pod that should have been admitted with a warning. The webhook answers first and posts after,
never waiting on the API; a failed post is logged, it never fails an admission.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Mapping
from typing import Any

from kubernetes import client

from hwcap_operator.kube import raw_api
from hwcap_operator.kube.http_server import EventSink

log = logging.getLogger(__name__)

COMPONENT = "hwcap-operator"
#: Like kopf: Events of cluster-scoped objects (MigrationDomain) go to this namespace.
CLUSTER_SCOPED_EVENT_NAMESPACE = "default"
_MESSAGE_LIMIT = 1024


def event_for(body: Mapping[str, Any], event_type: str, reason: str, message: str) -> dict[str, Any]:
    """A core/v1 Event about ``body`` (apiVersion, kind and metadata name/uid/namespace are read), as JSON."""
    meta = body.get("metadata") or {}
    namespace = meta.get("namespace") or CLUSTER_SCOPED_EVENT_NAMESPACE
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    involved = {"apiVersion": body.get("apiVersion"), "kind": body.get("kind"), "name": meta.get("name"),
                "uid": meta.get("uid"), "namespace": meta.get("namespace")}  # fmt: skip
    return {
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"generateName": f"{meta.get('name') or 'hwcap'}.", "namespace": namespace},
        "involvedObject": {k: v for k, v in involved.items() if v is not None},
        "type": event_type, "reason": reason, "message": message[:_MESSAGE_LIMIT], "count": 1,
        "firstTimestamp": now, "lastTimestamp": now, "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
    }  # fmt: skip


def api_event_poster(api: client.ApiClient) -> EventSink:
    """A synchronous ``EventSink`` for code already in a worker thread (the domain reconciler's writes).

    ``kopf.event`` is not safe there either: it hands the Event to kopf's queue through context variables
    and the event loop, which a worker thread must not touch.
    """

    def post(body: dict[str, Any], event_type: str, reason: str, message: str) -> None:
        event = event_for(body, event_type, reason, message)
        try:
            raw_api.create_event(api, event["metadata"]["namespace"], event)
        except Exception as exc:  # best effort, like every Event
            log.warning("could not post Event %s: %s", reason, exc)

    return post


def api_event_sink(api: client.ApiClient) -> EventSink:
    """An ``EventSink`` for the webhook: called on the event loop, posts in the default executor."""
    post_now = api_event_poster(api)

    def post(body: dict[str, Any], event_type: str, reason: str, message: str) -> None:
        asyncio.get_running_loop().run_in_executor(None, post_now, body, event_type, reason, message)

    return post
