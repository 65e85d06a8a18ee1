"""kubectl and us: ``kubectl hwcap`` (the plugin on PATH, cluster flags, exit 3, help, completion) and
``kubectl explain`` on the CRD."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
import yaml

from hwcap_operator.cli import main as cli
from tests.support.domains import install_crd
from tests.support.ports import free_port

BIN = Path(sys.executable).parent


def run(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", **(env or {})}
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=60, env=environ)


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    return free_port()


def kubeconfig_for(path: Path, server: str, context: str = "unreachable") -> Path:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": context,
        "clusters": [{"name": "c", "cluster": {"server": server, "insecure-skip-tls-verify": True}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": context, "context": {"cluster": "c", "user": "u"}}],
    }))  # fmt: skip
    return path


def test_kubectl_hwcap_get_domains_lists_the_clusters_domains(control_plane: Any, kubectl: Any, tmp_path: Path) -> None:
    install_crd(kubectl)
    name = f"plugin-{os.getpid()}"
    domain = {"apiVersion": "hwcap.dev/v1alpha1", "kind": "MigrationDomain", "metadata": {"name": name},
              "spec": {"arch": "arm64", "workloads": {"namespaceSelector": {}}}}  # fmt: skip
    kubectl("apply", "-f", "-", input=json.dumps(domain))
    try:
        # kubectl itself finds kubectl-hwcap on PATH and runs it with the rest of the arguments.
        kubectl_bin = str(control_plane.binaries.kubectl)
        listed = run(
            kubectl_bin, "hwcap", "get", "domains", "-o", "json", env={"KUBECONFIG": str(control_plane.kubeconfig)}
        )
        assert listed.returncode == 0, listed.stderr
        [row] = [d for d in json.loads(listed.stdout)["domains"] if d["name"] == name]
        assert row["arch"] == "arm64"
        # --kubeconfig and --context select the cluster explicitly; a context the file does not have is bad input.
        config = yaml.safe_load(control_plane.kubeconfig.read_text())
        named = run("kubectl-hwcap", "get", "mdom", "--kubeconfig", str(control_plane.kubeconfig),
                    "--context", config["current-context"], env={"KUBECONFIG": "/nonexistent"})  # fmt: skip
        assert named.returncode == 0 and name in named.stdout, named.stderr
        wrong = run("kubectl-hwcap", "get", "domains", "--kubeconfig", str(control_plane.kubeconfig),
                    "--context", "no-such-context")  # fmt: skip
        assert wrong.returncode == 2 and "no-such-context" in wrong.stderr
    finally:
        kubectl("delete", "migrationdomain", name, "--ignore-not-found")


@pytest.mark.parametrize("verb", [["get", "domains"], ["what-if", "--domain", "d", "--node", __file__]])
def test_an_unreachable_api_server_is_one_line_and_exit_3(tmp_path: Path, verb: list[str]) -> None:
    port = closed_port()
    config = kubeconfig_for(tmp_path / "kubeconfig", f"https://127.0.0.1:{port}")
    result = run("hwcapctl", *verb, "--kubeconfig", str(config))
    assert result.returncode == 3, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert f"127.0.0.1:{port}" in lines[0] and "refused" in lines[0].lower()


def test_version_is_the_installed_distributions() -> None:
    for program, shown in (("hwcapctl", "hwcapctl"), ("kubectl-hwcap", "kubectl hwcap")):
        result = run(program, "--version")
        assert result.returncode == 0
        assert result.stdout.strip() == f"{shown} {metadata.version('hwcap-operator')}"


def _verbs(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    [sub] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


def test_every_verb_has_examples_and_every_argument_has_help() -> None:
    parser = cli.build_parser()
    verbs = _verbs(parser)
    assert {"get", "check", "what-if", "completion", "baseline"} <= set(verbs)
    for name, verb in verbs.items():
        text = verb.format_help()
        assert "examples:" in text and f"hwcapctl {name}" in text.split("examples:", 1)[1], name
        assert "``" not in text and ":mod:" not in text, f"{name}: raw reST in help"
        undocumented = [a.dest for a in verb._actions if not a.help]
        assert undocumented == [], f"{name}: arguments without help: {undocumented}"
    top = parser.format_help()
    assert "3  the cluster could not be asked" in top and "``" not in top


def test_cluster_verbs_take_kubeconfig_and_context() -> None:
    verbs = _verbs(cli.build_parser())
    for name in ("get", "what-if", "check"):
        flags = {opt for a in verbs[name]._actions for opt in a.option_strings}
        assert {"--kubeconfig", "--context"} <= flags, name


def complete(line: str, tmp_path: Path) -> list[str]:
    """What argcomplete offers for ``line`` (the protocol the generated shell scripts speak)."""
    out = tmp_path / "completions"
    result = run("hwcapctl", env={"_ARGCOMPLETE": "1", "COMP_LINE": line, "COMP_POINT": str(len(line)),
                                  "_ARGCOMPLETE_IFS": "\n", "_ARGCOMPLETE_STDOUT_FILENAME": str(out)})  # fmt: skip
    assert result.returncode == 0, result.stderr
    return out.read_text().split("\n")


def test_completion_offers_verbs_and_flags(tmp_path: Path) -> None:
    assert {"get", "what-if", "what-if "} & set(complete("hwcapctl wh", tmp_path))
    assert "--context" in " ".join(complete("hwcapctl get --con", tmp_path))


@pytest.mark.parametrize(
    ("shell", "load"),
    [
        ("bash", 'source "$1" && complete -p hwcapctl kubectl-hwcap'),
        ("zsh", 'autoload -U compinit && compinit -u && source "$1" && print -r -- ${_comps[hwcapctl]}'),
        ("fish", 'source $argv[1]; and complete --do-complete "hwcapctl ge"'),
    ],
)
def test_completion_script_loads_in_a_real_shell(shell: str, load: str, tmp_path: Path) -> None:
    binary = shutil.which(shell)
    assert binary, f"{shell} is in tools/system-packages.txt (make system-packages)"
    script = tmp_path / f"hwcapctl.{shell}"
    generated = run("hwcapctl", "completion", shell)
    assert generated.returncode == 0 and "hwcapctl" in generated.stdout
    script.write_text(generated.stdout)
    argv = [binary, "-c", load, shell, str(script)] if shell != "fish" else [binary, "-c", load, str(script)]
    loaded = run(*argv, env={"HOME": str(tmp_path), "ZDOTDIR": str(tmp_path)})
    assert loaded.returncode == 0, loaded.stdout + loaded.stderr
    if shell == "fish":
        assert "get" in loaded.stdout.split()
    else:
        assert loaded.stdout.strip(), f"{shell} registered no completion function"


@pytest.mark.parametrize(
    ("field", "says"),
    [
        ("migrationdomain.spec.nodeSelector.matchExpressions.values", "e.g."),
        ("migrationdomain.status.conditions.type", "kubectl wait"),
        ("migrationdomain.status.conditions.lastTransitionTime", "RFC 3339"),
        ("migrationdomain.status.excluded.nodes.missingFeatures", "lacks"),
    ],
)
def test_kubectl_explain_describes_nested_fields(kubectl: Any, field: str, says: str) -> None:
    install_crd(kubectl)
    deadline = time.monotonic() + 60  # the apiserver publishes a new CRD's OpenAPI a few seconds after Established
    while (result := kubectl("explain", field, check=False)).returncode != 0 and time.monotonic() < deadline:
        time.sleep(1)
    assert result.returncode == 0, result.stderr
    explained = result.stdout
    description = explained.split("DESCRIPTION:", 1)[1]
    assert says in " ".join(description.split()), explained
