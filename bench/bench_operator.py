"""The real operator against the dev cluster's real apiserver, at 500 / 1,000 / 2,000 / 5,000 nodes.

What runs is what a user runs: ``hwcap-operator run --standalone`` (a subprocess, so its RSS is honest) on
a fresh etcd + kube-apiserver (``hwcap_dev.devcluster``) holding Node objects made from the real CPU dumps
in ``tests/data/profiles`` (arm64 generations and x86, NFD labels as NFD would publish them) and one
MigrationDomain per 50 nodes. Measured per size: time to first full convergence (every domain Ready with
its 50 members, seen through a watch on the domains) and peak RSS. At the top size also: latency from one
node-label change to the affected domain's status (a watch, >= 100 samples), a full resync (operator
restarted on a converged cluster until every domain was evaluated), and API requests per node change
(``apiserver_request_total`` deltas from the apiserver's own /metrics).

The baseline of each run is the apiserver itself, measured the same way: how long creating the nodes took,
and the round trip of a status patch seen through the same watch. Nothing here is asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import random
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, config, watch

from bench.common import Figure, format_table, percentile, write_results
from hwcap_dev.devcluster.assets import resolve_binaries
from hwcap_dev.devcluster.processes import kill_group
from hwcap_dev.devcluster.runner import ControlPlane, Options
from hwcap_dev.devcluster.simulated_nodes import CpuProfile, load_profile, node_manifest, ready_status
from hwcap_operator import keys

REPO = Path(__file__).resolve().parents[1]
PROFILES = REPO / "tests" / "data" / "profiles"
CRD_FILE = REPO / "crds" / "hwcap.dev_migrationdomains.yaml"
ARM64 = ["arm64-aws-graviton2-neoverse-n1", "arm64-aws-graviton3-neoverse-v1", "arm64-aws-graviton4-neoverse-v2",
         "arm64-ampere-altra-neoverse-n1", "arm64-neoverse-n2-github-runner"]  # fmt: skip
X86 = ["x86_64-amd-zen2-rome-epyc7742", "x86_64-amd-zen3-milan-epyc7763-azure-vm",
       "x86_64-intel-cascadelake-platinum8260m", "x86_64-intel-icelake-sp-platinum8370c-azure-vm"]  # fmt: skip
PER_DOMAIN = 50
POOL = "bench.hwcap.dev/pool"
SIZES = (500, 1000, 2000, 5000)


# ---------------------------------------------------------------------------------- the cluster's objects
def domain_arch(d: int) -> str:
    """Every fifth domain is x86, the rest arm64 (each mixes the generations of its arch)."""
    return "amd64" if d % 5 == 4 else "arm64"


def node_bodies(count: int, profiles: dict[str, list[CpuProfile]]) -> list[dict[str, Any]]:
    """Nodes ``n0..``; node i is in pool ``p{i // 50}`` and has a profile of that pool's arch (round robin)."""
    bodies = []
    for i in range(count):
        d = i // PER_DOMAIN
        kind = profiles[domain_arch(d)]
        body = node_manifest(f"n{i}", kind[i % len(kind)], labels={POOL: f"p{d}"})
        status = ready_status()["status"]
        status["nodeInfo"] |= {"architecture": domain_arch(d), "kernelVersion": "6.8.0"}
        body["status"] = status  # kubelet registers nodes with their status in the create, as here
        bodies.append(body)
    return bodies


def domain_body(d: int) -> dict[str, Any]:
    return {"apiVersion": keys.API_VERSION, "kind": keys.KIND, "metadata": {"name": f"d{d}"},
            "spec": {"arch": domain_arch(d), "allowHidingSecurityFeatures": True,
                     "nodeSelector": {"matchLabels": {POOL: f"p{d}"}},
                     "workloads": {"namespaceSelector": {"matchLabels": {POOL: f"p{d}"}}}}}  # fmt: skip


def create_all(calls: list[Callable[[], object]], workers: int = 16) -> float:
    """Run API calls on a bounded thread pool; returns the wall time."""
    started = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        for future in [pool.submit(c) for c in calls]:
            future.result()
    return time.perf_counter() - started


# --------------------------------------------------------------------------------------- the domain watch
@dataclass
class DomainState:
    members: int = -1
    ready: bool = False
    seen: float = 0.0


@dataclass
class DomainWatch:
    """A watch on every MigrationDomain (one thread); waiters are woken on each event."""

    api: client.ApiClient
    states: dict[str, DomainState] = field(default_factory=dict)
    changed: threading.Condition = field(default_factory=threading.Condition)
    _stop: threading.Event = field(default_factory=threading.Event)
    _watch: watch.Watch | None = None

    def start(self) -> DomainWatch:
        threading.Thread(target=self._run, daemon=True).start()
        return self

    def _run(self) -> None:
        custom = client.CustomObjectsApi(self.api)
        while not self._stop.is_set():
            self._watch = watch.Watch()  # type: ignore[no-untyped-call]
            with contextlib.suppress(Exception):
                stream = self._watch.stream(  # type: ignore[no-untyped-call]
                    custom.list_cluster_custom_object, keys.GROUP, keys.VERSION, keys.PLURAL, timeout_seconds=300)
                for event in stream:
                    self._record(event["object"])

    def _record(self, obj: dict[str, Any]) -> None:
        now = time.perf_counter()
        status = obj.get("status") or {}
        ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
        state = DomainState(int((status.get("members") or {}).get("count", -1)), ready, now)
        with self.changed:
            self.states[obj["metadata"]["name"]] = state
            self.changed.notify_all()

    def wait(self, done: Callable[[dict[str, DomainState]], bool], timeout: float, key: str | None = None) -> float:
        """Block until ``done(states)``; returns when the event that made it true arrived (of domain ``key``)."""
        deadline = time.perf_counter() + timeout
        with self.changed:
            while not done(self.states):
                left = deadline - time.perf_counter()
                if left <= 0:
                    raise TimeoutError("the domains did not reach the awaited state in time")
                self.changed.wait(left)
            if key is not None:
                return self.states[key].seen
            return max((s.seen for s in self.states.values()), default=time.perf_counter())

    def stop(self) -> None:
        self._stop.set()
        if self._watch is not None:
            self._watch.stop()  # type: ignore[no-untyped-call]


def all_converged(domains: int) -> Callable[[dict[str, DomainState]], bool]:
    def done(states: dict[str, DomainState]) -> bool:
        return sum(1 for d in range(domains) if (s := states.get(f"d{d}")) and s.ready
                   and s.members == PER_DOMAIN) == domains  # fmt: skip

    return done


def members_are(domain: str, count: int) -> Callable[[dict[str, DomainState]], bool]:
    return lambda states: domain in states and states[domain].members == count


# ------------------------------------------------------------------------------------------ the operator
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Operator:
    """``hwcap-operator run --standalone`` as a subprocess (exactly the console script's code path)."""

    kubeconfig: Path
    log_path: Path
    metrics_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    #: Run under cProfile, writing the profile here when the operator stops (``--profile``).
    profile: Path | None = None

    def start(self) -> Operator:
        profiler = ["-m", "cProfile", "-o", str(self.profile)] if self.profile else []
        args = [sys.executable, *profiler, "-m", "hwcap_operator.cli.operator_main",
                "--kubeconfig", str(self.kubeconfig), "--log-format", "json", "run", "--standalone",
                "--namespace", "hwcap-system",
                "--init-image", "registry.local/hwcap-operator:bench", "--webhook-port", "0",
                "--metrics-host", "127.0.0.1", "--metrics-port", str(self.metrics_port),
                "--no-registry-lookup"]  # fmt: skip
        self.started = time.perf_counter()
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def peak_rss_mib(self) -> float:
        assert self.proc is not None
        text = Path(f"/proc/{self.proc.pid}/status").read_text()
        found = re.search(r"^VmHWM:\s+(\d+) kB", text, re.M)
        return int(found.group(1)) / 1024 if found else float("nan")

    def reconciles(self) -> float:
        """Sum of hwcap_reconcile_total (0 until the metrics endpoint answers)."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=2) as r:
                text = r.read().decode()
        except OSError:
            return 0.0
        return sum(float(m.group(1)) for m in re.finditer(r"^hwcap_reconcile_total\{[^}]*\} (\S+)$", text, re.M))

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        kill_group(self.proc.pid, timeout=20)  # SIGTERM first: kopf stops cleanly (and cProfile writes)
        self.proc.wait(timeout=10)


@contextlib.contextmanager
def running(op: Operator) -> Iterator[Operator]:
    op.start()
    try:
        yield op
    finally:
        op.stop()


# ---------------------------------------------------------------------------------- apiserver request count
OPERATOR_USER = "hwcap-bench-operator"


def audit_policy(path: Path) -> Path:
    """Log the operator's requests only (one line each, when the response completed)."""
    policy = {"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "omitStages": ["RequestReceived", "ResponseStarted"],
              "rules": [{"level": "Metadata", "users": [OPERATOR_USER]}, {"level": "None"}]}  # fmt: skip
    path.write_text(yaml.safe_dump(policy))
    return path


def audit_lines(path: Path) -> int:
    with path.open("rb") as f:
        return sum(1 for _ in f)


WRITES = frozenset({"create", "update", "patch", "delete"})


def last_write_after_quiet(path: Path, quiet_s: float = 3.0, timeout: float = 600.0) -> float:
    """Wait until the operator made no request for ``quiet_s``; returns when (perf_counter clock) its last
    write reached the apiserver. Convergence is statuses AND member labels: the labels come first in each
    reconcile, but retries and the echoes of our own writes can trail."""
    deadline = time.perf_counter() + timeout
    seen, still_since = audit_lines(path), time.perf_counter()
    while time.perf_counter() - still_since < quiet_s:
        if time.perf_counter() > deadline:
            raise TimeoutError("the operator kept writing")
        time.sleep(0.5)
        now = audit_lines(path)
        if now != seen:
            seen, still_since = now, time.perf_counter()
    last = 0.0
    with path.open() as f:
        for line in f:
            event = json.loads(line)
            if event["verb"] in WRITES:
                last = max(last, dt.datetime.fromisoformat(event["stageTimestamp"].replace("Z", "+00:00")).timestamp())
    return last - (time.time() - time.perf_counter())


def operator_requests(path: Path, skip: int) -> Counter[str]:
    """The operator's requests in the audit log after line ``skip``, by ``VERB resource[/subresource]``."""
    counts: Counter[str] = Counter()
    with path.open() as f:
        for n, line in enumerate(f):
            if n < skip:
                continue
            event = json.loads(line)
            ref = event.get("objectRef") or {}
            sub = f"/{ref['subresource']}" if ref.get("subresource") else ""
            counts[f"{event['verb']} {ref.get('resource', event.get('requestURI', '?'))}{sub}"] += 1
    return counts


# ---------------------------------------------------------------------------------------------- one size
@dataclass
class SizeResult:
    nodes: int
    domains: int
    create_s: float
    converge_s: float
    rss_mib: float
    extra: dict[str, Any] = field(default_factory=dict)


def control_plane(work: Path) -> ControlPlane:
    audit = [f"--audit-policy-file={audit_policy(work / 'audit-policy.yaml')}",
             f"--audit-log-path={work / 'audit.log'}", "--audit-log-format=json", "--audit-log-mode=blocking"]
    plane = ControlPlane(resolve_binaries(allow_build=False), Options(
        state_dir=work / "state", scheduler=False, apiserver_verbosity=0, extra_apiserver_args=audit))  # fmt: skip
    plane.start()
    return plane


def install_crd(api: client.ApiClient, path: Path) -> None:
    ext = client.ApiextensionsV1Api(api)
    crd = yaml.safe_load(path.read_text())
    ext.create_custom_resource_definition(crd)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        got = ext.read_custom_resource_definition(crd["metadata"]["name"])
        if got.status and any(c.type == "Established" and c.status == "True" for c in got.status.conditions or []):
            return
        time.sleep(0.1)
    raise RuntimeError("MigrationDomain CRD not Established within 60 s")


def run_size(nodes: int, profiles: dict[str, list[CpuProfile]], work: Path, *, top: bool, samples: int,
             crd: Path, profile: Path | None = None) -> SizeResult:  # fmt: skip
    domains = nodes // PER_DOMAIN
    plane = control_plane(work)
    api = config.new_client_from_config(config_file=str(plane.kubeconfig))  # type: ignore[no-untyped-call]
    api.configuration.connection_pool_maxsize = 16
    try:
        install_crd(api, crd)
        core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="hwcap-system")))
        bodies = node_bodies(nodes, profiles)
        create_s = create_all([partial(core.create_node, b, _preload_content=False)  # type: ignore[arg-type]
                               for b in bodies])  # fmt: skip
        create_all([partial(custom.create_cluster_custom_object, keys.GROUP, keys.VERSION, keys.PLURAL,
                            domain_body(d), _preload_content=False) for d in range(domains)])  # fmt: skip
        print(f"  {nodes} nodes created in {create_s:.1f} s ({nodes / create_s:.0f}/s), {domains} domains",
              flush=True)  # fmt: skip
        domain_watch = DomainWatch(api).start()
        # The operator has a user of its own (cluster admin) so the audit log tells its requests from ours.
        kubeconfig = plane.user_kubeconfig(OPERATOR_USER, ["system:masters"])
        op = Operator(kubeconfig, work / f"operator-{nodes}.log",
                      profile=profile and profile / f"operator-{nodes}.prof")  # fmt: skip
        with running(op):
            status_s = domain_watch.wait(all_converged(domains), timeout=900) - op.started
            converge_s = max(status_s, last_write_after_quiet(work / "audit.log") - op.started)
            print(f"  first convergence: {converge_s:.1f} s (statuses: {status_s:.1f} s)", flush=True)
            extra: dict[str, Any] = {"status_converged_s": status_s}
            if top:
                extra |= measure_changes(core, domain_watch, domains, samples, work / "audit.log")
            rss = op.peak_rss_mib()
        if top:
            extra["resync_s"], extra["resync_rss_mib"] = measure_resync(
                kubeconfig, work, domains, profile and profile / f"operator-resync-{nodes}.prof")
        domain_watch.stop()
        return SizeResult(nodes, domains, create_s, converge_s, rss, extra)
    finally:
        api.close()
        plane.stop()


def measure_changes(core: client.CoreV1Api, domain_watch: DomainWatch, domains: int, samples: int,
                    audit: Path) -> dict[str, Any]:  # fmt: skip
    """Move one node out of its domain's pool and back, ``samples`` times; latency to the domain's status."""
    rng = random.Random(12)
    latencies: list[float] = []
    skip = audit_lines(audit)
    for k in range(samples):
        d = rng.randrange(domains)
        node = f"n{d * PER_DOMAIN + rng.randrange(PER_DOMAIN)}"
        for pool, expect in (("elsewhere", PER_DOMAIN - 1), (f"p{d}", PER_DOMAIN)):
            sent = time.perf_counter()
            core.patch_node(node, {"metadata": {"labels": {POOL: pool}}}, _preload_content=False)
            seen = domain_watch.wait(members_are(f"d{d}", expect), timeout=30, key=f"d{d}")
            latencies.append(seen - sent)
        if k % 25 == 24:
            print(f"  {len(latencies)} label changes measured", flush=True)
    time.sleep(2.0)  # let trailing writes (Events) land before counting
    changes = len(latencies)
    requests = {k: v / changes for k, v in sorted(operator_requests(audit, skip).items())}
    return {"latencies_s": latencies, "requests_per_change": requests}


def measure_resync(kubeconfig: Path, work: Path, domains: int, profile: Path | None = None) -> tuple[float, float]:
    """Restart the operator on the converged cluster: time until every domain was evaluated once."""
    op = Operator(kubeconfig, work / "operator-resync.log", profile=profile)
    with running(op):
        deadline = time.perf_counter() + 300
        while op.reconciles() < domains:
            if time.perf_counter() > deadline:
                raise TimeoutError("the resync did not evaluate every domain within 300 s")
            time.sleep(0.05)
        return time.perf_counter() - op.started, op.peak_rss_mib()


def import_cost() -> tuple[float, float]:
    """The operator's fixed start cost (interpreter + imports): seconds and peak RSS (MiB), the baselines of
    the start-up and memory figures."""
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", "import hwcap_operator.kube.operator"])
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise RuntimeError("importing the operator failed")
    return time.perf_counter() - started, usage.ru_maxrss / 1024


# ---------------------------------------------------------------------------------------------- reporting
def figures(results: list[SizeResult], start_s: float, start_rss: float) -> list[Figure]:
    out = [Figure("operator start (python + imports)", start_s, "s"),
           Figure("operator RSS after imports (no cluster)", start_rss, "MiB")]
    for r in results:
        out.append(Figure(f"first convergence, {r.nodes} nodes / {r.domains} domains", r.converge_s, "s",
                          baseline=r.create_s, baseline_name=f"creating the {r.nodes} nodes"))  # fmt: skip
        out.append(Figure(f"operator peak RSS, {r.nodes} nodes", r.rss_mib, "MiB", baseline=start_rss,
                          baseline_name="RSS after imports",
                          target="< 150 MiB" if r.nodes == max(SIZES) else "",
                          met=(r.rss_mib < 150) if r.nodes == max(SIZES) else None))  # fmt: skip
    top = results[-1]
    if "latencies_s" in top.extra:
        lat = [x * 1000 for x in top.extra["latencies_s"]]
        out += [
            Figure(f"label change -> domain status p50 ({len(lat)} samples)", percentile(lat, 50), "ms"),
            Figure("label change -> domain status p99", percentile(lat, 99), "ms", target="< 250 ms",
                   met=percentile(lat, 99) < 250),
            Figure("label change -> domain status max", max(lat), "ms"),
            Figure(f"full resync (restart, {top.domains} domains evaluated)", top.extra["resync_s"], "s",
                   baseline=start_s, baseline_name="operator start", target="< 5 s",
                   met=top.extra["resync_s"] < 5),
        ]  # fmt: skip
        requests = top.extra["requests_per_change"]
        out.append(Figure("API requests per node change (operator)", sum(requests.values()), "req",
                          target="<= 2 (status + one label)", met=sum(requests.values()) <= 2.05))  # fmt: skip
    return out


def plot(results: list[SizeResult], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    xs = [r.nodes for r in results]
    ax.plot(xs, [r.converge_s for r in results], "o-", label="operator: first convergence")
    ax.plot(xs, [r.create_s for r in results], "s--", label="baseline: creating the nodes")
    ax.set_xlabel("nodes (domains of 50)")
    ax.set_ylabel("seconds")
    ax.set_title("Convergence vs cluster size (real apiserver)")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")], default=list(SIZES))
    parser.add_argument("--samples", type=int, default=60, help="node moves (each is 2 label changes)")
    parser.add_argument("--plot", type=Path, default=REPO / "docs" / "img" / "operator-convergence.png")
    parser.add_argument("--crd", type=Path, default=CRD_FILE, help="the MigrationDomain CRD to install")
    parser.add_argument("--profile", type=Path, help="run the operator under cProfile, profiles into this directory")
    parser.add_argument("--work", type=Path, help="keep logs and audit logs here (default: a temporary directory)")
    parser.add_argument("--no-results", action="store_true", help="do not write bench/results/<date>.json")
    args = parser.parse_args()
    profiles = {"arm64": [load_profile(PROFILES / f"{p}.txt") for p in ARM64],
                "amd64": [load_profile(PROFILES / f"{p}.txt") for p in X86]}  # fmt: skip
    start_s, start_rss = import_cost()
    results = []
    with tempfile.TemporaryDirectory(prefix="hwcap-bench-") as tmp:
        for nodes in args.sizes:
            print(f"== {nodes} nodes", flush=True)
            work = (args.work or Path(tmp)) / str(nodes)
            work.mkdir(parents=True)
            results.append(run_size(nodes, profiles, work, top=nodes == max(args.sizes), samples=args.samples,
                                    crd=args.crd, profile=args.profile))
    table = figures(results, start_s, start_rss)
    print(format_table(table))
    extra = {"sizes": [vars(r) | {"extra": {k: v for k, v in r.extra.items() if k != "latencies_s"}}
                       for r in results]}  # fmt: skip
    if "requests_per_change" in results[-1].extra:
        print("API requests per node change:", results[-1].extra["requests_per_change"])
    if not args.no_results:
        print("results:", write_results("operator", table, extra))
        plot(results, args.plot)
        print("plot:", args.plot)


if __name__ == "__main__":
    main()
