"""A platform team's story: an x86 domain over AMD Rome and Intel Cascade Lake nodes.

HWCAPs cannot hide AVX-512 on x86, so the pod's runtimes must be told by environment. The expected
spellings come from the runtimes' documentation (docs/kernel.md#userspace-fallbacks), the expected set of dropped
features from the dumps' own ``Flags:`` lines — not from the code under test.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jsonpatch
from tests.support.profiles import PROFILES_DIR

from hwcap_operator import keys
from hwcap_operator.admission import DomainView, LabelSelector, MutationConfig, NoResolver, mutate_pod
from hwcap_operator.domain.api import MigrationDomainSpec
from hwcap_operator.features.cpuinfo import parse_cpuinfo

ROME = PROFILES_DIR / "x86_64-amd-zen2-rome-epyc7742.txt"
CASCADE = PROFILES_DIR / "x86_64-intel-cascadelake-platinum8260m.txt"


def flags(path: Path) -> set[str]:
    match = re.search(r"^flags\s*:\s*(.*)$", path.read_text(), re.M | re.I)  # lscpu or /proc/cpuinfo
    assert match, path
    return set(match.group(1).split())


def test_avx512_only_on_intel_is_switched_off_in_glibc_go_and_openssl() -> None:
    rome, cascade = flags(ROME), flags(CASCADE)
    assert "avx512f" in cascade - rome and "avx2" in rome & cascade and "sha_ni" in rome - cascade
    masks = [parse_cpuinfo(p.read_text(), source=p.name).mask for p in (ROME, CASCADE)]
    common = masks[0] & masks[1]
    dropped = ((masks[0] | masks[1]) - common).names()
    domain = DomainView.from_mask(
        "mixed-x86",
        common,
        namespace_selector=LabelSelector.parse({}),
        dropped_features=dropped,
        fallbacks=["glibcTunables", "goDebug", "opensslIa32cap"],
    )
    pod: dict[str, Any] = {
        "metadata": {"name": "api"},
        "spec": {"containers": [{"name": "api", "image": "api:1", "command": ["/api"],
                                  "env": [{"name": "GODEBUG", "value": "madvdontneed=1"}]}]},
    }
    decision = mutate_pod(
        pod, namespace="shop", namespace_labels={}, domains=[domain],
        config=MutationConfig(operator_namespace="hwcap-system", init_image="op:1"), resolver=NoResolver(),
    )
    out = jsonpatch.apply_patch(pod, decision.patch)
    env = {e["name"]: e["value"] for e in out["spec"]["containers"][0]["env"]}

    glibc_off = set(env["GLIBC_TUNABLES"].removeprefix("glibc.cpu.hwcaps=").split(","))
    assert {"-AVX512F", "-ERMS"} <= glibc_off  # cascade has erms, rome does not
    assert "-AVX2" not in glibc_off  # every member has it
    godebug = env["GODEBUG"].split(",")
    assert godebug[0] == "madvdontneed=1"  # the user's setting kept, first
    assert {"cpu.avx512f=off", "cpu.avx512bw=off", "cpu.avx512vl=off"} <= set(godebug)
    assert "cpu.sha=off" not in godebug  # x/sys/cpu has no "sha" key: it would warn in every Go program
    assert "cpu.avx2=off" not in godebug
    lv = env["OPENSSL_ia32cap"].split(":")
    lv1_cleared = int(lv[1].removeprefix("~"), 16)
    for bit in (16, 17, 29, 30, 31):  # AVX512F, AVX512DQ, SHA, AVX512BW, AVX512VL (#64+n)
        assert lv1_cleared >> bit & 1, bit
    assert not lv1_cleared >> 5 & 1  # AVX2 stays
    ann = out["metadata"]["annotations"]
    assert ann[keys.POD_MASK_ID_ANNOTATION] == common.mask_id
    assert ann[keys.POD_HWCAP_WORDS_ANNOTATION] == ",".join(common.hex_words())


def test_domain_spec_as_users_write_it_drives_selection_and_enforcement() -> None:
    """A Graviton2+3 domain written in YAML: only the `web` pods of `team=shop` namespaces, batch excluded."""
    spec = MigrationDomainSpec.model_validate(
        {
            "arch": "arm64",
            "workloads": {
                "namespaceSelector": {"matchLabels": {"team": "shop"}},
                "podSelector": {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["web"]}]},
                "excludedNamespaces": ["shop-batch"],
                "unresolvedEntrypoint": "Warn",
            },
            "enforcement": {"kernelInheritance": "Required"},
        }
    )
    dumps = [PROFILES_DIR / "arm64-aws-graviton2-neoverse-n1.txt", PROFILES_DIR / "arm64-aws-graviton3-neoverse-v1.txt"]
    masks = [parse_cpuinfo(p.read_text(), source=p.name).mask for p in dumps]
    common = masks[0] & masks[1]
    domain = DomainView.from_spec("graviton", spec, common)
    assert domain.on_failure == "fail" and domain.unresolved_entrypoint == "Warn"

    def admit(ns: str, ns_labels: dict[str, str], pod_labels: dict[str, str]) -> Any:
        pod = {"metadata": {"name": "p", "labels": pod_labels},
               "spec": {"containers": [{"name": "c", "image": "web:1", "command": ["/web"]}]}}
        return mutate_pod(pod, namespace=ns, namespace_labels=ns_labels, domains=[domain],
                          config=MutationConfig(operator_namespace="hwcap-system", init_image="op:1"),
                          resolver=NoResolver())

    decision = admit("shop-web", {"team": "shop"}, {"tier": "web"})
    command = jsonpatch.apply_patch(
        {"metadata": {"name": "p", "labels": {"tier": "web"}},
         "spec": {"containers": [{"name": "c", "image": "web:1", "command": ["/web"]}]}},
        decision.patch,
    )["spec"]["containers"][0]["command"]
    assert command[command.index("--hwcap") + 1] == f"{common.hwcap[0]:#x}"
    assert command[command.index("--hwcap2") + 1] == f"{common.hwcap[1]:#x}"
    assert "--on-failure=fail" in command
    assert admit("shop-web", {"team": "shop"}, {"tier": "db"}).patch == []
    assert admit("shop-batch", {"team": "shop"}, {"tier": "web"}).patch == []
    assert admit("other", {"team": "other"}, {"tier": "web"}).patch == []
