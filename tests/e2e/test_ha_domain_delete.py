"""Deleting a domain while two replicas run: the leader releases it, and the standby forgets it without writing.

A standby's webhook answers from its own view, so it must stop masking pods for a deleted domain as soon as
the domain is gone, and it must leave the deletion to the leader without failing handlers: no Error Event on
the domain, no annotation written by the standby.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from hwcap_dev.devcluster.testing import ClusterAccess
from hwcap_operator import keys
from tests.e2e.test_ha import holder
from tests.e2e.test_ha_readiness import answer, review
from tests.e2e.webhook_support import (
    MUTATE_PATH,
    TEST_LABEL,
    delete_domain,
    domain_manifest,
    label_namespace,
    webhook_tls,
)
from tests.support.domains import Domains, install_crd
from tests.support.operator import OperatorProcess
from tests.support.ports import free_port
from tests.support.waits import wait_for

G3 = "arm64-aws-graviton3-neoverse-v1"


#: The replicas by identity, their webhook URLs by identity, a TLS context trusting their certificate.
Replicas = tuple[dict[str, OperatorProcess], dict[str, str], ssl.SSLContext]


@pytest.fixture
def replicas(control_plane: ClusterAccess, kubectl: Any, namespace: str, api_client: client.ApiClient,
             tmp_path: Path) -> Iterator[Replicas]:  # fmt: skip
    """Two replicas electing a leader (Lease in ``default``: the operator's own namespace is never masked, and
    the test's namespace is the one the domain selects), each with its webhook on its own loopback port."""
    install_crd(kubectl)
    lease = f"hwcap-{namespace}"
    tls = webhook_tls(tmp_path / "tls")
    ops: dict[str, OperatorProcess] = {}
    urls: dict[str, str] = {}
    try:
        for identity in ("replica-a", "replica-b"):
            port = free_port()
            (tmp_path / identity).mkdir()
            ops[identity] = OperatorProcess(
                control_plane.kubeconfig, tmp_path / identity, namespace="default",
                webhook=(port, tls.cert, tls.key), extra=["--leader-lease", lease, "--leader-identity", identity],
            ).start()  # fmt: skip
            urls[identity] = f"https://127.0.0.1:{port}{MUTATE_PATH}"
        yield ops, urls, ssl.create_default_context(cadata=tls.ca_pem.decode())
    finally:
        for op in ops.values():
            op.stop()
        with contextlib.suppress(client.ApiException):
            client.CoordinationV1Api(api_client).delete_namespaced_lease(lease, "default")


def test_the_standby_stops_serving_a_deleted_domain_and_writes_nothing_while_the_leader_deletes_it(
    replicas: Replicas, api_client: client.ApiClient,
    core_v1: client.CoreV1Api, kubectl: Any, node_factory: Any, namespace: str,
) -> None:  # fmt: skip
    ops, urls, context = replicas
    name = f"del-{namespace}"[:63]
    node_factory(G3, labels={TEST_LABEL: namespace})
    label_namespace(core_v1, namespace, {TEST_LABEL: namespace})
    kubectl("apply", "-f", "-", input=domain_manifest(name, namespace, {TEST_LABEL: namespace}))
    try:
        Domains(api_client).wait_condition(name, "Ready", "True", timeout=60)
        leader = wait_for("a Lease holder", lambda: holder(api_client, "default", f"hwcap-{namespace}"))
        standby = next(identity for identity in ops if identity != leader)
        body = review(namespace)
        assert wait_for("the standby's webhook masks the domain's pods",
                        lambda: answer(urls[standby], body, context) == "masked", timeout=30)  # fmt: skip
    finally:
        delete_domain(api_client, name)

    # Gone from the API: both replicas' webhooks stop masking pods for it.
    for identity in ops:
        assert wait_for(f"{identity} answers untouched for a deleted domain's namespace",
                        lambda i=identity: answer(urls[i], body, context) == "untouched", timeout=20)  # fmt: skip
    # The standby failed no handler and posted nothing about the deletion.
    events = core_v1.list_namespaced_event("default", field_selector=f"involvedObject.name={name}").items
    failures = [e.message for e in events if e.involved_object.kind == keys.KIND and "failed" in (e.message or "")]
    assert failures == []
    standby_log = ops[standby].log()
    assert "not the leader" not in standby_log and "failed temporarily" not in standby_log
