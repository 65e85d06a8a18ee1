"""Bad, huge and stalled requests against the real webhook process, counted, with its memory (issue 11.4).

The server is ``tests/support/webhook_server.py --app webhook`` (the product's app, decider and server settings
over TLS on 127.0.0.1) in its own process, so its RSS is its own. Classes, each with trials and losses:

- malformed reviews (every class of tests/unit/test_webhook_hardening.py, repeated): a loss is a 5xx or a
  dropped connection;
- heavy pods: four reviews of a 4,000-container pod at once, three times, while normal reviews arrive at
  100 req/s open loop (bench/openloop): a loss is a normal review slower than 5 s (the chart's timeout) or
  failed, or a heavy review answered with anything but a mutation or HTTP 429;
- idle, half-header and half-body TLS connections (500 opened): a loss is one still open 15 s later;
- a body over the limit: a loss is anything but 413.

Prints and writes rows ``{class, trials, losses, notes}`` (the shape docs/reliability.md is generated from)
to ``--out`` (default tests/reliability/results/webhook.json), with the server's RSS before and its peak.
"""

from __future__ import annotations

import argparse
import http.client
import json
import socket
import ssl
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench_webhook import REPO, build_openloop, open_loop, server
from tests.support.webhook_server import Tls, pod, review

OUT = REPO / "tests" / "reliability" / "results" / "webhook.json"
MALFORMED: list[tuple[str, bytes, str]] = [
    ("request null", json.dumps({**review(pod()), "request": None}).encode(), "application/json"),
    ("request a string", json.dumps({**review(pod()), "request": "pod"}).encode(), "application/json"),
    ("request a list", json.dumps({**review(pod()), "request": [1]}).encode(), "application/json"),
    ("request a number", json.dumps({**review(pod()), "request": 4.2}).encode(), "application/json"),
    ("no uid", json.dumps(review(pod(), uid="")).encode(), "application/json"),
    ("JSON nested 100,000 deep", b"[" * 100_000 + b"]" * 100_000, "application/json"),
    ("charset=bogus", json.dumps(review(pod())).encode(), "application/json; charset=bogus"),
    ("not JSON", b"\xff\xfe not json", "application/json"),
    ("apiVersion v1beta1", json.dumps({**review(pod()), "apiVersion": "admission.k8s.io/v1beta1"}).encode(),
     "application/json"),
    ("object a Deployment", json.dumps(review({"apiVersion": "apps/v1", "kind": "Deployment"})).encode(),
     "application/json"),
    ("object a string", json.dumps(review("pod")).encode(), "application/json"),
    ("containers a string", json.dumps(review({**pod(), "spec": {"containers": "x"}})).encode(), "application/json"),
]  # fmt: skip


def rss_kib(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of ``pid`` in KiB: now and the peak so far."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


def post(port: int, tls: Tls, body: bytes, content_type: str = "application/json") -> tuple[int, bytes]:
    connection = http.client.HTTPSConnection("127.0.0.1", port, context=tls.client_context(), timeout=60)
    try:
        connection.request("POST", "/mutate-pods", body=body, headers={"Content-Type": content_type})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def row(name: str, trials: int, losses: int, notes: str) -> dict[str, Any]:
    print(f"{name}: {trials} trials, {losses} losses; {notes}", flush=True)
    return {"class": name, "trials": trials, "losses": losses, "notes": notes}


def malformed(port: int, tls: Tls, repeat: int) -> dict[str, Any]:
    answers: Counter[str] = Counter()
    for _ in range(repeat):
        for _name, body, content_type in MALFORMED:
            try:
                status, raw = post(port, tls, body, content_type)
            except OSError:
                answers["dropped"] += 1
                continue
            denied = status == 200 and json.loads(raw)["response"]["status"]["code"] == 400
            answers["HTTP 400" if status == 400 else "denial 400" if denied else f"HTTP {status}"] += 1
    losses = sum(n for k, n in answers.items() if k == "dropped" or k.startswith("HTTP 5"))
    return row(f"webhook: malformed AdmissionReview ({len(MALFORMED)} classes)", sum(answers.values()), losses,
               ", ".join(f"{k} {v}" for k, v in sorted(answers.items())))  # fmt: skip


def heavy(port: int, tls: Tls, ca: Path, binary: Path, directory: Path, pid: int) -> dict[str, Any]:
    normal = directory / "normal.json"
    normal.write_text(json.dumps(review(pod())))
    body = json.dumps(review(pod(containers=4000))).encode()
    results: dict[str, Any] = {}
    stream = threading.Thread(target=lambda: results.update(open_loop(binary, port, ca, normal, 100, 12)))
    stream.start()
    time.sleep(1.5)
    heavy_answers: Counter[str] = Counter()
    seconds: list[float] = []
    peak = 0

    def one() -> None:
        started = time.monotonic()
        status, raw = post(port, tls, body)
        seconds.append(time.monotonic() - started)
        mutated = status == 200 and json.loads(raw)["response"].get("patchType") == "JSONPatch"
        heavy_answers["mutated" if mutated else f"HTTP {status}"] += 1

    with ThreadPoolExecutor(4) as pool:
        for _ in range(3):
            list(pool.map(lambda _: one(), range(4)))
            peak = max(peak, rss_kib(pid)[1])
    stream.join()
    failed = sum(results["errors"].values())
    over = results["latency_ms"]["p100"] > 5000
    wrong = sum(n for k, n in heavy_answers.items() if k not in ("mutated", "HTTP 429"))
    return row("webhook: 4,000-container pods (4 at once, x3) during 100 req/s of normal reviews",
               results["sent"] + 12, failed + (1 if over else 0) + wrong,
               f"{len(body) / 1024:.0f} KiB each; heavy: {dict(heavy_answers)}, "
               f"{min(seconds):.2f}-{max(seconds):.2f} s; "
               f"normal: p50 {results['latency_ms']['p50']:.1f} ms, p99 {results['latency_ms']['p99']:.1f} ms, "
               f"max {results['latency_ms']['p100']:.0f} ms, errors {results['errors']}; server peak RSS "
               f"{peak / 1024:.0f} MiB")  # fmt: skip


def is_open(sock: ssl.SSLSocket) -> bool:
    """No EOF and no error on a non-blocking read: the server still holds the connection."""
    sock.setblocking(False)
    try:
        return sock.recv(1) != b""
    except ssl.SSLWantReadError:
        return True
    except (OSError, ssl.SSLError):
        return False


def stalled(port: int, tls: Tls, pid: int) -> dict[str, Any]:
    kinds: dict[str, Callable[[ssl.SSLSocket], Any]] = {
        "idle": lambda s: None,
        "half-header": lambda s: s.sendall(b"POST /mutate-pods HTTP/1.1\r\nHost: x\r\nContent-Ty"),
        "half-body": lambda s: s.sendall(b"POST /mutate-pods HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                         b"Content-Length: 5000\r\n\r\n{\"apiVersion\""),
    }  # fmt: skip
    opened: list[tuple[str, ssl.SSLSocket]] = []
    refused = 0
    for i in range(500):
        kind = list(kinds)[i % 3]
        try:
            raw = socket.create_connection(("127.0.0.1", port), timeout=10)
            sock = tls.client_context().wrap_socket(raw, server_hostname="localhost")
            kinds[kind](sock)
            opened.append((kind, sock))
        except (OSError, ssl.SSLError):
            refused += 1
    time.sleep(1)  # well before the 10 s timers: what is closed now was over the connection cap
    capped = sum(1 for _, sock in opened if not is_open(sock))
    rss_open = rss_kib(pid)[0]
    time.sleep(14)
    still: Counter[str] = Counter(kind for kind, sock in opened if is_open(sock))
    for _, sock in opened:
        sock.close()
    return row("webhook: idle, half-header and half-body TLS connections", 500, sum(still.values()),
               f"{len(opened)} opened ({refused} refused, {capped} closed at once over the cap), "
               f"still open after 15 s: {dict(still) or 0}; "
               f"server RSS with them open {rss_open / 1024:.0f} MiB, "
               f"after {rss_kib(pid)[0] / 1024:.0f} MiB")  # fmt: skip


def oversize(port: int, tls: Tls) -> dict[str, Any]:
    answers: Counter[int | str] = Counter()
    for _ in range(5):
        try:
            answers[post(port, tls, b" " * (7 * 1024 * 1024))[0]] += 1
        except OSError:
            answers["dropped"] += 1
    return row("webhook: body over the 6 MiB limit", 5, 5 - answers[413], f"answers {dict(answers)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=10, help="rounds of the malformed classes")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    binary = build_openloop()
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        tls = Tls.issue(directory)
        with server("webhook", directory, tls) as (port, pid):
            for _ in range(50):
                post(port, tls, json.dumps(review(pod())).encode())
            before = rss_kib(pid)[0]
            rows = [malformed(port, tls, args.repeat), oversize(port, tls),
                    heavy(port, tls, tls.ca_file, binary, directory, pid), stalled(port, tls, pid)]  # fmt: skip
            after, peak = rss_kib(pid)
    rows.append(row("webhook: server memory through all of the above", 1, 0,
                    f"RSS {before / 1024:.0f} MiB after warm-up, peak {peak / 1024:.0f} MiB, "
                    f"{after / 1024:.0f} MiB at the end (chart limit 512 Mi)"))  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=2) + "\n")
    print(f"rows: {args.out}")


if __name__ == "__main__":
    main()
