"""Scale benchmark: 5,000 nodes from real dumps, 100 domains (issue 4's design point).

Prints each measurement with its ratio to a baseline measured in the same run (a plain loop that ANDs
5,000 HWCAP words: the floor any aggregation has to pay), so the numbers compare across machines.
Run with ``make bench`` (or ``python -m bench.bench_scale``); nothing here is asserted: regressions show up
as ratios, not test failures.
"""

from __future__ import annotations

import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

from bench.common import Figure, format_table, median_seconds, write_results
from hwcap_dev.devcluster.simulated_nodes import load_profile, node_manifest
from hwcap_operator import keys
from hwcap_operator.domain.policy import evaluate
from hwcap_operator.kube.view import ClusterView

PROFILES = Path(__file__).resolve().parents[1] / "tests" / "data" / "profiles"
ARM64 = ["arm64-aws-graviton2-neoverse-n1", "arm64-aws-graviton3-neoverse-v1", "arm64-aws-graviton4-neoverse-v2",
         "arm64-ampere-altra-neoverse-n1", "arm64-neoverse-n2-github-runner"]  # fmt: skip
NODES, DOMAINS = 5000, 100


def node_bodies() -> list[dict[str, Any]]:
    profiles = [load_profile(PROFILES / f"{p}.txt") for p in ARM64]
    bodies = []
    for n in range(NODES):
        body = node_manifest(f"n{n}", profiles[n % len(profiles)], labels={"pool": f"p{n % DOMAINS}"})
        body["metadata"]["resourceVersion"] = "1"
        bodies.append(body)
    return bodies


def build_view(bodies: list[dict[str, Any]]) -> ClusterView:
    view = ClusterView()
    for d in range(DOMAINS):
        view.upsert_domain({
            "apiVersion": keys.API_VERSION, "kind": keys.KIND,
            "metadata": {"name": f"d{d}", "uid": f"u{d}", "generation": 1, "resourceVersion": "1"},
            "spec": {"arch": "arm64", "allowHidingSecurityFeatures": True,
                     "nodeSelector": {"matchLabels": {"pool": f"p{d}"}},
                     "workloads": {"namespaceSelector": {"matchLabels": {"pool": f"p{d}"}}}},
        })  # fmt: skip
    for body in bodies:
        view.update_node(body)
    return view


def main() -> None:
    words = [(0x10119FFF | (i & 0xFF) << 32) for i in range(NODES)]

    def baseline() -> int:
        acc = (1 << 64) - 1
        for w in words:
            acc &= w
        return acc

    base = median_seconds(baseline, 20)
    bodies = node_bodies()
    started = time.perf_counter()
    view = build_view(bodies)
    load_s = time.perf_counter() - started
    tracemalloc.start()
    build_view(bodies)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    spec = view.domains["d0"].spec
    assert spec is not None
    one_domain = median_seconds(lambda: evaluate(spec, view.candidates(spec), None, 1))
    records = [r for r in view.domains.values() if r.spec is not None]

    def resync() -> None:  # the periodic resync: every domain evaluated from the view (an idle one writes nothing)
        for record in records:
            assert record.spec is not None
            evaluate(record.spec, view.candidates(record.spec), None, 1)

    resync_s = median_seconds(resync, 3)
    heartbeat = bodies[7] | {"metadata": {**bodies[7]["metadata"], "resourceVersion": "2"}}
    beat = median_seconds(lambda: view.update_node(heartbeat), 50)
    pools = iter(range(10**6))

    def relabel_once() -> set[str]:  # a different pool every call: never a no-op
        labels = {**bodies[8]["metadata"]["labels"], "pool": f"p{next(pools) % DOMAINS}"}
        return view.update_node(bodies[8] | {"metadata": {**bodies[8]["metadata"], "labels": labels}})

    relabel = median_seconds(relabel_once, 50)

    rows = [
        ("baseline: AND of 5,000 words", base),
        (f"view: initial list of {NODES} nodes with {DOMAINS} domains", load_s),
        (f"evaluate one domain ({NODES // DOMAINS} candidates of {NODES} arm64 nodes)", one_domain),
        (f"periodic resync in memory: evaluate all {DOMAINS} domains", resync_s),
        ("node heartbeat (resourceVersion only): domains woken", beat),
        ("node relabelled into another domain's pool: domains woken", relabel),
    ]
    figures = [Figure(name, seconds * 1000, "ms", baseline=None if seconds is base else base * 1000,
                      baseline_name=rows[0][0]) for name, seconds in rows]  # fmt: skip
    figures.append(Figure("view: peak memory while listing", peak / 2**20, "MiB"))
    print(format_table(figures))
    if "--no-results" not in sys.argv:
        print("results:", write_results("view", figures))


if __name__ == "__main__":
    main()
