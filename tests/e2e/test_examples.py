"""Every file in examples/ is accepted by the real kube-apiserver exactly as written.

Server-side dry runs (``kubectl apply --dry-run=server``) go through the CRD's structural schema and CEL rules,
kubectl's strict field validation, Pod Security admission and defaulting, without leaving objects behind that
other tests' operators would see. The object the API server returns must still hold every field and value of
the example: a field the schema does not know would be pruned silently otherwise.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from hwcap_dev.devcluster.testing import ToolRunner
from hwcap_operator import keys
from hwcap_operator.domain.api import MigrationDomain

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
FILES = sorted(EXAMPLES.glob("*.yaml"))


def documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def missing_or_changed(expected: Any, stored: Any, path: str = "") -> list[str]:
    """Paths where ``stored`` lacks or alters a value of ``expected`` (extra defaulted fields are fine)."""
    if isinstance(expected, dict):
        if not isinstance(stored, dict):
            return [f"{path}: {stored!r} is not a mapping"]
        problems: list[str] = []
        for key, value in expected.items():
            if key not in stored:
                problems.append(f"{path}.{key}: pruned or dropped")
            else:
                problems += missing_or_changed(value, stored[key], f"{path}.{key}")
        return problems
    if isinstance(expected, list):
        if not isinstance(stored, list) or len(stored) != len(expected):
            return [f"{path}: {stored!r} != {expected!r}"]
        return [p for i, (e, s) in enumerate(zip(expected, stored, strict=True))
                for p in missing_or_changed(e, s, f"{path}[{i}]")]  # fmt: skip
    return [] if expected == stored else [f"{path}: stored {stored!r}, example says {expected!r}"]


def dry_run(kubectl: ToolRunner, doc: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
    args = ["apply", "--dry-run=server", "--validate=strict", "-o", "json", "-f", "-"]
    if namespace is not None:
        args += ["-n", namespace]
    stored: dict[str, Any] = json.loads(kubectl(*args, input=json.dumps(doc)).stdout)
    return stored


def test_the_examples_cover_what_the_docs_promise() -> None:
    """What README's example table promises: an auto arm64 domain, an x86 domain with the three userspace
    fallbacks (Auto: the x86-64-v3 preset would hide SHA-NI/RDSEED from this pool, see the file), frozen+lower,
    require/exclude, a pod."""
    docs = [doc for path in FILES for doc in documents(path)]
    specs = [MigrationDomain.model_validate(d).spec for d in docs if d["kind"] == keys.KIND]
    assert any(s.arch == "arm64" and s.baseline.mode == "Auto" for s in specs)
    assert any(s.arch == "amd64" and s.baseline.mode == "Auto"
               and {"glibcTunables", "goDebug", "opensslIa32cap"} <= set(s.enforcement.userspace_fallbacks)
               for s in specs)  # fmt: skip
    assert any(s.leveling.mode == "Frozen" and s.leveling.on_missing_features == "Lower" for s in specs)
    assert any(s.require and s.exclude for s in specs)
    assert {d["kind"] for d in docs} == {keys.KIND, "Namespace", "Pod"}


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_example_is_accepted_unchanged_by_the_apiserver(
    path: Path, crd: None, kubectl: ToolRunner, namespace: str
) -> None:
    # The sample pod must pass Pod Security "restricted" on its own (the webhook keeps it compliant).
    kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted")
    for doc in documents(path):
        if doc["kind"] == keys.KIND:
            MigrationDomain.model_validate(doc)  # the Python model agrees with the CRD schema
        stored = dry_run(kubectl, doc, namespace if doc["kind"] == "Pod" else None)
        assert stored["kind"] == doc["kind"] and stored["metadata"]["name"] == doc["metadata"]["name"]
        problems = missing_or_changed({k: v for k, v in doc.items() if k != "metadata"}, stored)
        problems += missing_or_changed(doc["metadata"].get("labels", {}), stored["metadata"].get("labels", {}))
        assert not problems, f"{path.name}: " + "; ".join(problems)


def test_a_typo_in_an_example_is_refused(crd: None, kubectl: ToolRunner) -> None:
    """The check above can fail: a misspelled field is an error, not a silently pruned line."""
    doc = documents(EXAMPLES / "arm64-auto-domain.yaml")[0]
    doc["spec"]["allowHidingSecurityFeature"] = doc["spec"].pop("allowHidingSecurityFeatures")
    result = kubectl("apply", "--dry-run=server", "-f", "-", input=json.dumps(doc), check=False)
    assert result.returncode != 0 and "allowHidingSecurityFeature" in result.stderr
    # and a pruned field is what missing_or_changed reports
    assert missing_or_changed({"spec": {"x": 1}}, {"spec": {}}) == [".spec.x: pruned or dropped"]


def test_the_sample_pod_is_refused_where_it_breaks_restricted(kubectl: ToolRunner, namespace: str) -> None:
    """Pod Security really enforces: the same pod without its securityContext is rejected."""
    kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted")
    pod = documents(EXAMPLES / "pod.yaml")[0]
    del pod["spec"]["containers"][0]["securityContext"]
    result = kubectl("apply", "--dry-run=server", "-n", namespace, "-f", "-", input=json.dumps(pod), check=False)
    assert result.returncode != 0 and "restricted" in result.stderr
