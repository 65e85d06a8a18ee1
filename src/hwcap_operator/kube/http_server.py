"""HTTP glue for the mutating webhook and the plain-HTTP health/metrics endpoints.

The server only translates AdmissionReview JSON to a call of a pure decision function and back; it never
calls the Kubernetes API on the request path (the decision reads the operator's in-memory view).

What a request can cost is bounded (:class:`WebhookLimits`), because every pod creation in a domain's
namespaces waits on this server and a slow answer under ``failurePolicy: Ignore`` admits a pod unmasked:

- anything that is not an AdmissionReview (not JSON, nested too deep, a charset other than UTF-8, a
  ``request`` that is not an object or has no uid, another apiVersion/kind) is answered HTTP 400 with a
  message; a review whose request or object is malformed is denied with a message (status code 400).
  A decision that raises anyway is denied with the error text: a bug never becomes a hung call;
- reviews are decided in three lanes that cannot starve each other: small ones inline on the event loop
  (no thread hand-off; most pods), ones that need an image-registry lookup in a pool of threads (they
  wait on the network), large ones (a pod with thousands of containers) parsed, decided and serialized
  in one thread of their own with a short queue; past it they get HTTP 429 at once;
- connections that idle, stall in the TLS handshake, the headers or the body are dropped after a few
  seconds, and their number is capped: an idle TLS connection holds ~0.3 MB of buffers.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import logging
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from hwcap_operator.kube.metrics import OperatorMetrics

log = logging.getLogger(__name__)

MUTATE_PODS_PATH = "/mutate-pods"
ADMISSION_API_VERSION = "admission.k8s.io/v1"
MiB = 1024 * 1024


@dataclass(frozen=True)
class WebhookLimits:
    """Bounds on one review and on the connections, with why each value.

    ``max_body_bytes``: the API server takes request bodies up to 3 MiB and etcd stores objects up to
    1.5 MiB (protobuf). The review carries the pod as JSON after defaulting (fields added per container)
    plus the request envelope, which can be larger than either, so twice the API server's limit: every
    storable pod fits, and one request still costs a bounded amount of memory. (aiohttp's default, 1 MiB,
    refused storable pods.)
    ``max_patch_bytes``: a patch of more than 3 MiB adds more than 1.5 MiB of strings (argv, env) to the
    pod: the result could not be stored, so the pod is denied with that reason instead.
    ``heavy_body_bytes``: a review above it goes to the heavy lane (a typical pod is 3-20 KiB, one with
    a hundred containers ~100 KiB).
    ``idle_seconds``: a connection that sends no complete request headers for that long after it opened
    or after its last answer is closed (aiohttp's keep-alive timer covers idle and half-sent headers).
    ``body_seconds``: the body must arrive within that time once the headers did.
    """

    max_body_bytes: int = 6 * MiB
    max_patch_bytes: int = 3 * MiB
    heavy_body_bytes: int = 128 * 1024
    heavy_workers: int = 1
    heavy_queue: int = 3
    blocking_workers: int = 8
    idle_seconds: float = 10.0
    body_seconds: float = 10.0
    handshake_seconds: float = 5.0
    max_connections: int = 256


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


class WouldBlock(Exception):
    """Raised by an inline decider when the decision needs a call that may block (an image-registry lookup)."""


@dataclass(frozen=True)
class Decider:
    """How a decision may run: ``inline`` on the event loop (raises :class:`WouldBlock` when it cannot
    decide without blocking), else ``blocking`` in a worker thread."""

    blocking: AdmissionDecider
    inline: AdmissionDecider | None = None


class BadReview(ValueError):
    """Not an AdmissionReview this webhook can answer (HTTP 400); the message says why."""


def parse_review(body: bytes) -> Mapping[str, Any]:
    """The ``request`` of an admission.k8s.io/v1 AdmissionReview in ``body``; raises :class:`BadReview`."""
    try:
        review = orjson.loads(body)
    except orjson.JSONDecodeError as exc:  # also invalid UTF-8, and nesting past orjson's 1,024 levels
        if "depth limit" in str(exc):
            raise BadReview("not an AdmissionReview: JSON nested too deeply") from None
        raise BadReview(f"not an AdmissionReview: not JSON ({exc})") from None
    if not isinstance(review, dict):
        raise BadReview(f"not an AdmissionReview: the body is a JSON {type(review).__name__}")
    if review.get("apiVersion") != ADMISSION_API_VERSION or review.get("kind") != "AdmissionReview":
        raise BadReview(f"expected apiVersion {ADMISSION_API_VERSION} kind AdmissionReview, got "
                        f"{review.get('apiVersion')!r} {review.get('kind')!r}")  # fmt: skip
    request = review.get("request")
    if not isinstance(request, dict):
        raise BadReview(f"not an AdmissionReview: request is {type(request).__name__}, not an object")
    uid = request.get("uid")
    if not isinstance(uid, str) or not uid:
        raise BadReview("not an AdmissionReview: request.uid is missing")
    return request


_REQUEST_FIELDS: tuple[tuple[str, type | tuple[type, ...]], ...] = (
    ("kind", dict), ("resource", (dict, type(None))), ("operation", str), ("namespace", (str, type(None))),
    ("name", (str, type(None))), ("subResource", (str, type(None))), ("dryRun", (bool, type(None))),
    ("object", (dict, type(None))),
)  # fmt: skip


def request_problem(request: Mapping[str, Any]) -> str | None:
    """Why a review's ``request`` does not follow the AdmissionRequest schema where it is read, or None."""
    for name, types in _REQUEST_FIELDS:
        if not isinstance(request.get(name), types):
            return f"request.{name} is {type(request.get(name)).__name__}, not what AdmissionRequest defines"
    if not isinstance(request["kind"].get("kind"), str):
        return "request.kind.kind is not a string"
    return None


def review_response(request: Mapping[str, Any], outcome: AdmissionOutcome, patch_json: bytes | None = None
                    ) -> dict[str, Any]:  # fmt: skip
    """Build the admission.k8s.io/v1 AdmissionReview response for ``outcome`` (``patch_json``: its patch,
    already serialized)."""
    response: dict[str, Any] = {"uid": request.get("uid", ""), "allowed": outcome.allowed}
    if outcome.patch:
        response["patchType"] = "JSONPatch"
        encoded = patch_json if patch_json is not None else orjson.dumps(outcome.patch)
        response["patch"] = base64.b64encode(encoded).decode()
    if outcome.warnings:
        response["warnings"] = list(outcome.warnings)
    if not outcome.allowed:
        response["status"] = {"code": outcome.code if outcome.code != 200 else 403, "message": outcome.message}
    return {"apiVersion": ADMISSION_API_VERSION, "kind": "AdmissionReview", "response": response}


@dataclass(frozen=True)
class _Answer:
    """One HTTP answer, serialized where it was decided (the heavy lane serializes in its own thread)."""

    status: int
    body: bytes
    result: str
    events: tuple[tuple[dict[str, Any], str, str, str], ...] = ()
    decided_seconds: float | None = None


def _error_answer(status: int, message: str, result: str = "error") -> _Answer:
    return _Answer(status, orjson.dumps({"error": message}), result)


def _decide(request: Mapping[str, Any], decide: AdmissionDecider, limits: WebhookLimits) -> _Answer:
    """Decide one parsed review and serialize the answer. Raises :class:`WouldBlock` from an inline decider."""
    started = time.perf_counter()
    problem = request_problem(request)
    if problem is not None:
        outcome = AdmissionOutcome(False, "error", message=f"hwcap-operator: malformed AdmissionReview: {problem}",
                                   code=400)  # fmt: skip
    else:
        try:
            outcome = decide(request)
        except (WouldBlock, DecisionUnavailable):
            raise
        except RecursionError:
            outcome = AdmissionOutcome(False, "error", message="hwcap-operator: the object is nested too deeply",
                                       code=400)  # fmt: skip
        except Exception as exc:  # a bug must answer, not hang the API server's call
            log.exception("admission decision failed", extra={"uid": request.get("uid")})
            outcome = AdmissionOutcome(False, "error", message=f"hwcap-operator: internal error: {exc}", code=500)
    patch_json: bytes | None = None
    try:
        if outcome.patch:
            patch_json = orjson.dumps(outcome.patch)
            if len(patch_json) > limits.max_patch_bytes:
                outcome = AdmissionOutcome(False, "denied", code=400, message=(
                    f"hwcap-operator: wrapping this pod's containers adds {len(patch_json) / MiB:.1f} MiB to it, "
                    f"more than the API server can store (patches up to {limits.max_patch_bytes / MiB:.0f} MiB); "
                    "split the pod or opt it out"))  # fmt: skip
                patch_json = None
        body = orjson.dumps(review_response(request, outcome, patch_json))
    except (RecursionError, TypeError) as exc:  # orjson: nesting past 255 levels; a value JSON cannot carry
        outcome = AdmissionOutcome(False, "error", code=400,
                                   message=f"hwcap-operator: the object cannot be answered as JSON ({exc})")
        body = orjson.dumps(review_response(request, outcome))
    return _Answer(200, body, outcome.result, outcome.events, time.perf_counter() - started)


def _parse_and_decide(body: bytes, decide: AdmissionDecider, limits: WebhookLimits) -> _Answer:
    try:
        request = parse_review(body)
    except BadReview as exc:
        return _error_answer(400, str(exc))
    try:
        return _decide(request, decide, limits)
    except DecisionUnavailable as exc:
        return _error_answer(503, f"hwcap-operator: {exc}", "unavailable")


class _Lanes:
    """The two thread pools next to the event loop: registry lookups, and large reviews one at a time."""

    def __init__(self, limits: WebhookLimits) -> None:
        self.blocking = concurrent.futures.ThreadPoolExecutor(limits.blocking_workers, "hwcap-admit-io")
        self.heavy = concurrent.futures.ThreadPoolExecutor(limits.heavy_workers, "hwcap-admit-heavy")
        self._heavy_slots = threading.BoundedSemaphore(limits.heavy_workers + limits.heavy_queue)

    def take_heavy_slot(self) -> bool:
        return self._heavy_slots.acquire(blocking=False)

    def release_heavy_slot(self) -> None:
        self._heavy_slots.release()

    def close(self) -> None:
        self.blocking.shutdown(wait=False, cancel_futures=True)
        self.heavy.shutdown(wait=False, cancel_futures=True)


EventSink = Callable[[dict[str, Any], str, str, str], None]


def _content_type_problem(http_request: web.Request) -> str | None:
    media = http_request.content_type
    if media != "application/json" and not media.endswith("+json"):
        return f"Content-Type {media!r}: an AdmissionReview is application/json"
    charset = http_request.charset
    if charset is not None and charset.lower().replace("-", "") != "utf8":
        return f"Content-Type charset {charset!r}: an AdmissionReview is UTF-8 JSON"
    return None


def webhook_app(decide: AdmissionDecider | Decider, metrics: OperatorMetrics, post_event: EventSink | None = None,
                *, limits: WebhookLimits | None = None) -> web.Application:  # fmt: skip
    """The TLS-served application: POST /mutate-pods.

    A plain ``decide`` runs in a worker thread for every review; a :class:`Decider` with ``inline`` decides
    small reviews on the event loop and hands only those that would block to the worker threads.
    """
    limits = limits or WebhookLimits()
    decider = decide if isinstance(decide, Decider) else Decider(blocking=decide)
    lanes = _Lanes(limits)

    async def read_body(http_request: web.Request) -> bytes | None:
        if http_request.content.is_eof():  # the whole body is here already (the usual case): no timer to arm,
            return await http_request.read()  # which costs as much as deciding an untouched pod
        try:
            async with asyncio.timeout(limits.body_seconds):
                return await http_request.read()
        except TimeoutError:
            if http_request.transport is not None:
                http_request.transport.close()  # a stalled body: free the connection, nobody reads the answer
            return None

    async def answer(http_request: web.Request) -> _Answer:
        problem = _content_type_problem(http_request)
        if problem is not None:
            return _error_answer(400, f"hwcap-operator: {problem}")
        declared = http_request.content_length or 0
        if declared > limits.max_body_bytes:
            raise web.HTTPRequestEntityTooLarge(max_size=limits.max_body_bytes, actual_size=declared)
        loop = asyncio.get_running_loop()
        if declared > limits.heavy_body_bytes:
            if not lanes.take_heavy_slot():
                return _error_answer(429, "hwcap-operator: too many large pods under review at once; retry")
            try:
                body = await read_body(http_request)
                if body is None:
                    return _error_answer(408, "hwcap-operator: request body not received in time")
                return await loop.run_in_executor(lanes.heavy, _parse_and_decide, body, decider.blocking, limits)
            finally:
                lanes.release_heavy_slot()
        body = await read_body(http_request)
        if body is None:
            return _error_answer(408, "hwcap-operator: request body not received in time")
        if len(body) > limits.heavy_body_bytes:  # sent without a Content-Length: decide in the heavy lane after all
            return await loop.run_in_executor(lanes.heavy, _parse_and_decide, body, decider.blocking, limits)
        if decider.inline is not None:
            try:
                return _parse_and_decide(body, decider.inline, limits)
            except WouldBlock:
                pass
        return await loop.run_in_executor(lanes.blocking, _parse_and_decide, body, decider.blocking, limits)

    async def mutate(http_request: web.Request) -> web.Response:
        result = await answer(http_request)
        if result.decided_seconds is not None:
            metrics.admission_duration.observe(result.decided_seconds)
        metrics.admissions.labels(result=result.result).inc()
        if post_event is not None:
            for involved, event_type, reason, message in result.events:
                post_event(involved, event_type, reason, message)
        return web.Response(status=result.status, body=result.body, content_type="application/json")

    async def close_lanes(_: web.Application) -> None:
        lanes.close()

    app = web.Application(client_max_size=limits.max_body_bytes)
    app.router.add_post(MUTATE_PODS_PATH, mutate)
    app.on_cleanup.append(close_lanes)
    return app


def health_app(metrics: OperatorMetrics, ready: Callable[[], bool]) -> web.Application:
    """Plain-HTTP application for probes and Prometheus: /healthz, /readyz, /metrics."""

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def readyz(_: web.Request) -> web.Response:
        return web.Response(text="ok\n") if ready() else web.Response(text="not ready\n", status=503)

    async def prometheus(request: web.Request) -> web.Response:
        body, content_type = metrics.exposition(request.headers.get("Accept"))  # OpenMetrics when asked for
        return web.Response(body=body, headers={"Content-Type": content_type, "X-Content-Type-Options": "nosniff"})

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


class _Refused(asyncio.Protocol):
    """Stands in for a connection over the cap: closed as soon as it is made."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.abort()  # type: ignore[attr-defined]


class _ListeningRunner(web.AppRunner):
    """An AppRunner that also owns the listening socket :func:`start_site` opened (for the TLS handshake
    timeout and the connection cap, which aiohttp's TCPSite does not offer)."""

    listener: asyncio.Server | None = None

    async def cleanup(self) -> None:
        if self.listener is not None:
            self.listener.close()
        await super().cleanup()  # closes the open connections
        if self.listener is not None:
            await self.listener.wait_closed()


async def start_site(app: web.Application, host: str, port: int, ssl_context: ssl.SSLContext | None,
                     limits: WebhookLimits | None = None) -> web.AppRunner:  # fmt: skip
    """Start ``app`` on host:port and return its runner (``await runner.cleanup()`` stops it).

    Idle connections and half-sent headers are closed after ``limits.idle_seconds`` (aiohttp's keep-alive
    timer, which runs from the connection's start and from each answer); a TLS handshake must finish in
    ``limits.handshake_seconds``; at most ``limits.max_connections`` connections are served at once.
    """
    limits = limits or WebhookLimits()
    runner = _ListeningRunner(app, access_log=None, keepalive_timeout=limits.idle_seconds)
    await runner.setup()
    server = runner.server
    assert server is not None

    def protocol() -> asyncio.BaseProtocol:
        return _Refused() if len(server.connections) >= limits.max_connections else server()

    runner.listener = await asyncio.get_running_loop().create_server(
        protocol, host, port, ssl=ssl_context, backlog=128,
        ssl_handshake_timeout=limits.handshake_seconds if ssl_context is not None else None)  # fmt: skip
    return runner
