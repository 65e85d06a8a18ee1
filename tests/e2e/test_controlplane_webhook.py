"""Proof admission webhooks work: the real apiserver calls a MutatingWebhookConfiguration's URL over TLS
(a tiny aiohttp server in this test, its certificate from a CA the test makes) and stores the mutation."""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from kubernetes import client

from hwcap_dev.devcluster.pki import CertificateAuthority
from tests.support.waits import wait_for

SEEN_LABEL = "webhook.e2e.hwcap.dev/seen"


class TinyWebhook:
    """An HTTPS admission webhook on loopback that labels every object it admits and records requests."""

    def __init__(self, cert: Path, key: Path) -> None:
        self.requests: list[dict[str, Any]] = []
        self._ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._ctx.load_cert_chain(str(cert), str(key))
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.port = 0

    async def _mutate(self, request: web.Request) -> web.Response:
        review = await request.json()
        self.requests.append(review["request"])
        patch = [{"op": "add", "path": "/metadata/labels", "value": {SEEN_LABEL: "true"}}]
        return web.json_response({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "response": {
                "uid": review["request"]["uid"],
                "allowed": True,
                "patchType": "JSONPatch",
                "patch": base64.b64encode(json.dumps(patch).encode()).decode(),
            },
        })

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/mutate", self._mutate)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self._ctx)
        await site.start()
        self.port = self._runner.addresses[0][1]

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=30)

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)


@pytest.fixture
def webhook_server(tmp_path: Path) -> Iterator[tuple[TinyWebhook, bytes]]:
    ca = CertificateAuthority.generate("e2e-webhook-ca")
    cert, key = ca.issue("tiny-webhook", dns_names=["localhost"], ip_addresses=["127.0.0.1"], server=True).write(
        tmp_path, "webhook"
    )
    server = TinyWebhook(cert, key)
    server.start()
    try:
        yield server, ca.cert_pem
    finally:
        server.stop()


def test_apiserver_calls_mutating_webhook_over_tls(
    api_client: client.ApiClient,
    core_v1: client.CoreV1Api,
    webhook_server: tuple[TinyWebhook, bytes],
    namespace: str,
) -> None:
    # with USE_EXISTING_CLUSTER this works when that apiserver runs on this host (it calls 127.0.0.1)
    server, ca_pem = webhook_server
    admission = client.AdmissionregistrationV1Api(api_client)
    config_name = f"tiny-{namespace}"
    admission.create_mutating_webhook_configuration({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": config_name},
        "webhooks": [{
            "name": "tiny.e2e.hwcap.dev",
            "clientConfig": {"url": f"https://127.0.0.1:{server.port}/mutate",
                             "caBundle": base64.b64encode(ca_pem).decode()},
            "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"],
                       "resources": ["configmaps"]}],
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
            "sideEffects": "None",
            "admissionReviewVersions": ["v1"],
            "failurePolicy": "Fail",
            "timeoutSeconds": 5,
        }],
    })
    try:
        # the apiserver picks up new webhook configurations asynchronously: create until one is mutated
        attempt = 0
        stored = None

        def mutated() -> bool:
            nonlocal attempt, stored
            attempt += 1
            body = client.V1ConfigMap(metadata=client.V1ObjectMeta(name=f"cm-{attempt}"), data={"k": "v"})
            stored = core_v1.create_namespaced_config_map(namespace, body)
            return (stored.metadata.labels or {}).get(SEEN_LABEL) == "true"

        wait_for("a ConfigMap mutated by the webhook", mutated, timeout=60, interval=0.3)
        assert stored is not None and (stored.metadata.labels or {}).get(SEEN_LABEL) == "true"
        names = [r["name"] for r in server.requests]
        assert f"cm-{attempt}" in names
        req = next(r for r in server.requests if r["name"] == f"cm-{attempt}")
        assert req["namespace"] == namespace and req["operation"] == "CREATE"
        assert req["kind"] == {"group": "", "version": "v1", "kind": "ConfigMap"}
        assert req["object"]["data"] == {"k": "v"}
        # only the selected namespace is sent to the webhook
        other = core_v1.create_namespaced_config_map(
            "default", client.V1ConfigMap(metadata=client.V1ObjectMeta(generate_name="unselected-"))
        )
        core_v1.delete_namespaced_config_map(other.metadata.name, "default")
        assert SEEN_LABEL not in (other.metadata.labels or {})
        assert all(r["namespace"] == namespace for r in server.requests)
    finally:
        admission.delete_mutating_webhook_configuration(config_name)
