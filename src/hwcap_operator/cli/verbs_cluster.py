"""The verbs that ask the cluster: ``get domains``, ``what-if`` (a dry run of a node joining) and
``check --domain`` (may this injected pod move to that node). They read with the user's kubeconfig and
never write: what-if runs the operator's own pure policy on what the cluster says now.
"""

from __future__ import annotations

import argparse
from typing import Any, cast

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from hwcap_operator import keys
from hwcap_operator.cli.inputs import BadInput, read_feature_file
from hwcap_operator.cli.node_reads import features_of, node_feature_objects
from hwcap_operator.cli.output import emit, render_table
from hwcap_operator.domain import api
from hwcap_operator.domain.migration import PodMaskUnreadable, move_verdict
from hwcap_operator.domain.node_features import NodeFeatures, node_features
from hwcap_operator.domain.policy import evaluate
from hwcap_operator.kube.client import api_client

#: What ``get`` accepts for MigrationDomains: the CRD's plural, singular and short names.
DOMAIN_KINDS = ("domains", "domain", "mdom", "hwmd", "migrationdomain", "migrationdomains")


def _client(args: argparse.Namespace) -> client.ApiClient:
    try:
        if args.context:  # a named context is a kubeconfig's, never the in-cluster service account's
            named: client.ApiClient = config.new_client_from_config(  # type: ignore[no-untyped-call]
                config_file=args.kubeconfig, context=args.context
            )
            return named
        return api_client(args.kubeconfig)
    except Exception as exc:  # kubeconfig errors come in many types; all are the user's input
        raise BadInput(f"cannot load a kubeconfig ({args.kubeconfig or '$KUBECONFIG'}): {exc}") from exc


def _get_domain(api_client_: client.ApiClient, name: str) -> dict[str, Any]:
    try:
        obj = cast(dict[str, Any], client.CustomObjectsApi(api_client_).get_cluster_custom_object(
            keys.GROUP, keys.VERSION, keys.PLURAL, name))  # fmt: skip
    except ApiException as exc:
        if exc.status == 404:
            raise BadInput(f"MigrationDomain {name!r} not found") from exc
        raise BadInput(f"reading MigrationDomain {name!r}: {exc.status} {exc.reason}") from exc
    return obj


def _parse(obj: dict[str, Any]) -> tuple[api.MigrationDomainSpec, api.MigrationDomainStatus | None]:
    name = obj["metadata"]["name"]
    try:
        spec = api.MigrationDomainSpec.model_validate(obj.get("spec") or {})
        status = api.MigrationDomainStatus.model_validate(obj["status"]) if obj.get("status") else None
    except ValidationError as exc:
        raise BadInput(f"MigrationDomain {name}: {exc.errors()[0]['msg']}") from exc
    return spec, status


def _condition(status: dict[str, Any], ctype: str) -> str:
    for cond in status.get("conditions") or []:
        if cond.get("type") == ctype:
            return str(cond.get("status"))
    return "Unknown"


def get_domains(args: argparse.Namespace) -> int:
    listing = client.CustomObjectsApi(_client(args)).list_cluster_custom_object(keys.GROUP, keys.VERSION, keys.PLURAL)
    items = cast(dict[str, Any], listing)["items"]
    rows = []
    docs = []
    for obj in sorted(items, key=lambda o: o["metadata"]["name"]):
        status = obj.get("status") or {}
        mask = status.get("mask") or {}
        row = {
            "name": obj["metadata"]["name"], "arch": obj["spec"].get("arch"),
            "members": (status.get("members") or {}).get("count", 0),
            "excluded": (status.get("excluded") or {}).get("count", 0), "maskId": mask.get("id"),
            "features": mask.get("popcount"), "ready": _condition(status, "Ready"),
            "maskValid": _condition(status, "MaskValid"), "kernelSupport": _condition(status, "KernelSupport"),
            "dropped": status.get("droppedFeatures") or [],
        }  # fmt: skip
        docs.append(row)
        rows.append([row["name"], row["arch"], row["members"], row["excluded"], row["maskId"], row["features"],
                     row["ready"], row["maskValid"], row["kernelSupport"], row["dropped"]])  # fmt: skip
    headers = ["name", "arch", "members", "excluded", "mask id", "features", "ready", "mask valid", "kernel",
               "dropped features"]  # fmt: skip
    emit({"domains": docs}, render_table(headers, rows), args.output)
    return 0


def _cluster_nodes(api_client_: client.ApiClient, spec: api.MigrationDomainSpec) -> list[NodeFeatures]:
    nodes = client.CoreV1Api(api_client_).list_node(label_selector=f"kubernetes.io/arch={spec.arch}").items
    objects, _ = node_feature_objects(api_client_)
    plain = [_plain(api_client_, n) for n in nodes]
    return [node_features(n, objects.get(str(n["metadata"]["name"]))) for n in plain]


def _plain(api_client_: client.ApiClient, obj: Any) -> dict[str, Any]:
    """A typed client object as the plain dict the pure code reads (the wire JSON)."""
    plain: dict[str, Any] = api_client_.sanitize_for_serialization(obj)  # type: ignore[no-untyped-call]
    return plain


def what_if(args: argparse.Namespace) -> int:
    api_client_ = _client(args)
    spec, status = _parse(_get_domain(api_client_, args.domain))
    candidate = read_feature_file(args.node)
    if candidate.arch != spec.arch:
        verdict = "not a candidate"
        why = [f"{args.node} is {candidate.arch}; domain {args.domain} is {spec.arch}"]
        emit({"verdict": verdict, "reasons": why}, f"{verdict}: {why[0]}\n", args.output)
        return 1
    selector_labels = dict(spec.node_selector.match_labels)
    joining = NodeFeatures(name=f"what-if:{args.node}", arch=candidate.arch, mask=candidate.mask,
                           labels={"kubernetes.io/arch": spec.arch, **selector_labels}, source="nfd-labels",
                           unobserved=frozenset(candidate.unobserved))  # fmt: skip
    existing = _cluster_nodes(api_client_, spec)
    before = evaluate(spec, existing, status, 0)
    after = evaluate(spec, [*existing, joining], status, 0)
    reasons: list[str] = []
    if joining.name in after.excluded:
        exclusion = after.excluded[joining.name]
        verdict = "excluded"
        reasons.append(f"{exclusion.reason}: {exclusion.message}")
    elif before.mask is not None and after.mask is not None and after.mask != before.mask:
        verdict = "lowers the mask"
        reasons.append(f"the mask would lose: {' '.join((before.mask - after.mask).names())}")
    elif joining.name in after.members:
        verdict = "admitted"
    else:
        verdict = "not a member"
        reasons.append("the node selector's matchExpressions do not select it")
    document = {"domain": args.domain, "node": args.node, "verdict": verdict, "reasons": reasons,
                "maskBefore": before.mask.canonical() if before.mask else None,
                "maskAfter": after.mask.canonical() if after.mask else None}  # fmt: skip
    emit(document, f"{verdict}" + "".join(f"\n  {r}" for r in reasons) + "\n", args.output)
    return 0 if verdict == "admitted" else 1


def check_pod(args: argparse.Namespace) -> int:
    api_client_ = _client(args)
    namespace, _, pod_name = args.pod.partition("/")
    if not pod_name:
        raise BadInput(f"--pod {args.pod!r}: expected NAMESPACE/NAME")
    core = client.CoreV1Api(api_client_)
    try:
        pod = core.read_namespaced_pod(pod_name, namespace)
        node = _plain(api_client_, core.read_node(args.node_name))
    except ApiException as exc:
        raise BadInput(f"reading {exc.status} {exc.reason}: pod {args.pod} / node {args.node_name}") from exc
    annotations = (pod.metadata.annotations if pod.metadata else None) or {}
    try:
        features, unread = features_of(api_client_, node)
        verdict_ = move_verdict(args.pod, annotations, args.domain, args.node_name, features)
    except PodMaskUnreadable as exc:
        raise BadInput(str(exc)) from exc
    mask = verdict_.mask
    reasons = [f"{r} ({unread})" if unread and " lacks " in r else r for r in verdict_.reasons]
    ok = not reasons
    document = {"pod": args.pod, "node": args.node_name, "maskId": mask.mask_id, "ok": ok, "reasons": reasons}
    verdict = f"OK: {args.pod} may move to {args.node_name}" if ok else "NOT OK: " + "; ".join(reasons)
    emit(document, verdict + "\n", args.output)
    return 0 if ok else 1
