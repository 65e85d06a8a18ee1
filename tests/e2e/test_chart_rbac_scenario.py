"""The chart's RBAC proven by use: ``helm install`` into a real kube-apiserver, then the operator and the node agent
run as local processes with tokens of the chart's OWN ServiceAccounts (TokenRequest) through a whole scenario
(nodes from real dumps, the agent's annotations, a domain Ready with members labelled, status and Events, pods
injected, one of a private image whose entrypoint is read with the pod's pull secret) with zero denials; a rule
taken away shows up as a denial a user can see, and putting it back heals; a namespace the release does not
list in ``operator.pullSecrets`` keeps its Secrets unreadable.

Taking any one of these away from the chart fails the scenario (checked by hand): events create, status patch,
migrationdomains patch, the agent's nodes patch (the domain, the deletion or the agent fails), nodefeatures
watch and CRD list/watch (the scenario itself still succeeds; the denial assertion catches them).

Why a control plane of its own (not the session's): the proof of "no denial" is the API server's audit log,
which records every request of a ServiceAccount with its response code and the RBAC authorizer's decision,
also denials the operator only logs or silently retries. The audit log is a kube-apiserver flag, so this
module starts one with ``--audit-log-path`` (a few seconds) instead of restarting the shared plane.

Why a test MutatingWebhookConfiguration: the chart's own points at the webhook Service
(``<release>-hwcap-operator-webhook.<ns>.svc:443``). Without a kubelet no operator pod runs behind it, and without
kube-proxy / endpoints the API server could not reach a local process through it anyway (its failurePolicy is
Ignore, so pods are merely admitted unmutated by that one). The test configuration is the same pod rule with
a url clientConfig on loopback, limited to the test's namespace.

Expectations are derived independently of the product: the agent's words from this machine's /proc/self/auxv
read with ``struct``, the members from the nodes the test made, the chart's rights from its rendered ClusterRole.
"""

from __future__ import annotations

import contextlib
import json
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config

from hwcap_dev.devcluster.assets import Binaries
from hwcap_dev.devcluster.runner import ControlPlane, Options
from hwcap_dev.devcluster.testing import ClusterAccess, ToolRunner, helm_runner, kubectl_runner
from hwcap_operator import keys
from tests.e2e.chart_rbac_support import (
    AuditLog,
    agent_pod,
    audit_apiserver_args,
    chart_operator_args,
    denials_explained,
    log_denials,
    pull_secret,
    read_auxv_words,
    request_token,
    run_agent_once,
    service_account_user,
)
from tests.e2e.webhook_support import (
    TEST_LABEL,
    WebhookTLS,
    delete_domain,
    domain_manifest,
    expected_wrapper,
    install_step,
    installed_shim,
    installed_webhook,
    label_namespace,
    pod_annotations,
    probe_pod,
    read_pod,
    runs,
    wait_until_injected,
    webhook_configuration,
)
from tests.support.domains import Domains
from tests.support.operator import INIT_IMAGE, OperatorProcess, OperatorStarter
from tests.support.registry import Registry, run_registry
from tests.support.waits import wait_for

REPO = Path(__file__).resolve().parents[2]
CHART_DIR = REPO / "charts" / "hwcap-operator"
#: Two x86-64 generations: the agent runs on this (x86-64) machine and publishes its words on each node.
ZEN3 = "x86_64-amd-zen3-milan-epyc7763-azure-vm"
ICELAKE = "x86_64-intel-icelake-sp-platinum8370c-azure-vm"
#: x86 AT_HWCAP is CPUID.1:EDX (docs/kernel.md#x86-cpuid); bit 26 is SSE2 (Intel SDM vol. 2A, table 3-11).
SSE2_BIT = 26
NAMESPACED_KINDS = {"ServiceAccount", "Secret", "Service", "Deployment", "DaemonSet", "PodDisruptionBudget",
                    "RoleBinding", "Role"}
PRIVATE_ENTRYPOINT = ["/usr/bin/private-app", "--serve"]
Api = Any


# ------------------------------------------------------------------------------------- a control plane with audit


@pytest.fixture(scope="module")
def audited_plane(devcluster_binaries: Binaries, tmp_path_factory: pytest.TempPathFactory
                  ) -> Iterator[tuple[ClusterAccess, AuditLog]]:  # fmt: skip
    work = tmp_path_factory.mktemp("rbac-plane")
    flags, log = audit_apiserver_args(work / "audit")
    plane = ControlPlane(devcluster_binaries, Options(state_dir=work / "state", scheduler=False,
                                                      extra_apiserver_args=flags))  # fmt: skip
    plane.start()
    try:
        yield ClusterAccess(plane.kubeconfig, devcluster_binaries, work, plane), AuditLog(log)
    finally:
        plane.stop()


# The shared fixtures (namespace, node_factory, ...) resolve these overrides, so they act on this module's plane.
@pytest.fixture(scope="module")
def control_plane(audited_plane: tuple[ClusterAccess, AuditLog]) -> ClusterAccess:
    return audited_plane[0]


@pytest.fixture(scope="module")
def audit(audited_plane: tuple[ClusterAccess, AuditLog]) -> AuditLog:
    return audited_plane[1]


@pytest.fixture(scope="module")
def api_client(control_plane: ClusterAccess) -> Iterator[Api]:
    new_client: Callable[..., Api] = config.new_client_from_config
    api = new_client(config_file=str(control_plane.kubeconfig))
    try:
        yield api
    finally:
        api.close()


@pytest.fixture(scope="module")
def core_v1(api_client: Api) -> Api:
    return client.CoreV1Api(api_client)


@pytest.fixture(scope="module")
def kubectl(control_plane: ClusterAccess) -> ToolRunner:
    return kubectl_runner(control_plane)


@pytest.fixture(scope="module")
def helm(control_plane: ClusterAccess) -> ToolRunner:
    return helm_runner(control_plane)


# ----------------------------------------------------------------------------------------------- the release


@dataclass(frozen=True)
class Release:
    name: str
    namespace: str
    manifest: str
    #: The application namespace the release lets the operator read pull secrets in (operator.pullSecrets).
    apps_namespace: str

    @property
    def operator_sa(self) -> str:
        return f"{self.name}-hwcap-operator"

    @property
    def agent_sa(self) -> str:
        return f"{self.operator_sa}-agent"

    @property
    def init_image(self) -> str:
        """The install step's image: what the chart's Deployment passes as ``--init-image`` (the small init image)."""
        (deployment,) = self.objects("Deployment")
        args = [str(a) for a in deployment["spec"]["template"]["spec"]["containers"][0]["args"]]
        return args[args.index("--init-image") + 1]

    def objects(self, kind: str) -> list[dict[str, Any]]:
        return [d for d in yaml.safe_load_all(self.manifest) if d and d["kind"] == kind]


@pytest.fixture(scope="module")
def release(helm: ToolRunner, kubectl: ToolRunner, core_v1: Api) -> Release:
    """The chart installed into its own namespace with its defaults (they need no kubelet: nothing waits for a
    pod), plus one application namespace whose pull secrets the operator may read (``operator.pullSecrets``);
    Node Feature Discovery's NodeFeature CRD and namespace exist, as on a cluster running NFD."""
    suffix = secrets.token_hex(3)
    name, namespace, apps = f"hw{suffix}", f"hwcap-system-{suffix}", f"rbac-apps-{suffix}"
    core_v1.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=apps)))
    helm("install", name, str(CHART_DIR), "--namespace", namespace, "--create-namespace",
         "--set", f"operator.pullSecrets.namespaces={{{apps}}}")  # fmt: skip
    manifest = helm("get", "manifest", name, "--namespace", namespace).stdout
    rendered = [d for d in yaml.safe_load_all(manifest) if d]
    # Every namespaced template names its namespace (the release's, or an application namespace for RoleBindings).
    assert all(d["metadata"].get("namespace") for d in rendered if d["kind"] in NAMESPACED_KINDS)
    stored = kubectl("get", "-f", "-", "-o", "name", input=manifest).stdout.split()
    assert len(stored) == len(rendered) > 10, (stored, [d["kind"] for d in rendered])
    from hwcap_dev.devcluster import simulated_nodes as nodes

    kubectl("apply", "-f", "-", input=json.dumps(nodes.nodefeature_crd()))
    kubectl("wait", "--for=condition=Established", "crd/nodefeatures.nfd.k8s-sigs.io", "--timeout=60s")
    with contextlib.suppress(client.ApiException):
        core_v1.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=keys.NFD_NAMESPACE_DEFAULT)))
    return Release(name, namespace, manifest, apps)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A private registry (basic auth) on loopback: pulls need the pod's pull secret."""
    with run_registry(tmp_path_factory.mktemp("registry"), "basic") as reg:
        yield reg


@pytest.fixture(scope="module")
def operator_kubeconfig(release: Release, control_plane: ClusterAccess, core_v1: Api) -> Path:
    token = request_token(core_v1, release.namespace, release.operator_sa)
    return control_plane.token_kubeconfig(release.operator_sa, token)


@pytest.fixture
def operator(release: Release, operator_kubeconfig: Path, tls: WebhookTLS, registry: Registry,
             start_operator: OperatorStarter) -> OperatorProcess:  # fmt: skip
    """``hwcap-operator run`` with the chart's own options, authenticated only by the operator SA's token. One
    option more: the test registry speaks plain HTTP on loopback (a real one would serve TLS)."""
    extra = [*chart_operator_args(release.manifest, release.namespace), "--insecure-registries", registry.host]
    return start_operator(operator_kubeconfig, tls=tls, namespace=release.namespace, extra=extra)


def run_agent_for(node: str, release: Release, control_plane: ClusterAccess,
                  core_v1: Api) -> Any:  # fmt: skip
    """The agent of ``node``: its pod (bound to the node), a token bound to that pod, one round."""
    pod = core_v1.create_namespaced_pod(
        release.namespace, agent_pod(f"agent-{node}"[:63], release.agent_sa, node, INIT_IMAGE))
    token = request_token(core_v1, release.namespace, release.agent_sa, bound_pod=pod)
    return run_agent_once(control_plane.token_kubeconfig(f"agent-{node}"[:60], token), node)


def member_label(domain: str) -> str:
    return f"{keys.DOMAIN_MEMBER_LABEL_PREFIX}{domain}"


def hwcap_events(core_v1: Api, kind: str, name: str) -> list[Any]:
    items = core_v1.list_event_for_all_namespaces(field_selector=f"involvedObject.name={name}").items
    return [e for e in items if e.involved_object.kind == kind and (e.source.component or "") == "hwcap-operator"]


# ----------------------------------------------------------------------------------------------------- the tests


def test_full_scenario_with_the_charts_service_account_tokens_has_no_denial(
    release: Release, operator: OperatorProcess, control_plane: ClusterAccess, audit: AuditLog,
    core_v1: Api, api_client: client.ApiClient, kubectl: ToolRunner, domains: Domains,
    node_factory: Any, namespace: str, tls: WebhookTLS, registry: Registry,
) -> None:  # fmt: skip
    operator_user = service_account_user(release.namespace, release.operator_sa)
    agent_user = service_account_user(release.namespace, release.agent_sa)
    with denials_explained(audit, [operator_user, agent_user]):
        selector = {TEST_LABEL: namespace}
        made = [node_factory(p, labels=selector, node_feature_namespace=keys.NFD_NAMESPACE_DEFAULT)
                for p in (ZEN3, ICELAKE)]  # fmt: skip
        names = sorted(n["metadata"]["name"] for n in made)

        # The agent of each node, once, with a token bound to a pod on that node.
        words = read_auxv_words()
        published = ",".join(f"{w:#x}" for w in words)
        for node in names:
            done = run_agent_for(node, release, control_plane, core_v1)
            assert done.returncode == 0, f"agent for {node} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
            assert not log_denials([], done.stdout + done.stderr)
            annotations = core_v1.read_node(node).metadata.annotations
            assert annotations[keys.AGENT_HWCAP_ANNOTATION] == published
            assert annotations[keys.AGENT_KERNEL_RELEASE_ANNOTATION]
            assert annotations[keys.AGENT_INHERITANCE_ANNOTATION] in ("supported", "unsupported", "unknown")

        # The domain, applied by an admin; the operator computes it, labels the members and writes status. Its
        # workloads are the release's application namespace.
        apps = release.apps_namespace
        label_namespace(core_v1, apps, selector)
        domain = f"rbac-{namespace[-6:]}"
        kubectl("apply", "-f", "-", input=domain_manifest(domain, namespace, selector, arch="amd64",
                                                          allowHidingSecurityFeatures=True))  # fmt: skip
        try:
            ready = domains.wait_condition(domain, "Ready", "True", timeout=60)
            status = domains.get(domain)["status"]
            assert ready["observedGeneration"] == domains.get(domain)["metadata"]["generation"]
            assert sorted(status["members"]["names"]) == names
            for node in names:
                assert (core_v1.read_node(node).metadata.labels or {}).get(member_label(domain)) == "true"
            mask_hwcap = int(status["mask"]["hwcap"], 16)
            assert mask_hwcap and mask_hwcap & ~words[0] == 0, (hex(mask_hwcap), published)
            assert (words[0] >> SSE2_BIT) & 1 and "sse2" in status["mask"]["features"]
            wait_for("an Event about the domain", lambda: hwcap_events(core_v1, keys.KIND, domain))

            # Pods created in the selected namespace come back injected: one with its own command, and one of a
            # private image without command, whose entrypoint the webhook reads with the pod's pull secret.
            registry.push_image("apps/private", "1.0", PRIVATE_ENTRYPOINT, None, arch="amd64")
            core_v1.create_namespaced_secret(apps, pull_secret("regcred", registry.host))
            assert operator.webhook is not None
            body = webhook_configuration(f"rbac-{apps}", operator.webhook[0], tls, [apps])
            with installed_webhook(api_client, body):
                wait_until_injected(core_v1, apps, domain)
                core_v1.create_namespaced_pod(apps, probe_pod("app"))
                stored = read_pod(core_v1, apps, "app")
                assert pod_annotations(stored)[keys.POD_DOMAIN_ANNOTATION] == domain
                assert pod_annotations(stored)[keys.POD_MASK_ID_ANNOTATION] == status["mask"]["id"]
                # The install step is the chart's init image (its Deployment passes --init-image with it).
                assert install_step(stored)["image"] == release.init_image
                private = probe_pod("private")
                private["spec"]["imagePullSecrets"] = [{"name": "regcred"}]
                (container,) = private["spec"]["containers"]
                del container["command"]
                container["image"] = f"{registry.host}/apps/private:1.0"
                core_v1.create_namespaced_pod(apps, private)
                stored = read_pod(core_v1, apps, "private")
                assert keys.POD_UNWRAPPED_ANNOTATION not in pod_annotations(stored)
                wrapped = stored["spec"]["containers"][0]
                assert runs(wrapped) == expected_wrapper(installed_shim(stored), status) + PRIVATE_ENTRYPOINT
        finally:
            delete_domain(api_client, domain)
        wait_for("member labels removed", lambda: all(
            member_label(domain) not in (core_v1.read_node(n).metadata.labels or {}) for n in names))

        # Both identities really did their job through the API server ...
        assert audit.succeeded(operator_user, "watch", "nodes") and audit.succeeded(operator_user, "watch", "pods")
        for node in names:
            assert audit.succeeded(agent_user, "patch", "nodes", node), f"no successful agent patch of {node}"
            assert audit.succeeded(operator_user, "patch", "nodes", node), f"no successful member label on {node}"
        assert audit.succeeded(operator_user, "patch", "migrationdomains/status", domain)
        assert audit.succeeded(operator_user, "create", "events")
        assert audit.succeeded(operator_user, "get", "secrets", "regcred"), "the pull secret was never read"
        # ... and not one of their requests was denied: the audit log, then what the operator itself logged.
        denied = audit.denials([operator_user, agent_user])
        assert not denied, "denied requests:\n" + "\n".join(map(str, denied))
        assert not log_denials(operator.log_records(), operator.log())


def _without_verb(role: dict[str, Any], resource: str, verb: str) -> list[dict[str, Any]]:
    """The role's rules with ``verb`` taken off every rule for ``resource`` in the core group."""
    rules = []
    for rule in role["rules"]:
        rule = dict(rule)
        if "" in rule.get("apiGroups", []) and resource in rule.get("resources", []):
            rule["verbs"] = [v for v in rule["verbs"] if v != verb]
        rules.append(rule)
    return rules


def test_a_removed_rule_is_a_visible_denial_and_restoring_it_heals(
    release: Release, operator: OperatorProcess, audit: AuditLog, core_v1: Api,
    api_client: client.ApiClient, kubectl: ToolRunner, domains: Domains, node_factory: Any, namespace: str,
) -> None:  # fmt: skip
    operator_user = service_account_user(release.namespace, release.operator_sa)
    rbac: Api = client.RbacAuthorizationV1Api(api_client)
    role_name = release.operator_sa
    (chart_role,) = [r for r in release.objects("ClusterRole") if r["metadata"]["name"] == role_name]
    assert any("" in r["apiGroups"] and "nodes" in r["resources"] and "patch" in r["verbs"]
               for r in chart_role["rules"])  # fmt: skip
    reduced = _without_verb(chart_role, "nodes", "patch")
    assert reduced != chart_role["rules"]
    rbac.patch_cluster_role(role_name, {"rules": reduced})

    selector = {TEST_LABEL: namespace}
    node = node_factory(ZEN3, labels=selector)["metadata"]["name"]
    domain = f"rbac-{namespace[-6:]}"
    kubectl("apply", "-f", "-", input=domain_manifest(domain, namespace, selector, arch="amd64",
                                                      allowHidingSecurityFeatures=True))  # fmt: skip
    try:
        # The user-visible failure: the operator logs the 403 naming the domain, the API server recorded the
        # RBAC decision, the node carries no member label and the domain never says Ready.
        def logged_403() -> list[dict[str, Any]]:
            return [r for r in operator.log_records()
                    if r.get("domain") == domain and str(r.get("status")) == "403"]  # fmt: skip

        record = wait_for("the operator to log the 403 of the member label", logged_403, timeout=60)[0]
        assert record.get("level") == "error" and "Forbidden" in str(record.get("reason")), record
        denied = wait_for("the API server's audit of the denial", lambda: [
            e for e in audit.denials([operator_user]) if e.verb == "patch" and e.resource == "nodes"
            and e.name == node])  # fmt: skip
        assert denied[0].decision == "forbid" and denied[0].code == 403, denied[0]
        assert member_label(domain) not in (core_v1.read_node(node).metadata.labels or {})
        ready = domains.condition(domain, "Ready")
        assert ready is None or ready["status"] != "True", ready

        # The chart's rule back: the operator's retry goes through, with no restart.
        rbac.patch_cluster_role(role_name, {"rules": chart_role["rules"]})
        domains.wait_condition(domain, "Ready", "True", timeout=60)
        assert (core_v1.read_node(node).metadata.labels or {}).get(member_label(domain)) == "true"
        assert audit.succeeded(operator_user, "patch", "nodes", node)
    finally:
        rbac.patch_cluster_role(role_name, {"rules": chart_role["rules"]})
        delete_domain(api_client, domain)


def test_pull_secrets_of_a_namespace_not_listed_stay_unreadable(
    release: Release, operator: OperatorProcess, audit: AuditLog, core_v1: Api, api_client: client.ApiClient,
    kubectl: ToolRunner, domains: Domains, node_factory: Any, namespace: str, tls: WebhookTLS, registry: Registry,
) -> None:  # fmt: skip
    """operator.pullSecrets lists one application namespace; in any other the operator's token may not read a
    Secret, so a private image's entrypoint stays unknown and the domain's default policy refuses the pod."""
    operator_user = service_account_user(release.namespace, release.operator_sa)
    selector = {TEST_LABEL: namespace}
    node_factory(ZEN3, labels=selector)
    label_namespace(core_v1, namespace, selector)
    registry.push_image("apps/elsewhere", "1.0", PRIVATE_ENTRYPOINT, None, arch="amd64")
    core_v1.create_namespaced_secret(namespace, pull_secret("regcred", registry.host))
    domain = f"rbac-{namespace[-6:]}"
    kubectl("apply", "-f", "-", input=domain_manifest(domain, namespace, selector, arch="amd64",
                                                      allowHidingSecurityFeatures=True))  # fmt: skip
    assert operator.webhook is not None
    body = webhook_configuration(f"rbac-{namespace}", operator.webhook[0], tls, [namespace])
    try:
        domains.wait_condition(domain, "Ready", "True", timeout=60)
        with installed_webhook(api_client, body):
            wait_until_injected(core_v1, namespace, domain)
            pod = probe_pod("private")
            pod["spec"]["imagePullSecrets"] = [{"name": "regcred"}]
            (container,) = pod["spec"]["containers"]
            del container["command"]
            container["image"] = f"{registry.host}/apps/elsewhere:1.0"
            with pytest.raises(client.ApiException) as refused:
                core_v1.create_namespaced_pod(namespace, pod)
            refusal = str(refused.value.body)
            assert refused.value.status == 403 and "could not be resolved" in refusal
            # The user is told why the existing secret did not help, not only "no pull secret matches".
            assert f"pull secret {namespace}/regcred unusable: the operator may not read it" in refusal
        denied = [e for e in audit.denials([operator_user]) if e.resource == "secrets" and e.name == "regcred"
                  and f"/namespaces/{namespace}/" in e.uri]  # fmt: skip
        assert denied and denied[0].verb == "get" and denied[0].decision == "forbid", denied
        assert [r for r in operator.log_records()
                if r.get("secret") == "regcred" and "may not read" in str(r.get("problem"))]  # fmt: skip
    finally:
        delete_domain(api_client, domain)
