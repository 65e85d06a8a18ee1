"""``make demo`` end to end: ``python -m hwcap_dev.demo up`` in its own state directory (own control plane on
its own free ports, so it never touches the session's), then what a user sees checked against the cluster, then
``down`` and no process left.

Expected values are derived here, independently of the demo's printout: the mask from the member nodes' NFD
labels (and those from the dump text), the agent's report from this machine's own auxv and ``hwcap-exec --probe``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hwcap_dev import paths
from hwcap_dev.devcluster.assets import Binaries
from hwcap_dev.devcluster.testing import ToolRunner
from hwcap_operator import keys
from hwcap_operator.agent.report import format_words
from hwcap_operator.auxv import parse_auxv
from tests.support.processes import alive as process_alive
from tests.support.processes import (
    processes_mentioning as _processes_mentioning,  # the demo's state dir is in every one it starts
)
from tests.support.profiles import raw_feature_words

REPO = paths.REPO_ROOT
SHIM = paths.SHIM_SOURCE_DIR / "build" / "hwcap-exec"  # the binary the demo's agent probes with, when built
DOMAIN = "arm64-general"
POOL = "example.com/pool"
NFD = keys.NFD_CPUID_LABEL_PREFIX


@dataclass
class DemoRun:
    up: subprocess.CompletedProcess[str]
    state_dir: Path
    kubectl: ToolRunner
    pids: list[int]


def _demo(state_dir: Path, *command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hwcap_dev.demo", "--state-dir", str(state_dir), *command],
                          cwd=REPO, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=1200,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"}, check=False)  # fmt: skip


def _recorded_pids(state_dir: Path) -> list[int]:
    pids = []
    for path in (state_dir / "demo.json", state_dir / "cluster" / "state.json"):
        with contextlib.suppress(OSError, ValueError):
            pids += [int(p["pid"]) for p in json.loads(path.read_text())["processes"]]
    return pids


@pytest.fixture(scope="module")
def demo(devcluster_binaries: Binaries, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoRun]:
    state_dir = tmp_path_factory.mktemp("demo") / "state"
    up = _demo(state_dir, "up")
    run = DemoRun(up, state_dir, ToolRunner(devcluster_binaries.kubectl, state_dir / "cluster" / "kubeconfig"),
                  _recorded_pids(state_dir))  # fmt: skip
    print(up.stdout)  # shown by pytest on failure: the demo's own account of what it did
    try:
        yield run
    finally:
        _demo(state_dir, "down")


def get(run: DemoRun, *args: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(run.kubectl("get", *args, "-o", "json").stdout)
    return data


def nfd_features(node: dict[str, Any]) -> set[str]:
    labels = node["metadata"]["labels"]
    return {k.removeprefix(NFD).lower() for k, v in labels.items() if k.startswith(NFD) and v == "true"}


def dump_features(profile: str) -> set[str]:
    """The feature tokens of a dump's ``Features`` (cpuinfo) or ``Flags`` (lscpu) line."""
    return raw_feature_words(f"{profile}.txt")


def test_up_succeeds_and_prints_how_to_use_and_stop_it(demo: DemoRun) -> None:
    assert demo.up.returncode == 0, f"demo up failed:\n{demo.up.stdout}\n{demo.up.stderr}"
    kubeconfig = demo.state_dir / "cluster" / "kubeconfig"
    assert f"export KUBECONFIG={kubeconfig}" in demo.up.stdout
    assert "make demo-down" in demo.up.stdout
    assert "$ kubectl get migrationdomains" in demo.up.stdout and "$ hwcapctl get domains" in demo.up.stdout
    # a second `up` finds it running and changes nothing
    again = _demo(demo.state_dir, "up")
    assert again.returncode == 0 and "already running" in again.stdout
    assert _recorded_pids(demo.state_dir) == demo.pids


def test_the_domain_is_ready_with_the_common_mask_of_its_first_members(demo: DemoRun) -> None:
    domain = get(demo, "migrationdomain", DOMAIN)
    status = domain["status"]
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True", ready
    pool = [n for n in get(demo, "nodes", "-l", f"{POOL}=general,kubernetes.io/arch=arm64")["items"]]
    excluded = {e["name"]: e for e in status["excluded"]["nodes"]}
    members = [n for n in pool if n["metadata"]["name"] not in excluded]
    assert sorted(status["members"]["names"]) == sorted(n["metadata"]["name"] for n in members)
    assert len(members) >= 3 and len(excluded) == 1
    # the members differ, so the mask stops advertising HWCAP_CPUID too (docs/kernel.md#hwcap-cpuid)
    expected = set.intersection(*(nfd_features(n) for n in members)) - {"cpuid"}
    assert set(status["mask"]["features"]) == expected
    profiles = [n["metadata"]["labels"][keys.DEVCLUSTER_PROFILE_LABEL] for n in members]
    assert expected <= set.intersection(*(dump_features(p) for p in profiles))
    # the later, weaker node is excluded, naming exactly what it lacks; the frozen mask did not follow it
    [(late_name, late)] = excluded.items()
    late_node = next(n for n in pool if n["metadata"]["name"] == late_name)
    assert late["reason"] == "MissingMaskFeatures"
    assert set(late["missingFeatures"]) == expected - nfd_features(late_node) != set()
    for node in members:
        assert node["metadata"]["labels"].get(f"{keys.DOMAIN_MEMBER_LABEL_PREFIX}{DOMAIN}") == "true"
    assert f"{keys.DOMAIN_MEMBER_LABEL_PREFIX}{DOMAIN}" not in late_node["metadata"]["labels"]
    # the demo showed the mask id and the dropped features the cluster holds
    assert status["mask"]["id"] in demo.up.stdout
    dropped = set.union(*(nfd_features(n) for n in members)) - expected
    assert set(status["droppedFeatures"]) == dropped and "sve2" in dropped  # Graviton3 has no SVE2
    assert ",".join(status["droppedFeatures"]) in demo.up.stdout


def test_the_sample_pod_was_injected_and_scheduled_on_a_member(demo: DemoRun) -> None:
    pod = get(demo, "pod", "-n", "demo-apps", "sample")
    domain = get(demo, "migrationdomain", DOMAIN)["status"]
    annotations = pod["metadata"]["annotations"]
    assert annotations[keys.POD_DOMAIN_ANNOTATION] == DOMAIN
    assert annotations[keys.POD_MASK_ID_ANNOTATION] == domain["mask"]["id"]
    [init] = pod["spec"]["initContainers"]
    assert init["name"] == "hwcap-install"
    [app] = pod["spec"]["containers"]
    # the original entrypoint survives behind the wrapper: `hwcap-exec <mask> -- python3 -c <args>`
    assert "hwcap-exec" in app["command"][0] and "--" in app["command"]
    tail = app["command"][app["command"].index("--") + 1:]
    assert tail[:2] == ["python3", "-c"] or (tail[:1] == ["python3"] and app["args"][:1] == ["-c"])
    env = {e["name"]: e.get("value") for e in app["env"]}
    assert env[keys.ENV_DOMAIN] == DOMAIN and env[keys.ENV_MASK_ID] == domain["mask"]["id"]
    assert pod["spec"]["nodeName"] in domain["members"]["names"]
    assert f"scheduled on: {pod['spec']['nodeName']}" in demo.up.stdout


def test_the_migration_check_and_what_if_say_what_the_cluster_implies(demo: DemoRun) -> None:
    pod = get(demo, "pod", "-n", "demo-apps", "sample")
    status = get(demo, "migrationdomain", DOMAIN)["status"]
    others = [n for n in status["members"]["names"] if n != pod["spec"]["nodeName"]]
    late = status["excluded"]["nodes"][0]["name"]
    out = demo.up.stdout
    moved = re.search(r"^\s+OK: demo-apps/sample may move to (\S+)$", out, re.MULTILINE)
    assert moved is not None and moved.group(1) in others, out
    lacking = re.search(rf"NOT OK: node {late} lacks (.*)", out)
    assert lacking is not None, out
    assert set(lacking.group(1).split()) == set(status["excluded"]["nodes"][0]["missingFeatures"])
    # what-if of a Graviton2 (Neoverse N1, like the excluded node): it would be excluded, not lower the mask
    assert re.search(r"\$ hwcapctl what-if .*graviton2.*\n\s+excluded", out), out


def test_the_x86_dry_run_shows_the_fallbacks_for_cpuid_only_features(demo: DemoRun) -> None:
    status = get(demo, "migrationdomain", "x86-v3")["status"]
    # AVX-512 is not part of x86-64-v3 and lives in CPUID leaf 7, which no HWCAP word carries
    assert "avx512f" in status["fallbackOnlyFeatures"] and "avx512f" not in status["mask"]["features"]
    env = dict(re.findall(r"^\s+(GLIBC_TUNABLES|GODEBUG|OPENSSL_ia32cap)=(\S+)", demo.up.stdout, re.MULTILINE))
    assert set(env) == {"GLIBC_TUNABLES", "GODEBUG", "OPENSSL_ia32cap"}, env
    assert env["GLIBC_TUNABLES"].startswith("glibc.cpu.hwcaps=") and "-AVX512F" in env["GLIBC_TUNABLES"]
    # OpenSSL's syntax "[~]WORD0[:[~]WORD1]": AVX-512 lives in the second word, so only ":~0x..." is needed
    # (what these bits do to a real openssl is proven in tests/runtimes).
    assert "cpu.avx512f=off" in env["GODEBUG"]
    assert re.fullmatch(r"(~0x[0-9a-f]+)?:~0x[0-9a-f]+", env["OPENSSL_ia32cap"]), env["OPENSSL_ia32cap"]


def test_the_agent_reported_this_machine(demo: DemoRun) -> None:
    node = next(n for n in get(demo, "nodes")["items"] if n["metadata"]["name"].startswith("demo-local-"))
    annotations = node["metadata"]["annotations"]
    own = parse_auxv(Path("/proc/self/auxv").read_bytes(), source="/proc/self/auxv")
    assert annotations[keys.AGENT_HWCAP_ANNOTATION] == format_words(own.hwcap)
    assert annotations[keys.AGENT_KERNEL_RELEASE_ANNOTATION] == os.uname().release
    probe = subprocess.run([str(SHIM), "--probe"], capture_output=True, check=False) if SHIM.is_file() else None
    expected = "unknown" if probe is None else {0: "supported", 3: "unsupported"}.get(probe.returncode, "unknown")
    assert annotations[keys.AGENT_INHERITANCE_ANNOTATION] == expected


def test_the_real_node_ran_the_sample_pod_and_its_logs_show_the_runtimes_view(demo: DemoRun) -> None:
    """As root the demo runs a wrapped pod on a real node (kubelet + CRI-O + runc on this machine)."""
    out = demo.up.stdout
    if os.geteuid() != 0:
        assert "real node: skipped" in out
        return
    assert re.search(r"^\s+cpu-report\s+0/1\s+Completed\s.*demo-real-amd64-0", out, re.MULTILINE), out[-3000:]
    assert re.search(r"hwcap-exec applied the domain mask: AT_HWCAP\.\.AT_HWCAP4 = 0x[0-9a-f]+,", out)
    assert "hwcap-exec --probe: unsupported" in out  # this kernel has no inheritance (docs/kernel.md#selftest)
    assert re.search(r"^\s+x86-64-v4\s*$", out, re.MULTILINE)  # glibc: no longer "(supported, searched)"
    assert "AVX512F off" in out  # Go, under the GODEBUG fallback of the x86-64-v3 domain
    assert re.search(r"CPUINFO: OPENSSL_ia32cap=\S+ env:", out)  # OpenSSL took the vector from the env


def test_the_demo_migrated_the_running_counter_between_the_real_nodes_and_showed_a_refusal(demo: DemoRun) -> None:
    """As root: the counter pod moved from the first real CRI-O node to the second by checkpoint/restore (one
    token, consecutive counts: restored, not restarted) with AT_HWCAP = this CPU's word AND the domain's mask;
    the move towards the Zen 2 node outside the pool was refused with the features it lacks."""
    if os.geteuid() != 0:  # without root there are no real nodes and the demo says so (no migration either)
        assert "real node: skipped" in demo.up.stdout
        return
    restored = get(demo, "pod", "-n", "demo-migrate", "counter-m")
    assert restored["spec"]["nodeName"] == "demo-real-amd64-1" and restored["status"]["phase"] == "Running"
    assert restored["metadata"]["annotations"]["hwcap.dev/migrated-from"] == "demo-real-amd64-0/counter"
    source = demo.kubectl("get", "pod", "-n", "demo-migrate", "counter", "--ignore-not-found", "-o", "json").stdout
    assert not source.strip() or json.loads(source)["metadata"].get("deletionTimestamp")  # deleted (or going)
    log = demo.kubectl("exec", "-n", "demo-migrate", "counter-m", "--", "cat", "/tmp/count.log").stdout.split("\n")
    rows = [line.split() for line in log if line.strip()]
    assert len({token for token, _, _ in rows}) == 1
    assert [int(count) for _, count, _ in rows] == list(range(1, len(rows) + 1))
    mask = int(get(demo, "migrationdomain", "x86-v3")["status"]["mask"]["hwcap"], 16)
    own = parse_auxv(Path("/proc/self/auxv").read_bytes()).hwcap[0]
    assert {int(word, 16) for _, _, word in rows} == {own & mask}
    out = demo.up.stdout
    assert "[5/6] delete-source: demo-migrate/counter on demo-real-amd64-0" in out
    assert "[6/6] clean-up: removing the checkpoint archives and images" in out and "clean-up: left" not in out
    refused = re.search(r"REFUSED \(nothing was touched\): node demo-zen2 is not a member of domain x86-v3 .*; "
                        r"node demo-zen2 lacks (.*)$", out, re.MULTILINE)  # fmt: skip
    assert refused, out[-3000:]
    lacks = set(refused.group(1).split())
    mask_features = set(get(demo, "migrationdomain", "x86-v3")["status"]["mask"]["features"])
    assert lacks and lacks <= mask_features and not lacks & raw_feature_words("x86_64-amd-zen2-rome-epyc7742.txt")


def test_down_stops_every_process(demo: DemoRun) -> None:
    assert demo.pids, "the demo recorded no processes"
    down = _demo(demo.state_dir, "down")
    assert down.returncode == 0 and "stopped:" in down.stdout
    alive = [pid for pid in demo.pids if process_alive(pid)]
    assert not alive, f"still running after down: {alive}"
    assert not _processes_mentioning(str(demo.state_dir))
    assert _demo(demo.state_dir, "status").returncode == 1
