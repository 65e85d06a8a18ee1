"""The chart as an OCI artifact: ``helm package`` it, ``helm push`` it to a real loopback registry (Debian's
docker-registry behind Basic auth), pull it back and install-render it from the ``oci://`` reference."""

from __future__ import annotations

import hashlib
import tarfile
from pathlib import Path

import yaml
from chartlib import CHART_DIR, KUBE_VERSION, Helm
from tests.support.registry import PASSWORD, USER, run_registry


def test_helm_package_push_pull_and_render_from_an_oci_registry(helm_tool: Helm, tmp_path: Path) -> None:
    chart = yaml.safe_load((CHART_DIR / "Chart.yaml").read_text())
    packaged = helm_tool.run("package", str(CHART_DIR), "--destination", str(tmp_path / "dist")).stdout
    archive = tmp_path / "dist" / f"hwcap-operator-{chart['version']}.tgz"
    assert archive.exists(), packaged
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
    # The package carries what `helm show` and Artifact Hub read, the CRD, the dashboard and the schema.
    for member in ("README.md", "values.schema.json", "crds/hwcap.dev_migrationdomains.yaml",
                   "dashboards/hwcap-operator.json", "templates/prometheusrule.yaml"):  # fmt: skip
        assert f"hwcap-operator/{member}" in names, member

    with run_registry(tmp_path / "registry", "basic") as registry:
        anonymous = helm_tool.run("push", str(archive), f"oci://{registry.host}/charts", "--plain-http", check=False)
        assert anonymous.returncode != 0  # the registry really checks credentials
        helm_tool.run("registry", "login", registry.host, "--username", USER, "--password", PASSWORD, "--plain-http")
        pushed = helm_tool.run("push", str(archive), f"oci://{registry.host}/charts", "--plain-http")
        reference = f"oci://{registry.host}/charts/hwcap-operator"
        assert f"Pushed: {registry.host}/charts/hwcap-operator:{chart['version']}" in pushed.stdout + pushed.stderr

        pulled_dir = tmp_path / "pulled"
        pulled_dir.mkdir()
        helm_tool.run(
            "pull", reference, "--version", chart["version"], "--plain-http", "--destination", str(pulled_dir)
        )
        pulled = pulled_dir / archive.name
        assert hashlib.sha256(pulled.read_bytes()).digest() == hashlib.sha256(archive.read_bytes()).digest()

        shown = yaml.safe_load(helm_tool.run("show", "chart", reference, "--version", chart["version"],
                                             "--plain-http").stdout)  # fmt: skip
        assert (shown["name"], shown["version"], shown["icon"]) == (chart["name"], chart["version"], chart["icon"])
        rendered = helm_tool.run("template", "hw", reference, "--version", chart["version"], "--plain-http",
                                 "--namespace", "hwcap-system", "--kube-version", KUBE_VERSION).stdout  # fmt: skip
        kinds = {d["kind"] for d in yaml.safe_load_all(rendered) if d}
        assert {"Deployment", "DaemonSet", "MutatingWebhookConfiguration"} <= kinds
