"""Pod-create latency through the real kube-apiserver, with and without our webhook registered (issue 12).

The dev cluster's own etcd + kube-apiserver (built from pinned Go modules into the cache); the webhook is
the product's app in its own process over TLS on 127.0.0.1 (``tests/support/webhook_server.py``: an
in-memory view of a Ready arm64 domain selecting namespace ``shop``), registered by a
MutatingWebhookConfiguration (``failurePolicy: Fail``, 5 s timeout) for that namespace only. Pods are
created one after the other with the Python client in interleaved rounds (no webhook, a minimal webhook,
ours; again ...), so a change in the machine's load hits all three alike; each pod created with ours
is checked to carry the mask. The minimal webhook (``--app minimal``: parse, allow with a one-op
patch) separates what any mutating webhook costs a pod creation from what ours adds. Goal: the ratio of the
medians (ours ÷ none) ≤ 1.2. Prints the table and adds ``pod_create`` to ``bench/results/<date>-webhook.json``.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime as dt
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from kubernetes import client, config
from tests.support.webhook_load import server
from tests.support.webhook_server import DOMAIN_NAMESPACE, MINIMAL_ANNOTATION, Tls, pod

from bench.bench_webhook import RESULTS, write_section
from hwcap_dev.devcluster.assets import resolve_binaries
from hwcap_dev.devcluster.runner import ControlPlane, Options
from hwcap_operator import keys

WEBHOOK_CONFIGURATION = "bench-hwcap-webhook"


OFF, MINIMAL, OURS = "without webhook", "with a minimal webhook", "with our webhook"
#: What each setting's pods carry: the annotation that shows which webhook (if any) the API server called.
MARKERS = {OFF: None, MINIMAL: MINIMAL_ANNOTATION, OURS: keys.POD_MASK_ID_ANNOTATION}


def register(admission: Any, port: int, ca_pem: bytes) -> None:
    admission.create_mutating_webhook_configuration({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": WEBHOOK_CONFIGURATION},
        "webhooks": [{
            "name": "arm64-general.pods.hwcap.dev", "admissionReviewVersions": ["v1"], "sideEffects": "None",
            "failurePolicy": "Fail", "timeoutSeconds": 5, "reinvocationPolicy": "IfNeeded",
            "clientConfig": {"url": f"https://127.0.0.1:{port}/mutate-pods",
                             "caBundle": base64.b64encode(ca_pem).decode()},
            "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"]}],
            "namespaceSelector": {"matchLabels": {"pool": "arm64"}},
        }],
    })  # fmt: skip


def create(core: Any, name: str) -> tuple[float, dict[str, Any]]:
    body = pod(name=name)
    started = time.perf_counter()
    # Raw answer: the Python client's model classes would add milliseconds per (larger, mutated) pod.
    response = core.create_namespaced_pod(DOMAIN_NAMESPACE, body, _preload_content=False)
    raw = response.data
    elapsed = time.perf_counter() - started
    return elapsed, dict(json.loads(raw)["metadata"].get("annotations") or {})


def marker_of(annotations: dict[str, Any]) -> str | None:
    return next((m for m in (MINIMAL_ANNOTATION, keys.POD_MASK_ID_ANNOTATION) if m in annotations), None)


def switch_webhook(core: Any, admission: Any, port: int | None, marker: str | None, ca_pem: bytes) -> None:
    """Register the configuration for ``port`` (None: none), then probe until pods show ``marker``: the API
    server picks configuration changes up asynchronously."""
    with contextlib.suppress(client.ApiException):  # absent in the first round
        admission.delete_mutating_webhook_configuration(WEBHOOK_CONFIGURATION)
    if port is not None:
        register(admission, port, ca_pem)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        _, annotations = create(core, "probe")
        if marker_of(annotations) == marker:
            return
        time.sleep(0.2)
    raise RuntimeError(f"pods do not show {marker or 'no webhook'} after 30 s")


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pods", type=int, default=100, help="pods per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per setting (off and on alternate)")
    parser.add_argument("--no-docs", action="store_true", help="write the results JSON only")
    args = parser.parse_args()
    samples: dict[str, list[float]] = {OFF: [], MINIMAL: [], OURS: []}
    load = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        tls = Tls.issue(directory)
        ca_pem = tls.ca_file.read_bytes()
        options = Options(state_dir=directory / "state", scheduler=False)
        plane = ControlPlane(resolve_binaries(allow_build=True), options)
        plane.start()
        try:
            api = config.new_client_from_config(config_file=str(plane.kubeconfig))  # type: ignore[no-untyped-call]
            core: Any = client.CoreV1Api(api)
            admission: Any = client.AdmissionregistrationV1Api(api)
            core.create_namespace({"metadata": {"name": DOMAIN_NAMESPACE, "labels": {"pool": "arm64"}}})
            with server("webhook", directory, tls) as (port, _), server("minimal", directory, tls) as (minimal_port, _):
                ports = {OFF: None, MINIMAL: minimal_port, OURS: port}
                for round_ in range(args.rounds):
                    for setting in samples:
                        switch_webhook(core, admission, ports[setting], MARKERS[setting], ca_pem)
                        for i in range(args.pods):
                            elapsed, annotations = create(core, f"r{round_}-{len(samples[setting])}-{i}")
                            if marker_of(annotations) != MARKERS[setting]:
                                raise RuntimeError(f"pod created {setting} has the wrong annotations: {annotations}")
                            samples[setting].append(elapsed)
                        median = statistics.median(samples[setting][-args.pods:]) * 1000
                        print(f"round {round_ + 1} {setting}: {args.pods} pods, median {median:.1f} ms", flush=True)
        finally:
            plane.stop()
    rows = {setting: {"pods": len(s), "p50_ms": percentile(s, 50) * 1000, "p90_ms": percentile(s, 90) * 1000,
                      "p99_ms": percentile(s, 99) * 1000} for setting, s in samples.items()}  # fmt: skip
    ratio = rows[OURS]["p50_ms"] / rows[OFF]["p50_ms"]
    allow_ratio = rows[MINIMAL]["p50_ms"] / rows[OFF]["p50_ms"]
    ours_over_allow = rows[OURS]["p50_ms"] / rows[MINIMAL]["p50_ms"]
    result = {"rows": rows, "ratio_p50": ratio, "goal": "<= 1.2", "met": ratio <= 1.2,
              "minimal_ratio_p50": allow_ratio, "ours_over_minimal_p50": ours_over_allow}  # fmt: skip
    lines = ["| pod create (sequential, real kube-apiserver) | pods | p50 ms | p90 ms | p99 ms |",
             "|---|---|---|---|---|"]
    lines += [f"| {setting} | {r['pods']} | {r['p50_ms']:.1f} | {r['p90_ms']:.1f} | {r['p99_ms']:.1f} |"
              for setting, r in rows.items()]  # fmt: skip
    lines.append(f"\nRatio of the medians, ours ÷ none: {ratio:.2f} (goal ≤ 1.2): "
                 f"{'met' if ratio <= 1.2 else '**not met**'}. A minimal webhook (parse the review, allow it with a "
                 f"one-op patch) costs {allow_ratio:.2f} × none by itself (the API server's call: the review's "
                 f"encoding, the TLS round trip, the patch applied and the pod validated again); ours ÷ that: "
                 f"{ours_over_allow:.2f}. Load average before the run "
                 f"{' '.join(f'{v:.2f}' for v in load)}.")  # fmt: skip
    print("\n".join(lines))
    if not args.no_docs:
        write_section("pod-create", "\n".join(lines))
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{dt.date.today().isoformat()}-webhook.json"
    merged = json.loads(out.read_text()) if out.exists() else {}
    merged["pod_create"] = result
    out.write_text(json.dumps(merged, indent=2) + "\n")
    print(f"results: {out}")


if __name__ == "__main__":
    main()
