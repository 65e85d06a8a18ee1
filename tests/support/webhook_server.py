"""The real webhook app served over TLS on 127.0.0.1, for the hardening tests and the webhook benchmark.

What is real: the aiohttp app and server settings of ``kube.http_server``, the decider of ``kube.webhook``,
an in-memory ``ClusterView`` holding one Ready arm64 domain whose mask is computed from real dumps in
tests/data/profiles (Graviton2, 3 and 4), TLS from the dev cluster's CA. What is not: no apiserver (the
reviews are what the API server would send for a pod in the domain's namespace).

``python -m tests.support.webhook_server --app webhook|echo|minimal --port N --dir D`` serves one app until killed
(the benchmark runs the server in its own process so the load generator does not share its GIL); ``echo``
is the bare aiohttp baseline: it reads the body and answers a fixed AdmissionReview.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import socket
import ssl
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from hwcap_dev.devcluster.pki import CertificateAuthority
from hwcap_dev.paths import PROFILES_DIR
from hwcap_operator.admission import DomainView, LabelSelector, MutationConfig, NoResolver
from hwcap_operator.features.cpuinfo import parse_cpuinfo
from hwcap_operator.kube import http_server
from hwcap_operator.kube.metrics import OperatorMetrics
from hwcap_operator.kube.view import ClusterView
from hwcap_operator.kube.webhook import make_decider

DOMAIN_NAMESPACE = "shop"
OTHER_NAMESPACE = "plain"
ARM64_DUMPS = ("arm64-aws-graviton2-neoverse-n1.txt", "arm64-aws-graviton3-neoverse-v1.txt",
               "arm64-aws-graviton4-neoverse-v2.txt")  # fmt: skip
CONFIG = MutationConfig(operator_namespace="hwcap-system", init_image="registry.example/hwcap-operator:0.1.0")


def arm64_domain() -> DomainView:
    """A Ready arm64 domain over Graviton2/3/4: the common mask of the real dumps, selecting namespace shop."""
    masks = [parse_cpuinfo((PROFILES_DIR / name).read_text(), source=name).mask for name in ARM64_DUMPS]
    common = masks[0]
    for mask in masks[1:]:
        common = common & mask
    union = masks[0]
    for mask in masks[1:]:
        union = union | mask
    return DomainView.from_mask("arm64-general", common, dropped_features=(union - common).names(),
                                namespace_selector=LabelSelector.parse({"matchLabels": {"pool": "arm64"}}))  # fmt: skip


def loaded_view() -> ClusterView:
    """A view whose first LIST is complete, serving :func:`arm64_domain`."""
    view = ClusterView(operator_namespace="hwcap-system")
    view.namespaces = {DOMAIN_NAMESPACE: {"pool": "arm64"}, OTHER_NAMESPACE: {}}
    view.mark_loaded()
    view.webhook_domains = (arm64_domain(),)
    return view


def pod(containers: int = 1, name: str = "web") -> dict[str, Any]:
    """A Deployment-like pod as the API server sends it after defaulting (commands set: no registry lookup)."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"generateName": f"{name}-", "labels": {"app": name}},
        "spec": {
            "containers": [
                {"name": f"c{i}", "image": "registry.example/app:1.0", "command": ["/app", "--port=8080"],
                 "env": [{"name": "LOG_LEVEL", "value": "info"}], "resources": {"limits": {"cpu": "1"}},
                 "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
                 "imagePullPolicy": "IfNotPresent"}
                for i in range(containers)
            ],
            "restartPolicy": "Always",
            "dnsPolicy": "ClusterFirst",
            "schedulerName": "default-scheduler",
        },
    }


def review(obj: Any, namespace: str = DOMAIN_NAMESPACE, uid: str = "0f6e3a52-1d5b-4c1e-9e0b-6a7c0c9f0001"
           ) -> dict[str, Any]:  # fmt: skip
    """An admission.k8s.io/v1 AdmissionReview of a Pod CREATE of ``obj`` in ``namespace``."""
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
            "namespace": namespace,
            "operation": "CREATE",
            "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
            "object": obj,
            "oldObject": None,
            "dryRun": False,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
        },
    }


def echo_app() -> web.Application:
    """The bare aiohttp baseline: read the body, answer one fixed AdmissionReview (no JSON parsing)."""
    answer = json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                         "response": {"uid": "", "allowed": True}}).encode()  # fmt: skip

    async def echo(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=answer, content_type="application/json")

    app = web.Application(client_max_size=http_server.WebhookLimits().max_body_bytes)
    app.router.add_post(http_server.MUTATE_PODS_PATH, echo)
    return app


#: The annotation :func:`minimal_app` adds (so a caller can see that the API server called it).
MINIMAL_ANNOTATION = "bench.hwcap.dev/minimal-webhook"


def minimal_app() -> web.Application:
    """The least a working mutating webhook does: parse the review and allow it under its uid with a one-op patch
    (the API server checks the uid, so the fixed echo answer cannot be registered). The pod-create benchmark's
    webhook baseline; the patch adds :data:`MINIMAL_ANNOTATION` (assumes the pod has no annotations)."""
    patch = base64.b64encode(json.dumps([{"op": "add", "path": "/metadata/annotations",
                                          "value": {MINIMAL_ANNOTATION: "true"}}]).encode()).decode()  # fmt: skip

    async def allow(request: web.Request) -> web.Response:
        uid = json.loads(await request.read())["request"]["uid"]
        return web.json_response({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                                  "response": {"uid": uid, "allowed": True, "patchType": "JSONPatch",
                                               "patch": patch}})  # fmt: skip

    app = web.Application(client_max_size=http_server.WebhookLimits().max_body_bytes)
    app.router.add_post(http_server.MUTATE_PODS_PATH, allow)
    return app


def webhook_app(limits: http_server.WebhookLimits | None = None) -> web.Application:
    """The product's webhook app over :func:`loaded_view`."""
    return http_server.webhook_app(make_decider(loaded_view(), CONFIG, NoResolver()), OperatorMetrics(),
                                   limits=limits)  # fmt: skip


@dataclass(frozen=True)
class Tls:
    """A CA file and a serving pair for 127.0.0.1/localhost."""

    ca_file: Path
    cert: Path
    key: Path

    @classmethod
    def issue(cls, directory: Path) -> Tls:
        ca = CertificateAuthority.generate()
        ca_file, _ = ca.write(directory / "ca")
        pair = ca.issue("webhook", dns_names=["localhost"], ip_addresses=["127.0.0.1"], server=True)
        cert, key = pair.write(directory / "tls", "tls")
        return cls(ca_file, cert, key)

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def served(app: web.Application, tls: Tls, limits: http_server.WebhookLimits | None = None) -> Iterator[int]:
    """Serve ``app`` with the product's ``start_site`` in a thread of its own; yields the port."""
    port = free_port()
    loop = asyncio.new_event_loop()
    started = threading.Event()
    stop = asyncio.Event()

    async def run() -> None:
        runner = await http_server.start_site(app, "127.0.0.1", port,
                                              http_server.server_ssl_context(tls.cert, tls.key), limits)  # fmt: skip
        started.set()
        try:
            await stop.wait()
        finally:
            await runner.cleanup()

    thread = threading.Thread(target=loop.run_until_complete, args=(run(),), daemon=True)
    thread.start()
    if not started.wait(20):
        raise RuntimeError("webhook did not start")
    try:
        yield port
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(20)


def post(port: int, tls: Tls, body: bytes, content_type: str = "application/json", timeout: float = 30
         ) -> tuple[int, Mapping[str, Any] | str]:  # fmt: skip
    """POST ``body`` to /mutate-pods over TLS; (HTTP status, parsed JSON answer or the raw text)."""
    import http.client

    connection = http.client.HTTPSConnection("127.0.0.1", port, context=tls.client_context(), timeout=timeout)
    try:
        connection.request("POST", http_server.MUTATE_PODS_PATH, body=body, headers={"Content-Type": content_type})
        response = connection.getresponse()
        text = response.read().decode(errors="replace")
    finally:
        connection.close()
    try:
        return response.status, json.loads(text)
    except ValueError:
        return response.status, text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--app", choices=["webhook", "echo", "minimal"], required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", type=Path, required=True, help="holds tls/tls.crt and tls/tls.key")
    args = parser.parse_args()

    async def run() -> None:
        app = {"webhook": webhook_app, "echo": echo_app, "minimal": minimal_app}[args.app]()
        context = http_server.server_ssl_context(args.dir / "tls" / "tls.crt", args.dir / "tls" / "tls.key")
        await http_server.start_site(app, "127.0.0.1", args.port, context)
        await asyncio.Event().wait()

    asyncio.run(run())


if __name__ == "__main__":
    main()
