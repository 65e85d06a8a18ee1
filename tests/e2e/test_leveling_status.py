"""enforcement.nodeLeveling through the real operator and kube-apiserver: status.nodeLeveling is accepted by the
CRD, Report keeps members and names their boot parameters, Required excludes a member still above the mask.

Nodes from the real Graviton2/Graviton4 dumps (NFD labels); expectations from the override table's data.
"""

from __future__ import annotations

from typing import Any

from hwcap_operator import keys
from tests.support.domains import Domains, domain_manifest
from tests.support.waits import wait_for

G2, G4 = "arm64-aws-graviton2-neoverse-n1", "arm64-aws-graviton4-neoverse-v2"


def test_report_then_required(
    crd: None, start_operator: Any, node_factory: Any, namespace: str, kubectl: Any, domains: Domains,
    core_v1: Any,
) -> None:  # fmt: skip
    start_operator()
    label = {"hwcap.dev/test": namespace}
    g2 = node_factory(G2, labels=label)["metadata"]["name"]
    g4 = node_factory(G4, labels=label)["metadata"]["name"]
    # The agent found an override in g2's /proc/cmdline (it has no SVE anyway: nothing above the mask).
    core_v1.patch_node(g2, {"metadata": {"annotations": {keys.AGENT_IDREG_OVERRIDES_ANNOTATION: "arm64.nosve"}}})
    name = f"lvl-{namespace}"[:60]
    kubectl("apply", "-f", "-", input=domain_manifest(name, namespace, allowHidingSecurityFeatures=True,
                                                      enforcement={"nodeLeveling": "Report"}))  # fmt: skip
    try:

        def report() -> dict[str, Any] | None:
            status = domains.get(name).get("status") or {}
            entries = {e["name"]: e for e in status.get("nodeLeveling") or []}
            return entries if {g2, g4} <= set(entries) else None

        entries = wait_for("status.nodeLeveling for both members", report)
        assert entries[g2]["state"] == "Levelled"
        assert entries[g2]["message"] == "levelled by boot parameters: arm64.nosve"
        assert entries[g4]["state"] == "NotLevellable"
        assert {"arm64.nosve", "arm64.nobti", "arm64.nopauth"} == set(entries[g4]["parameters"])
        assert sorted(domains.get(name)["status"]["members"]["names"]) == sorted([g2, g4])

        domains.patch_spec(name, {"enforcement": {"nodeLeveling": "Required"}})

        def excluded() -> dict[str, Any] | None:
            nodes = ((domains.get(name).get("status") or {}).get("excluded") or {}).get("nodes") or []
            return next((n for n in nodes if n["name"] == g4), None)

        g4_excluded = wait_for("g4 excluded under Required", excluded)
        assert g4_excluded["reason"] == "NodeNotLevelled"
        assert "arm64.nosve" in g4_excluded["message"]
        assert domains.get(name)["status"]["members"]["names"] == [g2]
    finally:
        domains.delete(name)
