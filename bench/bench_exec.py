"""Two costs on the pod's side of the mask: ``hwcap-exec`` per exec, and the exec-model check of a large domain.

1. ``hwcap-exec --hwcap MASK -- /bin/true`` against a plain ``/bin/true`` (the baseline, same run), spawned
   alternately 1,000 times each with ``posix_spawn`` + ``waitpid`` (no shell, no Python subprocess machinery
   in the timed path); the overhead is the difference of the medians. Goal: < 1 ms.
2. The exec-model validation the operator runs when it publishes a mask, on one domain of 5,000 arm64 nodes
   of five generations (it validates one representative per distinct feature set). Goal: < 100 ms. Its
   baseline is evaluating the same domain without the exec model.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from bench.common import Figure, format_table, median_seconds, percentile, write_results
from hwcap_dev.devcluster.simulated_nodes import load_profile, node_manifest
from hwcap_operator import keys
from hwcap_operator.domain.mask_checks import MaskValidator, _findings_for, exec_model_validator
from hwcap_operator.domain.policy import DomainState, _representatives, evaluate, no_validation
from hwcap_operator.kube.view import ClusterView

REPO = Path(__file__).resolve().parents[1]
HWCAP_EXEC = REPO / "src" / "shim" / "build" / "hwcap-exec"
PROFILES = REPO / "tests" / "data" / "profiles"
ARM64 = ["arm64-aws-graviton2-neoverse-n1", "arm64-aws-graviton3-neoverse-v1", "arm64-aws-graviton4-neoverse-v2",
         "arm64-ampere-altra-neoverse-n1", "arm64-neoverse-n2-github-runner"]  # fmt: skip
TRUE = "/bin/true"


def spawn_seconds(argv: list[str]) -> float:
    """Wall time of one posix_spawn + waitpid of ``argv`` (which must exit 0)."""
    started = time.perf_counter()
    pid = os.posix_spawn(argv[0], argv, os.environ)
    _, status = os.waitpid(pid, 0)
    elapsed = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{argv} exited {os.waitstatus_to_exitcode(status)}")
    return elapsed


def exec_overhead(runs: int) -> tuple[list[float], list[float]]:
    """Alternate plain and wrapped runs so drift (other load on the machine) hits both alike."""
    wrapped_argv = [str(HWCAP_EXEC), "--hwcap", "0xffffffffffff0000", "--", TRUE]
    plain, wrapped = [], []
    for _ in range(20):  # warm the page cache and the dynamic loader's files
        spawn_seconds([TRUE])
        spawn_seconds(wrapped_argv)
    for _ in range(runs):
        plain.append(spawn_seconds([TRUE]))
        wrapped.append(spawn_seconds(wrapped_argv))
    return plain, wrapped


def big_domain(nodes: int) -> tuple[ClusterView, str]:
    view = ClusterView()
    view.upsert_domain({"apiVersion": keys.API_VERSION, "kind": keys.KIND,
                        "metadata": {"name": "big", "uid": "u", "generation": 1, "resourceVersion": "1"},
                        "spec": {"arch": "arm64", "allowHidingSecurityFeatures": True,
                                 "nodeSelector": {"matchLabels": {"pool": "big"}},
                                 "workloads": {"namespaceSelector": {"matchLabels": {"pool": "big"}}}}})  # fmt: skip
    profiles = [load_profile(PROFILES / f"{p}.txt") for p in ARM64]
    for n in range(nodes):
        body = node_manifest(f"n{n}", profiles[n % len(profiles)], labels={"pool": "big"})
        body["metadata"]["resourceVersion"] = "1"
        view.update_node(body)
    return view, "big"


def exec_model_figures(nodes: int) -> list[Figure]:
    """Evaluate one big domain with and without the exec model; the model's own cost measured cold (its
    per-(mask, node features) cache cleared before every run, as for a new mask)."""
    view, name = big_domain(nodes)
    spec = view.domains[name].spec
    assert spec is not None
    candidates = view.candidates(spec)

    def cold(validate: MaskValidator) -> DomainState:
        _findings_for.cache_clear()
        return evaluate(spec, candidates, None, 1, validate=validate)

    state = cold(exec_model_validator)
    mask = state.mask
    assert mask is not None, "the benchmark domain must get a mask"
    members = set(state.members)
    representatives = _representatives([n for n in candidates if n.name in members])
    plain = median_seconds(lambda: cold(no_validation)) * 1000
    full = median_seconds(lambda: cold(exec_model_validator)) * 1000

    def validate_cold() -> object:
        _findings_for.cache_clear()
        return exec_model_validator(mask, representatives)

    alone = median_seconds(validate_cold) * 1000
    return [
        Figure(f"evaluate a {nodes}-node domain, no exec model ({len(members)} members)", plain, "ms"),
        Figure(f"exec-model validation of the {nodes}-node domain ({len(representatives)} distinct feature sets), "
               "cold", alone, "ms", baseline=plain, baseline_name="evaluating the domain", target="< 100 ms",
               met=alone < 100),
        Figure(f"evaluate the {nodes}-node domain with exec-model validation, cold", full, "ms", baseline=plain,
               baseline_name="evaluating without the exec model"),
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--no-results", action="store_true")
    args = parser.parse_args()
    figures: list[Figure] = []
    if HWCAP_EXEC.exists():
        plain, wrapped = exec_overhead(args.runs)
        p50_plain, p50_wrapped = percentile(plain, 50) * 1000, percentile(wrapped, 50) * 1000
        overhead = p50_wrapped - p50_plain
        figures += [
            Figure(f"exec of {TRUE}, p50 of {args.runs}", p50_plain, "ms"),
            Figure(f"hwcap-exec --hwcap MASK -- {TRUE}, p50 of {args.runs}", p50_wrapped, "ms",
                   baseline=p50_plain, baseline_name="plain exec"),
            Figure("hwcap-exec overhead per exec (p50 difference)", overhead, "ms", target="< 1 ms", met=overhead < 1),
            Figure("hwcap-exec overhead per exec (p90 difference)",
                   (percentile(wrapped, 90) - percentile(plain, 90)) * 1000, "ms"),
        ]  # fmt: skip
    else:
        print(f"{HWCAP_EXEC} is not built (make shim): exec overhead skipped")
    figures += exec_model_figures(args.nodes)
    print(format_table(figures))
    if not args.no_results:
        print("results:", write_results("exec", figures))


if __name__ == "__main__":
    main()
