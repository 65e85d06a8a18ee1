"""Prometheus metrics of the operator, defined once (names follow Prometheus conventions, units in names).

A dedicated registry keeps tests and multiple operator instances in one process from colliding, and keeps
the exposition free of unrelated default collectors unless the caller adds them.
"""

from __future__ import annotations

import contextlib
import platform
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import metadata

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import choose_encoder

from hwcap_operator.domain import api

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


@dataclass
class OperatorMetrics:
    """Every metric the operator exports; one instance per running operator."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.reconciles = Counter(
            "hwcap_reconcile_total", "Reconciliations by object kind and result.", ["kind", "result"], registry=r
        )
        self.reconcile_errors = Counter(
            "hwcap_reconcile_errors_total", "Reconciliations that failed, by object kind.", ["kind"], registry=r
        )
        self.reconcile_duration = Histogram(
            "hwcap_reconcile_duration_seconds",
            "Time spent in one reconciliation, by object kind.",
            ["kind"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.domain_members = Gauge(
            "hwcap_domain_member_nodes", "Member nodes of a MigrationDomain.", ["domain"], registry=r
        )
        self.domain_excluded = Gauge(
            "hwcap_domain_excluded_nodes", "Candidate nodes excluded from a MigrationDomain.", ["domain"], registry=r
        )
        self.domain_ready = Gauge(
            "hwcap_domain_ready", "1 while a domain's Ready condition is True, else 0.", ["domain"], registry=r
        )
        self.domain_mask_refused = Gauge(
            "hwcap_domain_mask_refused",
            "1 while a domain's computed mask is refused (MaskValid False: hides a security feature, or invalid).",
            ["domain"],
            registry=r,
        )
        self.domain_mask_features = Gauge(
            "hwcap_domain_mask_features", "Features (set bits) advertised by a domain's mask.", ["domain"], registry=r
        )
        self.domain_stale_pods = Gauge(
            "hwcap_domain_stale_pods",
            "Pods injected with an older mask id than the domain's current one.",
            ["domain"],
            registry=r,
        )
        self.domain_unmasked_pods = Gauge(
            "hwcap_domain_unmasked_pods",
            "Running pods a domain selects that carry no mask of it, by reason (NotInjected, OptedOut).",
            ["domain", "reason"],
            registry=r,
        )
        self.domain_nodes_without_agent_report = Gauge(
            "hwcap_domain_nodes_without_agent_report",
            "Nodes a domain's selector picks that carry no agent report (agent.hwcap.dev/hwcap annotation).",
            ["domain"],
            registry=r,
        )
        self.node_source_errors = Counter(
            "hwcap_node_source_errors_total",
            "Malformed or unknown node feature data, by source and reason.",
            ["source", "reason"],
            registry=r,
        )
        self.admissions = Counter(
            "hwcap_admission_requests_total", "Pod admission reviews by result.", ["result"], registry=r
        )
        self.admission_duration = Histogram(
            "hwcap_admission_duration_seconds",
            "Time to compute one pod mutation.",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.leader = Gauge(
            "hwcap_leader", "1 while this replica holds the leader Lease (the one that writes), else 0.", registry=r
        )
        self.entrypoint_cache = Counter(
            "hwcap_entrypoint_cache_requests_total",
            "Image entrypoint lookups by cache result (hit or miss).",
            ["result"],
            registry=r,
        )

        self.build_info = Gauge(
            "hwcap_build_info",
            "Always 1; the labels say which operator version runs (join on it in queries).",
            ["version", "python_version"],
            registry=r,
        )
        self.build_info.labels(version=_version(), python_version=platform.python_version()).set(1)

    def publish_conditions(self, domain: str, conditions: Sequence[api.Condition]) -> None:
        """The domain's Ready and mask-refused gauges from the conditions just computed for its status."""
        status = {c.type: c for c in conditions}
        ready, valid = status.get("Ready"), status.get("MaskValid")
        self.domain_ready.labels(domain=domain).set(1 if ready is not None and ready.status == "True" else 0)
        refused = valid is not None and valid.status == "False"
        self.domain_mask_refused.labels(domain=domain).set(1 if refused else 0)

    def _domain_gauges(self) -> tuple[Gauge, ...]:
        return (self.domain_members, self.domain_excluded, self.domain_mask_features, self.domain_stale_pods,
                self.domain_ready, self.domain_mask_refused, self.domain_nodes_without_agent_report)  # fmt: skip

    def forget_domain(self, domain: str) -> None:
        """Drop a deleted domain's series so dashboards do not show ghosts."""
        for gauge in self._domain_gauges():
            with contextlib.suppress(KeyError):
                gauge.remove(domain)
        for reason in ("NotInjected", "OptedOut"):
            with contextlib.suppress(KeyError):
                self.domain_unmasked_pods.remove(domain, reason)

    def forget_all_domains(self) -> None:
        """Drop every per-domain series: only the leader evaluates domains, so a standby's would be stale."""
        for gauge in (*self._domain_gauges(), self.domain_unmasked_pods):
            gauge.clear()

    def set_leader(self, leading: bool) -> None:
        """``hwcap_leader``; a replica that does not (or no longer) hold the Lease exports no per-domain series,
        so ``max()`` across replicas after a failover never reads the old leader's last values."""
        self.leader.set(int(leading))
        if not leading:
            self.forget_all_domains()

    def exposition(self, accept: str | None = None) -> tuple[bytes, str]:
        """The body and Content-Type for a scrape: OpenMetrics when ``accept`` (the Accept header) asks for it,
        else the Prometheus text format (prometheus_client negotiates, as its own HTTP handler does)."""
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type


def _version() -> str:
    try:
        return metadata.version("hwcap-operator")
    except metadata.PackageNotFoundError:
        return "unknown"
