"""Fuzzed request bodies against the real webhook app over TLS: never a 500, never a crash (issue 11.4).

Bodies are drawn from five families: raw bytes; any JSON value; a valid review with one request field
replaced by any JSON value; a valid review of a pod with one field at any depth the mutation reads
replaced by any JSON value; valid pods with arbitrary labels, annotations, commands and env. Every answer
must be HTTP 400/413/429 with a message, or a well-formed AdmissionReview for the request's uid (a denial
with a message and a 4xx code). ``HWCAP_FUZZ_EXAMPLES`` sets the number of cases (``make reliability``
runs 1,000 or more; CI the default); with ``HWCAP_RELIABILITY_RESULTS`` set to a directory, the counts are
written there as ``webhook-fuzz.json`` rows for docs/reliability.md.
"""

from __future__ import annotations

import copy
import http.client
import json
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.support.webhook_server import Tls, pod, review, served, webhook_app

from hwcap_operator import keys
from hwcap_operator.kube import http_server

EXAMPLES = int(os.environ.get("HWCAP_FUZZ_EXAMPLES", "150"))
UID = "0f6e3a52-1d5b-4c1e-9e0b-6a7c0c9f0001"
ANSWERS: Counter[str] = Counter()

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


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    tls = Tls.issue(tmp_path_factory.mktemp("tls"))
    with served(webhook_app(), tls) as port:
        yield Client(port, tls)
    results = os.environ.get("HWCAP_RELIABILITY_RESULTS")
    if results:
        trials = sum(ANSWERS.values())
        rows = [{"class": "webhook: fuzzed AdmissionReview bodies (hypothesis, 5 families)", "trials": trials,
                 "losses": ANSWERS["500"] + ANSWERS["crash"],
                 "notes": "answers: " + ", ".join(f"{k} {v}" for k, v in sorted(ANSWERS.items()))}]  # fmt: skip
        Path(results).mkdir(parents=True, exist_ok=True)
        (Path(results) / "webhook-fuzz.json").write_text(json.dumps(rows, indent=2) + "\n")


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


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                      HealthCheck.function_scoped_fixture])  # fmt: skip
@given(bodies())
def test_no_body_gets_a_500_or_crashes_the_webhook(client: Client, body: bytes) -> None:
    try:
        status, raw = client.post(body)
    except (http.client.HTTPException, OSError):
        ANSWERS["crash"] += 1
        raise
    try:
        ANSWERS[check(status, raw, body)] += 1
    except AssertionError:
        ANSWERS["500" if status >= 500 else "malformed answer"] += 1
        raise


def test_the_webhook_still_mutates_after_the_fuzz(client: Client) -> None:
    status, raw = client.post(json.dumps(review(pod())).encode())
    assert status == 200 and json.loads(raw)["response"]["patchType"] == "JSONPatch"
