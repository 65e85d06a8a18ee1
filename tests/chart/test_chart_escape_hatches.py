"""The chart's escape hatches reach the programs: every operator flag has a value, extra args/env, the registry
CA and proxy for entrypoint lookups, security-context overrides (OpenShift), topology spread, agent probes and
NetworkPolicies. Command lines are parsed by the operator's own argument parser, as the container would."""

from __future__ import annotations

from typing import Any

import yaml
from chartlib import CHART_DIR, KUBE_VERSION, Helm, Render, Rendered

from hwcap_operator.cli.operator_main import build_parser

ESCAPE_HATCHES = yaml.safe_load((CHART_DIR / "ci" / "escape-hatches-values.yaml").read_text())
OPENSHIFT = yaml.safe_load((CHART_DIR / "ci" / "openshift-values.yaml").read_text())


def _container(rendered: Rendered, kind: str) -> dict[str, Any]:
    container: dict[str, Any] = rendered.one(kind)["spec"]["template"]["spec"]["containers"][0]
    return container


def _parsed(container: dict[str, Any]) -> Any:
    env = {"POD_NAMESPACE": "hwcap-system", "NODE_NAME": "node-1"}
    args = [a.replace("$(POD_NAMESPACE)", env["POD_NAMESPACE"]).replace("$(NODE_NAME)", env["NODE_NAME"])
            for a in container["args"]]  # fmt: skip
    return build_parser().parse_args(args)


def test_the_five_operator_flags_have_values_and_their_defaults_match_the_program(render: Render) -> None:
    defaults = _parsed(_container(render(), "Deployment"))
    program = build_parser().parse_args(["run", "--init-image", "x"])
    for flag in ("log_level", "resync_seconds", "webhook_check_seconds", "insecure_registries", "no_registry_lookup"):
        assert getattr(defaults, flag) == getattr(program, flag), flag
    chosen = _parsed(_container(render(ESCAPE_HATCHES), "Deployment"))
    assert chosen.log_level == "DEBUG"
    assert (chosen.resync_seconds, chosen.webhook_check_seconds) == (120.0, 30.0)
    assert chosen.insecure_registries == frozenset({"registry.local:5000", "127.0.0.1:5001"})
    assert chosen.no_registry_lookup is True
    assert chosen.webhook_host == "0.0.0.0"  # extraArgs come last and are parsed like the chart's own


def test_agent_gets_log_level_extra_args_env_and_probes_on_its_metrics_port(render: Render) -> None:
    agent = _container(render(ESCAPE_HATCHES), "DaemonSet")
    parsed = _parsed(agent)
    assert parsed.log_level == "DEBUG" and parsed.interval == 60.0  # extraArgs' --interval wins (last)
    assert {"name": "EXTRA", "value": "1"} in agent["env"]
    ports = {p["name"]: p["containerPort"] for p in agent["ports"]}
    for probe in ("livenessProbe", "readinessProbe"):
        assert (
            agent[probe]["httpGet"]["port"] in ports and ports[agent[probe]["httpGet"]["port"]] == parsed.metrics_port
        )
    assert "livenessProbe" not in _container(render({"agent": {"livenessProbe": None}}), "DaemonSet")


def test_registry_ca_and_proxy_reach_the_entrypoint_lookups(render: Render) -> None:
    rendered = render(ESCAPE_HATCHES)
    operator = _container(rendered, "Deployment")
    env = {e["name"]: e.get("value") for e in operator["env"]}
    assert env["HTTPS_PROXY"] == "http://proxy.example.com:3128" and env["NO_PROXY"].startswith("10.0.0.0/8")
    assert env["EXTRA"] == "1"
    # requests (the registry client) reads REQUESTS_CA_BUNDLE: it must name the mounted key of the ConfigMap.
    mount = next(m for m in operator["volumeMounts"] if m["name"] == "registry-ca")
    volume = next(
        v for v in rendered.one("Deployment")["spec"]["template"]["spec"]["volumes"] if v["name"] == "registry-ca"
    )
    assert volume["configMap"]["name"] == "corp-ca"
    assert env["REQUESTS_CA_BUNDLE"] == f"{mount['mountPath']}/{volume['configMap']['items'][0]['path']}"
    plain = {e["name"] for e in _container(render(), "Deployment")["env"]}
    assert not plain & {"HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY", "REQUESTS_CA_BUNDLE"}


def test_topology_spread_constraints_pass_through(render: Render) -> None:
    spec = render(ESCAPE_HATCHES).one("Deployment")["spec"]["template"]["spec"]
    assert spec["topologySpreadConstraints"] == ESCAPE_HATCHES["operator"]["topologySpreadConstraints"]
    assert "topologySpreadConstraints" not in render().one("Deployment")["spec"]["template"]["spec"]


def test_openshift_values_leave_the_uid_to_the_platform_and_keep_the_rest(render: Render) -> None:
    rendered = render(OPENSHIFT)
    for kind in ("Deployment", "DaemonSet"):
        pod = rendered.one(kind)["spec"]["template"]["spec"]
        container = pod["containers"][0]["securityContext"]
        for key in ("runAsUser", "runAsGroup", "fsGroup"):
            assert key not in pod["securityContext"] and key not in container, (kind, key)
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert container["allowPrivilegeEscalation"] is False and container["capabilities"]["drop"] == ["ALL"]


def test_network_policies_admit_only_the_served_ports(render: Render) -> None:
    assert not render().of_kind("NetworkPolicy")
    rendered = render(ESCAPE_HATCHES)
    policies = {p["metadata"]["name"]: p["spec"] for p in rendered.of_kind("NetworkPolicy")}
    for kind, name in (("Deployment", "hw-hwcap-operator"), ("DaemonSet", "hw-hwcap-operator-agent")):
        workload = rendered.one(kind)
        spec = policies[name]
        assert spec["podSelector"]["matchLabels"].items() <= workload["spec"]["template"]["metadata"]["labels"].items()
        assert spec["policyTypes"] == ["Ingress"]
        served = {p["name"] for p in workload["spec"]["template"]["spec"]["containers"][0]["ports"]}
        allowed = {port["port"] for rule in spec["ingress"] for port in rule["ports"]}
        assert allowed == served, kind
    webhook_rule = next(r for r in policies["hw-hwcap-operator"]["ingress"] if r["ports"][0]["port"] == "webhook")
    assert webhook_rule["from"] == [{"ipBlock": {"cidr": "10.0.0.0/24"}}]


def test_nfd_nodefeature_publishing_is_one_value_with_exactly_the_rights_it_uses(render: Render) -> None:
    assert "hw-hwcap-operator-agent-nodefeatures" not in {r["metadata"]["name"] for r in render().of_kind("Role")}
    rendered = render({"agent": {"nodeFeature": {"enabled": True}}})
    agent = _container(rendered, "DaemonSet")
    assert _parsed(agent).nodefeature_namespace == "hwcap-system"  # $(POD_NAMESPACE), from the env below
    env = {e["name"]: e for e in agent["env"]}
    assert env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    role = rendered.one("Role", "hw-hwcap-operator-agent-nodefeatures")
    assert role["metadata"]["namespace"] == "hwcap-system"
    # publish() reads, creates, and replaces (update) its own object: nothing else, nowhere else.
    assert role["rules"] == [{"apiGroups": ["nfd.k8s-sigs.io"], "resources": ["nodefeatures"],
                              "verbs": ["get", "create", "update"]}]  # fmt: skip
    binding = rendered.one("RoleBinding", "hw-hwcap-operator-agent-nodefeatures")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "hw-hwcap-operator-agent",
                                    "namespace": "hwcap-system"}]  # fmt: skip


def test_the_api_server_accepts_every_object_the_escape_hatches_render(
    helm_tool: Helm, kubectl: Any, namespace: str
) -> None:
    """Server-side dry run with strict field validation: a misspelt field in a probe, a spread constraint,
    a security context with nulls or a NetworkPolicy would be refused here (CRDs' kinds left out: not installed)."""
    values = [CHART_DIR / "ci" / name for name in ("escape-hatches-values.yaml", "openshift-values.yaml")]
    args = ["template", "hw", str(CHART_DIR), "--namespace", namespace, "--kube-version", KUBE_VERSION,
            "--set", "agent.nodeFeature.enabled=true"]  # fmt: skip
    for path in values:
        args += ["--values", str(path)]
    objects = [d for d in yaml.safe_load_all(helm_tool.run(*args).stdout) if d]
    core = [o for o in objects if o["apiVersion"].split("/")[0] not in ("monitoring.coreos.com", "cert-manager.io")]
    assert {"NetworkPolicy", "Deployment", "DaemonSet", "Role"} <= {o["kind"] for o in core}
    applied = kubectl("apply", "--dry-run=server", "--validate=strict", "-f", "-",
                      input="\n---\n".join(yaml.safe_dump(o) for o in core), check=False)  # fmt: skip
    assert applied.returncode == 0, applied.stderr
