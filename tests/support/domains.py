"""MigrationDomains in tests: the CRD, a manifest selecting one test's nodes, and waits on a domain's status."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import yaml
from kubernetes import client

from hwcap_dev.paths import REPO_ROOT
from hwcap_operator import keys
from tests.support.waits import wait_for

CRD_FILE = REPO_ROOT / "crds" / "hwcap.dev_migrationdomains.yaml"


def install_crd(kubectl: Any) -> None:
    """The MigrationDomain CRD, Established."""
    kubectl("apply", "-f", str(CRD_FILE))

    def established() -> bool:
        # Polled rather than `kubectl wait --for=condition=Established`: right after an apply the CRD may have
        # no status.conditions yet, and kubectl wait then fails ("conditions accessor error") instead of waiting.
        out = kubectl("get", "crd/migrationdomains.hwcap.dev", "-o",
                      'jsonpath={.status.conditions[?(@.type=="Established")].status}', check=False)  # fmt: skip
        return bool(out.returncode == 0 and out.stdout.strip() == "True")

    wait_for("the MigrationDomain CRD to be Established", established, timeout=60)


class Domains:
    """MigrationDomain helpers over the admin API client."""

    def __init__(self, api: client.ApiClient) -> None:
        self.custom = client.CustomObjectsApi(api)

    def get(self, name: str) -> dict[str, Any]:
        obj: Any = self.custom.get_cluster_custom_object(keys.GROUP, keys.VERSION, keys.PLURAL, name)
        return dict(obj)

    def patch_spec(self, name: str, spec: dict[str, Any]) -> None:
        self.custom.patch_cluster_custom_object(keys.GROUP, keys.VERSION, keys.PLURAL, name, {"spec": spec})

    def delete(self, name: str) -> None:
        with contextlib.suppress(client.ApiException):
            self.custom.delete_cluster_custom_object(keys.GROUP, keys.VERSION, keys.PLURAL, name)

    def condition(self, name: str, ctype: str) -> dict[str, Any] | None:
        for cond in (self.get(name).get("status") or {}).get("conditions") or []:
            if cond["type"] == ctype:
                return dict(cond)
        return None

    def wait_condition(self, name: str, ctype: str, status: str, reason: str | None = None,
                       timeout: float = 45.0) -> dict[str, Any]:  # fmt: skip
        def probe() -> dict[str, Any] | None:
            cond = self.condition(name, ctype)
            if cond and cond["status"] == status and (reason is None or cond["reason"] == reason):
                return cond
            return None

        return wait_for(f"{name}: condition {ctype}={status} ({reason or 'any reason'})", probe, timeout)

    def wait_status(self, name: str, predicate: Callable[[dict[str, Any]], bool], what: str,
                    timeout: float = 45.0) -> dict[str, Any]:  # fmt: skip
        def probe() -> dict[str, Any] | None:
            status = self.get(name).get("status") or {}
            return status if predicate(status) else None

        return wait_for(f"{name}: {what}", probe, timeout)


def domain_manifest(name: str, test_label: str, **spec: Any) -> str:
    """A MigrationDomain selecting nodes labelled ``hwcap.dev/test=<test_label>`` (YAML for kubectl)."""
    body = {
        "apiVersion": keys.API_VERSION,
        "kind": keys.KIND,
        "metadata": {"name": name},
        "spec": {
            "arch": "arm64",
            "nodeSelector": {"matchLabels": {"hwcap.dev/test": test_label}},
            "workloads": {"namespaceSelector": {"matchLabels": {"hwcap.dev/test": test_label}}},
            **spec,
        },
    }
    return yaml.safe_dump(body, sort_keys=False)
