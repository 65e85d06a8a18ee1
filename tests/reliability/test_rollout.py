"""A rolling restart of two operator replicas while pods are created continuously in a ``failurePolicy: Fail``
domain (≥ 200 pods across the restart): the number of pods admitted without the mask or the placement is
printed and must be 0. Refusals (no replica could decide yet) are counted too; the creator retries them as a
controller would.

Replicas are real ``hwcap-operator run`` processes sharing a leader Lease; the webhook's Service is a loopback
proxy that routes to a new replica as soon as its process exists, before it is ready (see service_proxy.py).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from hwcap_dev import reliability
from hwcap_dev.devcluster.testing import ClusterAccess
from hwcap_operator import keys
from tests.e2e.webhook_support import (
    TEST_LABEL,
    delete_domain,
    domain_manifest,
    installed_webhook,
    label_namespace,
    required_terms,
    wait_until_injected,
    webhook_configuration,
    webhook_tls,
)
from tests.reliability.service_proxy import ServiceProxy
from tests.support.domains import Domains, install_crd
from tests.support.operator import OperatorProcess
from tests.support.ports import free_port

pytestmark = pytest.mark.e2e

G3 = "arm64-aws-graviton3-neoverse-v1"
Json = dict[str, Any]


class PodCreator:
    """Creates pods one after another until stopped; a refused pod is retried (counted) under the same name."""

    def __init__(self, core_v1: client.CoreV1Api, namespace: str) -> None:
        self.core_v1, self.namespace = core_v1, namespace
        self.created = 0
        self.refused = 0
        self.refusals: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def _run(self) -> None:
        while not self._stop.is_set():
            body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"r{self.created}"},
                    "spec": {"containers": [{"name": "app", "image": "registry.invalid/a:1", "command": ["/a"]}]}}
            try:
                self.core_v1.create_namespaced_pod(self.namespace, body, _request_timeout=30)
                self.created += 1
                time.sleep(0.03)  # a busy controller, not a flood: the machine is shared
            except client.ApiException as exc:
                self.refused += 1
                reason = "webhook unavailable" if "failed calling webhook" in str(exc.body) else f"HTTP {exc.status}"
                self.refusals[reason] = self.refusals.get(reason, 0) + 1
                time.sleep(0.05)


def test_rolling_restart_of_two_replicas_admits_no_pod_without_mask_or_placement(
    control_plane: ClusterAccess, kubectl: Any, api_client: client.ApiClient, core_v1: client.CoreV1Api,
    node_factory: Any, namespace: str, tmp_path: Path, results: Path,
) -> None:  # fmt: skip
    install_crd(kubectl)
    tls = webhook_tls(tmp_path / "tls")
    minimum = reliability.scaled(full=400, ci=200)
    serial = iter(range(1, 100))

    def replica() -> OperatorProcess:
        n = next(serial)
        work = tmp_path / f"replica-{n}"
        work.mkdir()
        return OperatorProcess(control_plane.kubeconfig, work, namespace="default",
                               webhook=(free_port(), tls.cert, tls.key),
                               extra=["--leader-lease", "rollout", "--leader-identity", f"replica-{n}"])  # fmt: skip

    def port(op: OperatorProcess) -> int:
        assert op.webhook is not None
        return op.webhook[0]

    node_factory(G3, labels={TEST_LABEL: namespace})
    label_namespace(core_v1, namespace, {TEST_LABEL: namespace})
    name = f"roll-{namespace}"[:63]
    domains = Domains(api_client)
    old = [replica(), replica()]
    service = free_port()
    creator = PodCreator(core_v1, namespace)
    with ServiceProxy(service) as proxy:
        proxy.backends = [port(op) for op in old]
        for op in old:
            op.start()
        config = webhook_configuration(f"hwcap-{namespace}", service, tls, [namespace], failure_policy="Fail",
                                       timeout_seconds=5)  # fmt: skip
        running = list(old)
        try:
            with installed_webhook(api_client, config):
                kubectl("apply", "-f", "-", input=domain_manifest(name, namespace, {TEST_LABEL: namespace}))
                mask = domains.wait_condition(name, "Ready", "True", timeout=60) and \
                    domains.get(name)["status"]["mask"]["id"]  # fmt: skip
                wait_until_injected(core_v1, namespace, name)
                creator.start()
                started = time.monotonic()
                while creator.created < minimum // 4:
                    time.sleep(0.2)
                for previous in old:  # maxSurge 1, maxUnavailable 0: the new one first, then the old one goes
                    new = replica()
                    proxy.backends = [*proxy.backends, port(new)]  # routed before it is ready
                    new.start()
                    running.append(new)
                    proxy.backends = [p for p in proxy.backends if p != port(previous)]
                    previous.stop()
                    running.remove(previous)
                while creator.created < minimum:
                    time.sleep(0.2)
                creator.stop()
                elapsed = time.monotonic() - started
                pods = core_v1.list_namespaced_pod(namespace).items
                member = f"{keys.DOMAIN_MEMBER_LABEL_PREFIX}{name}"
                unmasked = placed_elsewhere = 0
                for item in pods:
                    stored: Json = api_client.sanitize_for_serialization(item)
                    if (stored["metadata"].get("annotations") or {}).get(keys.POD_MASK_ID_ANNOTATION) != mask:
                        unmasked += 1
                    terms = required_terms(stored) if stored["spec"].get("affinity") else []
                    if not terms or not all(any(e["key"] == member for e in t.get("matchExpressions") or [])
                                            for t in terms):  # fmt: skip
                        placed_elsewhere += 1
                delete_domain(api_client, name)
        finally:
            creator.stop()
            for op in running:
                op.stop()
    print(f"\nrolling restart: {len(pods)} pods admitted in {elapsed:.0f}s, {unmasked} without the mask, "
          f"{placed_elsewhere} without the placement; {creator.refused} refusals retried ({creator.refusals})")
    losses = {"pods admitted without mask": unmasked, "pods admitted without placement": placed_elsewhere}
    detail = (f"{creator.refused} creations refused while no replica could decide (retried): {creator.refusals}; "
              "new replicas are routed to before they are ready")
    reliability.record("rolling restart of 2 replicas under pod creation (failurePolicy Fail)", "operator",
                       len(pods), losses, detail, directory=results)
    assert len(pods) >= minimum
    assert (unmasked, placed_elsewhere) == (0, 0)
