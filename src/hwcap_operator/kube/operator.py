"""Run the operator: kopf reconcilers, the pod webhook (TLS) and the health/metrics endpoint in one process."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kopf
from kubernetes.client import ApiClient

from hwcap_operator.admission.entrypoint import EntrypointResolver
from hwcap_operator.admission.model import MutationConfig
from hwcap_operator.admission.selection import never_touched_namespaces
from hwcap_operator.domain.node_features import NodeFeatures
from hwcap_operator.domain.policy import MaskValidator, no_validation
from hwcap_operator.kube import http_server
from hwcap_operator.kube.asyncgen_order import AsyncGeneratorsClosedInOrder
from hwcap_operator.kube.client import api_client, connection_info
from hwcap_operator.kube.events import api_event_poster, api_event_sink
from hwcap_operator.kube.handlers import build_registry, configure_settings
from hwcap_operator.kube.leader import LeaseElector, LeaseTiming, default_identity
from hwcap_operator.kube.metrics import OperatorMetrics
from hwcap_operator.kube.node_list import NodeFollower
from hwcap_operator.kube.pullsecrets import PullSecretReader
from hwcap_operator.kube.reconcile import Reconciler
from hwcap_operator.kube.registry import OciResolver
from hwcap_operator.kube.view import ClusterView
from hwcap_operator.kube.webhook import make_decider
from hwcap_operator.kube.webhook_sync import WebhookConfigSync, listed_domains, served_domains

log = logging.getLogger("hwcap_operator.operator")


@dataclass
class OperatorOptions:
    """Everything ``hwcap-operator run`` can be told (the chart passes these as flags)."""

    namespace: str
    init_image: str
    kubeconfig: str | None = None
    webhook_host: str = "0.0.0.0"
    webhook_port: int = 9443  # 0 disables the webhook
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    metrics_host: str = "0.0.0.0"
    metrics_port: int = 8080  # 0 disables health and metrics
    excluded_namespaces: frozenset[str] = frozenset()
    nfd_namespace: str = "node-feature-discovery"
    #: The Lease (in ``namespace``) whose holder is the one replica that writes; None: this process is the only
    #: replica and always writes.
    leader_lease: str | None = None
    leader_identity: str | None = None
    lease_timing: LeaseTiming = field(default_factory=LeaseTiming)
    resync_seconds: float = 300.0
    cert_reload_seconds: float = 30.0
    webhook_check_seconds: float = 60.0
    #: None: look image entrypoints up in their registries (pull secrets honoured); NoResolver() disables it.
    resolver: EntrypointResolver | None = None
    insecure_registries: frozenset[str] = frozenset()
    validate: MaskValidator = no_validation
    #: The MutatingWebhookConfiguration whose entries the operator keeps at one per served domain (None: the
    #: configuration is left as installed).
    webhook_configuration: str | None = None


def _count_node_issue(metrics: OperatorMetrics, node: NodeFeatures) -> None:
    """One count per problem kind each time a node's data is (re)read with problems; logged with the node."""
    source = node.source or "none"
    for reason, present in (("malformed", node.errors), ("unknown-feature", node.unknown_features),
                            ("sources-disagree", node.warnings)):  # fmt: skip
        if present:
            metrics.node_source_errors.labels(source=source, reason=reason).inc()
    if node.errors:
        log.warning("node feature data unusable", extra={"node": node.name, "errors": "; ".join(node.errors)})


async def _keep_webhook_configuration(sync: WebhookConfigSync, options: OperatorOptions, api: ApiClient,
                                      may_write: Callable[[], bool]) -> None:  # fmt: skip
    """Re-check the webhook configuration every ``webhook_check_seconds``, whatever the domains do.

    ``helm upgrade`` re-renders the chart's broad entry; without this a cluster whose domains are idle would
    send every pod to the webhook until the next domain resync. One GET (and a LIST of domains) per period.
    """
    while True:
        await asyncio.sleep(options.webhook_check_seconds)
        if not may_write():
            continue
        try:
            await asyncio.to_thread(lambda: sync.sync(listed_domains(api, options.namespace), force=True))
        except Exception:
            log.exception("periodic check of the webhook configuration failed; retrying next period")


async def run_operator(options: OperatorOptions, stop_flag: threading.Event | asyncio.Event | None = None,
                       ready_flag: threading.Event | asyncio.Event | None = None) -> None:  # fmt: skip
    """Serve until ``stop_flag`` (or a signal, when run from the CLI)."""
    metrics = OperatorMetrics()
    view = ClusterView(operator_namespace=options.namespace, on_node_issue=lambda n: _count_node_issue(metrics, n),
                       never_touched=never_touched_namespaces(options.namespace, options.nfd_namespace,
                                                              options.excluded_namespaces))  # fmt: skip
    client = api_client(options.kubeconfig)
    reconciler = Reconciler(view, client, metrics, api_event_poster(client), options.validate)
    secrets = PullSecretReader(client)
    resolver = options.resolver or OciResolver(
        secrets, insecure_registries=options.insecure_registries, credential_problems=secrets.problems,
        on_cache=lambda result: metrics.entrypoint_cache.labels(result=result).inc(),
    )  # fmt: skip
    elector: LeaseElector | None = None
    if options.leader_lease is not None:
        elector = LeaseElector(client, options.namespace, options.leader_lease,
                               options.leader_identity or default_identity(), options.lease_timing,
                               on_change=metrics.set_leader)  # fmt: skip
    may_write = elector.is_leader if elector is not None else (lambda: True)
    reconciler.may_write = may_write
    metrics.set_leader(elector is None)
    webhook_sync: WebhookConfigSync | None = None
    if options.webhook_configuration:
        sync = webhook_sync = WebhookConfigSync(client, options.webhook_configuration, never_touched_namespaces(
            options.namespace, options.nfd_namespace, options.excluded_namespaces), options.resync_seconds)

        def sync_served() -> None:
            sync.sync(served_domains(view))

        reconciler.webhook_sync = sync_served
    registry = build_registry(view, reconciler, resync_seconds=options.resync_seconds)
    mutation = MutationConfig(operator_namespace=options.namespace, init_image=options.init_image,
                              nfd_namespace=options.nfd_namespace,
                              extra_excluded_namespaces=options.excluded_namespaces)  # fmt: skip
    started = asyncio.Event()
    nodes = NodeFollower(client, view)
    runners: list[Any] = []
    reloads: list[asyncio.Task[None]] = []

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        return connection_info(client)

    async def started_leading() -> None:
        """A new leader: bring the webhook configuration in line, then re-evaluate every domain."""
        if (initial := webhook_sync) is not None:
            # From the API, not the view (which may still be loading): a cluster without domains gets an empty
            # list (the API server never calls us), and a domain deleted while nobody led loses its entry.
            try:
                await asyncio.to_thread(lambda: initial.sync(listed_domains(client, options.namespace)))
            except Exception:
                log.exception("initial sync of the webhook configuration failed; domain reconciles retry")
        view.wake(list(view.domains))

    if elector is not None:
        elector.on_started_leading = started_leading

    @kopf.on.startup(registry=registry)
    async def startup(settings: kopf.OperatorSettings, **_: Any) -> None:
        configure_settings(settings)
        # Before any watch or daemon: the first evaluation of every domain sees every node (see node_list).
        await nodes.start()
        if elector is None:
            await started_leading()
        else:
            reloads.append(asyncio.create_task(elector.run()))
        if (initial := webhook_sync) is not None:
            reloads.append(asyncio.create_task(_keep_webhook_configuration(initial, options, client, may_write)))
        if options.webhook_port:
            if options.tls_cert_file is None or options.tls_key_file is None:
                raise kopf.PermanentError("the webhook needs --tls-cert-file and --tls-key-file (or --webhook-port 0)")
            app = http_server.webhook_app(make_decider(view, mutation, resolver), metrics, api_event_sink(client))
            tls = http_server.server_ssl_context(options.tls_cert_file, options.tls_key_file)
            runners.append(await http_server.start_site(app, options.webhook_host, options.webhook_port, tls))
            reloads.append(asyncio.create_task(http_server.reload_certificate_forever(
                tls, options.tls_cert_file, options.tls_key_file, options.cert_reload_seconds)))  # fmt: skip
        if options.metrics_port:
            health = http_server.health_app(metrics, ready=lambda: started.is_set() and view.loaded)
            runners.append(await http_server.start_site(health, options.metrics_host, options.metrics_port, None))
        started.set()
        log.info("operator started", extra={"namespace": options.namespace, "webhook_port": options.webhook_port,
                                            "metrics_port": options.metrics_port})  # fmt: skip

    @kopf.on.cleanup(registry=registry)
    async def cleanup(**_: Any) -> None:
        nodes.stop()
        for task in reloads:
            task.cancel()
        if elector is not None:
            await asyncio.to_thread(elector.release)
        for runner in runners:
            await runner.cleanup()
        client.close()  # type: ignore[no-untyped-call]

    async with AsyncGeneratorsClosedInOrder():  # kopf can leave its watch generators suspended when it stops
        await kopf.operator(registry=registry, clusterwide=True, standalone=True, stop_flag=stop_flag,
                            ready_flag=ready_flag)
