"""The operator's own "agent missing" signal: per domain, the selected nodes that carry no agent report.

A cluster without kube-state-metrics still gets ``HwcapAgentMissing``: the operator counts, from the Nodes it
already watches, the candidates of each domain without the ``agent.hwcap.dev/hwcap`` annotation the node agent
writes. Nodes here are made from real Graviton dumps with NFD labels only (no agent), then the agent's words for
the same dump are written onto some of them, as the agent would.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from hwcap_dev.devcluster.simulated_nodes import load_profile
from hwcap_operator import keys
from hwcap_operator.agent.report import format_words
from hwcap_operator.mask import FeatureMask
from tests.support.domains import Domains, domain_manifest
from tests.support.operator import OperatorStarter
from tests.support.waits import wait_for

G2, G3 = "arm64-aws-graviton2-neoverse-n1", "arm64-aws-graviton3-neoverse-v1"


def _gauge(metrics: str, domain: str) -> float | None:
    found = re.search(rf'^hwcap_domain_nodes_without_agent_report\{{domain="{domain}"\}} (\S+)$', metrics, re.M)
    return float(found.group(1)) if found else None


def test_nodes_without_an_agent_report_are_counted_per_domain_and_leave_the_count_when_the_agent_reports(
    crd: None, start_operator: OperatorStarter, node_factory: Any, namespace: str, kubectl: Any,
    domains: Domains, profiles_dir: Path,
) -> None:  # fmt: skip
    operator = start_operator()
    label = {"hwcap.dev/test": namespace}
    made = [(node_factory(p, labels=label)["metadata"]["name"], p) for p in (G2, G3, G2)]
    node_factory(G3, labels={"hwcap.dev/test": f"{namespace}-other"})  # another domain's node: never counted
    name = f"agents-{namespace[-6:]}"
    kubectl("apply", "-f", "-", input=domain_manifest(name, namespace, allowHidingSecurityFeatures=True))
    try:
        domains.wait_condition(name, "Ready", "True")
        assert wait_for("3 nodes without a report", lambda: _gauge(operator.metrics(), name) == 3.0, timeout=30)
        for node, profile in made[:2]:  # the agent reports on two of the three
            prof = load_profile(profiles_dir / f"{profile}.txt")
            words = format_words(FeatureMask.from_features(prof.arch, prof.features).hwcap)
            kubectl("annotate", "node", node, f"{keys.AGENT_HWCAP_ANNOTATION}={words}", "--overwrite")
        assert wait_for("1 node left without a report", lambda: _gauge(operator.metrics(), name) == 1.0, timeout=30)
    finally:
        domains.delete(name)
    # A deleted domain's series goes away (no ghost alert).
    assert wait_for("the series dropped", lambda: _gauge(operator.metrics(), name) is None, timeout=30)
