"""``hwcap-operator``: run the operator (reconciler + webhook) or the node agent.

The Helm chart runs ``hwcap-operator run`` in the Deployment and ``hwcap-operator agent`` in the DaemonSet;
``make demo`` and the tests run the same commands as local processes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from hwcap_operator.logsetup import configure_logging


def _csv(text: str) -> frozenset[str]:
    return frozenset(p.strip() for p in text.split(",") if p.strip())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hwcap-operator", description=__doc__)
    parser.add_argument("--log-format", choices=("json", "text"), default="text")
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--kubeconfig", default=None, help="default: in-cluster, else $KUBECONFIG")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="the reconciler and the pod webhook")
    run.add_argument("--namespace", default=os.environ.get("POD_NAMESPACE", "hwcap-operator"),
                     help="the operator's own namespace (never injected)")  # fmt: skip
    run.add_argument("--init-image", required=True, help="image of the init container that installs hwcap-exec")
    run.add_argument("--webhook-host", default="0.0.0.0")
    run.add_argument("--webhook-port", type=int, default=9443, help="0 disables the webhook")
    run.add_argument("--tls-cert-file", type=Path)
    run.add_argument("--tls-key-file", type=Path)
    run.add_argument("--metrics-host", default="0.0.0.0")
    run.add_argument("--metrics-port", type=int, default=8080, help="/healthz, /readyz, /metrics; 0 disables")
    run.add_argument("--excluded-namespaces", type=_csv, default=frozenset(), help="comma-separated")
    run.add_argument("--nfd-namespace", default="node-feature-discovery")
    run.add_argument("--resync-seconds", type=float, default=300.0)
    run.add_argument("--webhook-check-seconds", type=float, default=60.0,
                     help="how often the webhook configuration is re-checked for outside changes (helm upgrade)")
    run.add_argument("--webhook-configuration", default=None, metavar="NAME",
                     help="MutatingWebhookConfiguration kept at one entry per domain (its first entry is the "
                     "template); default: leave it as installed")
    run.add_argument("--insecure-registries", type=_csv, default=frozenset(),
                     help="registries (host:port) spoken to over plain HTTP for entrypoint lookups")
    run.add_argument("--no-registry-lookup", action="store_true",
                     help="never fetch image configs; containers without command fall to the domain's policy")
    mode = run.add_mutually_exclusive_group()
    mode.add_argument("--leader-lease", default=None, metavar="NAME",
                      help="several replicas: only the holder of this coordination.k8s.io Lease (in --namespace) "
                      "writes; every replica watches and serves the webhook")  # fmt: skip
    mode.add_argument("--standalone", action="store_true", help="one replica, always writes (the default)")
    run.add_argument("--leader-identity", default=None,
                     help="this replica's name in the Lease; default $POD_NAME, else host-pid")  # fmt: skip
    run.set_defaults(func=_run)

    agent = sub.add_parser("agent", help="the node agent (one per node, a DaemonSet)")
    agent.add_argument("--node-name", default=os.environ.get("NODE_NAME"), help="default: $NODE_NAME")
    agent.add_argument("--hwcap-exec", type=Path, default=None, help="hwcap-exec used to probe inheritance")
    agent.add_argument("--interval", type=float, default=300.0, help="seconds between observations")
    agent.add_argument("--metrics-port", type=int, default=0)
    agent.add_argument("--once", action="store_true", help="observe and publish once, then exit")
    agent.add_argument("--nodefeature-namespace", default=None, metavar="NAMESPACE",
                       help="also publish the reading as NFD NodeFeature hwcap-<node> in this namespace")  # fmt: skip
    agent.set_defaults(func=_agent)
    return parser


def _run(args: argparse.Namespace) -> int:
    from hwcap_operator.admission.entrypoint import NoResolver
    from hwcap_operator.domain.mask_checks import exec_model_validator
    from hwcap_operator.kube.operator import OperatorOptions, run_operator

    options = OperatorOptions(
        namespace=args.namespace, init_image=args.init_image, kubeconfig=args.kubeconfig,
        webhook_host=args.webhook_host, webhook_port=args.webhook_port, tls_cert_file=args.tls_cert_file,
        tls_key_file=args.tls_key_file, metrics_host=args.metrics_host, metrics_port=args.metrics_port,
        excluded_namespaces=args.excluded_namespaces, nfd_namespace=args.nfd_namespace, leader_lease=args.leader_lease,
        leader_identity=args.leader_identity,
        resync_seconds=args.resync_seconds, validate=exec_model_validator,
        insecure_registries=args.insecure_registries, resolver=NoResolver() if args.no_registry_lookup else None,
        webhook_configuration=args.webhook_configuration, webhook_check_seconds=args.webhook_check_seconds,
    )  # fmt: skip
    asyncio.run(run_operator(options))
    return 0


def _agent(args: argparse.Namespace) -> int:
    from hwcap_operator.agent.run import run
    from hwcap_operator.kube.client import api_client

    if not args.node_name:
        print("hwcap-operator agent: --node-name (or $NODE_NAME) is required", file=sys.stderr)
        return 2
    hwcap_exec = args.hwcap_exec
    if hwcap_exec is not None and not hwcap_exec.is_file():
        print(f"hwcap-operator agent: --hwcap-exec {hwcap_exec}: no such file", file=sys.stderr)
        return 2
    return run(api_client(args.kubeconfig), args.node_name, hwcap_exec, args.interval,
               args.metrics_port or None, once=args.once,
               nodefeature_namespace=args.nodefeature_namespace)  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.log_format, args.log_level)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
