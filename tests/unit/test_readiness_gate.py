"""Until the view holds its first complete LIST, the webhook refuses to decide (HTTP 503, so the webhook
configuration's failurePolicy applies) and /readyz is false; once loaded, the same review is decided."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from tests.support.ports import free_port

from hwcap_operator.admission.entrypoint import NoResolver
from hwcap_operator.admission.model import MutationConfig
from hwcap_operator.kube import http_server
from hwcap_operator.kube.metrics import OperatorMetrics
from hwcap_operator.kube.view import ClusterView
from hwcap_operator.kube.webhook import make_decider

REVIEW: dict[str, Any] = {
    "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
    "request": {"uid": "u1", "kind": {"kind": "Pod"}, "operation": "CREATE", "namespace": "apps",
                "object": {"metadata": {"name": "p", "namespace": "apps"}, "spec": {"containers": []}}},
}  # fmt: skip


async def _answers(view: ClusterView) -> tuple[int, int]:
    """(webhook HTTP status, /readyz HTTP status) for one review against ``view``."""
    metrics = OperatorMetrics()
    decide = make_decider(view, MutationConfig(operator_namespace="hwcap", init_image="img"), NoResolver())
    hook, health = free_port(), free_port()
    runners = [
        await http_server.start_site(http_server.webhook_app(decide, metrics), "127.0.0.1", hook, None),
        await http_server.start_site(http_server.health_app(metrics, ready=lambda: view.loaded),
                                     "127.0.0.1", health, None),
    ]  # fmt: skip
    try:
        async with aiohttp.ClientSession() as session:
            async with session.post(f"http://127.0.0.1:{hook}{http_server.MUTATE_PODS_PATH}", json=REVIEW) as r:
                webhook_status = r.status
            async with session.get(f"http://127.0.0.1:{health}/readyz") as r:
                ready_status = r.status
        return webhook_status, ready_status
    finally:
        for runner in runners:
            await runner.cleanup()


def test_an_unloaded_view_refuses_to_decide_and_is_not_ready() -> None:
    view = ClusterView()
    assert asyncio.run(_answers(view)) == (503, 503)


def test_a_loaded_view_decides_and_is_ready() -> None:
    view = ClusterView()
    view.mark_loaded()
    assert asyncio.run(_answers(view)) == (200, 200)
