"""Pods in namespaces no domain selects are allowed untouched without being read: their shape is the API
server's to validate. In a selected namespace the same malformed pod is refused with the reason."""

from __future__ import annotations

from typing import Any

from tests.support import webhook_server as ws

from hwcap_operator.admission.entrypoint import NoResolver
from hwcap_operator.kube.webhook import make_decider

MALFORMED = {"metadata": {"name": "p"}, "spec": {"containers": "not a list"}}


def decide(namespace: str, pod: Any) -> Any:
    decider = make_decider(ws.loaded_view(), ws.CONFIG, NoResolver())
    assert decider.inline is not None
    return decider.inline(ws.review(pod, namespace=namespace)["request"])


def test_a_malformed_pod_where_no_domain_looks_is_left_to_the_api_server() -> None:
    outcome = decide(ws.OTHER_NAMESPACE, MALFORMED)
    assert (outcome.allowed, outcome.result) == (True, "untouched") and not outcome.patch


def test_the_same_pod_in_a_selected_namespace_is_refused_naming_the_problem() -> None:
    outcome = decide(ws.DOMAIN_NAMESPACE, MALFORMED)
    assert not outcome.allowed and outcome.code == 400
    assert "containers" in outcome.message


def test_a_well_formed_pod_in_the_selected_namespace_is_still_wrapped() -> None:
    outcome = decide(ws.DOMAIN_NAMESPACE, ws.pod())
    assert outcome.allowed and outcome.result == "mutated" and outcome.patch
