"""The webhook's bad, huge and stalled inputs, counted (issue 11.4), against the real webhook process.

The server is ``tests/support/webhook_server.py --app webhook`` — the product's app, decider and server
settings over TLS on 127.0.0.1, an in-memory view of a Ready arm64 domain — in its own process, so its RSS
is its own. Each class records trials and losses with ``hwcap_dev.reliability.record`` (docs/reliability.md);
``make reliability`` runs them at full scale, the regular suite with small counts:

- malformed reviews (the classes of tests/unit/test_webhook_hardening.py, repeated): a loss is a 5xx or a
  dropped connection; a body over the limit: a loss is anything but 413;
- request bodies fuzzed with hypothesis in five families (bytes, any JSON, one request field replaced, one
  pod field replaced at any depth the mutation reads, free-form pods): a loss is a 5xx, a crash or an
  answer that is not a well-formed AdmissionReview for the request's uid;
- 4,000-container pods four at once while normal reviews arrive at 100 req/s open loop (bench/openloop): a
  loss is a normal review failed or slower than 5 s (the chart's timeout), or a large pod answered with
  anything but a mutation or HTTP 429 (its lane is full);
- idle, half-header and half-body TLS connections: a loss is one still open 15 s later;
- and the server's memory through all of it (RSS after warm-up, peak), against the chart's 512 Mi limit.
"""

from __future__ import annotations

import copy
import http.client
import json
import socket
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hwcap_dev import reliability
from hwcap_operator import keys
from hwcap_operator.kube import http_server
from tests.support.webhook_load import build_openloop, open_loop, server
from tests.support.webhook_server import Tls, pod, review

AREA = "webhook"
FUZZ_CASES = reliability.scaled(full=1000, ci=100)
FUZZ_ANSWERS: Counter[str] = Counter()


class Webhook(NamedTuple):
    port: int
    pid: int
    tls: Tls
    directory: Path


@pytest.fixture(scope="module")
def webhook(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Webhook]:
    directory = tmp_path_factory.mktemp("webhook")
    tls = Tls.issue(directory)
    with server("webhook", directory, tls) as (port, pid):
        for _ in range(20):  # warm-up: imports, first decisions
            post(port, tls, json.dumps(review(pod())).encode())
        yield Webhook(port, pid, tls, directory)


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



# ---------------------------------------------------------------------------------- malformed and oversize


def test_malformed_reviews_get_400_or_a_denial_never_a_5xx(webhook: Webhook, results: Path) -> None:
    answers: Counter[str] = Counter()
    for _ in range(reliability.scaled(full=20, ci=1)):
        for _name, body, content_type in MALFORMED:
            try:
                status, raw = post(webhook.port, webhook.tls, body, content_type)
            except OSError:
                answers["dropped"] += 1
                continue
            denied = status == 200 and json.loads(raw)["response"]["status"]["code"] == 400
            answers["HTTP 400" if status == 400 else "denial 400" if denied else f"HTTP {status}"] += 1
    losses = {"HTTP 5xx": sum(n for k, n in answers.items() if k.startswith("HTTP 5")),
              "dropped connections": answers["dropped"]}  # fmt: skip
    reliability.record(f"malformed AdmissionReview ({len(MALFORMED)} classes: request null/string/list/number, "
                       "no uid, JSON nested 100,000 deep, charset=bogus, not JSON, v1beta1, object not a pod)",
                       AREA, sum(answers.values()), losses, ", ".join(f"{k} {v}" for k, v in sorted(answers.items())),
                       results)  # fmt: skip
    assert sum(losses.values()) == 0 and set(answers) <= {"HTTP 400", "denial 400"}, answers


def test_a_body_over_the_limit_gets_413(webhook: Webhook, results: Path) -> None:
    answers: Counter[int | str] = Counter()
    trials = reliability.scaled(full=10, ci=1)
    for _ in range(trials):
        try:
            answers[post(webhook.port, webhook.tls, b" " * (7 * 1024 * 1024))[0]] += 1
        except OSError:
            answers["dropped"] += 1
    reliability.record("body over the 6 MiB limit", AREA, trials, {"not 413": trials - answers[413]},
                       f"answers {dict(answers)}", results)  # fmt: skip
    assert answers[413] == trials, answers


# ---------------------------------------------------------------------------------- fuzz

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=16,
)
REQUEST_FIELDS = ["uid", "kind", "resource", "namespace", "operation", "object", "dryRun", "subResource", "name"]
POD_PATHS: list[tuple[Any, ...]] = [
    ("metadata",), ("metadata", "labels"), ("metadata", "annotations"), ("metadata", "ownerReferences"),
    ("metadata", "generateName"), ("spec",), ("spec", "containers"), ("spec", "containers", 0),
    ("spec", "containers", 0, "name"), ("spec", "containers", 0, "command"), ("spec", "containers", 0, "args"),
    ("spec", "containers", 0, "env"), ("spec", "containers", 0, "env", 0), ("spec", "containers", 0, "env", 0, "value"),
    ("spec", "containers", 0, "volumeMounts"), ("spec", "containers", 0, "envFrom"), ("spec", "initContainers"),
    ("spec", "volumes"), ("spec", "imagePullSecrets"), ("spec", "os"), ("spec", "affinity"),
    ("spec", "affinity", "nodeAffinity"),
    ("spec", "affinity", "nodeAffinity", "requiredDuringSchedulingIgnoredDuringExecution"),
    ("spec", "affinity", "nodeAffinity", "requiredDuringSchedulingIgnoredDuringExecution", "nodeSelectorTerms"),
]  # fmt: skip


def with_affinity() -> dict[str, Any]:
    out = pod()
    out["spec"]["affinity"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]}]}}}
    out["spec"]["containers"][0]["volumeMounts"] = [{"name": "data", "mountPath": "/data"}]
    return out


def replaced(document: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(document)
    target: Any = out
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return out


@st.composite
def bodies(draw: Any) -> bytes:
    family = draw(st.integers(0, 4))
    if family == 0:
        return bytes(draw(st.binary(max_size=300)))
    if family == 1:
        return json.dumps(draw(json_values)).encode()
    if family == 2:
        body = review(pod())
        body["request"][draw(st.sampled_from(REQUEST_FIELDS))] = draw(json_values)
        return json.dumps(body).encode()
    if family == 3:
        broken = replaced(with_affinity(), draw(st.sampled_from(POD_PATHS)), draw(json_values))
        return json.dumps(review(broken)).encode()
    free = pod(containers=draw(st.integers(1, 3)))
    text = st.text(max_size=20)
    free["metadata"]["labels"] = draw(st.dictionaries(text, text, max_size=3))
    free["metadata"]["annotations"] = draw(st.dictionaries(
        st.sampled_from([keys.POD_DOMAIN_ANNOTATION, keys.POD_MASK_ID_ANNOTATION, keys.POD_OPT_OUT_ANNOTATION,
                         f"{keys.POD_ENTRYPOINT_ANNOTATION_PREFIX}c0", "x/y~z"]) | text, text, max_size=3))  # fmt: skip
    for container in free["spec"]["containers"]:
        if draw(st.booleans()):
            container["command"] = draw(st.lists(text, max_size=3))
        container["env"] = draw(st.lists(st.fixed_dictionaries({"name": st.sampled_from(
            ["HWCAP_DOMAIN", "GODEBUG", "GLIBC_TUNABLES", "A"]) | text, "value": text}), max_size=3))  # fmt: skip
    namespace = draw(st.sampled_from(["shop", "plain", "hwcap-system", "kube-system"]))
    return json.dumps(review(free, namespace=namespace)).encode()


class Client:
    """One keep-alive HTTPS connection to the webhook, reopened when the server closed it."""

    def __init__(self, port: int, tls: Tls) -> None:
        self.port, self.tls = port, tls
        self.connection: http.client.HTTPSConnection | None = None

    def post(self, body: bytes) -> tuple[int, bytes]:
        for attempt in range(2):
            if self.connection is None:
                context = self.tls.client_context()
                self.connection = http.client.HTTPSConnection("127.0.0.1", self.port, context=context, timeout=30)
            try:
                self.connection.request("POST", http_server.MUTATE_PODS_PATH, body=body,
                                        headers={"Content-Type": "application/json"})  # fmt: skip
                response = self.connection.getresponse()
                return response.status, response.read()
            except (http.client.RemoteDisconnected, ConnectionError, BrokenPipeError):
                self.connection.close()
                self.connection = None
                if attempt:
                    raise
        raise AssertionError("unreachable")


def check(status: int, raw: bytes, sent: bytes) -> str:
    """The answer's class; fails on a 5xx or on a malformed answer."""
    assert status in (200, 400, 413, 429), (status, raw[:300], sent[:300])
    answer = json.loads(raw)
    if status != 200:
        assert isinstance(answer["error"], str) and answer["error"]
        return str(status)
    response = answer["response"]
    assert answer["apiVersion"] == "admission.k8s.io/v1" and answer["kind"] == "AdmissionReview"
    assert response["uid"] == json.loads(sent)["request"]["uid"]
    if response["allowed"] is True:
        return "allowed"
    assert response["allowed"] is False and response["status"]["message"]
    assert 400 <= response["status"]["code"] < 500, response
    return "denied"



@pytest.fixture(scope="module")
def fuzz_client(webhook: Webhook, results: Path) -> Iterator[Client]:
    yield Client(webhook.port, webhook.tls)
    losses = {"HTTP 5xx": FUZZ_ANSWERS["5xx"], "crashes": FUZZ_ANSWERS["crash"],
              "malformed answers": FUZZ_ANSWERS["malformed answer"]}  # fmt: skip
    reliability.record("AdmissionReview bodies fuzzed (hypothesis, 5 families)", AREA, sum(FUZZ_ANSWERS.values()),
                       losses, "answers: " + ", ".join(f"{k} {v}" for k, v in sorted(FUZZ_ANSWERS.items())),
                       results)  # fmt: skip


@settings(max_examples=FUZZ_CASES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(bodies())
def test_no_fuzzed_body_gets_a_5xx_or_crashes_the_webhook(fuzz_client: Client, body: bytes) -> None:
    try:
        status, raw = fuzz_client.post(body)
    except (http.client.HTTPException, OSError):
        FUZZ_ANSWERS["crash"] += 1
        raise
    try:
        FUZZ_ANSWERS[check(status, raw, body)] += 1
    except AssertionError:
        FUZZ_ANSWERS["5xx" if status >= 500 else "malformed answer"] += 1
        raise


def test_the_webhook_still_mutates_after_the_fuzz(fuzz_client: Client) -> None:
    status, raw = fuzz_client.post(json.dumps(review(pod())).encode())
    assert status == 200 and json.loads(raw)["response"]["patchType"] == "JSONPatch"


# ---------------------------------------------------------------------------------- heavy pods, stalled connections

PEAK_RSS: list[int] = []


def test_heavy_pods_do_not_push_normal_reviews_past_the_timeout(webhook: Webhook, results: Path) -> None:
    rounds, stream_seconds = reliability.scaled(full=3, ci=1), reliability.scaled(full=12, ci=6)
    normal = webhook.directory / "normal.json"
    normal.write_text(json.dumps(review(pod())))
    body = json.dumps(review(pod(containers=4000))).encode()
    stream: dict[str, Any] = {}
    sender = threading.Thread(target=lambda: stream.update(
        open_loop(build_openloop(), webhook.port, webhook.tls.ca_file, normal, 100, stream_seconds)))
    sender.start()
    time.sleep(1.5)
    heavy: Counter[str] = Counter()
    seconds: list[float] = []

    def one(_: int) -> None:
        started = time.monotonic()
        status, raw = post(webhook.port, webhook.tls, body)
        seconds.append(time.monotonic() - started)
        mutated = status == 200 and json.loads(raw)["response"].get("patchType") == "JSONPatch"
        heavy["mutated" if mutated else f"HTTP {status}"] += 1

    with ThreadPoolExecutor(4) as pool:
        for _ in range(rounds):
            list(pool.map(one, range(4)))
            PEAK_RSS.append(rss_kib(webhook.pid)[1])
    sender.join()
    ms = stream["latency_ms"]
    losses = {"normal reviews failed": sum(stream["errors"].values()),
              "normal reviews over 5 s": 1 if ms["p100"] > 5000 else 0,
              "large pods answered otherwise": sum(n for k, n in heavy.items() if k not in ("mutated", "HTTP 429"))}
    reliability.record(
        "4,000-container pods, four at once, during 100 req/s of normal reviews", AREA, stream["sent"] + 4 * rounds,
        losses, f"{len(body) / 1024:.0f} KiB each: {dict(heavy)} in {min(seconds):.2f}-{max(seconds):.2f} s; normal "
        f"reviews p50 {ms['p50']:.1f} ms, p99 {ms['p99']:.1f} ms, max {ms['p100']:.0f} ms; server peak RSS "
        f"{max(PEAK_RSS) / 1024:.0f} MiB", results)  # fmt: skip
    assert sum(losses.values()) == 0, (losses, stream, heavy)


def is_open(sock: ssl.SSLSocket) -> bool:
    """No EOF and no error on a non-blocking read: the server still holds the connection."""
    sock.setblocking(False)
    try:
        return sock.recv(1) != b""
    except ssl.SSLWantReadError:
        return True
    except (OSError, ssl.SSLError):
        return False


def test_idle_and_half_sent_connections_are_dropped_and_capped(webhook: Webhook, results: Path) -> None:
    tls = webhook.tls
    kinds: dict[str, Callable[[ssl.SSLSocket], Any]] = {
        "idle": lambda s: None,
        "half-header": lambda s: s.sendall(b"POST /mutate-pods HTTP/1.1\r\nHost: x\r\nContent-Ty"),
        "half-body": lambda s: s.sendall(b"POST /mutate-pods HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                         b"Content-Length: 5000\r\n\r\n{\"apiVersion\""),
    }  # fmt: skip
    total = reliability.scaled(full=500, ci=60)
    opened: list[tuple[str, ssl.SSLSocket]] = []
    refused = 0
    for i in range(total):
        kind = list(kinds)[i % 3]
        try:
            raw = socket.create_connection(("127.0.0.1", webhook.port), timeout=10)
            sock = tls.client_context().wrap_socket(raw, server_hostname="localhost")
            kinds[kind](sock)
            opened.append((kind, sock))
        except (OSError, ssl.SSLError):
            refused += 1
    time.sleep(1)  # well before the 10 s timers: what is closed now was over the connection cap
    capped = sum(1 for _, sock in opened if not is_open(sock))
    rss_open = rss_kib(webhook.pid)[0]
    time.sleep(14)
    still: Counter[str] = Counter(kind for kind, sock in opened if is_open(sock))
    for _, sock in opened:
        sock.close()
    PEAK_RSS.append(rss_kib(webhook.pid)[1])
    reliability.record(
        "idle, half-header and half-body TLS connections", AREA, total, {"still open after 15 s": sum(still.values())},
        f"{len(opened)} opened ({refused} refused, {capped} closed at once over the cap of "
        f"{http_server.WebhookLimits().max_connections}); server RSS with them open {rss_open / 1024:.0f} MiB",
        results)  # fmt: skip
    assert not still, still


def test_memory_stays_bounded_through_all_of_the_above(webhook: Webhook, results: Path) -> None:
    now, peak = rss_kib(webhook.pid)
    limit_mib = 512
    reliability.record("webhook memory through every class above", AREA, 1,
                       {"peak RSS over half the chart's 512 Mi limit": int(peak / 1024 > limit_mib / 2)},
                       f"RSS {now / 1024:.0f} MiB at the end, peak {peak / 1024:.0f} MiB", results)  # fmt: skip
    assert peak / 1024 < limit_mib / 2, peak
