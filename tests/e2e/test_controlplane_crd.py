"""Proof the apiserver is real: a CRD's structural schema rejects a bad object and prunes unknown fields."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from kubernetes import client

from hwcap_dev.devcluster.testing import ToolRunner
from tests.support.waits import wait_for

GROUP = "proof.e2e.hwcap.dev"
CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": f"gadgets.{GROUP}"},
    "spec": {
        "group": GROUP,
        "names": {"kind": "Gadget", "plural": "gadgets", "singular": "gadget", "listKind": "GadgetList"},
        "scope": "Namespaced",
        "versions": [{
            "name": "v1", "served": True, "storage": True,
            "subresources": {"status": {}},
            "schema": {"openAPIV3Schema": {
                "type": "object",
                "properties": {
                    "spec": {
                        "type": "object",
                        "required": ["cores"],
                        "properties": {
                            "cores": {"type": "integer", "minimum": 1, "maximum": 256},
                            "arch": {"type": "string", "enum": ["arm64", "amd64"]},
                        },
                    },
                    "status": {"type": "object", "properties": {"seen": {"type": "boolean"}}},
                },
            }},
        }],
    },
}


@pytest.fixture(scope="module")
def gadget_crd(kubectl: ToolRunner) -> Iterator[None]:
    kubectl("apply", "-f", "-", input=yaml.safe_dump(CRD))
    kubectl("wait", "--for=condition=Established", "--timeout=60s", f"crd/gadgets.{GROUP}")
    _wait_served(kubectl)
    yield
    kubectl("delete", f"crd/gadgets.{GROUP}", "--wait=false", check=False)


def _wait_served(kubectl: ToolRunner) -> None:
    """Established is set before discovery serves the kind; kubectl needs discovery."""

    def served() -> str:
        return str(kubectl("api-resources", f"--api-group={GROUP}", "-o", "name", check=False).stdout.strip())

    wait_for(f"{GROUP} in discovery", served, timeout=60, interval=0.5)


def _gadget(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/v1", "kind": "Gadget", "metadata": {"name": name}, "spec": spec}


def test_schema_rejects_bad_objects_and_names_the_field(
    gadget_crd: None, kubectl: ToolRunner, namespace: str
) -> None:
    bad = [
        (_gadget("too-many", {"cores": 1000}), "spec.cores"),
        (_gadget("wrong-type", {"cores": "four"}), "spec.cores"),
        (_gadget("bad-enum", {"cores": 4, "arch": "sparc"}), "spec.arch"),
        (_gadget("missing", {"arch": "arm64"}), "spec.cores"),
    ]
    for obj, field in bad:
        proc = kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(obj), check=False)
        assert proc.returncode != 0, f"{obj['metadata']['name']} was accepted"
        assert "is invalid" in proc.stderr and field in proc.stderr, proc.stderr
    listed = kubectl("get", "gadgets", "-n", namespace, "-o", "json").stdout
    assert json.loads(listed)["items"] == []


def test_schema_accepts_good_object_prunes_unknown_and_splits_status(
    gadget_crd: None, api_client: client.ApiClient, namespace: str
) -> None:
    custom = client.CustomObjectsApi(api_client)
    body = _gadget("ok", {"cores": 8, "arch": "arm64", "colour": "blue"})
    body["status"] = {"seen": True}
    created = custom.create_namespaced_custom_object(GROUP, "v1", namespace, "gadgets", body)
    assert created["spec"] == {"cores": 8, "arch": "arm64"}  # unknown field pruned
    assert "status" not in created  # status is a subresource: ignored on create
    patched = custom.patch_namespaced_custom_object_status(
        GROUP, "v1", namespace, "gadgets", "ok", {"status": {"seen": True}}
    )
    assert patched["status"] == {"seen": True}
    assert patched["metadata"]["generation"] == created["metadata"]["generation"]
