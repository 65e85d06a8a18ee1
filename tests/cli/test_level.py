"""hwcapctl level as a user runs it: a real subprocess on the real dumps; exit 0 levelled, 1 above, 2 bad input.

Expectations come from the dumps' Features lines and the override table's data, not from the command's output.
"""

from __future__ import annotations

import json
import os
from typing import Any

from kubernetes import client

from hwcap_operator import keys
from hwcap_operator.cli.inputs import read_feature_file
from hwcap_operator.domain import api
from hwcap_operator.domain.status import mask_status
from hwcap_operator.features.data_idreg_overrides import FIELDS
from tests.cli.test_hwcapctl import hwcapctl
from tests.support.domains import install_crd
from tests.support.profiles import PROFILES_DIR, raw_feature_words

G2 = "arm64-aws-graviton2-neoverse-n1.txt"
G4 = "arm64-aws-graviton4-neoverse-v2.txt"
M1 = "arm64-apple-m1-asahi.txt"


def level(*args: str) -> tuple[int, str, str]:
    result = hwcapctl("level", *args)
    return result.returncode, result.stdout, result.stderr


def test_graviton4_down_to_graviton2_prints_nosve_and_what_stays_above() -> None:
    code, out, _ = level("--mask", str(PROFILES_DIR / G2), "--node", str(PROFILES_DIR / G4), "-o", "json")
    assert code == 1  # i8mm, bf16, ... have no override: not levellable exactly
    doc = json.loads(out)
    excess = raw_feature_words(G4) - raw_feature_words(G2)
    sve_family = FIELDS["id_aa64pfr0.sve"].removed_by(0)
    assert doc["parameters"] == ["arm64.nosve"]
    assert set(doc["removed"]) == excess & sve_family
    assert set(doc["remaining"]) == excess - sve_family
    assert set(doc["blockedSecurity"]) == {"bti", "paca", "pacg"}
    assert doc["table"] == "6.12"


def test_table_output_names_the_parameters_and_the_security_features_kept() -> None:
    code, out, _ = level("--mask", str(PROFILES_DIR / G2), "--node", str(PROFILES_DIR / G4))
    assert code == 1
    assert "boot parameters:   arm64.nosve" in out
    assert "needs allowHidingSecurityFeatures" in out and "bti" in out


def test_allow_hiding_security_on_a_6_1_kernel_uses_that_release_s_aliases() -> None:
    code, out, _ = level("--mask", str(PROFILES_DIR / G2), "--node", str(PROFILES_DIR / M1),
                         "--kernel", "6.1.0-28-arm64", "--allow-hiding-security", "-o", "json")  # fmt: skip
    doc = json.loads(out)
    assert "arm64.nopauth" in doc["parameters"]
    assert {"paca", "pacg"} <= set(doc["removed"])
    assert doc["table"] == "6.1"
    assert code == (0 if not doc["remaining"] else 1)


def test_a_node_at_the_mask_exits_0_with_no_parameters() -> None:
    code, out, _ = level("--mask", str(PROFILES_DIR / G2), "--node", str(PROFILES_DIR / G2), "-o", "json")
    assert code == 0
    assert json.loads(out)["parameters"] == []


def test_x86_is_refused_with_the_clearcpuid_fact_and_exit_2() -> None:
    x86 = str(PROFILES_DIR / "x86_64-amd-zen2-rome-epyc7742.txt")
    code, out, err = level("--mask", x86, "--node", x86)
    assert code == 2 and out == ""
    assert "clearcpuid= hides features from the kernel and /proc/cpuinfo but NOT from the CPUID instruction" in err


def test_too_old_kernel_and_missing_mask_are_one_line_errors() -> None:
    code, _, err = level("--mask", str(PROFILES_DIR / G2), "--node", str(PROFILES_DIR / G4), "--kernel", "5.10")
    assert code == 2 and "no override table that old" in err and err.count("\n") == 1
    code, _, err = level("--node", str(PROFILES_DIR / G4))
    assert code == 2 and "--mask is required" in err


def test_help_shows_examples() -> None:
    result = hwcapctl("level", "--help")
    assert result.returncode == 0
    assert "examples:" in result.stdout and "--kernel 6.6" in result.stdout


def test_level_domain_node_reads_the_published_mask_and_the_node_s_kernel_release(
    control_plane: Any, kubectl: Any, api_client: Any, core_v1: Any, node_factory: Any
) -> None:
    """The real apiserver: the domain's published mask (G2), a Node from the G4 dump reporting a 6.1 kernel."""
    install_crd(kubectl)
    name = f"level-{os.getpid()}"
    g2 = read_feature_file(str(PROFILES_DIR / G2)).mask
    domain = {"apiVersion": "hwcap.dev/v1alpha1", "kind": "MigrationDomain", "metadata": {"name": name},
              "spec": {"arch": "arm64", "workloads": {"namespaceSelector": {}}}}  # fmt: skip
    kubectl("apply", "-f", "-", input=json.dumps(domain))
    try:
        basis = api.MaskBasis(baseline_mode="Auto", fingerprint="test", relevel_generation=0)
        status = api.MigrationDomainStatus(mask=mask_status(g2, basis)).model_dump(by_alias=True, exclude_none=True)
        client.CustomObjectsApi(api_client).patch_cluster_custom_object_status(
            keys.GROUP, keys.VERSION, keys.PLURAL, name, {"status": status})  # fmt: skip
        node = node_factory(G4.removesuffix(".txt"))["metadata"]["name"]
        core_v1.patch_node_status(node, {"status": {"nodeInfo": {"kernelVersion": "6.1.0-28-arm64"}}})
        result = hwcapctl("level", "--domain", name, "--node", node, "-o", "json",
                          "--kubeconfig", str(control_plane.kubeconfig))  # fmt: skip
        assert result.returncode == 1, result.stderr
        doc = json.loads(result.stdout)
        assert doc["table"] == "6.1" and doc["kernel"] == "6.1.0-28-arm64"
        assert doc["parameters"] == ["id_aa64pfr0.sve=0"]  # 6.1's arm64.nosve would also drop SME
        assert doc["maskId"] == g2.mask_id
        missing = hwcapctl("level", "--domain", name, "--node", "no-such-node",
                           "--kubeconfig", str(control_plane.kubeconfig))  # fmt: skip
        assert missing.returncode == 2 and "no-such-node" in missing.stderr
    finally:
        kubectl("delete", "migrationdomain", name, "--ignore-not-found")
