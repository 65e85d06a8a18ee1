"""``existingCert`` end to end: the caBundle the chart renders from the user's CA makes the real kube-apiserver
trust the operator serving the user's certificate (as the Deployment serves it from the provided Secret), and
a caBundle from another CA does not.

No kubelet runs the chart's Deployment here, so the operator runs as a local process with the user's key pair
and the rendered webhook entry is pointed at it by URL; the caBundle is the one ``helm template`` produced.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from hwcap_dev.devcluster import build
from hwcap_dev.devcluster.pki import CertificateAuthority
from tests.e2e.webhook_support import (
    MUTATE_PATH,
    admissions,
    dry_run_create,
    installed_webhook,
    probe_pod,
    webhook_tls,  # fmt: skip
)
from tests.support.operator import OperatorStarter
from tests.support.waits import wait_for

CHART_DIR = Path(__file__).resolve().parents[2] / "charts" / "hwcap-operator"


def rendered_webhook(helm: Any, ca_file: Path) -> dict[str, Any]:
    out = helm("template", "gitops", str(CHART_DIR), "--namespace", "hwcap-system", "--kube-version",
               build.PINS.kubernetes.lstrip("v"), "--set", "existingCert.secretName=user-tls",
               "--set-file", f"existingCert.caBundle={ca_file}").stdout  # fmt: skip
    [webhook] = [d for d in yaml.safe_load_all(out) if d and d["kind"] == "MutatingWebhookConfiguration"]
    return dict(webhook)


def pointed_at(webhook: dict[str, Any], name: str, port: int, namespace: str) -> dict[str, Any]:
    """The rendered configuration, its entry reaching the local operator by URL and only ``namespace``; the
    rendered caBundle is kept as is."""
    body = copy.deepcopy(webhook)
    body["metadata"] = {"name": name}
    for entry in body["webhooks"]:
        entry["clientConfig"] = {"url": f"https://127.0.0.1:{port}{MUTATE_PATH}",
                                 "caBundle": entry["clientConfig"]["caBundle"]}  # fmt: skip
        entry["failurePolicy"] = "Fail"
        entry["namespaceSelector"] = {"matchExpressions": [
            {"key": "kubernetes.io/metadata.name", "operator": "In", "values": [namespace]}]}  # fmt: skip
    return body


def test_the_rendered_ca_bundle_makes_the_apiserver_call_the_webhook_served_with_the_users_certificate(
    crd: None, start_operator: OperatorStarter, helm: Any, api_client: client.ApiClient,
    core_v1: client.CoreV1Api, namespace: str, tmp_path: Path,
) -> None:  # fmt: skip
    user = webhook_tls(tmp_path)  # the user's CA and serving pair (what they put in their Secret)
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(user.ca_pem)
    operator = start_operator(tls=user)
    assert operator.webhook is not None
    port = operator.webhook[0]
    body = pointed_at(rendered_webhook(helm, ca_file), f"gitops-{namespace}", port, namespace)

    before = admissions(operator.metrics(), "untouched")
    with installed_webhook(api_client, body):

        def admitted() -> dict[str, Any] | None:
            got = dry_run_create(core_v1, namespace, probe_pod())
            return got if isinstance(got, dict) else None

        wait_for("a pod admitted through the webhook", admitted, timeout=30)
    assert admissions(operator.metrics(), "untouched") > before  # the API server really called it

    other = tmp_path / "other-ca.pem"
    other.write_bytes(CertificateAuthority.generate("not-the-users-ca").cert_pem)
    wrong = pointed_at(rendered_webhook(helm, other), f"gitops-wrong-{namespace}", port, namespace)
    with installed_webhook(api_client, wrong):

        def refused() -> str | None:
            got = dry_run_create(core_v1, namespace, probe_pod())
            return got if isinstance(got, str) else None

        message = wait_for("the API server refusing an untrusted webhook", refused, timeout=30)
    assert "x509" in message or "certificate" in message, message
