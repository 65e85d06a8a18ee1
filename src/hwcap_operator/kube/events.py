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

from hwcap_operator.kube.client import FIELD_MANAGER
from hwcap_operator.kube.http_server import EventSink

log = logging.getLogger(__name__)

COMPONENT = "hwcap-operator"
#: Like kopf: Events of cluster-scoped objects (MigrationDomain) go to this namespace.
CLUSTER_SCOPED_EVENT_NAMESPACE = "default"
_MESSAGE_LIMIT = 1024


def event_for(body: Mapping[str, Any], event_type: str, reason: str, message: str) -> client.CoreV1Event:
    """A core/v1 Event about ``body`` (apiVersion, kind and metadata name/uid/namespace are read)."""
    meta = body.get("metadata") or {}
    namespace = meta.get("namespace") or CLUSTER_SCOPED_EVENT_NAMESPACE
    now = dt.datetime.now(dt.UTC)
    return client.CoreV1Event(
        metadata=client.V1ObjectMeta(generate_name=f"{meta.get('name') or 'hwcap'}.", namespace=namespace),
        involved_object=client.V1ObjectReference(
            api_version=body.get("apiVersion"), kind=body.get("kind"), name=meta.get("name"),
            uid=meta.get("uid"), namespace=meta.get("namespace"),
        ),
        type=event_type, reason=reason, message=message[:_MESSAGE_LIMIT], count=1,
        first_timestamp=now, last_timestamp=now, source=client.V1EventSource(component=COMPONENT),
        reporting_component=COMPONENT,
    )  # fmt: skip


def api_event_poster(api: client.ApiClient) -> EventSink:
    """A synchronous ``EventSink`` for code already in a worker thread (the domain reconciler's writes).

    ``kopf.event`` is not safe there either: it hands the Event to kopf's queue through context variables
    and the event loop, which a worker thread must not touch.
    """
    core = client.CoreV1Api(api)

    def post(body: dict[str, Any], event_type: str, reason: str, message: str) -> None:
        event = event_for(body, event_type, reason, message)
        try:
            core.create_namespaced_event(str(event.metadata.namespace), event, field_manager=FIELD_MANAGER)
        except Exception as exc:  # best effort, like every Event
            log.warning("could not post Event %s: %s", reason, exc)

    return post


def api_event_sink(api: client.ApiClient) -> EventSink:
    """An ``EventSink`` for the webhook: called on the event loop, posts in the default executor."""
    post_now = api_event_poster(api)

    def post(body: dict[str, Any], event_type: str, reason: str, message: str) -> None:
        asyncio.get_running_loop().run_in_executor(None, post_now, body, event_type, reason, message)

    return post
