"""Entrypoint resolution through a real OCI registry: pods without ``command`` on the real API server.

Debian's ``docker-registry`` runs on loopback (plain HTTP); the test builds small OCI images by hand and
pushes them; the real operator runs with ``--insecure-registries host:port``. The expected argv is the image
config we wrote (ENTRYPOINT then CMD, or the pod's args), wrapped by hwcap-exec with the domain's mask.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from kubernetes import client

from hwcap_operator import keys
from tests.e2e.webhook_support import (
    TEST_LABEL,
    WebhookTLS,
    admissions,
    delete_domain,
    domain_manifest,
    dry_run_create,
    expected_wrapper,
    installed_shim,
    installed_webhook,
    kubectl_create,
    label_namespace,
    pod_annotations,
    push_oci_image,
    read_pod,
    runs,
    wait_until_injected,
    webhook_configuration,
)
from tests.support.domains import Domains
from tests.support.operator import OperatorProcess
from tests.support.registry import Registry, run_registry
from tests.support.waits import wait_for

G3 = "arm64-aws-graviton3-neoverse-v1"
ENTRYPOINT = ["/usr/bin/greeter", "--config=/etc/greeter.toml"]
#: ``$`` must reach the program literally: the kubelet expands ``$(VAR)`` (a variable of the container's env)
#: and ``$$`` in a pod's command/args, never in an image config, so the webhook must escape what it copies.
CMD = ["--greeting", "costs $5 at $(GREETING)", "price$$tag"]
ENV = [{"name": "GREETING", "value": "expanded-by-the-kubelet"}]
Json = dict[str, Any]


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    with run_registry(tmp_path_factory.mktemp("registry"), "none") as reg:
        yield reg


@pytest.fixture(scope="module")
def operator_args(registry: Registry) -> list[str]:
    """The module's operator resolves entrypoints from the loopback registry (plain HTTP)."""
    return ["--insecure-registries", registry.host]


@pytest.fixture
def domain(kubectl: Any, api_client: client.ApiClient, core_v1: client.CoreV1Api, node_factory: Any,
           operator: OperatorProcess, tls: WebhookTLS, namespace: str) -> Iterator[Json]:  # fmt: skip
    """A Ready domain over two Graviton3 nodes selecting ``namespace``, with the webhook installed for it;
    yields the domain's status (plus its name under ``"name"``)."""
    for _ in range(2):
        node_factory(G3, labels={TEST_LABEL: namespace})
    label_namespace(core_v1, namespace, {TEST_LABEL: namespace})
    name = f"oci-{namespace}"[:63]
    domains = Domains(api_client)
    assert operator.webhook is not None
    config = webhook_configuration(f"hwcap-{namespace}", operator.webhook[0], tls, [namespace])
    with installed_webhook(api_client, config):
        try:
            kubectl("apply", "-f", "-", input=domain_manifest(name, namespace, {TEST_LABEL: namespace}))
            domains.wait_condition(name, "Ready", "True")
            wait_until_injected(core_v1, namespace, name)
            yield {**domains.get(name)["status"], "name": name}
        finally:
            delete_domain(api_client, name)


def pod(name: str, *containers: Json) -> Json:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": {"containers": list(containers)}}


def test_pod_without_command_runs_the_image_entrypoint_under_hwcap_exec(
    registry: Registry, operator: OperatorProcess, domain: Json, kubectl: Any, core_v1: client.CoreV1Api,
    namespace: str,
) -> None:  # fmt: skip
    push_oci_image(registry, "apps/greeter", "1.0", ENTRYPOINT, CMD)
    image = f"{registry.host}/apps/greeter:1.0"
    submitted = pod("greeter",
                    {"name": "plain", "image": image, "env": ENV},  # ENTRYPOINT + CMD
                    {"name": "with-args", "image": image, "env": ENV,
                     "args": ["--verbose", "$(GREETING)"]})  # ENTRYPOINT + args  # fmt: skip
    misses = admissions(operator.metrics(), "miss", "hwcap_entrypoint_cache_requests_total")
    created = kubectl_create(kubectl, namespace, submitted)
    assert created.returncode == 0, created.stderr
    stored = read_pod(core_v1, namespace, "greeter")
    assert pod_annotations(stored)[keys.POD_DOMAIN_ANNOTATION] == domain["name"]
    assert keys.POD_UNWRAPPED_ANNOTATION not in pod_annotations(stored)
    wrapper = expected_wrapper(installed_shim(stored), domain)
    plain, with_args = stored["spec"]["containers"]
    # What the kubelet runs: hwcap-exec <mask> -- ENTRYPOINT CMD, the image's $ kept literally ...
    assert plain["command"] == wrapper + ENTRYPOINT
    assert runs(plain) == wrapper + ENTRYPOINT + CMD
    # ... and with the pod's own args, ENTRYPOINT + those args (the image CMD is not used).
    assert with_args["args"] == ["--verbose", "$(GREETING)"]
    assert runs(with_args) == wrapper + ENTRYPOINT + ["--verbose", "expanded-by-the-kubelet"]
    assert admissions(operator.metrics(), "miss", "hwcap_entrypoint_cache_requests_total") == misses + 1

    # A second pod of the same image is answered from the cache.
    hits = admissions(operator.metrics(), "hit", "hwcap_entrypoint_cache_requests_total")
    second = pod("greeter-2", {"name": "plain", "image": image, "env": ENV})
    assert kubectl_create(kubectl, namespace, second).returncode == 0
    assert runs(read_pod(core_v1, namespace, "greeter-2")["spec"]["containers"][0]) == wrapper + ENTRYPOINT + CMD
    assert admissions(operator.metrics(), "hit", "hwcap_entrypoint_cache_requests_total") == hits + 1


def test_an_image_the_registry_does_not_have_follows_the_domain_policy(
    registry: Registry, operator: OperatorProcess, domain: Json, kubectl: Any, api_client: client.ApiClient,
    core_v1: client.CoreV1Api, namespace: str,
) -> None:  # fmt: skip
    image = f"{registry.host}/apps/never-pushed:1.0"
    submitted = pod("ghost", {"name": "app", "image": image})
    # Deny (the default): the pod is refused, and the message says which container and image.
    denied = kubectl_create(kubectl, namespace, submitted)
    assert denied.returncode != 0
    assert "'app' has no command" in denied.stderr and "apps/never-pushed" in denied.stderr, denied.stderr
    with pytest.raises(client.ApiException) as missing:
        core_v1.read_namespaced_pod("ghost", namespace)
    assert missing.value.status == 404

    # Warn: admitted with that container unwrapped; kubectl shows the warning, the pod records it.
    Domains(api_client).patch_spec(domain["name"], {"workloads": {"unresolvedEntrypoint": "Warn"}})

    def admitted() -> Json | None:
        got = dry_run_create(core_v1, namespace, submitted)
        return got if isinstance(got, dict) else None

    wait_for("the webhook to apply the Warn policy", admitted, timeout=60)
    created = kubectl_create(kubectl, namespace, submitted)
    assert created.returncode == 0, created.stderr
    assert "Warning:" in created.stderr and "'app'" in created.stderr and "without the HWCAP mask" in created.stderr
    stored = read_pod(core_v1, namespace, "ghost")
    assert pod_annotations(stored)[keys.POD_UNWRAPPED_ANNOTATION] == "app"
    assert "command" not in stored["spec"]["containers"][0]
    # ... and the domain carries a Warning Event about it (what `kubectl describe mdom` shows).

    def warning_event() -> list[str]:
        events = core_v1.list_namespaced_event(
            "default", field_selector=f"involvedObject.name={domain['name']},reason=EntrypointUnresolved")
        return [e.message for e in events.items if e.type == "Warning" and "apps/never-pushed" in e.message]

    wait_for("a Warning Event on the domain", warning_event, timeout=30)


def test_the_hand_built_image_is_served_by_the_registry(registry: Registry) -> None:
    """The test image is a real OCI image: manifest, config and layer are retrievable and content-addressed."""
    digest = push_oci_image(registry, "apps/check", "v1", ["/bin/check"], None)
    manifest = requests.get(f"{registry.base}/v2/apps/check/manifests/v1", timeout=10,
                            headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})  # fmt: skip
    assert manifest.status_code == 200
    assert "sha256:" + hashlib.sha256(manifest.content).hexdigest() == digest
    doc = json.loads(manifest.content)
    [layer] = doc["layers"]
    blob = requests.get(f"{registry.base}/v2/apps/check/blobs/{layer['digest']}", timeout=10)
    assert blob.status_code == 200 and len(blob.content) == layer["size"]
    assert "sha256:" + hashlib.sha256(blob.content).hexdigest() == layer["digest"]
