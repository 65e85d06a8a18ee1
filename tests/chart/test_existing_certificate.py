"""GitOps without cert-manager: ``existingCert`` points the chart at a Secret the user provides (Sealed Secrets,
SOPS, External Secrets), so the chart renders no key material and ``helm template`` (what Argo CD runs) gives
the same bytes every time, with the webhook's caBundle being the CA the user gave.

The expected CA is generated here (the dev cluster's PKI), never read back from the render under test.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest
import yaml
from chartlib import REPO_ROOT, Helm, HelmFailed, Rendered

from hwcap_dev.devcluster.pki import CertificateAuthority

SECRET = "my-webhook-tls"


@pytest.fixture(scope="module")
def ca_pem() -> str:
    return CertificateAuthority.generate("gitops-test-ca").cert_pem.decode()


def _values(ca_pem: str) -> dict[str, Any]:
    return {"existingCert": {"secretName": SECRET, "caBundle": ca_pem}}


def _rendered(text: str) -> Rendered:
    return Rendered([d for d in yaml.safe_load_all(text) if d])


def test_helm_template_twice_is_byte_identical_and_renders_no_key_material(helm_tool: Helm, ca_pem: str) -> None:
    first = helm_tool.template(_values(ca_pem)).stdout
    second = helm_tool.template(_values(ca_pem)).stdout
    assert first == second
    rendered = _rendered(first)
    assert not rendered.of_kind("Secret"), "the user provides the Secret; the chart renders none"
    assert "PRIVATE KEY" not in first
    webhook = rendered.one("MutatingWebhookConfiguration")
    bundles = {w["clientConfig"]["caBundle"] for w in webhook["webhooks"]}
    assert bundles == {base64.b64encode(ca_pem.encode()).decode()}


def test_the_operator_and_the_helm_test_pod_mount_the_provided_secret(helm_tool: Helm, ca_pem: str) -> None:
    rendered = _rendered(helm_tool.template(_values(ca_pem)).stdout)
    deployment = rendered.one("Deployment")
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert volumes["tls"]["secret"]["secretName"] == SECRET
    [test_pod] = [p for p in rendered.of_kind("Pod") if p["metadata"]["annotations"].get("helm.sh/hook") == "test"]
    assert {v["name"]: v for v in test_pod["spec"]["volumes"]}["tls"]["secret"]["secretName"] == SECRET


def test_without_the_ca_or_with_cert_manager_too_the_render_fails_naming_the_value(
    helm_tool: Helm, ca_pem: str
) -> None:
    cases = [
        ({"existingCert": {"secretName": SECRET}}, "existingCert.caBundle"),
        ({"existingCert": {"secretName": SECRET, "caBundle": base64.b64encode(ca_pem.encode()).decode()}},
         "must be PEM"),
        ({**_values(ca_pem), "certManager": {"enabled": True}}, "choose one"),
    ]  # fmt: skip
    for values, message in cases:
        with pytest.raises(HelmFailed, match=message):
            helm_tool.template(values, api_versions=("cert-manager.io/v1",))


def test_docs_give_the_mode_to_gitops_users_without_cert_manager() -> None:
    text = " ".join((REPO_ROOT / "docs" / "chart.md").read_text().split())
    gitops = text.split("## GitOps (Argo CD, Flux)", 1)[1]
    assert "existingCert.secretName" in gitops and "existingCert.caBundle" in gitops
