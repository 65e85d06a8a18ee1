"""Fixtures shared by the end-to-end tests: the MigrationDomain CRD, the webhook's certificate, running operators.

Everything here runs against the session's real control plane (tests/conftest.py, which also marks this
directory ``e2e``). A module that needs a variant overrides a fixture by name: ``operator_args`` for more
operator options, or ``operator`` itself (built with ``start_operator``) where every test needs a fresh
process because the tests stop and restart it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from hwcap_dev.devcluster.testing import ClusterAccess
from tests.e2e.webhook_support import WebhookTLS, webhook_tls
from tests.support.domains import Domains, install_crd
from tests.support.operator import OperatorProcess, OperatorStarter, running_operator
from tests.support.ports import free_port


def _require_local(control_plane: ClusterAccess) -> ClusterAccess:
    if not control_plane.local:
        pytest.fail("the webhook tests need the local control plane: a remote apiserver cannot reach 127.0.0.1")
    return control_plane


def _webhook_on_loopback(tls: WebhookTLS) -> tuple[int, Path, Path]:
    """The operator's webhook options: a free loopback port and ``tls``'s serving certificate."""
    return free_port(), tls.cert, tls.key


@pytest.fixture(scope="module")
def crd(kubectl: Any) -> None:
    """The MigrationDomain CRD from crds/, Established (idempotent: ``kubectl apply``)."""
    install_crd(kubectl)


@pytest.fixture(scope="module")
def local_control_plane(control_plane: ClusterAccess) -> ClusterAccess:
    """The control plane, which must run on this machine: its apiserver calls the webhook on 127.0.0.1."""
    return _require_local(control_plane)


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> WebhookTLS:
    """A CA and the webhook's serving certificate for 127.0.0.1, one per module."""
    return webhook_tls(tmp_path_factory.mktemp("webhook-tls"))


@pytest.fixture
def domains(api_client: client.ApiClient) -> Domains:
    """MigrationDomain reads, patches and waits as the cluster admin."""
    return Domains(api_client)


@pytest.fixture
def cleanup_domains(domains: Domains) -> Iterator[list[str]]:
    """Names a test appends MigrationDomains to; each is deleted after the test."""
    names: list[str] = []
    yield names
    for name in names:
        domains.delete(name)


@pytest.fixture(scope="module")
def operator_args() -> list[str]:
    """Options the module's ``operator`` gets beyond the defaults (override in a module that needs some)."""
    return []


@pytest.fixture(scope="module")
def operator(crd: None, local_control_plane: ClusterAccess, tls: WebhookTLS, operator_args: list[str],
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:  # fmt: skip
    """``hwcap-operator run`` serving the webhook on loopback with ``tls``, shared by the module's tests."""
    with running_operator(local_control_plane.kubeconfig, tmp_path_factory.mktemp("operator"),
                          webhook=_webhook_on_loopback(tls), extra=operator_args) as op:  # fmt: skip
        yield op


@pytest.fixture
def start_operator(control_plane: ClusterAccess, tmp_path: Path) -> Iterator[OperatorStarter]:
    """``start(kubeconfig=None, *, tls=None, namespace="hwcap-system", extra=())`` runs an operator for this
    test only (the admin's kubeconfig unless another is given; the webhook on loopback when ``tls`` is given).
    Every operator started is stopped after the test, and its log must hold no traceback."""
    started = iter(range(1, 100))
    with contextlib.ExitStack() as running:

        def start(kubeconfig: Path | None = None, *, tls: WebhookTLS | None = None,
                  namespace: str = "hwcap-system", extra: Sequence[str] = ()) -> OperatorProcess:  # fmt: skip
            if tls is not None:
                _require_local(control_plane)
            work = tmp_path / f"operator-{next(started)}"
            work.mkdir()
            return running.enter_context(running_operator(
                kubeconfig or control_plane.kubeconfig, work, namespace=namespace,
                webhook=None if tls is None else _webhook_on_loopback(tls), extra=list(extra)))  # fmt: skip

        yield start
