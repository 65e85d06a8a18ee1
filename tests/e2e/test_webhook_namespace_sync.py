"""The operator keeps the webhook configuration at one entry per domain, on the real API server.

Proofs, with a configuration installed as the chart would (one template entry, ``failurePolicy: Fail``,
narrowed by a platform selector to the test's namespaces) and ``--webhook-configuration``:

- with no domain the operator empties the list (the template is kept in an annotation);
- a Ready domain gets exactly one entry ``<domain>.pods.hwcap.dev`` whose namespaceSelector is the domain's
  AND the template's AND the never-touched namespaces, every other field the template's; the stored form
  equals what the operator computes (so it does not patch again);
- the user-visible point: with the operator DOWN and ``Fail``, a pod in a namespace no domain selects is
  created, while one in the domain's namespace is refused naming the domain's entry; with it up, a pod in the
  unselected namespace never reaches the webhook (its admission counter does not move);
- two domains selecting one namespace: the API server has two entries to call; the pod is denied on the first
  call (exactly one denial counted) with a message naming both domains;
- deleting a domain removes its entry; the last one leaves an empty list.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from hwcap_dev.devcluster.testing import ClusterAccess
from hwcap_operator import keys
from hwcap_operator.admission.selection import never_touched_namespaces
from hwcap_operator.admission.webhook_entries import plan_sync
from hwcap_operator.domain import api
from tests.e2e.webhook_support import (
    TEST_LABEL,
    WebhookTLS,
    admissions,
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
)
from tests.support.domains import Domains
from tests.support.namespaces import temporary_namespace
from tests.support.operator import OperatorProcess, running_operator
from tests.support.ports import free_port
from tests.support.waits import wait_for

G3 = "arm64-aws-graviton3-neoverse-v1"
OPERATOR_NAMESPACE = "hwcap-system"  # OperatorProcess's default --namespace
NFD_NAMESPACE = keys.NFD_NAMESPACE_DEFAULT
NAME_LABEL = "kubernetes.io/metadata.name"
Json = dict[str, Any]


def pod(name: str) -> Json:
    container = {"name": "app", "image": "registry.invalid/app:1", "command": ["/app"]}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": {"containers": [container]}}


def all_admissions(op: OperatorProcess) -> float:
    """Every admission request the operator's webhook answered, whatever the result."""
    text = op.metrics()
    return sum(admissions(text, result) for result in ("mutated", "untouched", "denied"))


def configuration(api_client: client.ApiClient, name: str) -> Json:
    admission = client.AdmissionregistrationV1Api(api_client)
    body: Json = api_client.sanitize_for_serialization(admission.read_mutating_webhook_configuration(name))
    return body


def entries(api_client: client.ApiClient, name: str) -> list[Json]:
    return list(configuration(api_client, name).get("webhooks") or [])


def wait_entries(api_client: client.ApiClient, name: str, wanted: list[str]) -> list[Json]:
    def probe() -> list[Json] | None:
        hooks = entries(api_client, name)
        return hooks if [h["name"] for h in hooks] == wanted else None

    if not wanted:  # an empty list is falsy: wait for the names, then read again
        wait_for(f"{name} to have no webhook entry", lambda: not entries(api_client, name))
        return []
    return wait_for(f"{name} to hold the entries {wanted}", probe)


@pytest.fixture
def other_namespace(core_v1: client.CoreV1Api, namespace: str) -> Iterator[str]:
    """A second namespace that no domain selects."""
    with temporary_namespace(core_v1, f"{namespace}-x"[:63]) as name:
        yield name


@pytest.mark.usefixtures("crd", "local_control_plane")
def test_webhook_configuration_follows_the_domains(
    tls: WebhookTLS, kubectl: Any, api_client: client.ApiClient, core_v1: client.CoreV1Api, node_factory: Any,
    namespace: str, other_namespace: str, control_plane: ClusterAccess, tmp_path: Path,
) -> None:  # fmt: skip
    port = free_port()
    mwc = f"hwcap-sync-{namespace}"[:63]
    # As the chart installs it, but the platform selector keeps it to this test's namespaces (ANDed in later).
    installed = webhook_configuration(mwc, port, tls, [namespace, other_namespace], failure_policy="Fail",
                                      timeout_seconds=2)  # fmt: skip
    template = installed["webhooks"][0]
    for _ in range(2):
        node_factory(G3, labels={TEST_LABEL: namespace})
    node_factory(G3, labels={TEST_LABEL: f"{namespace}-2"[:63]})
    label_namespace(core_v1, namespace, {TEST_LABEL: namespace})
    one, two = f"sync-{namespace}"[:60], f"sync2-{namespace}"[:60]
    domains = Domains(api_client)
    with installed_webhook(api_client, installed), running_operator(
        control_plane.kubeconfig, tmp_path, webhook=(port, tls.cert, tls.key),
        extra=["--webhook-configuration", mwc, "--webhook-check-seconds", "2"],
    ) as op:  # fmt: skip
        try:
            # No domain yet: the startup sync empties the list; the chart's entry is kept as the template.
            wait_entries(api_client, mwc, [])
            stored = json.loads(configuration(api_client, mwc)["metadata"]["annotations"][
                keys.WEBHOOK_TEMPLATE_ANNOTATION])  # fmt: skip
            assert stored["clientConfig"] == template["clientConfig"] and stored["name"] == template["name"]

            kubectl("apply", "-f", "-", input=domain_manifest(one, namespace, {TEST_LABEL: namespace}))
            domains.wait_condition(one, "Ready", "True")
            (hook,) = wait_entries(api_client, mwc, [f"{one}.pods.hwcap.dev"])
            for field in ("clientConfig", "failurePolicy", "timeoutSeconds", "rules", "sideEffects",
                          "admissionReviewVersions", "reinvocationPolicy"):  # fmt: skip
                assert hook[field] == template[field], field
            assert hook["namespaceSelector"] == {
                "matchLabels": {TEST_LABEL: namespace},
                "matchExpressions": [
                    {"key": NAME_LABEL, "operator": "In", "values": sorted([namespace, other_namespace])},
                    {"key": NAME_LABEL, "operator": "NotIn",
                     "values": sorted(["kube-system", OPERATOR_NAMESPACE, NFD_NAMESPACE])},
                ],
            }  # fmt: skip
            assert hook["objectSelector"] == template["objectSelector"]
            # What the API server stored is what the operator computes: no patch on the next sync.
            spec = api.MigrationDomainSpec.model_validate(domains.get(one)["spec"])
            never = never_touched_namespaces(OPERATOR_NAMESPACE, NFD_NAMESPACE)
            assert not plan_sync(configuration(api_client, mwc), [(one, spec)], never).changed
            wait_until_injected(core_v1, namespace, one)

            # `helm upgrade` puts the chart's broad entry back while the domains are idle: the operator's
            # periodic check restores the per-domain entries without any domain event.
            client.AdmissionregistrationV1Api(api_client).patch_mutating_webhook_configuration(
                mwc, [{"op": "replace", "path": "/webhooks", "value": [template]}],
                _content_type="application/json-patch+json")  # fmt: skip
            # Well inside the operator's 20 s domain resync: only the 2 s periodic check can restore it.
            wait_for("the per-domain entry to be restored", lambda: [h["name"] for h in entries(api_client, mwc)]
                     == [f"{one}.pods.hwcap.dev"], timeout=10)  # fmt: skip

            # The operator down with Fail: only the domain's namespace is blocked.
            op.stop()
            attempts = iter(range(1000))

            def refused() -> str | None:
                result = kubectl_create(kubectl, namespace, pod(f"down-{next(attempts)}"))
                # The API server loads configurations asynchronously: wait until it calls the domain's entry.
                return result.stderr if f'failed calling webhook "{one}.pods.hwcap.dev"' in result.stderr else None

            wait_for("a pod in the domain's namespace to be refused by its entry", refused, timeout=60)
            created = kubectl_create(kubectl, other_namespace, pod("while-down"))
            assert created.returncode == 0, created.stderr
            assert strip_server_fields(read_pod(core_v1, other_namespace, "while-down")) == strip_server_fields(
                pod("while-down"))

            # Up again: the unselected namespace's pods never reach the webhook; the domain's do.
            op.start()
            wait_until_injected(core_v1, namespace, one)
            before = all_admissions(op)
            assert kubectl_create(kubectl, other_namespace, pod("while-up")).returncode == 0
            assert all_admissions(op) == before
            assert pod_annotations(read_pod(core_v1, other_namespace, "while-up")) == {}
            assert kubectl_create(kubectl, namespace, pod("selected")).returncode == 0
            assert all_admissions(op) == before + 1
            assert pod_annotations(read_pod(core_v1, namespace, "selected"))[keys.POD_DOMAIN_ANNOTATION] == one

            # A second domain over the same namespace: two entries match; the first call denies.
            kubectl("apply", "-f", "-", input=domain_manifest(two, f"{namespace}-2"[:63], {TEST_LABEL: namespace}))
            domains.wait_condition(two, "Ready", "True")
            wait_entries(api_client, mwc, sorted([f"{one}.pods.hwcap.dev", f"{two}.pods.hwcap.dev"]))

            def denied_by_both() -> str | None:
                result = kubectl_create(kubectl, namespace, pod(f"both-{next(attempts)}"))
                return result.stderr if result.returncode != 0 else None

            message = wait_for("a pod two domains select to be denied", denied_by_both, timeout=60)
            assert one in message and two in message, message
            denied = admissions(op.metrics(), "denied")
            assert kubectl_create(kubectl, namespace, pod("both-final")).returncode != 0
            assert admissions(op.metrics(), "denied") == denied + 1  # one call, not one per entry

            delete_domain(api_client, two)
            wait_entries(api_client, mwc, [f"{one}.pods.hwcap.dev"])
            delete_domain(api_client, one)
            wait_entries(api_client, mwc, [])
        finally:
            if op.proc is None or op.proc.poll() is not None:
                op.start()  # the domains' finalizers need a running operator
            for name in (one, two):
                delete_domain(api_client, name)
