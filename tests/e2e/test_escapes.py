"""Escapes on the real apiserver: a pod admitted while the webhook was down (failurePolicy Ignore) and a pod
that opted out are reported (status.podImpact.unmasked, an Event on the pod and on the domain, a metric);
a domain that forbids opting out has such a pod denied with a message naming it.
"""

from __future__ import annotations

from typing import Any

from kubernetes import client

from hwcap_operator import keys
from tests.e2e.webhook_support import (
    TEST_LABEL,
    WebhookTLS,
    delete_domain,
    domain_manifest,
    installed_webhook,
    kubectl_create,
    label_namespace,
    wait_until_injected,
    webhook_configuration,
)
from tests.support.domains import Domains
from tests.support.operator import OperatorStarter
from tests.support.waits import wait_for

G3 = "arm64-aws-graviton3-neoverse-v1"
Json = dict[str, Any]


def pod(name: str, *, labels: dict[str, str] | None = None, annotations: dict[str, str] | None = None) -> Json:
    container = {"name": "app", "image": "registry.invalid/app:1", "command": ["/app"]}
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": labels or {}, "annotations": annotations or {}},
            "spec": {"containers": [container]}}  # fmt: skip


def events_about(core_v1: client.CoreV1Api, namespace: str, kind: str, name: str) -> list[Any]:
    return [e for e in core_v1.list_namespaced_event(namespace).items
            if e.involved_object.kind == kind and e.involved_object.name == name]  # fmt: skip


def test_pods_running_without_the_mask_are_reported_and_a_forbidden_opt_out_is_denied(
    crd: None, tls: WebhookTLS, start_operator: OperatorStarter, kubectl: Any, api_client: client.ApiClient,
    core_v1: client.CoreV1Api, node_factory: Any, namespace: str,
) -> None:  # fmt: skip
    op = start_operator(tls=tls)
    assert op.webhook is not None
    node_factory(G3, labels={TEST_LABEL: namespace})
    label_namespace(core_v1, namespace, {TEST_LABEL: namespace})
    name = f"esc-{namespace}"[:63]
    domains = Domains(api_client)
    config = webhook_configuration(f"hwcap-{namespace}", op.webhook[0], tls, [namespace], failure_policy="Ignore",
                                   timeout_seconds=2)  # fmt: skip
    with installed_webhook(api_client, config):
        try:
            kubectl("apply", "-f", "-", input=domain_manifest(name, namespace, {TEST_LABEL: namespace}))
            domains.wait_condition(name, "Ready", "True")
            wait_until_injected(core_v1, namespace, name)
            masked = kubectl_create(kubectl, namespace, pod("masked"))
            assert masked.returncode == 0, masked.stderr
            opted = kubectl_create(kubectl, namespace, pod("opted", labels={keys.POD_OPT_OUT_ANNOTATION: "false"}))
            assert opted.returncode == 0, opted.stderr
            op.stop()
            escaped = kubectl_create(kubectl, namespace, pod("escaped"))  # Ignore: admitted as written
            assert escaped.returncode == 0, escaped.stderr
            op.start()

            status = domains.wait_status(name, lambda s: (s.get("podImpact") or {}).get("unmaskedPods") == 2,
                                         "two unmasked pods in podImpact", timeout=60)  # fmt: skip
            found = {(e["name"], e["reason"]) for e in status["podImpact"]["unmasked"]}
            assert found == {("escaped", "NotInjected"), ("opted", "OptedOut")}
            for pod_name in ("escaped", "opted"):
                warned = wait_for(f"an UnmaskedPod Event on {pod_name}", lambda p=pod_name: [
                    e for e in events_about(core_v1, namespace, "Pod", p) if e.reason == "UnmaskedPod"])  # fmt: skip
                assert name in warned[0].message and warned[0].type == "Warning"
            assert wait_for("an UnmaskedPods Event on the domain", lambda: [
                e for e in events_about(core_v1, "default", keys.KIND, name) if e.reason == "UnmaskedPods"])
            metrics = op.metrics()
            assert f'hwcap_domain_unmasked_pods{{domain="{name}",reason="NotInjected"}} 1.0' in metrics
            assert f'hwcap_domain_unmasked_pods{{domain="{name}",reason="OptedOut"}} 1.0' in metrics

            kubectl("patch", "migrationdomain", name, "--type=merge", "-p",
                    '{"spec":{"workloads":{"optOut":"Forbid"}}}')  # fmt: skip
            attempts = iter(range(1000))

            def denied() -> str | None:
                result = kubectl_create(kubectl, namespace, pod(
                    f"optout-{next(attempts)}", annotations={keys.POD_OPT_OUT_ANNOTATION: "false"}))  # fmt: skip
                return result.stderr if result.returncode != 0 else None

            message = wait_for("an opted-out pod to be denied", denied, timeout=60)
            assert f"MigrationDomain {name} forbids opting out" in message, message
        finally:
            if op.proc is None or op.proc.poll() is not None:
                op.start()
            delete_domain(api_client, name)
