"""The operator down: the webhook configuration's failurePolicy decides, and the operator's return heals.

``Fail``: the API server refuses pod creation in the selected namespaces, naming the webhook (no pod starts
unmasked). ``Ignore``: pods are created exactly as written (availability first; the chart's default). Each
case first proves the webhook injects while the operator is up, and after a restart that it injects again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from hwcap_operator import keys
from tests.e2e.webhook_support import (
    TEST_LABEL,
    WEBHOOK_NAME,
    WebhookTLS,
    delete_domain,
    domain_manifest,
    installed_webhook,
    kubectl_create,
    label_namespace,
    pod_annotations,
    read_pod,
    strip_server_fields,
    wait_until_injected,
    webhook_configuration,
    webhook_tls,
)
from tests.support.domains import Domains
from tests.support.operator import OperatorProcess, OperatorStarter
from tests.support.waits import wait_for

G3 = "arm64-aws-graviton3-neoverse-v1"
Json = dict[str, Any]


@pytest.fixture
def operator(crd: None, tls: WebhookTLS, start_operator: OperatorStarter) -> tuple[OperatorProcess, WebhookTLS]:
    """A webhook-serving operator of this test's own: the tests stop it."""
    return start_operator(tls=tls), tls


def pod(name: str) -> Json:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "app", "image": "registry.invalid/app:1", "command": ["/app"],
                                     "args": ["--serve"]}]}}  # fmt: skip


@pytest.mark.parametrize("failure_policy", ["Fail", "Ignore"])
def test_operator_down_behaves_as_the_failure_policy_says(
    failure_policy: str, operator: tuple[OperatorProcess, WebhookTLS], kubectl: Any, api_client: client.ApiClient,
    core_v1: client.CoreV1Api, node_factory: Any, namespace: str,
) -> None:  # fmt: skip
    op, tls = operator
    assert op.webhook is not None
    for _ in range(2):
        node_factory(G3, labels={TEST_LABEL: namespace})
    label_namespace(core_v1, namespace, {TEST_LABEL: namespace})
    name = f"fp-{namespace}"[:63]
    domains = Domains(api_client)
    config = webhook_configuration(f"hwcap-{namespace}", op.webhook[0], tls, [namespace],
                                   failure_policy=failure_policy, timeout_seconds=2)  # fmt: skip
    with installed_webhook(api_client, config):
        try:
            kubectl("apply", "-f", "-", input=domain_manifest(name, namespace, {TEST_LABEL: namespace}))
            domains.wait_condition(name, "Ready", "True")
            wait_until_injected(core_v1, namespace, name)
            assert kubectl_create(kubectl, namespace, pod("while-up")).returncode == 0
            assert pod_annotations(read_pod(core_v1, namespace, "while-up"))[keys.POD_DOMAIN_ANNOTATION] == name

            op.stop()
            result = kubectl_create(kubectl, namespace, pod("while-down"))
            if failure_policy == "Fail":
                assert result.returncode != 0
                assert f'failed calling webhook "{WEBHOOK_NAME}"' in result.stderr, result.stderr
                with pytest.raises(client.ApiException) as missing:
                    core_v1.read_namespaced_pod("while-down", namespace)
                assert missing.value.status == 404
            else:
                assert result.returncode == 0, result.stderr
                stored = read_pod(core_v1, namespace, "while-down")
                assert strip_server_fields(stored) == strip_server_fields(pod("while-down"))

            op.start()
            wait_until_injected(core_v1, namespace, name)
            assert kubectl_create(kubectl, namespace, pod("after-restart")).returncode == 0
            stored = read_pod(core_v1, namespace, "after-restart")
            assert pod_annotations(stored)[keys.POD_DOMAIN_ANNOTATION] == name
        finally:
            if op.proc is None or op.proc.poll() is not None:
                op.start()  # the domain's finalizer needs a running operator
            delete_domain(api_client, name)


def test_the_api_server_verifies_the_webhook_certificate(
    operator: tuple[OperatorProcess, WebhookTLS], kubectl: Any, api_client: client.ApiClient,
    core_v1: client.CoreV1Api, namespace: str, tmp_path: Path,
) -> None:  # fmt: skip
    """TLS is real: a caBundle of another CA makes every call fail (and Fail refuses the pod)."""
    op, _ = operator
    assert op.webhook is not None
    stranger = webhook_tls(tmp_path / "other-ca")
    config = webhook_configuration(f"hwcap-{namespace}", op.webhook[0], stranger, [namespace], timeout_seconds=2)
    attempts = iter(range(1000))
    with installed_webhook(api_client, config):

        def refused() -> str | None:
            result = kubectl_create(kubectl, namespace, pod(f"untrusted-{next(attempts)}"))
            return result.stderr if result.returncode != 0 else None

        # The API server loads new configurations asynchronously: until it does, the pod is created.
        message = wait_for("the API server to call the webhook", refused, timeout=60)
        assert f'failed calling webhook "{WEBHOOK_NAME}"' in message and "x509" in message, message
