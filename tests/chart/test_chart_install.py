"""The chart installed for real into the local kube-apiserver: every object is accepted, the generated webhook
certificate survives an upgrade, and the agent's node-scope admission policy really confines the agent's token.

The agent is exercised with a genuine token of the chart's agent ServiceAccount, minted by TokenRequest and
bound to a Pod scheduled (by spec.nodeName) onto one Node, exactly like the kubelet-issued token of a running
agent. No kubelet runs here, so the pods never start; the API server's behaviour is what is under test.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import secrets
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import yaml
from chartlib import CHART_DIR
from kubernetes import client, config
from tests.support.waits import wait_for

from hwcap_dev.devcluster.testing import ClusterAccess, ToolRunner
from hwcap_operator import keys

pytestmark = pytest.mark.e2e

PROFILE_A = "arm64-aws-graviton2-neoverse-n1"
PROFILE_B = "arm64-aws-graviton3-neoverse-v1"
OUR_CRDS = ("migrationdomains.hwcap.dev",)
#: The kubernetes client's models make every field Optional; these tests read what they just wrote, so they
#: handle API objects as ``Any`` (``Api``) instead of narrowing each field.
Api = Any


@dataclass(frozen=True)
class Release:
    name: str
    namespace: str
    install_output: str

    @property
    def fullname(self) -> str:
        return f"{self.name}-hwcap-operator"

    @property
    def agent_sa(self) -> str:
        return f"{self.fullname}-agent"


@pytest.fixture
def release(helm: ToolRunner, namespace: str, api_client: Api) -> Iterator[Release]:
    """The chart installed with its defaults into the test's namespace; uninstalled (and our CRDs removed if
    this install created them) afterwards, so no webhook or policy outlives the test."""
    ext: Api = client.ApiextensionsV1Api(api_client)
    existing = {crd.metadata.name for crd in ext.list_custom_resource_definition().items}
    name = f"hw{secrets.token_hex(3)}"
    proc = helm("install", name, str(CHART_DIR), "--namespace", namespace)
    try:
        yield Release(name, namespace, proc.stdout)
    finally:
        helm("uninstall", name, "--namespace", namespace, "--wait", check=False)
        created = [crd for crd in OUR_CRDS if crd not in existing]
        for crd in created:
            with contextlib.suppress(client.ApiException):
                ext.delete_custom_resource_definition(crd)
        # CRD deletion is asynchronous: wait until they are gone, so a later test can create them afresh.
        def gone() -> bool:
            return not {c.metadata.name for c in ext.list_custom_resource_definition().items} & set(created)

        with contextlib.suppress(AssertionError):  # best effort, as before: a later test reports what is left
            wait_for("the release's CRDs to be deleted", gone, timeout=60, interval=0.5)


def _secret_data(core_v1: Api, release: Release) -> dict[str, bytes]:
    secret = core_v1.read_namespaced_secret(f"{release.fullname}-webhook-tls", release.namespace)
    return {k: base64.b64decode(v) for k, v in secret.data.items()}


def _ca_bundle(api_client: Api, release: Release) -> bytes:
    admission: Api = client.AdmissionregistrationV1Api(api_client)
    mwc = admission.read_mutating_webhook_configuration(release.fullname)
    (hook,) = mwc.webhooks
    return base64.b64decode(hook.client_config.ca_bundle)


def test_install_creates_every_object_and_upgrade_keeps_the_generated_certificate(
    release: Release, helm: ToolRunner, kubectl: ToolRunner, core_v1: Api, api_client: Api
) -> None:
    manifest = helm("get", "manifest", release.name, "--namespace", release.namespace).stdout
    rendered = [doc for doc in yaml.safe_load_all(manifest) if doc]
    stored = kubectl("get", "-f", "-", "-o", "name", "--namespace", release.namespace, input=manifest).stdout.split()
    assert len(stored) == len(rendered) > 10
    assert "kubectl get migrationdomains" in release.install_output  # NOTES.txt
    # The first MigrationDomain NOTES.txt tells users to apply is accepted by the CRD as installed.
    example = textwrap.dedent(release.install_output.split("cat <<'YAML'")[1].split("YAML\n")[0].split("\n", 1)[1])
    assert yaml.safe_load(example)["kind"] == "MigrationDomain"
    kubectl("apply", "--dry-run=server", "-f", "-", input=example)
    for crd in OUR_CRDS:  # from crds/, installed before the templates
        kubectl("get", "crd", crd)

    before = _secret_data(core_v1, release)
    assert _ca_bundle(api_client, release) == before["ca.crt"]

    helm("upgrade", release.name, str(CHART_DIR), "--namespace", release.namespace, "--reuse-values",
         "--set", "webhook.timeoutSeconds=7")
    after = _secret_data(core_v1, release)
    assert after == before, "the upgrade regenerated the webhook certificate"
    assert _ca_bundle(api_client, release) == before["ca.crt"]
    admission: Api = client.AdmissionregistrationV1Api(api_client)
    mwc = admission.read_mutating_webhook_configuration(release.fullname)
    assert mwc.webhooks[0].timeout_seconds == 7  # the upgrade did apply


# --- the agent's node-scope policy -------------------------------------------------------------------------------


def _agent_client(
    control_plane: ClusterAccess, core_v1: Api, release: Release, bound_pod: Api | None
) -> Api:
    """CoreV1Api authenticated with a fresh token of the agent ServiceAccount (pod-bound when a pod is given)."""
    spec = client.V1TokenRequestSpec(audiences=[], expiration_seconds=3600)
    if bound_pod is not None:
        spec.bound_object_ref = client.V1BoundObjectReference(
            api_version="v1", kind="Pod", name=bound_pod.metadata.name, uid=bound_pod.metadata.uid)
    token = core_v1.create_namespaced_service_account_token(
        release.agent_sa, release.namespace, client.AuthenticationV1TokenRequest(spec=spec)).status.token
    kubeconfig = control_plane.token_kubeconfig(f"agent-{secrets.token_hex(3)}", token)
    new_client: Callable[..., Api] = config.new_client_from_config
    return client.CoreV1Api(new_client(config_file=str(kubeconfig)))


def _agent_pod(core_v1: Api, release: Release, node_name: str) -> Api:
    """An agent pod bound to ``node_name`` (what the DaemonSet controller + scheduler would produce)."""
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"agent-{node_name}"[:63], "annotations": {keys.POD_OPT_OUT_ANNOTATION: "false"}},
        "spec": {
            "serviceAccountName": release.agent_sa,
            "nodeName": node_name,
            "containers": [{"name": "agent", "image": "ghcr.io/hwcap-dev/hwcap-operator:test"}],
        },
    }
    return core_v1.create_namespaced_pod(release.namespace, pod)


def _denial(call: Callable[[], Any]) -> client.ApiException | None:
    try:
        call()
    except client.ApiException as exc:
        return exc
    return None


def _eventually_denied(call: Callable[[], Any], what: str) -> client.ApiException:
    """A new policy reaches the admission plugin asynchronously: retry (bounded) until it denies."""
    return wait_for(f"{what} to be denied", lambda: _denial(call), timeout=60, interval=0.5)


def _annotate(api: Api, node: str, key: str, value: str) -> Callable[[], Any]:
    return lambda: api.patch_node(node, {"metadata": {"annotations": {key: value}}})


def test_agent_token_may_only_annotate_its_own_node_with_agent_keys(
    release: Release, control_plane: ClusterAccess, core_v1: Api, node_factory: Any,
    helm: ToolRunner,
) -> None:
    own = node_factory(PROFILE_A)["metadata"]["name"]
    other = node_factory(PROFILE_B)["metadata"]["name"]
    agent = _agent_client(control_plane, core_v1, release, _agent_pod(core_v1, release, own))
    hwcap_key = keys.AGENT_HWCAP_ANNOTATION

    denial = _eventually_denied(_annotate(agent, other, hwcap_key, "0x1,0x0,0x0,0x0"), "patching another node")
    assert denial.status in (403, 422) and other in str(denial.body)

    _annotate(agent, own, hwcap_key, "0x1,0x0,0x0,0x0")()
    _annotate(agent, own, keys.AGENT_KERNEL_RELEASE_ANNOTATION, "6.12.0")()
    stored = core_v1.read_node(own).metadata.annotations
    assert stored[hwcap_key] == "0x1,0x0,0x0,0x0" and stored[keys.AGENT_KERNEL_RELEASE_ANNOTATION] == "6.12.0"

    forbidden_changes = {
        "a foreign annotation": _annotate(agent, own, "example.com/owner", "agent"),
        "a label": lambda: agent.patch_node(own, {"metadata": {"labels": {"node-role.kubernetes.io/x": ""}}}),
        "a domain member label": lambda: agent.patch_node(
            own, {"metadata": {"labels": {f"{keys.DOMAIN_MEMBER_LABEL_PREFIX}demo": "true"}}}),
        "the spec": lambda: agent.patch_node(own, {"spec": {"unschedulable": True}}),
    }
    for what, change in forbidden_changes.items():
        exc = _denial(change)
        assert exc is not None and exc.status in (403, 422), f"the agent could change {what} of its own node"

    # RBAC: reading its node is allowed, listing or deleting nodes is not.
    assert agent.read_node(own).metadata.name == own
    for call in (lambda: agent.list_node(), lambda: agent.delete_node(other)):
        exc = _denial(call)
        assert exc is not None and exc.status == 403

    # A token of the same ServiceAccount that names no node may change no node at all.
    unbound = _agent_client(control_plane, core_v1, release, None)
    exc = _denial(_annotate(unbound, own, hwcap_key, "0x2,0x0,0x0,0x0"))
    assert exc is not None and exc.status in (403, 422) and "node-name" in str(exc.body)

    # The policy, not RBAC, is what confined the agent: without it the same token reaches the other node.
    helm("upgrade", release.name, str(CHART_DIR), "--namespace", release.namespace, "--reuse-values",
         "--set", "agent.nodeScopePolicy.enabled=false")
    wait_for("patching another node to be allowed without the policy",
             lambda: _denial(_annotate(agent, other, hwcap_key, "0x3,0x0,0x0,0x0")) is None, timeout=60, interval=0.5)
    assert core_v1.read_node(other).metadata.annotations[hwcap_key] == "0x3,0x0,0x0,0x0"


def test_operator_and_agent_pods_pass_pod_security_restricted_enforcement(
    release: Release, helm: ToolRunner, core_v1: Api
) -> None:
    """The API server's PodSecurity admission, set to enforce "restricted", admits pods made from the chart's
    pod templates (no controller-manager runs here, so the test creates them as the controllers would)."""
    core_v1.patch_namespace(release.namespace, {"metadata": {"labels": {
        "pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/enforce-version": "latest"}}})
    manifest = helm("get", "manifest", release.name, "--namespace", release.namespace).stdout
    workloads = [d for d in yaml.safe_load_all(manifest) if d and d["kind"] in ("Deployment", "DaemonSet")]
    assert {w["kind"] for w in workloads} == {"Deployment", "DaemonSet"}

    def pod_from(template: dict[str, Any], name: str) -> dict[str, Any]:
        return copy.deepcopy({"apiVersion": "v1", "kind": "Pod",
                              "metadata": {"name": name, "labels": template["metadata"]["labels"]},
                              "spec": template["spec"]})

    # Control: enforcement is really on (a container allowed to escalate privileges is refused).
    loose = pod_from(workloads[0]["spec"]["template"], "loose")
    loose["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = True
    exc = _denial(lambda: core_v1.create_namespaced_pod(release.namespace, loose))
    assert exc is not None and exc.status == 403 and "restricted" in str(exc.body)

    for workload in workloads:
        name = f"{workload['kind'].lower()}-pod"
        core_v1.create_namespaced_pod(release.namespace, pod_from(workload["spec"]["template"], name))


#: (verb, API group, resource, subresource) the operator's and the agent's jobs need, and some they must not have.
OPERATOR_MAY = [
    ("watch", "hwcap.dev", "migrationdomains", ""), ("patch", "hwcap.dev", "migrationdomains", ""),
    ("update", "hwcap.dev", "migrationdomains", "status"), ("patch", "", "nodes", ""), ("list", "", "nodes", ""),
    ("watch", "", "pods", ""), ("list", "", "namespaces", ""), ("create", "", "events", ""),
    ("create", "events.k8s.io", "events", ""), ("watch", "nfd.k8s-sigs.io", "nodefeatures", ""),
    ("get", "apiextensions.k8s.io", "customresourcedefinitions", ""),
]
OPERATOR_MAY_NOT = [
    ("create", "hwcap.dev", "migrationdomains", ""), ("delete", "hwcap.dev", "migrationdomains", ""),
    ("delete", "", "nodes", ""), ("patch", "", "nodes", "status"), ("create", "", "pods", ""),
    ("patch", "", "pods", ""), ("get", "", "secrets", ""), ("list", "", "secrets", ""),
    ("create", "apiextensions.k8s.io", "customresourcedefinitions", ""),
    ("patch", "kopf.dev", "clusterkopfpeerings", ""),
    ("create", "admissionregistration.k8s.io", "mutatingwebhookconfigurations", ""),
]
AGENT_MAY = [("get", "", "nodes", ""), ("patch", "", "nodes", "")]
AGENT_MAY_NOT = [
    ("list", "", "nodes", ""), ("watch", "", "nodes", ""), ("update", "", "nodes", ""),
    ("patch", "", "nodes", "status"), ("get", "", "pods", ""), ("get", "", "secrets", ""),
    ("watch", "hwcap.dev", "migrationdomains", ""),
]


def test_service_accounts_have_exactly_the_rights_of_their_job(release: Release, api_client: Api) -> None:
    """The real RBAC authorizer, asked through SubjectAccessReview for each ServiceAccount of the chart."""
    authz: Api = client.AuthorizationV1Api(api_client)

    def can(sa: str, verb: str, group: str, resource: str, subresource: str, namespace: str | None = None,
            name: str | None = None) -> bool:  # fmt: skip
        review = client.V1SubjectAccessReview(spec=client.V1SubjectAccessReviewSpec(
            user=f"system:serviceaccount:{release.namespace}:{sa}",
            groups=["system:serviceaccounts", f"system:serviceaccounts:{release.namespace}", "system:authenticated"],
            resource_attributes=client.V1ResourceAttributes(
                verb=verb, group=group, resource=resource, subresource=subresource or None, namespace=namespace,
                name=name)))  # fmt: skip
        return bool(authz.create_subject_access_review(review).status.allowed)

    # Leader election: the one Lease, in the release namespace only.
    lease = f"{release.fullname}-leader"
    assert can(release.fullname, "create", "coordination.k8s.io", "leases", "", release.namespace)
    assert all(can(release.fullname, v, "coordination.k8s.io", "leases", "", release.namespace, lease)
               for v in ("get", "update"))  # fmt: skip
    assert not can(release.fullname, "update", "coordination.k8s.io", "leases", "", release.namespace, "other")
    assert not can(release.fullname, "create", "coordination.k8s.io", "leases", "", "default")

    for sa, allowed, denied in ((release.fullname, OPERATOR_MAY, OPERATOR_MAY_NOT),
                                (release.agent_sa, AGENT_MAY, AGENT_MAY_NOT)):
        assert [r for r in allowed if not can(sa, *r)] == [], f"{sa} lacks rights it needs"
        assert [r for r in denied if can(sa, *r)] == [], f"{sa} has rights it must not have"
