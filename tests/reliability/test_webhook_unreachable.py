"""The webhook unreachable (the operator down), counted: under ``failurePolicy: Fail`` every pod of the domain is
refused with a message naming the webhook (none admitted); under ``Ignore`` every pod is admitted as written
and, once the operator is back, every one of them is reported as unmasked (none silent).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from hwcap_dev import reliability
from tests.e2e.webhook_support import (
    WEBHOOK_NAME,
    WebhookTLS,
    installed_webhook,
    kubectl_create,
    wait_until_injected,
    webhook_configuration,
)
from tests.support.domains import Domains
from tests.support.operator import OperatorProcess

pytestmark = pytest.mark.e2e


def pod(name: str) -> dict[str, Any]:
    container = {"name": "app", "image": "registry.invalid/app:1", "command": ["/app"]}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": {"containers": [container]}}


def test_webhook_unreachable_fail_denies_clearly_and_ignore_escapes_are_all_reported(
    rig: tuple[OperatorProcess, str, WebhookTLS], api_client: client.ApiClient, core_v1: client.CoreV1Api,
    kubectl: Any, namespace: str, results: Path,
) -> None:  # fmt: skip
    op, name, tls = rig
    assert op.webhook is not None
    trials = reliability.scaled(full=20, ci=3)
    domains = Domains(api_client)
    config = webhook_configuration(f"hwcap-{namespace}", op.webhook[0], tls, [namespace], failure_policy="Fail",
                                   timeout_seconds=2)  # fmt: skip
    admin = client.AdmissionregistrationV1Api(api_client)
    with installed_webhook(api_client, config) as configuration:
        wait_until_injected(core_v1, namespace, name)
        op.stop()
        fail = {"pods admitted while unreachable": 0, "refusals without a clear message": 0}
        for i in range(trials):
            result = kubectl_create(kubectl, namespace, pod(f"fail-{i}"))
            if result.returncode == 0:
                fail["pods admitted while unreachable"] += 1
            elif f'failed calling webhook "{WEBHOOK_NAME}"' not in result.stderr:
                fail["refusals without a clear message"] += 1
        admin.patch_mutating_webhook_configuration(configuration, [
            {"op": "replace", "path": "/webhooks/0/failurePolicy", "value": "Ignore"}])  # fmt: skip
        admitted = sum(kubectl_create(kubectl, namespace, pod(f"ignore-{i}")).returncode == 0 for i in range(trials))
        op.start()
        status = domains.wait_status(name, lambda s: (s.get("podImpact") or {}).get("unmaskedPods", 0) >= admitted,
                                     f"{admitted} unmasked pods reported", timeout=90)  # fmt: skip
    reported = {e["name"] for e in status["podImpact"]["unmasked"]}
    ignore = {"escapes not reported": admitted - len({f"ignore-{i}" for i in range(trials)} & reported)}
    reliability.record("webhook unreachable under failurePolicy Fail", "webhook down", trials, fail,
                       "the operator stopped; each pod refused with 'failed calling webhook'", directory=results)
    reliability.record("webhook unreachable under failurePolicy Ignore", "webhook down", admitted, ignore,
                       "admitted as written (availability first), then each listed in status.podImpact.unmasked "
                       "once the operator is back", directory=results)  # fmt: skip
    assert fail == dict.fromkeys(fail, 0) and admitted == trials and ignore == {"escapes not reported": 0}
