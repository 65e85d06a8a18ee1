"""The committed CRD is exactly what the models generate, is structural, and validates the documents users write."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from pydantic import ValidationError

from hwcap_operator import keys
from hwcap_operator.domain import api, apidoc, crdgen

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / crdgen.CRD_PATH


def _walk(node: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from _walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _walk(value, f"{path}[{index}]")


@pytest.fixture(scope="module")
def committed_crd() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMMITTED.read_text(encoding="utf-8"))
    return loaded


@pytest.fixture(scope="module")
def validator(committed_crd: dict[str, Any]) -> jsonschema.protocols.Validator:
    schema = committed_crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    cls = jsonschema.validators.validator_for({"$schema": "http://json-schema.org/draft-04/schema#"})
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


GRAVITON_DOMAIN: dict[str, Any] = {
    "apiVersion": "hwcap.dev/v1alpha1",
    "kind": "MigrationDomain",
    "metadata": {"name": "graviton"},
    "spec": {
        "arch": "arm64",
        "nodeSelector": {
            "matchLabels": {"node.kubernetes.io/instance-family": "c7g"},
            "matchExpressions": [{"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["eu-1a"]}],
        },
        "workloads": {"namespaceSelector": {"matchLabels": {"hwcap.dev/migratable": "true"}}},
        "baseline": {"mode": "Auto"},
        "require": ["atomics", "asimd"],
        "exclude": ["sve"],
        "leveling": {"mode": "Frozen", "relevelGeneration": 2, "onMissingFeatures": "Lower"},
        "enforcement": {"kernelInheritance": "Required", "userspaceFallbacks": ["glibcTunables"]},
    },
}
X86_DOMAIN: dict[str, Any] = {
    "apiVersion": "hwcap.dev/v1alpha1",
    "kind": "MigrationDomain",
    "metadata": {"name": "x86-v3"},
    "spec": {
        "arch": "amd64",
        "workloads": {"namespaceSelector": {}, "excludedNamespaces": ["batch"], "unresolvedEntrypoint": "Warn"},
        "baseline": {"mode": "Preset", "preset": "x86-64-v3"},
        "enforcement": {"userspaceFallbacks": ["glibcTunables", "goDebug", "opensslIa32cap"]},
    },
}


def test_committed_crd_is_what_the_models_generate() -> None:
    assert COMMITTED.read_text(encoding="utf-8") == crdgen.render(), (
        "crds/ is stale: run `python -m hwcap_operator.domain.crdgen > crds/hwcap.dev_migrationdomains.yaml`"
    )


def test_check_mode_passes_on_the_committed_file_and_fails_on_drift(tmp_path: Path) -> None:
    assert crdgen.main(["--check", str(COMMITTED)]) == 0
    stale = tmp_path / "crd.yaml"
    stale.write_text(COMMITTED.read_text(encoding="utf-8").replace("- mdom\n", ""), encoding="utf-8")
    assert crdgen.main(["--check", str(stale)]) == 1
    assert crdgen.main(["--check", str(tmp_path / "missing.yaml")]) == 2


def test_crd_names_scope_and_columns(committed_crd: dict[str, Any]) -> None:
    spec = committed_crd["spec"]
    assert committed_crd["metadata"]["name"] == "migrationdomains.hwcap.dev"
    assert (spec["group"], spec["scope"]) == (keys.GROUP, "Cluster")
    assert spec["names"]["kind"] == "MigrationDomain"
    assert spec["names"]["shortNames"] == ["mdom", "hwmd"] and spec["names"]["categories"] == ["hwcap"]
    (version,) = spec["versions"]
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
    assert version["subresources"] == {"status": {}}
    shown = {c["name"]: c["jsonPath"] for c in version["additionalPrinterColumns"] if not c.get("priority")}
    assert shown == {
        "Arch": ".spec.arch",
        "Members": ".status.members.count",
        "Excluded": ".status.excluded.count",
        "Mask": ".status.mask.id",
        "Ready": '.status.conditions[?(@.type=="Ready")].status',
        "Age": ".metadata.creationTimestamp",
    }


def test_schema_is_structural(committed_crd: dict[str, Any]) -> None:
    schema = committed_crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for path, node in _walk(schema):
        if path.endswith((".properties", "x-kubernetes-validations")):
            continue
        assert "$ref" not in node and "$defs" not in node, path
        assert "title" not in node and "anyOf" not in node and "allOf" not in node, path
        assert "nullable" not in node, f"{path}: a null is pruned as 'unset' only in non-nullable fields"
        assert node.get("additionalProperties") is not False, path
        assert not ("properties" in node and "additionalProperties" in node), path
        if any(k in node for k in ("properties", "items", "enum", "pattern", "minimum")):
            assert "type" in node, f"{path} has no type"
    status = schema["properties"]["status"]
    assert all("default" not in node for _, node in _walk(status)), "status must carry no defaults"
    conditions = status["properties"]["conditions"]
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    assert "type" in conditions["items"]["required"]


def test_spec_defaults_come_from_the_models(committed_crd: dict[str, Any]) -> None:
    spec = committed_crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    leveling = spec["leveling"]
    assert leveling["default"] == {"mode": "Frozen", "relevelGeneration": 0, "onMissingFeatures": "Exclude"}
    assert leveling["properties"]["mode"]["default"] == "Frozen"
    assert leveling["properties"]["onMissingFeatures"]["default"] == "Exclude"
    assert spec["allowHidingSecurityFeatures"]["default"] is False
    assert spec["baseline"]["properties"]["mode"]["enum"] == ["Auto", "Preset", "Explicit"]
    assert spec["arch"]["enum"] == ["arm64", "amd64", "ppc64le", "s390x", "riscv64"]


@pytest.mark.parametrize("document", [GRAVITON_DOMAIN, X86_DOMAIN], ids=["graviton", "x86-v3"])
def test_example_domains_are_valid_for_schema_and_models(
    document: dict[str, Any], validator: jsonschema.protocols.Validator
) -> None:
    validator.validate(document)
    domain = api.MigrationDomain.model_validate(document)
    assert domain.spec.to_wire()["arch"] == document["spec"]["arch"]


def _with(path: str, value: Any) -> dict[str, Any]:
    document = copy.deepcopy(GRAVITON_DOMAIN)
    *parents, last = path.split(".")
    node = document
    for part in parents:
        node = node[part]
    node[last] = value
    return document


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        ("spec.arch", "aarch64", "arch"),
        ("spec.leveling.mode", "Frozn", "mode"),
        ("spec.leveling.relevelGeneration", -1, "relevelGeneration"),
        ("spec.require", ["SVE2"], "require"),
        ("spec.enforcement.kernelInheritance", "Always", "kernelInheritance"),
        ("spec.enforcement.userspaceFallbacks", ["ldPreload"], "userspaceFallbacks"),
        ("spec.nodeSelector.matchExpressions", [{"key": "a", "operator": "Has"}], "operator"),
        ("spec.workloads.excludedNamespaces", ["Not_A_Namespace"], "excludedNamespaces"),
        ("spec.workloads", {}, "namespaceSelector"),
    ],
)
def test_bad_fields_are_rejected_by_schema_and_models(
    path: str, value: Any, field: str, validator: jsonschema.protocols.Validator
) -> None:
    document = _with(path, value)
    errors = list(validator.iter_errors(document))
    assert errors, f"schema accepted {path}={value!r}"
    with pytest.raises(ValidationError) as caught:
        api.MigrationDomain.model_validate(document)
    assert field in str(caught.value)


@pytest.mark.parametrize(
    ("baseline", "message"),
    [
        ({"mode": "Preset"}, "needs baseline.preset"),
        ({"mode": "Explicit"}, "needs baseline.features"),
        ({"mode": "Auto", "preset": "armv8.2"}, "only allowed with baseline.mode Preset"),
    ],
)
def test_cross_field_rules_exist_in_models_and_as_cel(
    baseline: dict[str, Any], message: str, committed_crd: dict[str, Any]
) -> None:
    with pytest.raises(ValidationError, match=message):
        api.Baseline.model_validate(baseline)
    schema = committed_crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    rules = schema["properties"]["spec"]["properties"]["baseline"]["x-kubernetes-validations"]
    assert len(rules) == 3


def test_match_expression_values_follow_the_operator() -> None:
    with pytest.raises(ValidationError, match="operator In needs at least one value"):
        api.LabelSelectorRequirement.model_validate({"key": "k", "operator": "In"})
    with pytest.raises(ValidationError, match="operator Exists takes no values"):
        api.LabelSelectorRequirement.model_validate({"key": "k", "operator": "Exists", "values": ["x"]})


def test_a_feature_cannot_be_both_required_and_excluded() -> None:
    with pytest.raises(ValidationError, match="both required and excluded: sve"):
        api.MigrationDomainSpec.model_validate(
            {"arch": "arm64", "workloads": {"namespaceSelector": {}}, "require": ["sve"], "exclude": ["sve"]}
        )


def test_defaults_make_a_minimal_domain_frozen_exclude_preferred() -> None:
    spec = api.MigrationDomainSpec.model_validate({"arch": "arm64", "workloads": {"namespaceSelector": {}}})
    assert (spec.leveling.mode, spec.leveling.on_missing_features) == ("Frozen", "Exclude")
    assert spec.enforcement.kernel_inheritance == "Preferred"
    assert spec.allow_hiding_security_features is False
    assert spec.baseline.mode == "Auto"


#: Short names other projects' CRDs claim; kubectl resolves a shared short name to whichever it lists first.
TAKEN_SHORT_NAMES = {
    "md", "ms", "mhc", "mp", "cl", "kcp",  # Cluster API (MachineDeployment, MachineSet, ...)
    "vm", "vmi", "vmim", "vmis", "vmrs", "dv",  # KubeVirt / CDI
    "ksvc", "kcfg", "rt", "rev", "route", "config",  # Knative Serving
    "cert", "certs", "cr", "crs",  # cert-manager
    "mr", "xrd", "comp", "xp",  # Crossplane
    "nf", "nfr",  # Node Feature Discovery
}  # fmt: skip


def test_short_names_collide_with_no_common_project(committed_crd: dict[str, Any]) -> None:
    names = set(committed_crd["spec"]["names"]["shortNames"])
    assert names and not names & TAKEN_SHORT_NAMES


def _undescribed(node: dict[str, Any], path: str = "") -> Iterator[str]:
    for name, sub in node.get("properties", {}).items():
        here = f"{path}.{name}"
        if not str(sub.get("description", "")).strip() and here != ".metadata":  # the apiserver's ObjectMeta
            yield here
        yield from _undescribed(sub, here)
    if isinstance(node.get("items"), dict):
        yield from _undescribed(node["items"], path + "[]")


def test_every_field_of_the_schema_is_described_for_kubectl_explain(committed_crd: dict[str, Any]) -> None:
    schema = committed_crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    fields = [path for path, _ in _walk(schema) if path.count(".properties.") > 0]
    assert len(fields) > 90, "the walk must reach the nested fields (nodeSelector, conditions[])"
    assert list(_undescribed(schema)) == []
    conditions = schema["properties"]["status"]["properties"]["conditions"]["items"]["properties"]
    assert "kubectl wait" in conditions["type"]["description"]
    selector = schema["properties"]["spec"]["properties"]["nodeSelector"]["properties"]
    assert "e.g." in selector["matchExpressions"]["items"]["properties"]["values"]["description"]


def test_docs_api_md_is_generated_from_the_schema(tmp_path: Path) -> None:
    doc = ROOT / apidoc.API_DOC_PATH
    assert apidoc.main(["--check", str(doc)]) == 0, "run `python -m hwcap_operator.domain.apidoc --write docs/api.md`"
    text = doc.read_text(encoding="utf-8")
    for path, _, _ in apidoc.fields(crdgen.open_api_schema()):
        assert f"| `{path}` |" in text
    assert "## Versioning plan" in text and "v1beta1" in text
    stale = tmp_path / "api.md"
    stale.write_text(text.replace("| `spec.arch` |", "| `spec.archh` |"), encoding="utf-8")
    assert apidoc.main(["--check", str(stale)]) == 1
    assert apidoc.main(["--write", str(stale)]) == 0 and stale.read_text(encoding="utf-8") == text
