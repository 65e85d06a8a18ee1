"""``hwcapctl migrate --pod NS/NAME --to NODE``: move a running pod, refusing first when it may not go there.

The refusal is decided before anything is touched, from what the cluster says now: the target must be a member
of the pod's domain (its ``domain.hwcap.dev/<name>`` label) and hold every feature of the pod's recorded mask
(the reasons ``check --domain --pod --node`` prints). Then the steps of
:func:`hwcap_operator.domain.migration.run_migration`, one progress line each on stderr; a failing step ends
the run with exit 1 and one line naming the step, and the source pod keeps running.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from hwcap_operator import keys
from hwcap_operator.cli.inputs import BadInput
from hwcap_operator.cli.node_reads import features_of
from hwcap_operator.cli.output import emit
from hwcap_operator.cli.verbs_cluster import _client
from hwcap_operator.domain.migration import (
    MigrationRequest,
    PodMaskUnreadable,
    membership_reason,
    move_verdict,
    run_migration,
)
from hwcap_operator.kube.migrate import KubeMigrationSteps


def _excluded_because(api: client.ApiClient, domain: str, node: str) -> str | None:
    """The domain's recorded reason for excluding ``node``, when its status has one."""
    try:
        obj: Any = client.CustomObjectsApi(api).get_cluster_custom_object(keys.GROUP, keys.VERSION, keys.PLURAL,
                                                                          domain)  # fmt: skip
    except ApiException:
        return None
    for excluded in ((obj.get("status") or {}).get("excluded") or {}).get("nodes") or []:
        if excluded.get("name") == node:
            return f"{excluded.get('reason')}: {excluded.get('message')}"
    return None


def refusals(api: client.ApiClient, pod: dict[str, Any], pod_ref: str, target: str) -> list[str]:
    """Every reason ``pod`` may not move to ``target`` (empty: it may). Reads only."""
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    domain = annotations.get(keys.POD_DOMAIN_ANNOTATION)
    if not domain:
        return [f"pod {pod_ref} was not injected by any domain (no {keys.POD_DOMAIN_ANNOTATION} annotation): "
                "nothing says which nodes it may run on"]  # fmt: skip
    source = (pod.get("spec") or {}).get("nodeName")
    if source == target:
        return [f"pod {pod_ref} already runs on {target}"]
    try:
        node = api.sanitize_for_serialization(client.CoreV1Api(api).read_node(target))  # type: ignore[no-untyped-call]
    except ApiException as exc:
        if exc.status == 404:
            raise BadInput(f"node {target!r} not found") from exc
        raise
    reasons: list[str] = []
    member = membership_reason(domain, target, (node.get("metadata") or {}).get("labels") or {},
                               _excluded_because(api, domain, target))  # fmt: skip
    if member:
        reasons.append(member)
    features, unread = features_of(api, node)
    try:
        verdict = move_verdict(pod_ref, annotations, domain, target, features)
    except PodMaskUnreadable as exc:
        raise BadInput(str(exc)) from exc
    reasons.extend(f"{r} ({unread})" if unread and " lacks " in r else r for r in verdict.reasons)
    return reasons


def migrate(args: argparse.Namespace) -> int:
    api = _client(args)
    namespace, _, name = args.pod.partition("/")
    if not name:
        raise BadInput(f"--pod {args.pod!r}: expected NAMESPACE/NAME")
    try:
        pod: dict[str, Any] = api.sanitize_for_serialization(  # type: ignore[no-untyped-call]
            client.CoreV1Api(api).read_namespaced_pod(name, namespace))
    except ApiException as exc:
        if exc.status == 404:
            raise BadInput(f"pod {args.pod} not found") from exc
        raise
    reasons = refusals(api, pod, args.pod, args.to)
    if reasons:
        emit({"pod": args.pod, "to": args.to, "refused": True, "reasons": reasons},
             "REFUSED (nothing was touched): " + "; ".join(reasons) + "\n", args.output)  # fmt: skip
        return 1
    spec = pod.get("spec") or {}
    phase = (pod.get("status") or {}).get("phase")
    if phase != "Running" or not spec.get("nodeName"):
        raise BadInput(f"pod {args.pod} is {phase or 'unknown'}{'' if spec.get('nodeName') else ', unscheduled'}: "
                       "only a running pod can be checkpointed")  # fmt: skip
    containers = tuple(args.container or [c["name"] for c in spec.get("containers") or []])
    if args.dry_run:
        emit({"pod": args.pod, "to": args.to, "refused": False, "containers": list(containers)},
             f"OK: {args.pod} may move to {args.to} (dry run: nothing done)\n", args.output)  # fmt: skip
        return 0
    if not args.registry:
        raise BadInput("migrate: --registry HOST[:PORT] is required (where the checkpoint images go)")
    request = MigrationRequest(namespace, name, containers, spec["nodeName"], args.to,
                               keep_checkpoint=args.keep_checkpoint)
    steps = KubeMigrationSteps(api, args.registry, insecure_registry=args.insecure_registry,
                               kubelet_direct=args.kubelet_direct)
    outcome = run_migration(request, steps, progress=lambda line: print(line, file=sys.stderr, flush=True))
    document = {"pod": args.pod, "to": args.to, "ok": outcome.ok, "done": outcome.done,
                "archives": outcome.archives, "images": outcome.images,
                "restored": outcome.restored, "kept": outcome.kept,
                "error": str(outcome.failed) if outcome.failed else None}  # fmt: skip
    if outcome.failed is not None:
        kept = "the source pod keeps running" if outcome.source_untouched else "both pods may exist now"
        emit(document, f"FAILED at {outcome.failed}\n{kept}\n", args.output)
        return 1
    emit(document, f"migrated {args.pod} to {args.to} as {outcome.restored}\n", args.output)
    return 0
