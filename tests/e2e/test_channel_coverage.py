"""status.channelCoverage through a real kube-apiserver: the operator writes it under the generated CRD's schema, and
`hwcapctl explain --domain` reads the same groups back. Expected channels: what arm64 leaves a process (MRS of
the ID registers, MIDR, /proc/cpuinfo); the ID registers are unadvertised because the domain clears HWCAP_CPUID."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from tests.support.domains import Domains, domain_manifest
from tests.support.operator import OperatorProcess, OperatorStarter

G2, G3 = "arm64-aws-graviton2-neoverse-n1", "arm64-aws-graviton3-neoverse-v1"


@pytest.fixture
def operator(crd: None, start_operator: OperatorStarter) -> OperatorProcess:
    return start_operator()


def test_channel_coverage_is_published_and_explained(
    operator: OperatorProcess, node_factory: Any, namespace: str, kubectl: Any, domains: Domains,
    control_plane: Any, cleanup_domains: list[str],
) -> None:  # fmt: skip
    label = {"hwcap.dev/test": namespace}
    nodes = [node_factory(G3, labels=label), node_factory(G2, labels=label)]
    cleanup_domains.append("channels")
    spec = {"allowHidingSecurityFeatures": True,
            "enforcement": {"idRegisterAccess": "Clear", "userspaceFallbacks": ["goDebug"]}}  # fmt: skip
    kubectl("apply", "-f", "-", input=domain_manifest("channels", namespace, **spec))
    domains.wait_condition("channels", "Ready", "True")
    status = domains.get("channels")["status"]
    groups = status["channelCoverage"]
    assert sorted(f for g in groups for f in g["features"]) == sorted(status["droppedFeatures"])
    sve = next(g for g in groups if "sve" in g["features"])  # Graviton3 has SVE, Graviton2 has not
    assert sve["channels"] == ["IDRegistersUnadvertised", "MIDR", "ProcCpuinfo"]
    sha512 = next(g for g in groups if "sha512" in g["features"])
    assert sha512["coveredBy"] == ["goDebug"]  # cpu.sha512: a key every Go consumer knows on arm64
    explained = subprocess.run([sys.executable, "-m", "hwcap_operator.cli.main", "explain", "--domain", "channels",
                                "-o", "json", "--kubeconfig", str(control_plane.kubeconfig)],
                               capture_output=True, text=True, timeout=60)  # fmt: skip
    assert explained.returncode == 0, explained.stderr
    document = json.loads(explained.stdout)
    assert document["idRegistersAdvertised"] is False
    assert {(tuple(g["features"]), tuple(g["channels"]), tuple(g["coveredBy"])) for g in document["channelCoverage"]} \
        == {(tuple(g["features"]), tuple(g["channels"]), tuple(g.get("coveredBy", []))) for g in groups}
    del nodes
