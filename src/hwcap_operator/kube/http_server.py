"""HTTP glue for the mutating webhook and the plain-HTTP health/metrics endpoints.

The server only translates AdmissionReview JSON to a call of a pure decision function and back; it never
calls the Kubernetes API on the request path (the decision reads the operator's in-memory view). A decision
that raises is answered as a denial with the error text, so a bug never turns into a hung API server call.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from hwcap_operator.kube.metrics import OperatorMetrics

log = logging.getLogger(__name__)

MUTATE_PODS_PATH = "/mutate-pods"


@dataclass(frozen=True)
class AdmissionOutcome:
    """What the webhook answers for one review: allow (with an optional JSON patch) or deny with a message."""

    allowed: bool
    result: str  # metric label: "mutated", "untouched", "denied", "error"
    patch: list[dict[str, Any]] = field(default_factory=list)
    warnings: tuple[str, ...] = ()
    message: str = ""
    code: int = 200
    #: Events to post once answered: (involved object, type, reason, message).
    events: tuple[tuple[dict[str, Any], str, str, str], ...] = ()


AdmissionDecider = Callable[[Mapping[str, Any]], AdmissionOutcome]


class DecisionUnavailable(Exception):
    """The decider cannot decide yet (view not loaded): HTTP 503, so the webhook's failurePolicy applies."""


def review_response(request: Mapping[str, Any], outcome: AdmissionOutcome) -> dict[str, Any]:
    """Build the admission.k8s.io/v1 AdmissionReview response for ``outcome``."""
    response: dict[str, Any] = {"uid": request.get("uid", ""), "allowed": outcome.allowed}
    if outcome.patch:
        response["patchType"] = "JSONPatch"
        response["patch"] = base64.b64encode(json.dumps(outcome.patch).encode()).decode()
    if outcome.warnings:
        response["warnings"] = list(outcome.warnings)
    if not outcome.allowed:
        response["status"] = {"code": outcome.code if outcome.code != 200 else 403, "message": outcome.message}
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response}


EventSink = Callable[[dict[str, Any], str, str, str], None]


def webhook_app(decide: AdmissionDecider, metrics: OperatorMetrics, post_event: EventSink | None = None
                ) -> web.Application:  # fmt: skip
    """The TLS-served application: POST /mutate-pods.

    ``decide`` runs in a worker thread: it may wait on an image registry to resolve an entrypoint, and the
    event loop must keep serving other reviews and the operator's watches meanwhile.
    """

    async def mutate(http_request: web.Request) -> web.Response:
        try:
            review = await http_request.json()
            request = review["request"]
        except (ValueError, KeyError, TypeError) as exc:
            metrics.admissions.labels(result="error").inc()
            return web.json_response({"error": f"not an AdmissionReview: {exc}"}, status=400)
        started = time.perf_counter()
        try:
            outcome = await asyncio.to_thread(decide, request)
        except DecisionUnavailable as exc:
            metrics.admissions.labels(result="unavailable").inc()
            return web.json_response({"error": f"hwcap-operator: {exc}"}, status=503)
        except Exception as exc:  # a bug must answer, not hang the API server's call
            log.exception("admission decision failed", extra={"uid": request.get("uid")})
            outcome = AdmissionOutcome(allowed=False, result="error", message=f"hwcap-operator: internal error: {exc}",
                                       code=500)
        metrics.admission_duration.observe(time.perf_counter() - started)
        metrics.admissions.labels(result=outcome.result).inc()
        if post_event is not None:
            for involved, event_type, reason, message in outcome.events:
                post_event(involved, event_type, reason, message)
        return web.json_response(review_response(request, outcome))

    app = web.Application()
    app.router.add_post(MUTATE_PODS_PATH, mutate)
    return app


def health_app(metrics: OperatorMetrics, ready: Callable[[], bool]) -> web.Application:
    """Plain-HTTP application for probes and Prometheus: /healthz, /readyz, /metrics."""

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def readyz(_: web.Request) -> web.Response:
        return web.Response(text="ok\n") if ready() else web.Response(text="not ready\n", status=503)

    async def prometheus(_: web.Request) -> web.Response:
        return web.Response(body=metrics.exposition(), content_type="text/plain", charset="utf-8",
                            headers={"X-Content-Type-Options": "nosniff"})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", prometheus)
    return app


def server_ssl_context(certfile: Path, keyfile: Path) -> ssl.SSLContext:
    """TLS for the webhook; the API server requires it and verifies the CA bundle of the configuration."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(certfile, keyfile)
    return context


async def reload_certificate_forever(context: ssl.SSLContext, certfile: Path, keyfile: Path,
                                     interval: float = 30.0) -> None:  # fmt: skip
    """Reload the serving certificate when its files change (cert-manager rotates them in the mounted Secret).

    New TLS handshakes use the reloaded chain; a half-written pair (key and certificate not matching yet) is
    skipped and retried at the next tick, so a rotation never leaves the webhook without a certificate.
    """
    def stamp() -> tuple[float, float]:
        return certfile.stat().st_mtime, keyfile.stat().st_mtime

    last = stamp()
    while True:
        await asyncio.sleep(interval)
        try:
            current = stamp()
            if current == last:
                continue
            context.load_cert_chain(certfile, keyfile)
            last = current
            log.info("reloaded the webhook serving certificate", extra={"certfile": str(certfile)})
        except (OSError, ssl.SSLError) as exc:
            log.warning("webhook certificate not reloaded yet", extra={"certfile": str(certfile), "error": str(exc)})


async def start_site(app: web.Application, host: str, port: int, ssl_context: ssl.SSLContext | None) -> web.AppRunner:
    """Start ``app`` on host:port and return its runner (``await runner.cleanup()`` stops it)."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port, ssl_context=ssl_context).start()
    return runner
