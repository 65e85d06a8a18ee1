"""hwcapctl level: the arm64 boot parameters that take a node down to a mask (ID-register overrides).

From files (``--mask MASK --node FILE [--kernel RELEASE]``) or from the cluster (``--domain D --node N``: the
domain's published mask, the Node's features and the kernel release its kubelet reports). Exit 0 when the
parameters level the node exactly, 1 when something stays above the mask (the output says what and why).
"""

from __future__ import annotations

import argparse

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from hwcap_operator.cli import verbs_cluster
from hwcap_operator.cli.inputs import BadInput, parse_mask_spec, read_feature_file
from hwcap_operator.cli.output import emit
from hwcap_operator.domain.leveling import DEFAULT_KERNEL, LevelingError, LevelingPlan, plan_leveling
from hwcap_operator.domain.node_features import node_features
from hwcap_operator.mask import FeatureMask, MaskParseError

EXIT_LEVELLED, EXIT_ABOVE_MASK = 0, 1


def level(args: argparse.Namespace) -> int:
    if args.domain:
        if args.mask:
            raise BadInput("level: give either --mask MASK --node FILE, or --domain NAME --node NODE")
        return _level_domain(args)
    if not args.mask:
        raise BadInput("level: --mask is required (or --domain NAME for a node of the cluster)")
    node = read_feature_file(args.node).mask
    mask = parse_mask_spec(args.mask)
    kernel = args.kernel or DEFAULT_KERNEL
    return _report(args.node, node, mask, kernel, args.allow_hiding_security, args.output)


def _level_domain(args: argparse.Namespace) -> int:
    api_client_ = verbs_cluster._client(args)
    spec, status = verbs_cluster._parse(verbs_cluster._get_domain(api_client_, args.domain))
    if status is None or status.mask is None:
        raise BadInput(f"MigrationDomain {args.domain!r} has no published mask yet")
    try:
        mask = FeatureMask.parse(status.mask.canonical)
        node_obj = client.CoreV1Api(api_client_).read_node(args.node)
    except MaskParseError as exc:
        raise BadInput(f"MigrationDomain {args.domain!r}: published mask unreadable: {exc}") from exc
    except ApiException as exc:
        if exc.status == 404:
            raise BadInput(f"node {args.node!r} not found") from exc
        raise
    target = node_features(verbs_cluster._plain(api_client_, node_obj))
    if target.mask is None:
        raise BadInput(f"node {args.node}: no usable feature data: {'; '.join(target.errors)}")
    kernel = args.kernel or target.kernel_release or DEFAULT_KERNEL
    allow = args.allow_hiding_security or spec.allow_hiding_security_features
    return _report(args.node, target.mask, mask, kernel, allow, args.output)


def _report(node_name: str, node: FeatureMask, mask: FeatureMask, kernel: str, allow: bool, fmt: str) -> int:
    try:
        plan = plan_leveling(node, mask, kernel, allow_hiding_security=allow)
    except LevelingError as exc:
        raise BadInput(str(exc)) from exc
    document = {"node": node_name, "maskId": mask.mask_id, **plan.to_dict()}
    emit(document, _table(node_name, plan), fmt)  # type: ignore[arg-type]
    return EXIT_LEVELLED if plan.levelled else EXIT_ABOVE_MASK


def _table(node_name: str, plan: LevelingPlan) -> str:
    def names(values: tuple[str, ...]) -> str:
        return " ".join(values) if values else "<none>"

    verdict = (
        "levelled by boot parameters"
        if plan.levelled and plan.parameters
        else "already at the mask"
        if plan.levelled
        else "not levellable exactly"
    )
    lines = [
        f"NODE {node_name}   KERNEL {plan.kernel} (override table {plan.table})   {verdict}",
        f"boot parameters:   {plan.cmdline or '<none>'}",
        f"removes:           {names(plan.removed)}",
        f"removed words:     hwcap={plan.removed_mask.hex_words()[0]} hwcap2={plan.removed_mask.hex_words()[1]}",
        f"id registers:      {names(plan.id_register_effects)}",
        f"still above mask:  {names(plan.remaining)}",
    ]
    if plan.blocked_security:
        lines.append(f"  security, kept (needs allowHidingSecurityFeatures): {names(plan.blocked_security)}")
    if plan.no_override:
        lines.append(f"  no override on this kernel: {names(plan.no_override)}")
    return "\n".join(lines) + "\n"
