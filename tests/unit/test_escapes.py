"""Escapes: pods of a domain that run without its mask are found (never silent), and a domain can forbid the
per-pod opt-out, which the webhook then denies with a message naming the domain.

(A pod forging our annotations is still wrapped: tests/unit/test_admission_mutate.py.)
"""

from __future__ import annotations

from typing import Any

from hwcap_operator import keys
from hwcap_operator.admission.model import DomainView
from hwcap_operator.admission.selection import LabelSelector, never_touched_namespaces, opt_out_refusal
from hwcap_operator.admission.webhook_entries import desired_webhooks
from hwcap_operator.domain import api
from hwcap_operator.domain.impact import UnmaskedPod, with_unmasked
from hwcap_operator.kube.view import ClusterView

MASK = {"id": "m1", "canonical": "arm64:hwcap=0x3;hwcap2=0x0;hwcap3=0x0;hwcap4=0x0", "hwcap": "0x3", "hwcap2": "0x0",
        "hwcap3": "0x0", "hwcap4": "0x0", "popcount": 2,
        "basis": {"baselineMode": "Auto", "fingerprint": "f", "relevelGeneration": 0}}  # fmt: skip
NEVER = never_touched_namespaces("hwcap-system", "node-feature-discovery")


def domain(name: str, team: str, *, published: bool = True, **workloads: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": keys.API_VERSION, "kind": keys.KIND,
        "metadata": {"name": name, "uid": f"uid-{name}", "generation": 1, "resourceVersion": "1"},
        "spec": {"arch": "arm64", "nodeSelector": {"matchLabels": {"team": team}},
                 "workloads": {"namespaceSelector": {"matchLabels": {"team": team}}, **workloads}},
    }  # fmt: skip
    if published:
        body["status"] = {"mask": MASK}
    return body


def pod(name: str, namespace: str, *, annotations: dict[str, str] | None = None, phase: str = "Running",
        labels: dict[str, str] | None = None) -> dict[str, Any]:  # fmt: skip
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}", "labels": labels or {},
                         "annotations": annotations or {}},
            "spec": {"nodeName": "n1", "containers": [{"name": "app", "image": "nginx"}]},
            "status": {"phase": phase}}  # fmt: skip


def loaded_view(*domains: dict[str, Any]) -> ClusterView:
    view = ClusterView(never_touched=NEVER)
    view.update_namespace({"metadata": {"name": "apps", "labels": {"team": "red"}}})
    view.update_namespace({"metadata": {"name": "other", "labels": {"team": "blue"}}})
    for body in domains:
        view.upsert_domain(body)
    view.mark_loaded()
    return view


def test_pods_of_a_served_domain_without_its_mask_are_found_with_why() -> None:
    view = loaded_view(domain("red", "red"))
    assert view.update_pod(pod("bare", "apps")) == {"red"}  # the domain is woken to report it
    view.update_pod(pod("optout", "apps", annotations={keys.POD_OPT_OUT_ANNOTATION: "false"}))
    view.update_pod(pod("done", "apps", phase="Succeeded"))  # nothing runs: nothing to protect
    view.update_pod(pod("elsewhere", "other"))  # a namespace the domain does not select
    view.update_pod(pod("wrapped", "apps", annotations={keys.POD_DOMAIN_ANNOTATION: "red",
                                                        keys.POD_MASK_ID_ANNOTATION: "m1"}))  # fmt: skip
    found = sorted((p.name, p.reason) for p in view.unmasked_pods("red"))
    assert found == [("bare", "NotInjected"), ("optout", "OptedOut")]


def test_a_pod_that_gets_wrapped_or_deleted_is_no_longer_unmasked() -> None:
    view = loaded_view(domain("red", "red"))
    view.update_pod(pod("p", "apps"))
    assert view.delete_pod("apps", "p") == {"red"}
    assert view.unmasked_pods("red") == []


def test_a_domain_without_a_published_mask_reports_no_escapes_yet() -> None:
    view = loaded_view(domain("red", "red", published=False))
    view.update_pod(pod("bare", "apps"))
    assert view.unmasked_pods("red") == []


def test_relabelling_a_namespace_into_a_domain_wakes_it() -> None:
    view = loaded_view(domain("red", "red"))
    view.update_pod(pod("bare", "other"))
    assert view.unmasked_pods("red") == []
    assert view.update_namespace({"metadata": {"name": "other", "labels": {"team": "red"}}}) == {"red"}
    assert [p.name for p in view.unmasked_pods("red")] == ["bare"]


def test_the_status_counts_every_unmasked_pod_and_lists_the_first_ones_sorted() -> None:
    pods = [UnmaskedPod("apps", f"p{i:03}", f"u{i}", "NotInjected") for i in range(api.NAME_CAP + 7)]
    impact = with_unmasked(api.PodImpact(stale_pods=1, stranded_pods=0), reversed(pods))
    assert impact.unmasked_pods == api.NAME_CAP + 7 and impact.stale_pods == 1
    assert [e.name for e in impact.unmasked] == [p.name for p in pods[: api.NAME_CAP]]
    wire = api.PodImpact.model_validate(impact.model_dump(by_alias=True, mode="json"))  # the CRD round trip
    assert wire.unmasked[0].reason == "NotInjected"


def served(name: str, forbid: bool) -> DomainView:
    return DomainView(name=name, arch="arm64", hwcap=(3, 0, 0, 0), mask_id="m1", mask_canonical="x",
                      namespace_selector=LabelSelector.parse({"matchLabels": {"team": "red"}}),
                      forbid_opt_out=forbid)  # fmt: skip


def test_opting_out_is_denied_naming_the_domain_only_where_the_domain_forbids_it() -> None:
    opted = pod("p", "apps", annotations={keys.POD_OPT_OUT_ANNOTATION: "false"})
    refusal = opt_out_refusal(opted, "apps", {"team": "red"}, [served("strict", True)], NEVER)
    assert refusal is not None and "MigrationDomain strict" in refusal and "optOut" in refusal
    assert opt_out_refusal(opted, "apps", {"team": "red"}, [served("lenient", False)], NEVER) is None
    assert opt_out_refusal(pod("p", "apps"), "apps", {"team": "red"}, [served("strict", True)], NEVER) is None
    assert opt_out_refusal(opted, "kube-system", {"team": "red"}, [served("strict", True)], NEVER) is None
    assert opt_out_refusal("not a pod", "apps", {"team": "red"}, [served("strict", True)], NEVER) is None  # type: ignore[arg-type]


def test_the_forbid_field_reaches_the_webhook_view_from_the_spec() -> None:
    view = loaded_view(domain("strict", "red", optOut="Forbid"), domain("lenient", "blue"))
    assert {d.name: d.forbid_opt_out for d in view.webhook_domains} == {"strict": True, "lenient": False}


def test_a_forbidding_domain_s_webhook_entry_lets_opted_out_pods_reach_the_webhook() -> None:
    """Otherwise the objectSelector would keep labelled opt-outs away from the webhook and Forbid could not deny."""
    template = {"name": "pods.hwcap.dev", "objectSelector": {"matchExpressions": [
        {"key": keys.POD_OPT_OUT_ANNOTATION, "operator": "NotIn", "values": ["false"]},
        {"key": "tier", "operator": "NotIn", "values": ["infra"]}]}}  # fmt: skip
    specs = [(n, api.MigrationDomainSpec.model_validate(domain(n, "red", optOut=o)["spec"]))
             for n, o in (("strict", "Forbid"), ("lenient", "Allow"))]  # fmt: skip
    entries = {e["name"]: e["objectSelector"] for e in desired_webhooks(template, specs, NEVER)}
    keys_of = {name: {x["key"] for x in sel.get("matchExpressions", [])} for name, sel in entries.items()}
    assert keys_of == {"strict.pods.hwcap.dev": {"tier"},
                       "lenient.pods.hwcap.dev": {"tier", keys.POD_OPT_OUT_ANNOTATION}}  # fmt: skip
