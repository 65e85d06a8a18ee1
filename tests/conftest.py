"""Shared fixtures: one real control plane per session, a namespace per test, kubectl/helm, fake nodes.

The control plane is the project's own (etcd + kube-apiserver + kube-scheduler built from Go modules by
``hwcap_dev.devcluster``; the first session builds them, later ones reuse the cache), or an existing
cluster with ``USE_EXISTING_CLUSTER=true`` + ``KUBECONFIG``. Tests never skip for missing binaries.
Markers are applied here where a whole directory or a fixture decides them: everything under ``tests/e2e`` is
``e2e``; a test that needs the pinned binaries (control plane, helm: the ``devcluster_binaries`` fixture, directly
or through ``control_plane``, ``kubectl``, ``render`` ...) is ``needs_binaries``. ``make unit`` deselects both.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from hwcap_dev.devcluster import build
from hwcap_dev.devcluster import simulated_nodes as nodes
from hwcap_dev.devcluster.assets import Binaries, resolve_binaries
from hwcap_dev.devcluster.runner import ControlPlane, Options
from hwcap_dev.devcluster.testing import (
    ClusterAccess,
    ToolRunner,
    helm_runner,
    kubectl_runner,
    namespace_name,
    use_existing_cluster,
)
from tests.support.namespaces import temporary_namespace
from tests.support.profiles import PROFILES_DIR
from tests.support.waits import wait_for

TESTS_DIR = Path(__file__).parent
_TIMINGS: list[str] = []


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    e2e_dir = TESTS_DIR / "e2e"
    for item in items:
        if e2e_dir in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.e2e)
        if "devcluster_binaries" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.needs_binaries)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _TIMINGS:
        terminalreporter.section("devcluster")
        for line in _TIMINGS:
            terminalreporter.write_line(line)


@contextlib.contextmanager
def _uncaptured(pytestconfig: pytest.Config) -> Iterator[None]:
    """Let build progress through to the terminal: a cold build is long and should not look hung."""
    capman = pytestconfig.pluginmanager.getplugin("capturemanager")
    if capman is None:
        yield
        return
    with capman.global_and_fixture_disabled():
        yield


@pytest.fixture(scope="session")
def profiles_dir() -> Path:
    """``tests/data/profiles``: the one shared copy of the real CPU dumps."""
    return PROFILES_DIR


@pytest.fixture(scope="session")
def devcluster_binaries(pytestconfig: pytest.Config) -> Binaries:
    """Every binary (envtest variables honoured), building the pinned set if missing."""
    started = time.monotonic()
    was_built = build.is_built()
    with _uncaptured(pytestconfig):
        binaries = resolve_binaries(allow_build=True)
    how = "reused from cache" if was_built else "built (or taken from the environment)"
    _TIMINGS.append(f"binaries {how} in {time.monotonic() - started:.1f}s: {binaries.kube_apiserver.parent}")
    return binaries


@pytest.fixture(scope="session")
def control_plane(
    devcluster_binaries: Binaries, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ClusterAccess]:
    """The session's cluster: a fresh local control plane with kube-scheduler, or the existing cluster."""
    work = tmp_path_factory.mktemp("devcluster")
    if use_existing_cluster():
        kubeconfig = os.environ.get("KUBECONFIG")
        if not kubeconfig:
            pytest.fail("USE_EXISTING_CLUSTER=true needs KUBECONFIG to name the cluster's kubeconfig")
        yield ClusterAccess(Path(kubeconfig), devcluster_binaries, work)
        return
    started = time.monotonic()
    plane = ControlPlane(devcluster_binaries, Options(state_dir=work / "state", scheduler=True))
    plane.start()
    _TIMINGS.append(f"control plane started in {time.monotonic() - started:.1f}s ({plane.server})")
    try:
        yield ClusterAccess(plane.kubeconfig, devcluster_binaries, work, plane)
    finally:
        plane.stop()


@pytest.fixture(scope="session")
def api_client(control_plane: ClusterAccess) -> Iterator[client.ApiClient]:
    """A kubernetes ``ApiClient`` authenticated as the cluster admin."""
    api = config.new_client_from_config(config_file=str(control_plane.kubeconfig))
    try:
        yield api
    finally:
        api.close()


@pytest.fixture(scope="session")
def core_v1(api_client: client.ApiClient) -> client.CoreV1Api:
    """CoreV1Api as the admin."""
    return client.CoreV1Api(api_client)


@pytest.fixture(scope="session")
def kubectl(control_plane: ClusterAccess) -> ToolRunner:
    """``kubectl(*args, input=None, check=True, kubeconfig=None) -> CompletedProcess[str]`` as the admin."""
    return kubectl_runner(control_plane)


@pytest.fixture(scope="session")
def helm(control_plane: ClusterAccess) -> ToolRunner:
    """``helm(*args, input=None, check=True, kubeconfig=None) -> CompletedProcess[str]`` as the admin."""
    return helm_runner(control_plane)


@pytest.fixture
def namespace(core_v1: client.CoreV1Api, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace for one test (name derived from the test), deleted afterwards."""
    with temporary_namespace(core_v1, namespace_name(request.node.name)) as name:
        yield name


NodeFactory = Callable[..., dict[str, Any]]


@pytest.fixture
def node_factory(
    core_v1: client.CoreV1Api, api_client: client.ApiClient, profiles_dir: Path, request: pytest.FixtureRequest
) -> Iterator[NodeFactory]:
    """``make(profile, name=None, *, labels=None, nfd_labels=True, ready=True, node_feature_namespace=None)``

    creates a Node from ``tests/data/profiles/<profile>.txt`` (NFD cpu-cpuid labels from the dump, Ready
    with allocatable unless ``ready=False``), optionally its NFD ``NodeFeature`` in
    ``node_feature_namespace`` (the NodeFeature CRD is installed on first use), and returns the Node as
    the API stored it (a dict). Every node made is deleted after the test.
    """
    made: list[str] = []
    custom = client.CustomObjectsApi(api_client)
    serial = iter(range(1, 1000))

    def make(
        profile: str,
        name: str | None = None,
        *,
        labels: Mapping[str, str] | None = None,
        nfd_labels: bool = True,
        ready: bool = True,
        node_feature_namespace: str | None = None,
    ) -> dict[str, Any]:
        prof = nodes.load_profile(nodes.profile_paths(profiles_dir, [profile])[0])
        node_name = name or f"{namespace_name(request.node.name)[:50]}-n{next(serial)}"
        manifest = nodes.node_manifest(node_name, prof, labels=labels, nfd=nfd_labels)
        made.append(node_name)
        if ready:
            nodes.create_ready_node(core_v1, manifest)
        else:
            core_v1.create_node(manifest)
        if node_feature_namespace is not None:
            _ensure_nodefeature_crd(api_client)
            body = nodes.node_feature_manifest(node_name, prof, node_feature_namespace)
            custom.create_namespaced_custom_object(
                "nfd.k8s-sigs.io", "v1alpha1", node_feature_namespace, "nodefeatures", body
            )
        stored: dict[str, Any] = api_client.sanitize_for_serialization(core_v1.read_node(node_name))
        return stored

    try:
        yield make
    finally:
        for node_name in made:
            with contextlib.suppress(client.ApiException):
                core_v1.delete_node(node_name)


def _ensure_nodefeature_crd(api_client: client.ApiClient) -> None:
    ext = client.ApiextensionsV1Api(api_client)
    crd = nodes.nodefeature_crd()
    try:
        ext.create_custom_resource_definition(crd)
    except client.ApiException as err:
        if err.status != 409:
            raise

    def established() -> bool:
        got = ext.read_custom_resource_definition(crd["metadata"]["name"])
        return any(c.type == "Established" and c.status == "True" for c in (got.status.conditions or []))

    wait_for("the NodeFeature CRD to be Established", established, timeout=30, interval=0.2)
