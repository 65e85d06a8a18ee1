"""What a platform team must be able to trust in the rendered chart, for the value combinations that matter.

Expectations come from the interface the operator and agent binaries implement (flags, ports, paths), from
``hwcap_operator.keys`` (label/annotation keys) and from Pod Security "restricted" as Kubernetes defines it,
never from the rendered output itself.
"""

from __future__ import annotations

import base64
import datetime
import json
import re
import tomllib
from typing import Any

import pytest
import yaml
from chartlib import CHART_DIR, KUBE_VERSION, NAMESPACE, RELEASE, REPO_ROOT, Helm, Obj, Render, Rendered
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from hwcap_operator import keys
from hwcap_operator.cli.operator_main import build_parser
from hwcap_operator.kube.http_server import MUTATE_PODS_PATH

MONITORING = ("monitoring.coreos.com/v1",)
FULLNAME = f"{RELEASE}-hwcap-operator"
OPERATOR_SA = FULLNAME
AGENT_SA = f"{FULLNAME}-agent"
VALUE_SETS = sorted((CHART_DIR / "ci").glob("*-values.yaml"))


def _values(path: Any) -> dict[str, Any]:
    loaded = yaml.safe_load(path.read_text())
    return loaded or {}


def _pod_templates(rendered: Rendered) -> list[tuple[str, Obj]]:
    return [(o["metadata"]["name"], o["spec"]["template"]) for o in rendered.objects
            if o["kind"] in ("Deployment", "DaemonSet", "StatefulSet", "Job")]


def _container(rendered: Rendered, kind: str, name: str) -> Obj:
    workload = rendered.one(kind)
    containers = workload["spec"]["template"]["spec"]["containers"]
    return next(c for c in containers if c["name"] == name)


def _flag_values(args: list[str]) -> dict[str, str | None]:
    """``--flag value`` pairs of an args list; a flag followed by another flag (or nothing) maps to None."""
    flags: dict[str, str | None] = {}
    for i, arg in enumerate(args):
        if arg.startswith("--"):
            nxt = args[i + 1] if i + 1 < len(args) else None
            flags[arg] = None if nxt is None or nxt.startswith("--") else nxt
    return flags


def _cluster_role_rules(rendered: Rendered, name: str) -> set[tuple[str, str, str]]:
    role = rendered.one("ClusterRole", name)
    return {(group, resource, verb)
            for rule in role["rules"]
            for group in rule["apiGroups"] for resource in rule["resources"] for verb in rule["verbs"]}


# --- lint and labels --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("values_file", VALUE_SETS, ids=lambda p: p.stem)
def test_helm_lint_strict_is_clean_for_every_ci_value_set(helm_tool: Helm, values_file: Any) -> None:
    proc = helm_tool.run("lint", "--strict", str(CHART_DIR), "--values", str(values_file),
                         "--kube-version", KUBE_VERSION)
    assert "0 chart(s) failed" in proc.stdout
    assert "[WARNING]" not in proc.stdout and "[ERROR]" not in proc.stdout


@pytest.mark.parametrize("values_file", VALUE_SETS, ids=lambda p: p.stem)
def test_every_object_carries_the_standard_labels(render: Render, values_file: Any) -> None:
    rendered = render(_values(values_file), api_versions=MONITORING)
    assert rendered.objects
    for obj in rendered.objects:
        labels = obj["metadata"].get("labels", {})
        where = f"{obj['kind']}/{obj['metadata']['name']}"
        assert labels.get("app.kubernetes.io/name") == "hwcap-operator", where
        assert labels.get("app.kubernetes.io/instance") == RELEASE, where
        assert labels.get("app.kubernetes.io/managed-by") == "Helm", where
        assert labels.get("app.kubernetes.io/part-of") == "hwcap-operator", where
        assert labels.get("app.kubernetes.io/component") in {"controller", "node-agent", "webhook"}, where
        assert labels.get("app.kubernetes.io/version"), where
        assert labels.get("helm.sh/chart", "").startswith("hwcap-operator-"), where
    for name, template in _pod_templates(rendered):
        assert template["metadata"]["labels"]["app.kubernetes.io/instance"] == RELEASE, name


# --- Pod Security "restricted" -----------------------------------------------------------------------------------


@pytest.mark.parametrize("values_file", VALUE_SETS, ids=lambda p: p.stem)
def test_every_container_satisfies_pod_security_restricted(render: Render, values_file: Any) -> None:
    rendered = render(_values(values_file))
    templates = _pod_templates(rendered)
    assert templates
    for name, template in templates:
        spec = template["spec"]
        pod_sc = spec.get("securityContext", {})
        assert not spec.get("hostNetwork") and not spec.get("hostPID") and not spec.get("hostIPC"), name
        for volume in spec.get("volumes", []):
            assert "hostPath" not in volume, f"{name}: hostPath volume {volume['name']}"
        for container in spec.get("initContainers", []) + spec["containers"]:
            sc = container.get("securityContext", {})
            where = f"{name}/{container['name']}"
            assert sc.get("allowPrivilegeEscalation") is False, where
            assert sc.get("privileged") in (None, False), where
            assert sc.get("readOnlyRootFilesystem") is True, where
            assert sc.get("capabilities", {}).get("drop") == ["ALL"], where
            assert not sc.get("capabilities", {}).get("add"), where
            assert (sc.get("runAsNonRoot") or pod_sc.get("runAsNonRoot")) is True, where
            # The image's user by default; unset where the platform assigns one (OpenShift), never root.
            expected_uid = None if values_file.stem == "openshift-values" else 65532
            assert sc.get("runAsUser", pod_sc.get("runAsUser")) == expected_uid, where
            seccomp = sc.get("seccompProfile") or pod_sc.get("seccompProfile")
            assert seccomp == {"type": "RuntimeDefault"}, where
            assert "ports" not in container or all("hostPort" not in p for p in container["ports"]), where
            assert container.get("resources", {}).get("requests"), f"{where}: no resource requests"
            assert container.get("resources", {}).get("limits", {}).get("memory"), f"{where}: no memory limit"


# --- the operator's and the agent's command lines (the interface the binaries implement) ------------------------


def test_operator_runs_with_the_agreed_flags(render: Render) -> None:
    rendered = render()
    container = _container(rendered, "Deployment", "operator")
    image = "ghcr.io/hwcap-dev/hwcap-operator:" + yaml.safe_load((CHART_DIR / "Chart.yaml").read_text())["appVersion"]
    assert container["image"] == image
    # program options precede the subcommand
    assert container["args"][:5] == ["--log-format", "json", "--log-level", "INFO", "run"]
    flags = _flag_values(container["args"][5:])
    assert flags == {
        "--namespace": "$(POD_NAMESPACE)",
        "--webhook-port": "9443",
        "--tls-cert-file": "/tls/tls.crt",
        "--tls-key-file": "/tls/tls.key",
        "--metrics-port": "8080",
        "--init-image": image.replace("/hwcap-operator:", "/hwcap-operator-init:"),  # the small init image
        "--excluded-namespaces": f"kube-system,{NAMESPACE},{keys.NFD_NAMESPACE_DEFAULT}",
        "--nfd-namespace": keys.NFD_NAMESPACE_DEFAULT,
        "--webhook-configuration": rendered.one("MutatingWebhookConfiguration")["metadata"]["name"],
        "--leader-lease": f"{FULLNAME}-leader",
        "--resync-seconds": "300",
        "--webhook-check-seconds": "60",
    }
    env = {e["name"]: e for e in container["env"]}
    assert env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"webhook": 9443, "metrics": 8080}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in rendered.one("Deployment")["spec"]["template"]["spec"]["volumes"]}
    assert volumes[mounts["/tls"]]["secret"]["secretName"] == f"{FULLNAME}-webhook-tls"


def test_agent_reads_its_own_node_with_the_agreed_flags_and_is_never_masked(render: Render) -> None:
    rendered = render()
    container = _container(rendered, "DaemonSet", "agent")
    assert container["args"][:5] == ["--log-format", "json", "--log-level", "INFO", "agent"]
    assert _flag_values(container["args"][5:]) == {
        "--node-name": "$(NODE_NAME)",
        "--hwcap-exec": "/usr/local/bin/hwcap-exec",
        "--interval": "300",
        "--metrics-port": "8081",
    }
    env = {e["name"]: e for e in container["env"]}
    assert env["NODE_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"
    template = rendered.one("DaemonSet")["spec"]["template"]
    assert template["metadata"]["annotations"][keys.POD_OPT_OUT_ANNOTATION] == "false"
    assert template["metadata"]["labels"][keys.POD_OPT_OUT_ANNOTATION] == "false"
    assert template["spec"]["serviceAccountName"] == AGENT_SA
    # Runs on every node, tainted or not: an untolerated taint would leave a node without a feature reading.
    assert {"operator": "Exists"} in template["spec"]["tolerations"]


def _expand(args: list[str], env: dict[str, str]) -> list[str]:
    """What the kubelet does to ``$(VAR)`` references in container args."""
    return [re.sub(r"\$\((\w+)\)", lambda m: env[m.group(1)], arg) for arg in args]


@pytest.mark.parametrize("values", [
    {},
    {"operator": {"replicas": 2}, "logFormat": "text",
     "excludedNamespaces": ["monitoring"], "nfd": {"namespace": "nfd"}, "agent": {"interval": 60}},
], ids=["defaults", "replicas-text-logs"])
def test_the_real_command_line_accepts_the_chart_args(render: Render, values: dict[str, Any]) -> None:
    """The operator's own argument parser reads what the Deployment and DaemonSet pass (no drift between them)."""
    rendered = render(values)
    operator = _container(rendered, "Deployment", "operator")
    run = build_parser().parse_args(_expand(operator["args"], {"POD_NAMESPACE": NAMESPACE}))
    assert run.command == "run" and run.namespace == NAMESPACE
    assert (run.webhook_port, run.metrics_port) == (9443, 8080)
    assert (str(run.tls_cert_file), str(run.tls_key_file)) == ("/tls/tls.crt", "/tls/tls.key")
    assert run.init_image == operator["image"].replace("/hwcap-operator:", "/hwcap-operator-init:")
    nfd = values.get("nfd", {}).get("namespace", keys.NFD_NAMESPACE_DEFAULT)
    assert run.nfd_namespace == nfd
    assert set(run.excluded_namespaces) == {"kube-system", NAMESPACE, nfd, *values.get("excludedNamespaces", [])}
    assert (run.leader_lease, run.standalone) == (f"{FULLNAME}-leader", False)
    assert run.log_format == values.get("logFormat", "json")
    assert run.webhook_configuration == rendered.one("MutatingWebhookConfiguration")["metadata"]["name"]
    agent = _container(rendered, "DaemonSet", "agent")
    observe = build_parser().parse_args(_expand(agent["args"], {"NODE_NAME": "node-a"}))
    assert observe.command == "agent" and observe.node_name == "node-a"
    assert str(observe.hwcap_exec) == "/usr/local/bin/hwcap-exec"
    assert observe.interval == values.get("agent", {}).get("interval", 300)
    assert observe.metrics_port == 8081 and observe.log_format == run.log_format


def test_image_digest_wins_over_tag_and_the_init_image_is_its_own(render: Render) -> None:
    digest, init_digest = "sha256:" + "ab" * 32, "sha256:" + "cd" * 32
    rendered = render({"image": {"repository": "registry.example/hwcap", "tag": "9.9.9", "digest": digest},
                       "initImage": {"repository": "registry.example/hwcap-init", "digest": init_digest}})
    operator = _container(rendered, "Deployment", "operator")
    assert operator["image"] == f"registry.example/hwcap@{digest}"
    assert _flag_values(operator["args"])["--init-image"] == f"registry.example/hwcap-init@{init_digest}"
    assert _container(rendered, "DaemonSet", "agent")["image"] == operator["image"]


# --- replicas and leader election ----------------------------------------------------------------------------


def _leader_role(rendered: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    role = next(r for r in rendered.of_kind("Role") if r["metadata"]["name"].endswith("-leader"))
    binding = next(b for b in rendered.of_kind("RoleBinding") if b["metadata"]["name"].endswith("-leader"))
    return role, binding


def test_one_replica_also_takes_the_lease_and_never_blocks_a_drain(render: Render) -> None:
    """A rolling update runs two pods even with one replica: the Lease keeps the writer unique then too."""
    rendered = render()
    assert rendered.one("Deployment")["spec"]["replicas"] == 1
    assert _flag_values(_container(rendered, "Deployment", "operator")["args"])["--leader-lease"] == (
        f"{FULLNAME}-leader")
    pdb = rendered.one("PodDisruptionBudget")["spec"]
    assert pdb.get("maxUnavailable") == 1 and "minAvailable" not in pdb


def test_several_replicas_share_one_lease_in_the_release_namespace_and_keep_one_webhook_up(render: Render) -> None:
    rendered = render({"operator": {"replicas": 3}})
    deployment = rendered.one("Deployment")
    assert deployment["spec"]["replicas"] == 3
    operator = _container(rendered, "Deployment", "operator")
    flags = _flag_values(operator["args"])
    assert flags["--leader-lease"] == f"{FULLNAME}-leader" and "--standalone" not in flags
    env = {e["name"]: e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") for e in operator["env"]}
    assert env["POD_NAME"] == "metadata.name"  # the identity in the Lease, one per pod
    assert not rendered.of_kind("ClusterKopfPeering")
    assert not {r for r in _cluster_role_rules(rendered, FULLNAME) if r[0] in ("kopf.dev", "coordination.k8s.io")}
    role, binding = _leader_role(rendered)
    assert role["metadata"]["namespace"] == binding["metadata"]["namespace"] == NAMESPACE
    grants = {(v, tuple(rule.get("resourceNames") or ())) for rule in role["rules"] for v in rule["verbs"]
              if rule["apiGroups"] == ["coordination.k8s.io"] and rule["resources"] == ["leases"]}  # fmt: skip
    assert grants == {("create", ()), ("get", (f"{FULLNAME}-leader",)), ("update", (f"{FULLNAME}-leader",))}
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": OPERATOR_SA, "namespace": NAMESPACE}]
    pdb = rendered.one("PodDisruptionBudget")["spec"]
    assert pdb.get("minAvailable") == 1 and "maxUnavailable" not in pdb
    anti = deployment["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
    assert anti["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"]["topologyKey"] == (
        "kubernetes.io/hostname")


def test_the_removed_peering_value_is_refused_by_the_schema(helm_tool: Helm) -> None:
    proc = helm_tool.template({"operator": {"replicas": 2, "peering": {"enabled": True}}}, check=False)
    assert proc.returncode != 0 and "peering" in proc.stderr


# --- RBAC: least privilege ---------------------------------------------------------------------------------------


def test_operator_cluster_role_is_exactly_what_it_needs(render: Render) -> None:
    rendered = render()
    expected = {
        *(("hwcap.dev", keys.PLURAL, v) for v in ("get", "list", "watch", "patch")),
        *(("hwcap.dev", f"{keys.PLURAL}/status", v) for v in ("get", "patch", "update")),
        *(("", "nodes", v) for v in ("get", "list", "watch", "patch")),
        *(("", res, v) for res in ("namespaces", "pods") for v in ("get", "list", "watch")),
        *((group, "events", v) for group in ("", "events.k8s.io") for v in ("create", "patch")),
        *(("nfd.k8s-sigs.io", "nodefeatures", v) for v in ("get", "list", "watch")),
        *(("apiextensions.k8s.io", "customresourcedefinitions", v) for v in ("get", "list", "watch")),
        *(("admissionregistration.k8s.io", "mutatingwebhookconfigurations", v) for v in ("get", "patch")),
    }
    assert _cluster_role_rules(rendered, FULLNAME) == expected
    # ... and that one only on the chart's own webhook configuration (its entries follow the domains).
    (webhooks,) = [r for r in rendered.one("ClusterRole", FULLNAME)["rules"]
                   if "mutatingwebhookconfigurations" in r["resources"]]  # fmt: skip
    assert webhooks["resourceNames"] == [rendered.one("MutatingWebhookConfiguration")["metadata"]["name"]]
    binding = rendered.one("ClusterRoleBinding", FULLNAME)
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": OPERATOR_SA, "namespace": NAMESPACE}]
    assert rendered.one("Deployment")["spec"]["template"]["spec"]["serviceAccountName"] == OPERATOR_SA
    # Nothing anywhere grants secrets, wildcards or escalation verbs.
    for role in rendered.of_kind("ClusterRole") + rendered.of_kind("Role"):
        for rule in role["rules"]:
            assert "*" not in rule["verbs"] and "*" not in rule["resources"], role["metadata"]["name"]
            assert "secrets" not in rule["resources"], role["metadata"]["name"]
            assert not {"escalate", "bind", "impersonate"} & set(rule["verbs"]), role["metadata"]["name"]


def test_pull_secrets_are_readable_only_by_name_and_only_in_the_listed_namespaces(render: Render) -> None:
    """The webhook's image lookups read the pull secrets a pod names; the chart grants `get secrets` through one
    RoleBinding per listed namespace, never cluster-wide, and (see above) not at all by default."""
    rendered = render({"operator": {"pullSecrets": {"namespaces": ["apps", "web"]}}})
    role_name = f"{FULLNAME}-pull-secrets"
    assert _cluster_role_rules(rendered, role_name) == {("", "secrets", "get")}
    bindings = [b for b in rendered.of_kind("RoleBinding") if not b["metadata"]["name"].endswith("-leader")]
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["apps", "web"]
    for binding in bindings:
        assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                      "name": role_name}
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": OPERATOR_SA, "namespace": NAMESPACE}]
    assert all(b["roleRef"]["name"] != role_name for b in rendered.of_kind("ClusterRoleBinding"))


def test_agent_may_only_get_and_patch_nodes(render: Render) -> None:
    rendered = render()
    assert _cluster_role_rules(rendered, AGENT_SA) == {("", "nodes", "get"), ("", "nodes", "patch")}
    binding = rendered.one("ClusterRoleBinding", AGENT_SA)
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": AGENT_SA, "namespace": NAMESPACE}]


def test_node_scope_policy_binds_the_agent_to_its_own_node_and_its_own_annotations(render: Render) -> None:
    rendered = render()
    policy = rendered.one("ValidatingAdmissionPolicy")
    assert policy["apiVersion"] == "admissionregistration.k8s.io/v1"
    spec = policy["spec"]
    assert spec["failurePolicy"] == "Fail"
    assert spec["matchConstraints"]["resourceRules"] == [
        {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["UPDATE"], "resources": ["nodes"]}]
    (condition,) = spec["matchConditions"]
    assert f"system:serviceaccount:{NAMESPACE}:{AGENT_SA}" in condition["expression"]
    expressions = " ".join(v["expression"] for v in spec["validations"] + spec["variables"])
    assert "authentication.kubernetes.io/node-name" in expressions
    assert f"'{keys.AGENT_ANNOTATION_PREFIX}'" in expressions
    binding = rendered.one("ValidatingAdmissionPolicyBinding")
    assert binding["spec"] == {"policyName": policy["metadata"]["name"], "validationActions": ["Deny"]}


def test_node_scope_policy_and_agent_objects_follow_their_toggles(render: Render) -> None:
    without_policy = render({"agent": {"nodeScopePolicy": {"enabled": False}}})
    assert not without_policy.of_kind("ValidatingAdmissionPolicy")
    assert not without_policy.of_kind("ValidatingAdmissionPolicyBinding")
    assert without_policy.of_kind("DaemonSet")
    without_agent = render({"agent": {"enabled": False}, "metrics": {"podMonitor": {"enabled": True}}},
                           api_versions=MONITORING)
    assert not without_agent.kinds() & {"DaemonSet", "ValidatingAdmissionPolicy", "PodMonitor"}
    assert [sa["metadata"]["name"] for sa in without_agent.of_kind("ServiceAccount")] == [OPERATOR_SA]


# --- the webhook -------------------------------------------------------------------------------------------------


def _webhook(rendered: Rendered) -> Obj:
    hooks: list[Obj] = rendered.one("MutatingWebhookConfiguration")["webhooks"]
    assert len(hooks) == 1
    return hooks[0]


def test_webhook_intercepts_pod_creation_only_and_fails_open_by_default(render: Render) -> None:
    rendered = render()
    hook = _webhook(rendered)
    assert hook["rules"] == [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"],
                              "resources": ["pods"], "scope": "Namespaced"}]
    assert hook["sideEffects"] == "None"
    assert hook["admissionReviewVersions"] == ["v1"]
    assert hook["failurePolicy"] == "Ignore"
    assert hook["reinvocationPolicy"] == "IfNeeded"
    assert 1 <= hook["timeoutSeconds"] <= 10
    service_ref = hook["clientConfig"]["service"]
    assert service_ref["path"] == MUTATE_PODS_PATH
    service = rendered.one("Service", service_ref["name"])
    assert service["metadata"]["namespace"] == service_ref["namespace"] == NAMESPACE
    (port,) = service["spec"]["ports"]
    assert port["port"] == service_ref["port"] == 443
    container_ports = {p["name"]: p["containerPort"] for p in _container(rendered, "Deployment", "operator")["ports"]}
    assert container_ports[port["targetPort"]] == 9443
    operator_labels = rendered.one("Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= operator_labels.items()


def test_webhook_never_touches_system_operator_or_nfd_namespaces(render: Render) -> None:
    rendered = render({"excludedNamespaces": ["monitoring"], "nfd": {"namespace": "nfd"},
                       "webhook": {"failurePolicy": "Fail", "timeoutSeconds": 2,
                                   "namespaceSelector": {"matchLabels": {"hwcap.dev/injection": "enabled"}}}})
    hook = _webhook(rendered)
    assert hook["failurePolicy"] == "Fail" and hook["timeoutSeconds"] == 2
    selector = hook["namespaceSelector"]
    assert selector["matchLabels"] == {"hwcap.dev/injection": "enabled"}
    (exclusion,) = [e for e in selector["matchExpressions"] if e["key"] == "kubernetes.io/metadata.name"]
    assert exclusion["operator"] == "NotIn"
    assert set(exclusion["values"]) == {"kube-system", NAMESPACE, "nfd", "monitoring"}
    flags = _flag_values(_container(rendered, "Deployment", "operator")["args"])
    assert set((flags["--excluded-namespaces"] or "").split(",")) == set(exclusion["values"])
    assert hook["objectSelector"] == {"matchExpressions": [
        {"key": keys.POD_OPT_OUT_ANNOTATION, "operator": "NotIn", "values": ["false"]}]}


def test_generated_certificate_serves_the_webhook_service_and_the_ca_bundle_trusts_it(render: Render) -> None:
    rendered = render()
    secret = rendered.one("Secret", f"{FULLNAME}-webhook-tls")
    assert secret["type"] == "kubernetes.io/tls"
    data = {k: base64.b64decode(v) for k, v in secret["data"].items()}
    ca = x509.load_pem_x509_certificate(data["ca.crt"])
    leaf = x509.load_pem_x509_certificate(data["tls.crt"])
    hook = _webhook(rendered)
    assert base64.b64decode(hook["clientConfig"]["caBundle"]) == data["ca.crt"]
    leaf.verify_directly_issued_by(ca)
    svc = hook["clientConfig"]["service"]["name"]
    sans = set(leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName))
    assert {f"{svc}.{NAMESPACE}.svc", f"{svc}.{NAMESPACE}.svc.cluster.local"} <= sans
    usages = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in usages
    assert leaf.not_valid_after_utc - datetime.datetime.now(datetime.UTC) > datetime.timedelta(days=3000)
    assert not rendered.kinds() & {"Certificate", "Issuer"}
    assert "cert-manager.io/inject-ca-from" not in rendered.one("MutatingWebhookConfiguration")["metadata"].get(
        "annotations", {})


def test_cert_manager_issues_the_certificate_and_injects_the_ca(render: Render) -> None:
    rendered = render({"certManager": {"enabled": True}})
    assert not rendered.of_kind("Secret")
    certificate = rendered.one("Certificate")
    issuer = rendered.one("Issuer")
    assert issuer["spec"] == {"selfSigned": {}}
    assert certificate["spec"]["issuerRef"] == {"name": issuer["metadata"]["name"], "kind": "Issuer",
                                                "group": "cert-manager.io"}
    volumes = rendered.one("Deployment")["spec"]["template"]["spec"]["volumes"]
    tls_volume = next(v for v in volumes if v["name"] == "tls")
    assert certificate["spec"]["secretName"] == tls_volume["secret"]["secretName"]
    svc = _webhook(rendered)["clientConfig"]["service"]["name"]
    assert set(certificate["spec"]["dnsNames"]) == {f"{svc}.{NAMESPACE}.svc", f"{svc}.{NAMESPACE}.svc.cluster.local"}
    mwc = rendered.one("MutatingWebhookConfiguration")
    assert mwc["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] == (
        f"{NAMESPACE}/{certificate['metadata']['name']}")
    assert "caBundle" not in _webhook(rendered)["clientConfig"]


def test_cert_manager_can_use_the_clusters_own_issuer(render: Render) -> None:
    rendered = render({"certManager": {"enabled": True, "issuerRef": {"name": "corp-ca", "kind": "ClusterIssuer"}}})
    assert not rendered.of_kind("Issuer")
    assert rendered.one("Certificate")["spec"]["issuerRef"] == {"name": "corp-ca", "kind": "ClusterIssuer",
                                                                "group": "cert-manager.io"}


# --- monitoring --------------------------------------------------------------------------------------------------


def test_service_monitor_and_pod_monitor_need_both_the_value_and_the_api(render: Render) -> None:
    enabled = {"metrics": {"serviceMonitor": {"enabled": True}, "podMonitor": {"enabled": True}}}
    assert not render(enabled).kinds() & {"ServiceMonitor", "PodMonitor"}
    assert not render(api_versions=MONITORING).kinds() & {"ServiceMonitor", "PodMonitor"}
    rendered = render(enabled, api_versions=MONITORING)
    monitor = rendered.one("ServiceMonitor")
    metrics_service = next(s for s in rendered.of_kind("Service")
                           if monitor["spec"]["selector"]["matchLabels"].items() <= s["metadata"]["labels"].items())
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in metrics_service["spec"]["ports"]}
    assert {p["targetPort"] for p in metrics_service["spec"]["ports"]} == {"metrics"}
    pod_monitor = rendered.one("PodMonitor")
    agent_template = rendered.one("DaemonSet")["spec"]["template"]
    assert pod_monitor["spec"]["selector"]["matchLabels"].items() <= agent_template["metadata"]["labels"].items()
    (pod_endpoint,) = pod_monitor["spec"]["podMetricsEndpoints"]
    agent_ports = {p["name"]: p["containerPort"] for p in agent_template["spec"]["containers"][0]["ports"]}
    assert agent_ports[pod_endpoint["port"]] == 8081


# --- values.schema.json ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [
    {"replica": 2},
    {"operator": {"replica": 2}},
    {"webhook": {"failurePolicy": "Sometimes"}},
    {"webhook": {"namespaceSelector": {"matchExpressions": [{"key": "a", "operator": "Near"}]}}},
    {"agent": {"tolerations": [{"operator": "Exists", "effekt": "NoSchedule"}]}},
    {"image": {"digest": "latest"}},
], ids=["unknown-top-level", "unknown-nested", "bad-enum", "bad-selector-operator", "typo-in-toleration",
        "bad-digest"])
def test_schema_rejects_typos_and_bad_values_naming_them(helm_tool: Helm, bad: dict[str, Any]) -> None:
    proc = helm_tool.template(bad, check=False)
    assert proc.returncode != 0
    assert "values don't meet the specifications of the schema" in proc.stderr
    leaf_key = _leaf_key(bad)
    assert leaf_key in proc.stderr, proc.stderr
    values_file = helm_tool.home / "lint-bad.yaml"
    values_file.write_text(yaml.safe_dump(bad))
    lint = helm_tool.run("lint", "--strict", str(CHART_DIR), "--values", str(values_file),
                         "--kube-version", KUBE_VERSION, check=False)
    assert lint.returncode != 0


def _leaf_key(tree: Any) -> str:
    """The deepest key of a one-path dict/list tree (the name a schema error must mention)."""
    while True:
        if isinstance(tree, list):
            tree = tree[0]
            continue
        if isinstance(tree, dict):
            key, value = next(reversed(tree.items()))
            if isinstance(value, dict | list):
                tree = value
                continue
            return str(key)
        raise AssertionError(f"no leaf in {tree!r}")


def _object_schemas(node: Any, path: str = "$") -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        if node.get("type") == "object" or "properties" in node:
            found.append((path, node))
        for key, value in node.items():
            found += _object_schemas(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _object_schemas(value, f"{path}[{i}]")
    return found


def test_schema_closes_every_object_except_kubernetes_passthroughs() -> None:
    schema = json.loads((CHART_DIR / "values.schema.json").read_text())
    # Objects the API server validates itself (affinity terms) and Helm's own `global` stay open on purpose.
    open_on_purpose = {
        "$.definitions.affinity.properties.nodeAffinity",
        "$.definitions.affinity.properties.podAffinity",
        "$.definitions.affinity.properties.podAntiAffinity",
        "$.properties.global",
        # Kubernetes types passed through as they are (the API server validates them; nulls delete defaults).
        "$.properties.podSecurityContext",
        "$.properties.containerSecurityContext",
        "$.properties.networkPolicy.properties.webhookFrom.items",
        "$.properties.networkPolicy.properties.metricsFrom.items",
        "$.properties.operator.properties.topologySpreadConstraints.items",
        "$.properties.operator.properties.extraEnv.items",
        "$.properties.agent.properties.extraEnv.items",
        "$.properties.agent.properties.livenessProbe",
        "$.properties.agent.properties.readinessProbe",
    }
    schemas = _object_schemas(schema)
    assert len(schemas) > 20
    for path, node in schemas:
        if path in open_on_purpose or path == "$.definitions":
            continue
        if path.endswith(".properties") and "type" not in node:
            continue  # a "properties" map itself, not a schema
        assert "additionalProperties" in node, f"{path} accepts unknown keys"
        assert node["additionalProperties"] is False or node["additionalProperties"] == {"type": "string"}, path


def test_default_values_follow_the_schema_and_cover_every_declared_key() -> None:
    import jsonschema

    schema = json.loads((CHART_DIR / "values.schema.json").read_text())
    values = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    jsonschema.Draft7Validator(schema).validate(values)
    declared = set(schema["properties"]) - {"global"}
    assert declared == set(values), "values.yaml and values.schema.json disagree on the top-level keys"


# --- CRD and versions --------------------------------------------------------------------------------------------


def test_chart_crd_is_byte_identical_to_the_generated_crd() -> None:
    generated = REPO_ROOT / "crds" / "hwcap.dev_migrationdomains.yaml"
    shipped = CHART_DIR / "crds" / "hwcap.dev_migrationdomains.yaml"
    assert shipped.read_bytes() == generated.read_bytes(), (
        "charts/hwcap-operator/crds/ is stale: cp crds/hwcap.dev_migrationdomains.yaml charts/hwcap-operator/crds/")
    crd = yaml.safe_load(shipped.read_text())
    assert crd["spec"]["group"] == keys.GROUP and crd["spec"]["names"]["plural"] == keys.PLURAL


def test_chart_app_version_is_the_package_version() -> None:
    chart = yaml.safe_load((CHART_DIR / "Chart.yaml").read_text())
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    assert chart["appVersion"] == project["version"]
    assert chart["apiVersion"] == "v2"


def test_helm_template_renders_no_crd_and_install_order_needs_none(render: Render) -> None:
    """CRDs come from crds/ (installed first, never templated), so templates never carry one."""
    assert "CustomResourceDefinition" not in render({"operator": {"replicas": 2}},
                                                    api_versions=MONITORING).kinds()
