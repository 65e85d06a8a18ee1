"""Bad, huge and stalled requests against the real webhook app over TLS on 127.0.0.1 (issue 11.4).

Every malformed AdmissionReview gets HTTP 400 with a message, or — once the request's uid is known — a
well-formed AdmissionReview denial with a message; never a 500. Storable pods fit the body limit; a pod
whose patch could not be stored is denied saying so; a large review waiting on its lane does not hold up a
small one; idle, half-sent and never-handshaken connections are dropped; the number of connections is capped.
"""

from __future__ import annotations

import base64
import json
import socket
import ssl
import threading
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import jsonpatch
import pytest
from tests.support.webhook_server import Tls, echo_app, pod, post, review, served, webhook_app

from hwcap_operator.kube import http_server
from hwcap_operator.kube.http_server import AdmissionOutcome, Decider, WebhookLimits
from hwcap_operator.kube.metrics import OperatorMetrics

UID = "0f6e3a52-1d5b-4c1e-9e0b-6a7c0c9f0001"


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    return Tls.issue(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def port(tls: Tls) -> Iterator[int]:
    with served(webhook_app(), tls) as serving:
        yield serving


def as_json(value: Any) -> bytes:
    return json.dumps(value).encode()


def assert_bad_request(answer: tuple[int, Mapping[str, Any] | str], *words: str) -> None:
    status, body = answer
    assert status == 400, body
    assert isinstance(body, Mapping) and all(w in body["error"] for w in words), body


def assert_denied(answer: tuple[int, Mapping[str, Any] | str], *words: str) -> None:
    status, body = answer
    assert status == 200 and isinstance(body, Mapping), body
    assert body["apiVersion"] == "admission.k8s.io/v1" and body["kind"] == "AdmissionReview"
    response = body["response"]
    assert response["uid"] == UID and response["allowed"] is False
    assert response["status"]["code"] == 400
    assert all(w in response["status"]["message"] for w in words), response


# ---------------------------------------------------------------------------------- not an AdmissionReview: 400


@pytest.mark.parametrize("request_value", [None, "pod", ["pod"], 42, 4.2, True])
def test_a_request_that_is_not_an_object_is_a_bad_request(port: int, tls: Tls, request_value: Any) -> None:
    body = {**review(pod()), "request": request_value}
    assert_bad_request(post(port, tls, as_json(body)), "request is")


@pytest.mark.parametrize("uid", [None, "", 7])
def test_a_request_without_uid_is_a_bad_request(port: int, tls: Tls, uid: Any) -> None:
    body = review(pod())
    body["request"]["uid"] = uid
    assert_bad_request(post(port, tls, as_json(body)), "uid")


def test_json_nested_100000_deep_is_a_bad_request(port: int, tls: Tls) -> None:
    assert_bad_request(post(port, tls, b"[" * 100_000 + b"]" * 100_000), "nested too deeply")
    deep_in_request = json.dumps(review(pod())).replace('"dryRun": false', '"dryRun": ' + "[" * 100_000 + "]" * 100_000)
    assert_bad_request(post(port, tls, deep_in_request.encode()), "nested too deeply")


@pytest.mark.parametrize("content_type", ["application/json; charset=bogus", "application/json; charset=latin-1",
                                          "text/plain", "application/x-www-form-urlencoded"])  # fmt: skip
def test_a_content_type_other_than_utf8_json_is_a_bad_request(port: int, tls: Tls, content_type: str) -> None:
    assert_bad_request(post(port, tls, as_json(review(pod())), content_type=content_type), "Content-Type")


def test_utf8_charset_spelled_any_way_is_accepted(port: int, tls: Tls) -> None:
    status, body = post(port, tls, as_json(review(pod())), content_type="application/json; charset=UTF-8")
    assert status == 200 and isinstance(body, Mapping) and body["response"]["allowed"] is True


@pytest.mark.parametrize("raw", [b"", b"not json", b"\xff\xfe\x00garbage", b'{"apiVersion": ', b"\x00" * 64])
def test_a_body_that_is_not_json_is_a_bad_request(port: int, tls: Tls, raw: bytes) -> None:
    assert_bad_request(post(port, tls, raw), "not JSON")


@pytest.mark.parametrize("envelope", [{"apiVersion": "admission.k8s.io/v1beta1"}, {"kind": "TokenReview"},
                                      {"apiVersion": None, "kind": None}])  # fmt: skip
def test_another_api_version_or_kind_is_a_bad_request(port: int, tls: Tls, envelope: dict[str, Any]) -> None:
    assert_bad_request(post(port, tls, as_json({**review(pod()), **envelope})), "admission.k8s.io/v1")


@pytest.mark.parametrize("body", [[], "x", 1, None])
def test_a_body_that_is_not_an_object_is_a_bad_request(port: int, tls: Tls, body: Any) -> None:
    assert_bad_request(post(port, tls, as_json(body)), "not an AdmissionReview")


# ---------------------------------------------------------------------------------- uid known: a denial saying why


@pytest.mark.parametrize(
    ("obj", "words"),
    [
        ("a pod", ["request.object is str"]),
        ([pod()], ["request.object is list"]),
        ({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {}}, ["Deployment", "not a Pod"]),
        ({**pod(), "spec": "containers"}, ["spec is not an object"]),
        ({**pod(), "metadata": {"labels": ["app"]}}, ["metadata.labels"]),
        ({**pod(), "spec": {"containers": "app"}}, ["spec.containers"]),
        ({**pod(), "spec": {"containers": [{"name": "a", "command": "/app"}]}}, ["spec.containers[0].command"]),
        ({**pod(), "spec": {"containers": [{"name": "a", "env": [{"name": 1}]}]}}, ["spec.containers[0].env[0]"]),
        ({**pod(), "spec": {"containers": [], "affinity": {"nodeAffinity": []}}}, ["spec.affinity.nodeAffinity"]),
    ],
)
def test_an_object_that_is_not_a_pod_is_denied_saying_which_field(port: int, tls: Tls, obj: Any,
                                                                   words: list[str]) -> None:  # fmt: skip
    assert_denied(post(port, tls, as_json(review(obj))), "malformed", *words)


@pytest.mark.parametrize(("field", "value"), [("kind", "Pod"), ("operation", 1), ("namespace", ["shop"]),
                                              ("dryRun", "yes"), ("object", "pod")])  # fmt: skip
def test_a_malformed_request_field_is_denied_naming_it(port: int, tls: Tls, field: str, value: Any) -> None:
    body = review(pod())
    body["request"][field] = value
    status, answer = post(port, tls, as_json(body))
    assert status == 200 and isinstance(answer, Mapping)
    assert answer["response"]["allowed"] is False and answer["response"]["status"]["code"] == 400
    assert field in answer["response"]["status"]["message"] or "Pod" in answer["response"]["status"]["message"]


# ---------------------------------------------------------------------------------- size


def test_a_pod_bigger_than_aiohttps_default_limit_is_reviewed(port: int, tls: Tls) -> None:
    # ~1.5 MiB: what etcd stores at most; aiohttp's default limit (1 MiB) answered 413, i.e. no mask under Ignore.
    big = pod(containers=5000)
    body = as_json(review(big))
    assert 1024 * 1024 < len(body) < http_server.WebhookLimits().max_body_bytes
    status, answer = post(port, tls, body)
    assert status == 200 and isinstance(answer, Mapping) and answer["response"]["allowed"] is True
    patched = jsonpatch.apply_patch(big, json.loads(base64.b64decode(answer["response"]["patch"])))
    assert all(c["command"][0] == "/hwcap/bin/hwcap-exec" for c in patched["spec"]["containers"])


def test_a_body_over_the_limit_is_refused_without_being_read(port: int, tls: Tls) -> None:
    status, _ = post(port, tls, b" " * (http_server.WebhookLimits().max_body_bytes + 1))
    assert status == 413


def test_a_pod_whose_patch_could_not_be_stored_is_denied_saying_so(tls: Tls) -> None:
    limits = WebhookLimits(max_patch_bytes=16 * 1024)
    with served(webhook_app(limits), tls, limits) as port:
        assert_denied(post(port, tls, as_json(review(pod(containers=40)))), "more than the API server can store")


# ---------------------------------------------------------------------------------- lanes


class _HeldDecider:
    """Decides "allowed" at once, except for pods named ``held-*``, which wait until released."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.holding = threading.Event()

    def __call__(self, request: Mapping[str, Any]) -> AdmissionOutcome:
        if str(request["object"]["metadata"].get("generateName", "")).startswith("held-"):
            self.holding.set()
            self.release.wait(30)
        return AdmissionOutcome(True, "untouched")


def test_a_large_review_in_progress_does_not_hold_up_small_ones_and_the_queue_is_bounded(tls: Tls) -> None:
    limits = WebhookLimits(heavy_body_bytes=16 * 1024, heavy_workers=1, heavy_queue=0)
    held = _HeldDecider()
    app = http_server.webhook_app(Decider(blocking=held, inline=held), OperatorMetrics(), limits=limits)
    with served(app, tls, limits) as port, ThreadPoolExecutor(2) as pool:
        heavy = pool.submit(post, port, tls, as_json(review(pod(containers=200, name="held"))))
        assert held.holding.wait(30)
        small = post(port, tls, as_json(review(pod())))  # answered while the large one is still being decided
        second_heavy = post(port, tls, as_json(review(pod(containers=200))))
        assert not heavy.done()
        held.release.set()
        assert heavy.result()[0] == 200
    assert small[0] == 200 and isinstance(small[1], Mapping) and small[1]["response"]["allowed"] is True
    assert second_heavy[0] == 429 and "too many large pods" in str(second_heavy[1])


def test_a_pod_that_needs_an_image_lookup_is_decided_off_the_event_loop(port: int, tls: Tls) -> None:
    needs_lookup = pod()
    del needs_lookup["spec"]["containers"][0]["command"]  # the entrypoint must come from the registry
    status, answer = post(port, tls, as_json(review(needs_lookup)))
    assert status == 200 and isinstance(answer, Mapping)
    # The worker's resolver (none configured here) was asked: the domain's Deny policy names the image.
    assert answer["response"]["allowed"] is False
    assert "registry.example/app:1.0" in answer["response"]["status"]["message"]


# ---------------------------------------------------------------------------------- connections

QUICK = WebhookLimits(idle_seconds=0.5, body_seconds=0.5, handshake_seconds=0.5, max_connections=3)


@pytest.fixture(scope="module")
def quick_port(tls: Tls) -> Iterator[int]:
    with served(echo_app(), tls, QUICK) as serving:
        yield serving


def closed_by_server(sock: socket.socket) -> bool:
    """True when the server closes the connection (EOF or reset) before our 10 s guard runs out."""
    sock.settimeout(10)
    try:
        return sock.recv(1024) == b""
    except (ConnectionResetError, ssl.SSLError):
        return True
    except TimeoutError:
        return False


def tls_connection(port: int, tls: Tls) -> ssl.SSLSocket:
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    return tls.client_context().wrap_socket(raw, server_hostname="localhost")


def test_an_idle_connection_is_dropped(quick_port: int, tls: Tls) -> None:
    with tls_connection(quick_port, tls) as sock:
        assert closed_by_server(sock)


def test_a_connection_with_half_sent_headers_is_dropped(quick_port: int, tls: Tls) -> None:
    with tls_connection(quick_port, tls) as sock:
        sock.sendall(b"POST /mutate-pods HTTP/1.1\r\nHost: localhost\r\nContent-Type: appl")
        assert closed_by_server(sock)


def test_a_connection_with_a_half_sent_body_is_dropped(tls: Tls) -> None:
    with served(webhook_app(QUICK), tls, QUICK) as port, tls_connection(port, tls) as sock:
        sock.sendall(b"POST /mutate-pods HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 1000\r\n\r\n{\"apiVersion\":")  # fmt: skip
        sock.settimeout(10)
        data = b""
        with_answer_or_eof = True
        try:
            while chunk := sock.recv(4096):
                data += chunk
        except (ConnectionResetError, ssl.SSLError):
            pass
        except TimeoutError:
            with_answer_or_eof = False
        assert with_answer_or_eof and b"200 OK" not in data


def test_a_connection_that_never_completes_the_tls_handshake_is_dropped(quick_port: int) -> None:
    with socket.create_connection(("127.0.0.1", quick_port), timeout=10) as sock:
        assert closed_by_server(sock)


def test_connections_over_the_cap_are_closed_at_once(quick_port: int, tls: Tls) -> None:
    held = [tls_connection(quick_port, tls) for _ in range(QUICK.max_connections)]
    try:
        with tls_connection(quick_port, tls) as extra:
            assert closed_by_server(extra)
    finally:
        for sock in held:
            sock.close()


def test_a_connection_that_keeps_asking_is_kept(tls: Tls) -> None:
    import http.client

    # A server of its own: the module's quick server may still hold the slots of the stalled connections the
    # tests above opened (its cap is 3), and a connection over the cap is closed at once, by design.
    with served(echo_app(), tls, QUICK) as port:
        _keep_asking(port, tls, http.client)


def _keep_asking(port: int, tls: Tls, http_client: Any) -> None:
    connection = http_client.HTTPSConnection("127.0.0.1", port, context=tls.client_context(), timeout=10)
    try:
        for _ in range(5):
            connection.request("POST", http_server.MUTATE_PODS_PATH, body=b"{}",
                               headers={"Content-Type": "application/json"})  # fmt: skip
            assert connection.getresponse().read()
        assert connection.sock is not None  # one connection answered all five
    finally:
        connection.close()


def test_the_webhook_keeps_serving_after_all_of_the_above(port: int, tls: Tls, tmp_path: Path) -> None:
    status, answer = post(port, tls, as_json(review(pod())))
    assert status == 200 and isinstance(answer, Mapping) and answer["response"]["patchType"] == "JSONPatch"
