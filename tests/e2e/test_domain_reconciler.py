"""The MigrationDomain reconciler against the real kube-apiserver: a platform engineer's day.

Nodes are made from real CPU dumps (NFD-style labels, as NFD would publish them); the operator runs as
the real ``hwcap-operator run`` process. Expected masks are computed here from the nodes' own labels and
the dumps' text, never from the operator's output.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from hwcap_operator import keys
from tests.support.domains import Domains, domain_manifest
from tests.support.operator import OperatorProcess, OperatorStarter
from tests.support.waits import wait_for

NFD_PREFIX = keys.NFD_CPUID_LABEL_PREFIX
G2, G3, G4 = "arm64-aws-graviton2-neoverse-n1", "arm64-aws-graviton3-neoverse-v1", "arm64-aws-graviton4-neoverse-v2"
RPI4 = "arm64-cortex-a72-raspberrypi4"


@pytest.fixture
def operator(crd: None, start_operator: OperatorStarter) -> OperatorProcess:
    """An operator of this test's own, without the webhook: some tests stop and restart it."""
    return start_operator()


def nfd_features(node: dict[str, Any]) -> set[str]:
    """The features a node advertises through its NFD labels (what the operator reads), lower-cased."""
    labels = node["metadata"]["labels"]
    return {k.removeprefix(NFD_PREFIX).lower() for k, v in labels.items() if k.startswith(NFD_PREFIX) and v == "true"}


def dump_features(profiles_dir: Path, profile: str) -> set[str]:
    for line in (profiles_dir / f"{profile}.txt").read_text().splitlines():
        if line.startswith("Features"):
            return set(line.split(":", 1)[1].split())
    raise AssertionError(profile)


def apply(kubectl: Any, name: str, test_label: str, cleanup: list[str], **spec: Any) -> None:
    cleanup.append(name)
    kubectl("apply", "-f", "-", input=domain_manifest(name, test_label, **spec))


def member_label(domain: str) -> str:
    return f"{keys.DOMAIN_MEMBER_LABEL_PREFIX}{domain}"


def node_labels(core_v1: client.CoreV1Api, name: str) -> dict[str, str]:
    return dict(core_v1.read_node(name).metadata.labels or {})


def test_auto_domain_over_three_graviton_generations(
    operator: OperatorProcess, node_factory: Any, namespace: str, kubectl: Any, domains: Domains,
    core_v1: client.CoreV1Api, profiles_dir: Path, cleanup_domains: list[str],
) -> None:  # fmt: skip
    label = {"hwcap.dev/test": namespace}
    nodes = [node_factory(p, labels=label) for p in (G2, G3, G4)]
    # the generations differ, so the mask stops advertising HWCAP_CPUID too (docs/kernel.md#hwcap-cpuid)
    expected = set.intersection(*(nfd_features(n) for n in nodes)) - {"cpuid"}
    assert expected <= set.intersection(*(dump_features(profiles_dir, p) for p in (G2, G3, G4)))
    apply(kubectl, "gravitons", namespace, cleanup_domains, allowHidingSecurityFeatures=True)

    ready = domains.wait_condition("gravitons", "Ready", "True")
    status = domains.get("gravitons")["status"]
    assert set(status["mask"]["features"]) == expected
    assert sorted(status["members"]["names"]) == sorted(n["metadata"]["name"] for n in nodes)
    assert ready["observedGeneration"] == domains.get("gravitons")["metadata"]["generation"]
    # Features the older generation lacks are reported as dropped (e.g. SVE from Graviton3/4).
    assert "sve" in status["droppedFeatures"] and "sve" not in status["mask"]["features"]
    for node in nodes:
        assert node_labels(core_v1, node["metadata"]["name"]).get(member_label("gravitons")) == "true"
    # kubectl-friendly: short name and printer columns show the mask id.
    table = kubectl("get", "mdom", "gravitons").stdout
    assert status["mask"]["id"] in table and "arm64" in table
    # Prometheus sees the domain.
    metrics = operator.metrics()
    assert 'hwcap_domain_member_nodes{domain="gravitons"} 3.0' in metrics


def test_a_mask_hiding_pointer_authentication_is_refused_by_default(
    operator: OperatorProcess, node_factory: Any, namespace: str, kubectl: Any, domains: Domains,
    cleanup_domains: list[str],
) -> None:  # fmt: skip
    label = {"hwcap.dev/test": namespace}
    g2, g3 = node_factory(G2, labels=label), node_factory(G3, labels=label)
    hidden = nfd_features(g3) - nfd_features(g2)
    assert {"paca", "pacg"} <= hidden  # the dumps say so: Graviton2 (Neoverse N1) has no PAC
    apply(kubectl, "no-pac", namespace, cleanup_domains)
    cond = domains.wait_condition("no-pac", "MaskValid", "False")
    assert "paca" in cond["message"], cond
    assert domains.condition("no-pac", "Ready")["status"] != "True"


def test_frozen_domain_excludes_a_weaker_node_and_keeps_its_mask(
    operator: OperatorProcess, node_factory: Any, namespace: str, kubectl: Any, domains: Domains,
    core_v1: client.CoreV1Api, cleanup_domains: list[str],
) -> None:  # fmt: skip
    label = {"hwcap.dev/test": namespace}
    a, b = node_factory(G2, labels=label), node_factory(G2, labels=label)
    apply(kubectl, "frozen", namespace, cleanup_domains)
    domains.wait_condition("frozen", "Ready", "True")
    before = domains.get("frozen")["status"]["mask"]
    rpi = node_factory(RPI4, labels=label)
    missing = nfd_features(a) - nfd_features(rpi)
    status = domains.wait_status("frozen", lambda s: (s.get("excluded") or {}).get("count") == 1, "one exclusion")
    excluded = status["excluded"]["nodes"][0]
    assert excluded["name"] == rpi["metadata"]["name"] and excluded["reason"] == "MissingMaskFeatures"
    assert set(excluded["missingFeatures"]) == missing
    assert status["mask"]["id"] == before["id"]
    assert member_label("frozen") not in node_labels(core_v1, rpi["metadata"]["name"])
    assert node_labels(core_v1, b["metadata"]["name"]).get(member_label("frozen")) == "true"


def test_lower_and_follow_lower_the_mask_to_the_weaker_node(
    operator: OperatorProcess, node_factory: Any, namespace: str, kubectl: Any, domains: Domains,
    cleanup_domains: list[str],
) -> None:  # fmt: skip
    label = {"hwcap.dev/test": namespace}
    g2 = node_factory(G2, labels=label)
    apply(kubectl, "lower", namespace, cleanup_domains, allowHidingSecurityFeatures=True,
          leveling={"onMissingFeatures": "Lower"})  # fmt: skip
    apply(kubectl, "follow", namespace, cleanup_domains, allowHidingSecurityFeatures=True,
          leveling={"mode": "Follow"})  # fmt: skip
    for name in ("lower", "follow"):
        domains.wait_condition(name, "Ready", "True")
        assert set(domains.get(name)["status"]["mask"]["features"]) == nfd_features(g2)
    rpi = node_factory(RPI4, labels=label)
    common = nfd_features(g2) & nfd_features(rpi) - {"cpuid"}  # a lowered mask hides something: HWCAP_CPUID goes
    for name in ("lower", "follow"):
        status = domains.wait_status(name, lambda s: set(s["mask"]["features"]) == common, "the lowered mask")
        assert status["members"]["count"] == 2


def test_require_excludes_nodes_and_exclude_never_advertises(
    operator: OperatorProcess, node_factory: Any, namespace: str, kubectl: Any, domains: Domains,
    cleanup_domains: list[str],
) -> None:  # fmt: skip
    label = {"hwcap.dev/test": namespace}
    g2, g3 = node_factory(G2, labels=label), node_factory(G3, labels=label)
    apply(kubectl, "needs-sve", namespace, cleanup_domains, require=["sve"], exclude=["sha512"])
    status = domains.wait_status("needs-sve", lambda s: bool(s.get("mask")), "a mask")
    assert status["members"]["names"] == [g3["metadata"]["name"]]
    [excluded] = status["excluded"]["nodes"]
    assert excluded["name"] == g2["metadata"]["name"] and excluded["reason"] == "MissingRequiredFeatures"
    assert "sve" in excluded["missingFeatures"]
    assert "sve" in status["mask"]["features"] and "sha512" not in status["mask"]["features"]
    assert "sha512" in nfd_features(g3)


def test_invalid_domains_are_rejected_by_the_schema(crd: None, kubectl: Any, namespace: str) -> None:
    bad_arch = domain_manifest("bad-arch", namespace).replace("arch: arm64", "arch: sparc64")
    result = kubectl("apply", "-f", "-", input=bad_arch, check=False)
    assert result.returncode != 0 and "spec.arch" in result.stderr
    bad_preset = domain_manifest("bad-preset", namespace, baseline={"mode": "Preset"})
    result = kubectl("apply", "-f", "-", input=bad_preset, check=False)
    assert result.returncode != 0 and "preset" in result.stderr


def test_two_domains_share_nodes_and_a_node_leaving_the_selector_loses_its_label(
    operator: OperatorProcess, node_factory: Any, namespace: str, kubectl: Any, domains: Domains,
    core_v1: client.CoreV1Api, cleanup_domains: list[str],
) -> None:  # fmt: skip
    label = {"hwcap.dev/test": namespace}
    a, b = node_factory(G3, labels=label), node_factory(G3, labels=label)
    apply(kubectl, "left", namespace, cleanup_domains)
    apply(kubectl, "right", namespace, cleanup_domains, exclude=["sve"])
    for name in ("left", "right"):
        domains.wait_condition(name, "Ready", "True")
    labels = node_labels(core_v1, a["metadata"]["name"])
    assert labels.get(member_label("left")) == labels.get(member_label("right")) == "true"
    core_v1.patch_node(a["metadata"]["name"], {"metadata": {"labels": {"hwcap.dev/test": "elsewhere"}}})
    wait_for("node a to lose both member labels", lambda: not {member_label("left"), member_label("right")}
             & set(node_labels(core_v1, a["metadata"]["name"])))  # fmt: skip
    assert domains.get("left")["status"]["members"]["names"] == [b["metadata"]["name"]]
    core_v1.delete_node(b["metadata"]["name"])
    domains.wait_status("left", lambda s: s["members"]["count"] == 0, "no members left")


def test_operator_restart_resumes_from_status_without_flapping(
    operator: OperatorProcess, node_factory: Any, namespace: str, kubectl: Any, domains: Domains,
    core_v1: client.CoreV1Api, cleanup_domains: list[str],
) -> None:  # fmt: skip
    label = {"hwcap.dev/test": namespace}
    g2 = node_factory(G2, labels=label)
    g3 = node_factory(G3, labels=label)
    apply(kubectl, "steady", namespace, cleanup_domains, allowHidingSecurityFeatures=True)
    domains.wait_condition("steady", "Ready", "True")
    before = domains.get("steady")
    node_versions = {n: core_v1.read_node(n).metadata.resource_version for n in
                     (g2["metadata"]["name"], g3["metadata"]["name"])}  # fmt: skip
    operator.stop()
    # While it is down, a richer node joins the selector: a frozen mask must not move because of it.
    g4 = node_factory(G4, labels=label)
    operator.start()
    domains.wait_status("steady", lambda s: g4["metadata"]["name"] in s["members"]["names"], "the new member")
    after = domains.get("steady")
    assert after["status"]["mask"] == before["status"]["mask"]
    ready_before = next(c for c in before["status"]["conditions"] if c["type"] == "Ready")
    ready_after = next(c for c in after["status"]["conditions"] if c["type"] == "Ready")
    assert ready_after["lastTransitionTime"] == ready_before["lastTransitionTime"]
    # The existing members' labels were never removed and re-added.
    for name, version in node_versions.items():
        assert core_v1.read_node(name).metadata.resource_version == version


def events_for(core_v1: client.CoreV1Api, kind: str, name: str) -> list[Any]:
    items = core_v1.list_event_for_all_namespaces(field_selector=f"involvedObject.name={name}").items
    return [e for e in items if e.involved_object.kind == kind]


def test_a_malformed_label_excludes_the_node_with_events_and_the_operator_keeps_running(
    operator: OperatorProcess, node_factory: Any, namespace: str, kubectl: Any, domains: Domains,
    core_v1: client.CoreV1Api, cleanup_domains: list[str],
) -> None:  # fmt: skip
    label = {"hwcap.dev/test": namespace}
    good = node_factory(G2, labels=label)
    bad = node_factory(G2, labels={**label, f"{NFD_PREFIX}ASIMD": "maybe"})
    apply(kubectl, "careful", namespace, cleanup_domains)
    status = domains.wait_status("careful", lambda s: (s.get("excluded") or {}).get("count") == 1, "the exclusion")
    [excluded] = status["excluded"]["nodes"]
    assert excluded["name"] == bad["metadata"]["name"] and excluded["reason"] == "NodeFeaturesInvalid"
    assert "ASIMD" in excluded["message"] and "maybe" in excluded["message"]
    assert status["members"]["names"] == [good["metadata"]["name"]]
    wait_for("an Event on the bad Node", lambda: events_for(core_v1, "Node", bad["metadata"]["name"]))
    wait_for("an Event on the domain", lambda: [e for e in events_for(core_v1, keys.KIND, "careful")
                                                 if bad["metadata"]["name"] in (e.message or "")])  # fmt: skip
    malformed = [line for line in operator.metrics().splitlines()
                 if line.startswith("hwcap_node_source_errors_total{") and 'reason="malformed"' in line]
    assert malformed and float(malformed[0].rsplit(" ", 1)[1]) >= 1, malformed
    # Fixing the label brings the node in; the operator never stopped.
    core_v1.patch_node(bad["metadata"]["name"], {"metadata": {"labels": {f"{NFD_PREFIX}ASIMD": "true"}}})
    domains.wait_status("careful", lambda s: s["members"]["count"] == 2, "both members")
    assert operator.proc is not None and operator.proc.poll() is None


def hwcapctl(control_plane: Any, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hwcap_operator.cli.main", *args, "--kubeconfig",
                           str(control_plane.kubeconfig)], capture_output=True, text=True, timeout=60)  # fmt: skip


def test_cluster_verbs_of_hwcapctl(
    operator: OperatorProcess, node_factory: Any, namespace: str, kubectl: Any, domains: Domains,
    control_plane: Any, profiles_dir: Path, cleanup_domains: list[str],
) -> None:  # fmt: skip
    label = {"hwcap.dev/test": namespace}
    g3a, g3b = node_factory(G3, labels=label), node_factory(G3, labels=label)
    apply(kubectl, "whatif", namespace, cleanup_domains)
    domains.wait_condition("whatif", "Ready", "True")
    listed = hwcapctl(control_plane, "get", "domains", "-o", "json")
    assert listed.returncode == 0, listed.stderr
    [row] = [d for d in json.loads(listed.stdout)["domains"] if d["name"] == "whatif"]
    assert row["members"] == 2 and row["ready"] == "True"
    # A Graviton2 joining this frozen Graviton3 domain would be excluded, and the dry run says why.
    weaker = hwcapctl(control_plane, "what-if", "--domain", "whatif", "--node",
                      str(profiles_dir / f"{G2}.txt"), "-o", "json")  # fmt: skip
    assert weaker.returncode == 1, weaker.stderr
    verdict = json.loads(weaker.stdout)
    assert verdict["verdict"] == "excluded" and "sve" in " ".join(verdict["reasons"])
    same = hwcapctl(control_plane, "what-if", "--domain", "whatif", "--node", str(profiles_dir / f"{G3}.txt"))
    assert same.returncode == 0 and same.stdout.startswith("admitted"), same.stdout + same.stderr
    missing = hwcapctl(control_plane, "what-if", "--domain", "no-such-domain", "--node",
                       str(profiles_dir / f"{G3}.txt"))  # fmt: skip
    assert missing.returncode == 2 and "no-such-domain" in missing.stderr
    del g3a, g3b
