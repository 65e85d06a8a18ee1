"""GitOps: ``helm template`` (what Argo CD and Flux render) gives the same bytes twice with cert-manager, and the
operator's own writes to its MutatingWebhookConfiguration stay inside the ``ignoreDifferences`` docs/chart.md
gives (checked on the real apiserver: rendered object vs. the stored one after the operator's sync)."""

from __future__ import annotations

import copy
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from chartlib import CHART_DIR, KUBE_VERSION, REPO_ROOT, Helm
from kubernetes import client

from hwcap_operator.admission.selection import never_touched_namespaces
from hwcap_operator.domain.api import MigrationDomainSpec
from hwcap_operator.kube.webhook_sync import WebhookConfigSync

CERT_MANAGER = CHART_DIR / "ci" / "cert-manager-values.yaml"
DOC = REPO_ROOT / "docs" / "chart.md"
#: What the API server adds to any stored object (never in a manifest, never diffed by Argo CD or Flux).
SERVER_FIELDS = ("resourceVersion", "uid", "creationTimestamp", "generation", "managedFields")


def template(helm: Helm, *values: Path, release: str = "hw", namespace: str = "hwcap-system") -> str:
    args = ["template", release, str(CHART_DIR), "--namespace", namespace, "--kube-version", KUBE_VERSION,
            "--api-versions", "cert-manager.io/v1"]  # fmt: skip
    for path in values:
        args += ["--values", str(path)]
    rendered: str = helm.run(*args).stdout
    return rendered


def test_helm_template_twice_is_identical_with_cert_manager(helm_tool: Helm) -> None:
    first, second = template(helm_tool, CERT_MANAGER), template(helm_tool, CERT_MANAGER)
    assert first == second
    docs = [d for d in yaml.safe_load_all(first) if d]
    assert "Certificate" in {d["kind"] for d in docs} and "Secret" not in {d["kind"] for d in docs}
    webhook = next(d for d in docs if d["kind"] == "MutatingWebhookConfiguration")
    assert all("caBundle" not in w["clientConfig"] for w in webhook["webhooks"])  # the cainjector's job


def test_without_cert_manager_only_the_generated_certificate_differs(helm_tool: Helm) -> None:
    """Why docs/chart.md asks GitOps users for cert-manager: the chart-generated CA re-rolls on every
    ``helm template`` (no ``lookup`` there), and that is the only difference between two renders."""
    first, second = (list(yaml.safe_load_all(template(helm_tool))) for _ in range(2))
    differing = {(a["kind"], a["metadata"]["name"]) for a, b in zip(first, second, strict=True) if a != b}
    assert differing == {("Secret", "hw-hwcap-operator-webhook-tls"),
                         ("MutatingWebhookConfiguration", "hw-hwcap-operator")}  # fmt: skip
    webhook_a, webhook_b = (next(d for d in docs if d["kind"] == "MutatingWebhookConfiguration")
                            for docs in (first, second))  # fmt: skip
    for entry in (*webhook_a["webhooks"], *webhook_b["webhooks"]):
        entry["clientConfig"].pop("caBundle")
    assert webhook_a == webhook_b


def documented_ignore_differences() -> dict[str, Any]:
    """The Argo CD ``ignoreDifferences`` entry of docs/chart.md (the YAML block after its marker)."""
    text = DOC.read_text()
    block = text.split("<!-- argocd-ignore-differences -->", 1)[1].split("```yaml", 1)[1].split("```", 1)[0]
    [entry] = yaml.safe_load(block)["spec"]["ignoreDifferences"]
    return dict(entry)


def without(obj: dict[str, Any], jq_paths: list[str]) -> dict[str, Any]:
    """``obj`` minus the documented jq paths (the two shapes the doc uses: `.a.b` and `.a["k/ey"]`)."""
    out = copy.deepcopy(obj)
    for path in jq_paths:
        parts = [plain or quoted for plain, quoted in re.findall(r'\.([A-Za-z0-9_]+)|\["([^"]+)"\]', path)]
        node = out
        for part in parts[:-1]:
            node = node.get(part) or {}
        node.pop(parts[-1], None)
    return out


def normalized(obj: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(json.dumps(obj))
    for key in SERVER_FIELDS:
        out["metadata"].pop(key, None)
    if not out["metadata"].get("annotations"):
        out["metadata"].pop("annotations", None)
    return out


@pytest.mark.e2e
def test_the_operators_writes_stay_inside_the_documented_ignore_differences(
    helm_tool: Helm, api_client: client.ApiClient
) -> None:
    release = f"gitops{os.getpid() % 100000}"
    rendered = next(d for d in yaml.safe_load_all(template(helm_tool, CERT_MANAGER, release=release))
                    if d and d["kind"] == "MutatingWebhookConfiguration")  # fmt: skip
    ignore = documented_ignore_differences()
    assert (ignore["group"], ignore["kind"]) == ("admissionregistration.k8s.io", "MutatingWebhookConfiguration")
    assert ignore["name"] == "<release>-hwcap-operator"
    admission = client.AdmissionregistrationV1Api(api_client)
    name = rendered["metadata"]["name"]
    assert name == f"{release}-hwcap-operator"
    admission.create_mutating_webhook_configuration(rendered)
    try:
        spec = MigrationDomainSpec.model_validate({"arch": "arm64", "workloads": {"namespaceSelector": {}}})
        sync = WebhookConfigSync(api_client, name, never_touched_namespaces("hwcap-system", "nfd"))
        assert sync.sync([("graviton", spec)]) is True  # the operator rewrote it: one entry per domain
        live = admission.read_mutating_webhook_configuration(name)
        stored: dict[str, Any] = api_client.sanitize_for_serialization(live)  # type: ignore[no-untyped-call]
        assert [w["name"] for w in stored["webhooks"]] != [w["name"] for w in rendered["webhooks"]]
        assert normalized(stored) != normalized(rendered), "the test must see the operator's change"
        paths = ignore["jqPathExpressions"]
        assert without(normalized(stored), paths) == without(normalized(rendered), paths)
    finally:
        admission.delete_mutating_webhook_configuration(name)


def test_docs_name_the_decision_for_gitops() -> None:
    text = " ".join(DOC.read_text().split())
    assert "## GitOps (Argo CD, Flux)" in DOC.read_text()
    assert "certManager.enabled=true" in text and "RespectIgnoreDifferences" in text
