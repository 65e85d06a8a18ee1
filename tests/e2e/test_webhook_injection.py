"""The pod webhook on the real kube-apiserver, which calls the real ``hwcap-operator run`` over TLS.

A platform engineer's view: pods created with ``kubectl`` in a namespace a MigrationDomain selects come
back from the API server with the install step, wrapped commands, node affinity to the domain's members,
annotations and env; pods elsewhere or opted out come back exactly as written; a pod two domains select is
refused naming both; Pod Security "restricted" admits the injected pod; kube-scheduler binds it to members
only; a sidecar added by a later webhook is wrapped on re-invocation; the stored pod, run here like a kubelet
would, runs its program through the real hwcap-exec. Expectations are computed here from the pod we
submitted, the domain's published status and the shim's documented command line, never from the webhook's
own output.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from hwcap_dev.devcluster.testing import namespace_name
from hwcap_dev.shim import shim_path
from hwcap_operator import keys
from tests.e2e.webhook_support import (
    TEST_LABEL,
    WebhookTLS,
    admissions,
    all_containers,
    delete_domain,
    domain_manifest,
    dry_run_create,
    env_of,
    expected_wrapper,
    install_step,
    installed_shim,
    installed_webhook,
    kubectl_create,
    label_namespace,
    mask_words,
    pod_annotations,
    read_pod,
    required_terms,
    run_like_kubelet,
    runs,
    shim_volume,
    sidecar_webhook,
    strip_server_fields,
    wait_until_injected,
    webhook_configuration,
)
from tests.support.domains import Domains
from tests.support.namespaces import temporary_namespace
from tests.support.operator import INIT_IMAGE, OperatorProcess
from tests.support.waits import wait_for

G3 = "arm64-aws-graviton3-neoverse-v1"
Json = dict[str, Any]


DomainMaker = Callable[..., Json]


@pytest.fixture
def make_domain(kubectl: Any, domains: Domains, api_client: client.ApiClient) -> Iterator[DomainMaker]:
    """``make(name, node_label, namespace_labels, **spec)``: kubectl apply a domain, wait until it is Ready,
    return its status. Every domain made is deleted after the test (before its nodes are)."""
    made: list[str] = []

    def make(name: str, node_label: str, namespace_labels: dict[str, str], **spec: Any) -> Json:
        made.append(name)
        kubectl("apply", "-f", "-", input=domain_manifest(name, node_label, namespace_labels, **spec))
        domains.wait_condition(name, "Ready", "True")
        return dict(domains.get(name)["status"])

    yield make
    for name in made:
        delete_domain(api_client, name)


@pytest.fixture
def extra_namespaces(core_v1: client.CoreV1Api, request: pytest.FixtureRequest) -> Iterator[Callable[[], str]]:
    """``make()`` creates one more namespace for this test; all are deleted afterwards."""
    with contextlib.ExitStack() as made:

        def make() -> str:
            return made.enter_context(temporary_namespace(core_v1, namespace_name(request.node.name)))

        yield make


@contextlib.contextmanager
def webhook_for(api_client: client.ApiClient, operator: OperatorProcess, tls: WebhookTLS, namespaces: list[str],
                failure_policy: str = "Fail") -> Iterator[str]:  # fmt: skip
    assert operator.webhook is not None
    body = webhook_configuration(f"hwcap-{namespaces[0]}", operator.webhook[0], tls, namespaces,
                                 failure_policy=failure_policy)  # fmt: skip
    with installed_webhook(api_client, body) as name:
        yield name


def user_pod(name: str) -> Json:
    """A pod with a user init container, one container with command+args+env and one with command only,
    and a node affinity of its own."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "web"}},
        "spec": {
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "kubernetes.io/arch", "operator": "In", "values": ["arm64"]}]}]}}},
            "initContainers": [{"name": "migrate", "image": "registry.invalid/web:1",
                                "command": ["/bin/sh", "-c", "exec /app/migrate --to=latest"]}],
            "containers": [
                {"name": "web", "image": "registry.invalid/web:1", "command": ["/app/server"],
                 "args": ["--listen", ":8080", "--name=$(POD_TAG)", "literal $$ dollar"],
                 "env": [{"name": "POD_TAG", "value": "blue"}, {"name": "GREETING", "value": "hi there"}]},
                {"name": "sidecar", "image": "registry.invalid/proxy:2", "command": ["/proxy", "--upstream=:8080"]},
            ],
        },
    }  # fmt: skip


def restricted(pod: Json) -> Json:
    """The same pod made Pod Security "restricted"-compliant by its author."""
    out = copy.deepcopy(pod)
    out["spec"]["securityContext"] = {"runAsNonRoot": True, "runAsUser": 1000,
                                      "seccompProfile": {"type": "RuntimeDefault"}}  # fmt: skip
    for c in all_containers(out):
        c["securityContext"] = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
    return out


def assert_injected(stored: Json, submitted: Json, domain: str, status: Json) -> None:
    """Everything a user of the domain expects on a stored pod, derived from what was submitted."""
    annotations = pod_annotations(stored)
    assert annotations[keys.POD_DOMAIN_ANNOTATION] == domain
    assert annotations[keys.POD_MASK_ID_ANNOTATION] == status["mask"]["id"]
    assert annotations[keys.POD_MASK_ANNOTATION] == status["mask"]["canonical"]
    assert annotations[keys.POD_HWCAP_WORDS_ANNOTATION].split(",") == mask_words(status)
    # The install step runs first, as the operator image, unprivileged, into an emptyDir.
    step = install_step(stored)
    assert step["image"] == INIT_IMAGE
    shim = installed_shim(stored)
    context = step["securityContext"]
    assert context["runAsNonRoot"] is True and context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]} and context.get("privileged") is not True
    # Every container of the submitted pod (init ones included) runs hwcap-exec with the mask, then its own argv.
    wrapper = expected_wrapper(shim, status)
    stored_by_name = {c["name"]: c for c in all_containers(stored)}
    assert list(stored_by_name) == ["hwcap-install", *(c["name"] for c in all_containers(submitted))]
    for original in all_containers(submitted):
        container = stored_by_name[original["name"]]
        assert runs(container) == wrapper + runs(original), original["name"]
        assert shim_volume(container, shim) == shim_volume(step, shim), original["name"]
        env = env_of(container)
        assert env[keys.ENV_DOMAIN] == domain and env[keys.ENV_MASK_ID] == status["mask"]["id"]
        assert {k: v for k, v in env.items() if k not in (keys.ENV_DOMAIN, keys.ENV_MASK_ID)} == env_of(original)
    # Placement: every required term of the user (ORed) now also requires the domain's member label.
    member = {"key": f"{keys.DOMAIN_MEMBER_LABEL_PREFIX}{domain}", "operator": "In", "values": ["true"]}
    submitted_terms = required_terms(submitted) or [{}]
    assert required_terms(stored) == [
        {**t, "matchExpressions": [*(t.get("matchExpressions") or []), member]} for t in submitted_terms
    ]
    assert pod_annotations(stored).keys() >= pod_annotations(submitted).keys()
    assert stored["metadata"].get("labels") == submitted["metadata"].get("labels")


def assert_untouched(stored: Json, submitted: Json) -> None:
    assert strip_server_fields(stored) == strip_server_fields(submitted)


# ------------------------------------------------------------------------------------------------ tests


def test_kubectl_created_pod_is_stored_injected_and_others_untouched(
    operator: OperatorProcess, tls: WebhookTLS, api_client: client.ApiClient, core_v1: client.CoreV1Api,
    kubectl: Any, make_domain: DomainMaker, node_factory: Any, namespace: str, extra_namespaces: Callable[[], str],
) -> None:  # fmt: skip
    members = [node_factory(G3, labels={TEST_LABEL: namespace}) for _ in range(2)]
    elsewhere = extra_namespaces()  # reached by the webhook, selected by no domain
    label_namespace(core_v1, namespace, {TEST_LABEL: namespace})
    domain = f"web-{namespace}"[:63]
    with webhook_for(api_client, operator, tls, [namespace, elsewhere]):
        status = make_domain(domain, namespace, {TEST_LABEL: namespace})
        assert sorted(status["members"]["names"]) == sorted(n["metadata"]["name"] for n in members)
        wait_until_injected(core_v1, namespace, domain)

        submitted = user_pod("web-0")
        created = kubectl_create(kubectl, namespace, submitted)
        assert created.returncode == 0, created.stderr
        stored = read_pod(core_v1, namespace, "web-0")
        assert_injected(stored, submitted, domain, status)
        # The member label the affinity asks for is the one the reconciler put on the member nodes.
        for node in members:
            labels = core_v1.read_node(node["metadata"]["name"]).metadata.labels
            assert labels[f"{keys.DOMAIN_MEMBER_LABEL_PREFIX}{domain}"] == "true"

        # A namespace no domain selects: the webhook is called and leaves the pod as written.
        untouched_before = admissions(operator.metrics(), "untouched")
        assert kubectl_create(kubectl, elsewhere, submitted).returncode == 0
        assert_untouched(read_pod(core_v1, elsewhere, "web-0"), submitted)
        assert admissions(operator.metrics(), "untouched") == untouched_before + 1

        # Opted out by annotation: the webhook answers "untouched".
        by_annotation = copy.deepcopy(submitted)
        by_annotation["metadata"].update(name="opted-out-annotation",
                                         annotations={keys.POD_OPT_OUT_ANNOTATION: "false"})  # fmt: skip
        assert kubectl_create(kubectl, namespace, by_annotation).returncode == 0
        assert_untouched(read_pod(core_v1, namespace, "opted-out-annotation"), by_annotation)
        assert admissions(operator.metrics(), "untouched") == untouched_before + 2

        # Opted out by label: the configuration's objectSelector keeps the pod from the webhook altogether.
        by_label = copy.deepcopy(submitted)
        by_label["metadata"].update(name="opted-out-label", labels={keys.POD_OPT_OUT_ANNOTATION: "false"})
        assert kubectl_create(kubectl, namespace, by_label).returncode == 0
        assert_untouched(read_pod(core_v1, namespace, "opted-out-label"), by_label)
        assert admissions(operator.metrics(), "untouched") == untouched_before + 2


def test_pod_selected_by_two_domains_is_denied_naming_both(
    operator: OperatorProcess, tls: WebhookTLS, api_client: client.ApiClient, core_v1: client.CoreV1Api,
    kubectl: Any, make_domain: DomainMaker, node_factory: Any, namespace: str,
) -> None:  # fmt: skip
    for _ in range(2):
        node_factory(G3, labels={TEST_LABEL: namespace})
    label_namespace(core_v1, namespace, {"e2e.hwcap.dev/left": "yes", "e2e.hwcap.dev/right": "yes"})
    left, right = f"left-{namespace}"[:63], f"right-{namespace}"[:63]
    with webhook_for(api_client, operator, tls, [namespace]):
        make_domain(left, namespace, {"e2e.hwcap.dev/left": "yes"})
        make_domain(right, namespace, {"e2e.hwcap.dev/right": "yes"})

        def both_named() -> str | None:
            got = dry_run_create(core_v1, namespace, user_pod("probe"))
            return got if isinstance(got, str) and left in got and right in got else None

        wait_for("the webhook to know both domains", both_named, timeout=60)
        result = kubectl_create(kubectl, namespace, user_pod("contested"))
        assert result.returncode != 0
        assert 'admission webhook "pods.hwcap.dev" denied the request' in result.stderr, result.stderr
        assert left in result.stderr and right in result.stderr, result.stderr
        with pytest.raises(client.ApiException) as missing:
            core_v1.read_namespaced_pod("contested", namespace)
        assert missing.value.status == 404


def test_pod_security_restricted_admits_the_injected_pod(
    operator: OperatorProcess, tls: WebhookTLS, api_client: client.ApiClient, core_v1: client.CoreV1Api,
    kubectl: Any, make_domain: DomainMaker, node_factory: Any, namespace: str,
) -> None:  # fmt: skip
    for _ in range(2):
        node_factory(G3, labels={TEST_LABEL: namespace})
    label_namespace(core_v1, namespace, {TEST_LABEL: namespace, "pod-security.kubernetes.io/enforce": "restricted",
                                         "pod-security.kubernetes.io/enforce-version": "latest"})  # fmt: skip
    domain = f"psa-{namespace}"[:63]
    with webhook_for(api_client, operator, tls, [namespace]):
        status = make_domain(domain, namespace, {TEST_LABEL: namespace})
        wait_until_injected(core_v1, namespace, domain)
        # Enforcement is on: the user's pod as first written (no securityContext) is refused by PodSecurity.
        refused = kubectl_create(kubectl, namespace, user_pod("not-restricted"))
        assert refused.returncode != 0 and 'violates PodSecurity "restricted:latest"' in refused.stderr, refused.stderr
        # The compliant pod is admitted after injection: PodSecurity checked the install step too.
        submitted = restricted(user_pod("restricted-web"))
        created = kubectl_create(kubectl, namespace, submitted)
        assert created.returncode == 0, created.stderr
        assert "PodSecurity" not in created.stderr, created.stderr
        stored = read_pod(core_v1, namespace, "restricted-web")
        assert_injected(stored, submitted, domain, status)
        for container in all_containers(submitted):
            stored_container = next(c for c in all_containers(stored) if c["name"] == container["name"])
            assert stored_container["securityContext"] == container["securityContext"]  # never touched


def test_scheduler_binds_injected_pods_only_to_member_nodes(
    operator: OperatorProcess, tls: WebhookTLS, api_client: client.ApiClient, core_v1: client.CoreV1Api,
    kubectl: Any, make_domain: DomainMaker, node_factory: Any, namespace: str,
) -> None:  # fmt: skip
    members = {node_factory(G3, labels={TEST_LABEL: namespace})["metadata"]["name"] for _ in range(2)}
    # Same arch and CPU, outside the domain's node selector, and the node every pod below prefers.
    outsider = node_factory(G3, labels={"e2e.hwcap.dev/preferred": namespace})["metadata"]["name"]
    label_namespace(core_v1, namespace, {TEST_LABEL: namespace})
    domain = f"sched-{namespace}"[:63]

    def pod(name: str, **labels: str) -> Json:
        body = user_pod(name)
        body["metadata"]["labels"].update(labels)
        body["spec"]["affinity"]["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"] = [
            {"weight": 100, "preference": {"matchExpressions": [
                {"key": "e2e.hwcap.dev/preferred", "operator": "In", "values": [namespace]}]}}]  # fmt: skip
        return body

    def bound(name: str) -> Callable[[], str | None]:
        return lambda: core_v1.read_namespaced_pod(name, namespace).spec.node_name

    with webhook_for(api_client, operator, tls, [namespace]):
        status = make_domain(domain, namespace, {TEST_LABEL: namespace})
        assert set(status["members"]["names"]) == members and outsider not in members
        wait_until_injected(core_v1, namespace, domain)
        # Control: an opted-out pod with the same preference goes to the outsider (the preference works).
        control = pod("control", **{keys.POD_OPT_OUT_ANNOTATION: "false"})
        assert kubectl_create(kubectl, namespace, control).returncode == 0
        assert wait_for("the control pod to be bound", bound("control"), timeout=60) == outsider
        for i in range(4):
            assert kubectl_create(kubectl, namespace, pod(f"injected-{i}")).returncode == 0
        placed = {wait_for(f"injected-{i} to be bound", bound(f"injected-{i}"), timeout=60) for i in range(4)}
        assert placed <= members, f"injected pods bound to {placed - members}, not members {members}"


def test_the_stored_pod_runs_its_program_through_hwcap_exec(
    operator: OperatorProcess, tls: WebhookTLS, api_client: client.ApiClient, core_v1: client.CoreV1Api,
    kubectl: Any, make_domain: DomainMaker, node_factory: Any, namespace: str, tmp_path: Path,
) -> None:  # fmt: skip
    """The pod as the API server stored it, run here like a kubelet would (install step, then the container
    with the real hwcap-exec): the program gets its arguments, its env and HWCAP_DOMAIN, and its exit code."""
    for _ in range(2):
        node_factory(G3, labels={TEST_LABEL: namespace})
    label_namespace(core_v1, namespace, {TEST_LABEL: namespace})
    domain = f"run-{namespace}"[:63]
    script = 'for a in "$@"; do printf "<%s>" "$a"; done; printf "[%s]" "$HWCAP_DOMAIN"; exit 3'
    submitted = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "runner"},
                 "spec": {"containers": [{"name": "app", "image": "registry.invalid/sh:1",
                                          "command": ["/bin/sh", "-c", script, "sh"],
                                          "args": ["two words", "$(GREETING)", "$$literal"],
                                          "env": [{"name": "GREETING", "value": "hi"}]}]}}  # fmt: skip
    with webhook_for(api_client, operator, tls, [namespace]):
        make_domain(domain, namespace, {TEST_LABEL: namespace})
        wait_until_injected(core_v1, namespace, domain)
        assert kubectl_create(kubectl, namespace, submitted).returncode == 0
    stored = read_pod(core_v1, namespace, "runner")
    assert runs(stored["spec"]["containers"][0])[0] == installed_shim(stored)
    result = run_like_kubelet(stored, "app", shim_path(), tmp_path / "volumes")
    assert (result.returncode, result.stdout) == (3, f"<two words><hi><$literal>[{domain}]"), result.stderr


def test_a_sidecar_added_by_a_later_webhook_is_wrapped_on_reinvocation(
    operator: OperatorProcess, tls: WebhookTLS, api_client: client.ApiClient, core_v1: client.CoreV1Api,
    kubectl: Any, make_domain: DomainMaker, node_factory: Any, namespace: str,
) -> None:  # fmt: skip
    """Our webhook runs first (configurations are called in name order); another team's webhook then adds a
    sidecar, so the API server re-invokes ours (reinvocationPolicy IfNeeded): the sidecar is wrapped, and
    nothing injected the first time is injected twice."""
    for _ in range(2):
        node_factory(G3, labels={TEST_LABEL: namespace})
    label_namespace(core_v1, namespace, {TEST_LABEL: namespace})
    domain = f"reinv-{namespace}"[:63]
    sidecar = {"name": "mesh-proxy", "image": "registry.invalid/mesh:3", "command": ["/mesh", "--inbound=15006"]}
    with webhook_for(api_client, operator, tls, [namespace]), sidecar_webhook(tls, sidecar) as port:
        other = webhook_configuration(f"zz-mesh-{namespace}", port, tls, [namespace])
        other["webhooks"][0]["name"] = "mesh.e2e.hwcap.dev"
        with installed_webhook(api_client, other):
            status = make_domain(domain, namespace, {TEST_LABEL: namespace})

            def both_ran() -> Json | None:
                got = dry_run_create(core_v1, namespace, user_pod("probe"))
                names = [c["name"] for c in got["spec"]["containers"]] if isinstance(got, dict) else []
                return got if "mesh-proxy" in names and pod_annotations(got).get(keys.POD_DOMAIN_ANNOTATION) else None

            wait_for("both webhooks to be called", both_ran, timeout=60)
            submitted = user_pod("meshed")
            mutated = admissions(operator.metrics(), "mutated")
            assert kubectl_create(kubectl, namespace, submitted).returncode == 0
            # Called twice for the one pod: first the user's containers, then again for the sidecar.
            assert admissions(operator.metrics(), "mutated") == mutated + 2
    stored = read_pod(core_v1, namespace, "meshed")
    expected = copy.deepcopy(submitted)
    expected["spec"]["containers"].append(sidecar)  # what the pod is once both webhooks ran
    assert_injected(stored, expected, domain, status)
    shim = installed_shim(stored)
    assert [v["name"] for v in stored["spec"]["volumes"]] == [shim_volume(install_step(stored), shim)]
