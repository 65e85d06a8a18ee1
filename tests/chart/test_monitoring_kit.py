"""The chart's monitoring kit: the PrometheusRule passes promtool and its alerts fire on the series they should
(promtool test rules), each alert has a runbook section, and the Grafana dashboard queries only metrics the
operator and the agent register."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from chartlib import CHART_DIR, NAMESPACE, REPO_ROOT, Helm, Render, Rendered
from tests.unit.test_docs_metrics import registered

MONITORING = ("monitoring.coreos.com/v1",)
KIT = {"metrics": {"prometheusRule": {"enabled": True}, "grafanaDashboard": {"enabled": True}}}
RUNBOOK = REPO_ROOT / "docs" / "runbook.md"
DASHBOARD = CHART_DIR / "dashboards" / "hwcap-operator.json"
#: Series of kube-state-metrics HwcapAgentNotRunning reads (the one metric source that is not ours).
KUBE_STATE_METRICS = {"kube_daemonset_status_desired_number_scheduled", "kube_daemonset_status_number_available"}
AGENT = "hw-hwcap-operator-agent"
_METRIC = re.compile(r"\b((?:hwcap|kube)_[a-z0-9_]+)\b")


def promtool() -> str:
    found = shutil.which("promtool")
    assert found, "promtool comes with Debian's prometheus package (tools/system-packages.txt; make system-packages)"
    return found


def exposed_names() -> set[str]:
    """Every series name a query may use: registered families plus histogram series suffixes."""
    names = set()
    for name, (kind, _) in registered().items():
        names.add(name)
        if kind == "histogram":
            names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
    return names


@pytest.fixture(scope="module")
def kit(render: Render) -> Rendered:
    return render(KIT, api_versions=MONITORING)


@pytest.fixture(scope="module")
def rules_file(kit: Rendered, tmp_path_factory: pytest.TempPathFactory) -> Path:
    rule = kit.one("PrometheusRule")
    path = tmp_path_factory.mktemp("rules") / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    return path


def alerts(kit: Rendered) -> list[dict[str, Any]]:
    return [r for g in kit.one("PrometheusRule")["spec"]["groups"] for r in g["rules"]]


def test_the_kit_is_off_by_default_and_each_part_is_one_value(render: Render) -> None:
    assert not render(api_versions=MONITORING).kinds() & {"PrometheusRule"}
    assert not [c for c in render().of_kind("ConfigMap") if c["metadata"]["name"].endswith("-dashboard")]
    only_rule = render({"metrics": {"prometheusRule": {"enabled": True}}}, api_versions=MONITORING)
    assert "PrometheusRule" in only_rule.kinds()
    assert not [c for c in only_rule.of_kind("ConfigMap") if c["metadata"]["name"].endswith("-dashboard")]


def test_promtool_accepts_the_rules(rules_file: Path) -> None:
    checked = subprocess.run([promtool(), "check", "rules", str(rules_file)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 10 rules found" in checked.stdout


def test_alerts_cover_the_failure_modes_and_each_has_a_runbook_section(kit: Rendered) -> None:
    names = {a["alert"] for a in alerts(kit)}
    assert names >= {"HwcapDomainNotReady", "HwcapMaskRefused", "HwcapNodesExcluded", "HwcapEscapedPods",
                     "HwcapWebhookErrors", "HwcapWebhookSlow", "HwcapAgentMissing", "HwcapAgentNotRunning"}  # fmt: skip
    headings = {h.lower() for h in re.findall(r"^## (\w+)$", RUNBOOK.read_text(), re.M)}
    for alert in alerts(kit):
        url = alert["annotations"]["runbook_url"]
        assert url.endswith(f"docs/runbook.md#{alert['alert'].lower()}")
        assert alert["alert"].lower() in headings, f"docs/runbook.md has no section for {alert['alert']}"
        used = set(_METRIC.findall(alert["expr"]))
        assert used and used <= exposed_names() | KUBE_STATE_METRICS, f"{alert['alert']}: {used - exposed_names()}"
        if alert["alert"] != "HwcapAgentNotRunning":  # the one alert that says it needs kube-state-metrics
            assert not used & KUBE_STATE_METRICS, f"{alert['alert']} must work without kube-state-metrics"
        assert f'namespace="{NAMESPACE}"' in alert["expr"], "scoped to the release's namespace"


def _series(name: str, labels: dict[str, str], values: str) -> dict[str, str]:
    body = ",".join(f'{k}="{v}"' for k, v in {"namespace": NAMESPACE, **labels}.items())
    return {"series": f"{name}{{{body}}}", "values": values}


def test_alerts_fire_on_the_series_they_watch_and_not_on_others(rules_file: Path, tmp_path: Path) -> None:
    """promtool feeds 30 minutes of series (one sample a minute) and evaluates the rules at 20 minutes."""
    series = [
        _series("hwcap_build_info", {"version": "0.1.0", "python_version": "3.11"}, "1x30"),
        _series("hwcap_domain_ready", {"domain": "broken"}, "0x30"),
        _series("hwcap_domain_ready", {"domain": "fine"}, "1x30"),
        _series("hwcap_domain_mask_refused", {"domain": "broken"}, "1x30"),
        _series("hwcap_domain_mask_refused", {"domain": "fine"}, "0x30"),
        _series("hwcap_domain_excluded_nodes", {"domain": "fine"}, "2x30"),
        _series("hwcap_domain_unmasked_pods", {"domain": "fine", "reason": "NotInjected"}, "3x30"),
        _series("hwcap_domain_unmasked_pods", {"domain": "broken", "reason": "OptedOut"}, "5x30"),
        _series("hwcap_admission_requests_total", {"result": "error"}, "0+6x30"),
        _series("hwcap_admission_requests_total", {"result": "mutated"}, "0+60x30"),
        _series("hwcap_reconcile_errors_total", {"kind": "MigrationDomain"}, "0x30"),
    ]

    def firing(name: str, severity: str, **labels: str) -> dict[str, Any]:
        return {"eval_time": "20m", "alertname": name, "exp_alerts": [{"exp_labels": {"severity": severity, **labels}}]}

    # Only what fires, with which labels, is under test here: promtool would also compare every annotation.
    bare = tmp_path / "rules-without-annotations.yaml"
    groups = yaml.safe_load(rules_file.read_text())
    for group in groups["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    bare.write_text(yaml.safe_dump(groups))
    tests = {
        "rule_files": [str(bare)],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m", "input_series": series,
            "alert_rule_test": [
                firing("HwcapDomainNotReady", "warning", domain="broken"),
                firing("HwcapMaskRefused", "warning", domain="broken"),
                {"eval_time": "20m", "alertname": "HwcapNodesExcluded", "exp_alerts": []},  # not yet 30m
                firing("HwcapEscapedPods", "warning", domain="fine"),  # OptedOut does not fire
                firing("HwcapWebhookErrors", "warning"),
                {"eval_time": "20m", "alertname": "HwcapReconcileErrors", "exp_alerts": []},
                {"eval_time": "20m", "alertname": "HwcapOperatorDown", "exp_alerts": []},
            ],
        }, {
            "interval": "1m", "input_series": [_series("hwcap_domain_excluded_nodes", {"domain": "d"}, "1x40")],
            "alert_rule_test": [
                firing("HwcapOperatorDown", "critical"),  # no build_info scraped at all
                {"eval_time": "35m", "alertname": "HwcapNodesExcluded",
                 "exp_alerts": [{"exp_labels": {"severity": "info", "domain": "d"}}]},
            ],
        }, {
            # kube-state-metrics: 3 nodes should run an agent, 2 do.
            "interval": "1m", "input_series": [
                # The operator's own count: one node of "fine" has no agent report; "full" lacks none.
                _series("hwcap_domain_nodes_without_agent_report", {"domain": "fine"}, "1x30"),
                _series("hwcap_domain_nodes_without_agent_report", {"domain": "full"}, "0x30"),
                _series("kube_daemonset_status_desired_number_scheduled", {"daemonset": AGENT}, "3x30"),
                _series("kube_daemonset_status_number_available", {"daemonset": AGENT}, "2x30"),
                _series("hwcap_admission_duration_seconds_bucket", {"le": "0.5"}, "0+1x30"),
                _series("hwcap_admission_duration_seconds_bucket", {"le": "2.5"}, "0+100x30"),
                _series("hwcap_admission_duration_seconds_bucket", {"le": "+Inf"}, "0+100x30"),
            ],
            "alert_rule_test": [
                firing("HwcapAgentMissing", "warning", domain="fine"),
                firing("HwcapAgentNotRunning", "warning"),
                firing("HwcapWebhookSlow", "warning"),  # p99 between 0.5 s and 2.5 s, above the 1 s default
            ],
        }, {
            # Another DaemonSet's gap is not ours; our agents all run.
            "interval": "1m", "input_series": [
                _series("kube_daemonset_status_desired_number_scheduled", {"daemonset": "other"}, "5x30"),
                _series("kube_daemonset_status_number_available", {"daemonset": "other"}, "1x30"),
                _series("kube_daemonset_status_desired_number_scheduled", {"daemonset": AGENT}, "3x30"),
                _series("kube_daemonset_status_number_available", {"daemonset": AGENT}, "3x30"),
            ],
            "alert_rule_test": [{"eval_time": "20m", "alertname": "HwcapAgentNotRunning", "exp_alerts": []}],
        }, {
            # Without kube-state-metrics the operator's gauge alone raises HwcapAgentMissing, after 15 minutes.
            "interval": "1m", "input_series": [
                _series("hwcap_domain_nodes_without_agent_report", {"domain": "d"}, "0x5 2x30"),
            ],
            "alert_rule_test": [
                {"eval_time": "15m", "alertname": "HwcapAgentMissing", "exp_alerts": []},  # pending since 6m
                {**firing("HwcapAgentMissing", "warning", domain="d"), "eval_time": "25m"},
                {"eval_time": "25m", "alertname": "HwcapAgentNotRunning", "exp_alerts": []},
            ],
        }],
    }  # fmt: skip
    spec = tmp_path / "tests.yaml"
    spec.write_text(yaml.safe_dump(tests))
    result = subprocess.run([promtool(), "test", "rules", str(spec)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dashboard_configmap_uses_the_sidecar_convention(kit: Rendered) -> None:
    [config_map] = [c for c in kit.of_kind("ConfigMap") if c["metadata"]["name"].endswith("-dashboard")]
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(config_map["data"]["hwcap-operator.json"]) == json.loads(DASHBOARD.read_text())


def test_dashboard_queries_name_only_metrics_the_registries_expose() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    exprs.append(next(v for v in dashboard["templating"]["list"] if v["name"] == "namespace")["definition"])
    assert len(exprs) > 10
    used = {name for e in exprs for name in _METRIC.findall(e)}
    assert used - exposed_names() == set(), "the dashboard queries series nothing registers"
    # Every per-domain gauge is on the dashboard.
    assert {"hwcap_domain_ready", "hwcap_domain_member_nodes", "hwcap_domain_excluded_nodes",
            "hwcap_domain_nodes_without_agent_report"} <= used  # fmt: skip
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])


def test_the_readme_install_lines_give_alerts_and_a_dashboard(helm_tool: Helm) -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    block = readme.split("With alerts and a dashboard", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    args = shlex.split(block.replace("\\\n", " "))
    assert args and all(a.startswith("--set") or "=" in a for a in args)
    out = helm_tool.template(api_versions=MONITORING, extra=args).stdout
    rendered = Rendered([d for d in yaml.safe_load_all(out) if d])
    assert {"ServiceMonitor", "PodMonitor", "PrometheusRule"} <= rendered.kinds()
    for kind in ("ServiceMonitor", "PodMonitor", "PrometheusRule"):
        assert rendered.one(kind)["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert [c for c in rendered.of_kind("ConfigMap") if c["metadata"]["labels"].get("grafana_dashboard") == "1"]
