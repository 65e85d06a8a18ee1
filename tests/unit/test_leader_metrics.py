"""A replica that loses the leader Lease stops exporting per-domain series (only the leader evaluates domains).

After a failover the old leader's last values would otherwise linger, and alerts taking ``max()`` across
replicas would fire on them. The elector's real run loop drives the transition; the Lease attempt itself is
replaced by "renewed once, then the apiserver is unreachable" (the renew deadline then ends leadership).
"""

from __future__ import annotations

import asyncio
import time

from kubernetes import client
from prometheus_client.parser import text_string_to_metric_families

from hwcap_operator.kube.leader import LeaseElector, LeaseTiming
from hwcap_operator.kube.metrics import OperatorMetrics


class _RenewsOnceThenUnreachable(LeaseElector):
    attempts = 0

    def try_acquire_or_renew(self) -> bool:
        self.attempts += 1
        if self.attempts == 1:
            self._renewed_at = time.monotonic()
            return True
        raise ConnectionError("apiserver unreachable")


def _series(metrics: OperatorMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    body = metrics.exposition()[0].decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(body) for s in f.samples}  # fmt: skip


def _domain_series(metrics: OperatorMetrics) -> set[str]:
    return {name for name, labels in _series(metrics) if any(k == "domain" for k, _ in labels)}


def test_losing_the_lease_drops_every_per_domain_series_and_sets_leader_to_zero() -> None:
    metrics = OperatorMetrics()
    timing = LeaseTiming(duration=1.0, renew_every=0.01, retry_every=0.01, renew_deadline=0.2)
    elector = _RenewsOnceThenUnreachable(client.ApiClient(), "ns", "lease", "me", timing, on_change=metrics.set_leader)

    async def scenario() -> None:
        task = asyncio.create_task(elector.run())
        try:
            while _series(metrics)[("hwcap_leader", ())] != 1:
                await asyncio.sleep(0.005)
            # what the leader's reconciles publish
            metrics.domain_members.labels(domain="d").set(3)
            metrics.domain_unmasked_pods.labels(domain="d", reason="NotInjected").set(1)
            metrics.publish_conditions("e", [])
            assert {"hwcap_domain_member_nodes", "hwcap_domain_unmasked_pods", "hwcap_domain_ready"} <= (
                _domain_series(metrics))  # fmt: skip
            while _series(metrics)[("hwcap_leader", ())] != 0:  # renewals fail: the deadline ends leadership
                await asyncio.sleep(0.01)
        finally:
            task.cancel()

    asyncio.run(asyncio.wait_for(scenario(), timeout=10))
    series = _series(metrics)
    assert series[("hwcap_leader", ())] == 0
    assert _domain_series(metrics) == set()


def test_a_replica_that_never_leads_exports_no_per_domain_series() -> None:
    metrics = OperatorMetrics()
    metrics.domain_ready.labels(domain="d").set(1)
    metrics.set_leader(False)
    assert _domain_series(metrics) == set()
    assert _series(metrics)[("hwcap_leader", ())] == 0
