"""Leader election on a ``coordination.k8s.io/v1`` Lease: every replica watches and answers admissions, only
the holder of the Lease writes (domain status, member labels, Events about domains, the webhook configuration).

Why not kopf peering: a paused kopf stops its watches, so a standby's webhook would answer from a frozen view,
and replicas of one Deployment get the same default priority and pause each other. Why hand-written rather than
``kubernetes.leaderelection``: that module builds its ``LeaseLock`` on the library's global default client (our
``--kubeconfig`` and credentials would be ignored), runs blocking loops in threads that cannot be stopped or
release the Lease, and writes without a field manager. What is left is one read and one optimistic-concurrency
write (the Lease's resourceVersion) per period, the same protocol as client-go's leader election.

Safety: a standby takes over only after it has seen the same Lease record unchanged for ``duration`` on its own
monotonic clock; the holder stops writing once its last successful renewal (timed from *before* the request)
is older than ``renew_deadline`` < ``duration``. Clock skew between replicas therefore does not matter.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import socket
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from hwcap_operator.kube.client import FIELD_MANAGER

log = logging.getLogger("hwcap_operator.leader")


@dataclass(frozen=True)
class LeaseTiming:
    """Seconds. Failover after the holder dies ≤ ``retry_every + duration + retry_every`` (12 s by default)."""

    duration: float = 10.0
    renew_every: float = 2.0
    retry_every: float = 1.0
    renew_deadline: float = 7.0
    #: Per API call; a hung apiserver connection must not hold the loop past the renew deadline.
    request_timeout: float = 3.0


def default_identity() -> str:
    """The pod's name (downward API ``POD_NAME``); elsewhere host and pid, so two local processes differ."""
    return os.environ.get("POD_NAME") or f"{socket.gethostname()}-{os.getpid()}"


class LeaseElector:
    """Acquire and renew one Lease; ``is_leader()`` is what every write checks."""

    def __init__(self, api: client.ApiClient, namespace: str, name: str, identity: str,
                 timing: LeaseTiming = LeaseTiming(),
                 on_started_leading: Callable[[], Coroutine[Any, Any, None]] | None = None,
                 on_change: Callable[[bool], None] | None = None) -> None:  # fmt: skip
        self.api, self.namespace, self.name, self.identity, self.timing = api, namespace, name, identity, timing
        self.on_started_leading, self.on_change = on_started_leading, on_change
        self._renewed_at: float | None = None
        self._observed: tuple[Any, ...] | None = None
        self._observed_at = 0.0
        self._tasks: set[asyncio.Task[None]] = set()

    def is_leader(self) -> bool:
        renewed = self._renewed_at
        return renewed is not None and time.monotonic() - renewed < self.timing.renew_deadline

    async def run(self) -> None:
        """Forever: renew while leading, otherwise try to acquire; API errors only delay the next attempt."""
        was = False
        while True:
            # Leadership that lapsed during the sleep (renewals failing fast) is reported before the next
            # attempt, so a lapse followed by a renewal still counts as lost and then acquired again.
            was = self._report(was, self.is_leader())
            try:
                await asyncio.to_thread(self.try_acquire_or_renew)
            except Exception as exc:  # apiserver down, timeouts, 5xx: retried next period
                log.warning("lease %s/%s not renewed: %s", self.namespace, self.name, exc)
            was = self._report(was, self.is_leader())
            await asyncio.sleep(self.timing.renew_every if was else self.timing.retry_every)

    def _report(self, was: bool, now: bool) -> bool:
        """Log, ``on_change`` and (on acquiring) ``on_started_leading`` when leadership changed; returns ``now``."""
        if now != was:
            log.info("leadership %s", "acquired" if now else "lost",
                     extra={"identity": self.identity, "lease": f"{self.namespace}/{self.name}"})  # fmt: skip
            if self.on_change is not None:
                self.on_change(now)
            if now and self.on_started_leading is not None:
                task = asyncio.create_task(self.on_started_leading())
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        return now

    def try_acquire_or_renew(self) -> bool:
        """One attempt (blocking; run it in a worker thread). True when this replica holds the Lease now."""
        started = time.monotonic()
        coordination = client.CoordinationV1Api(self.api)
        now = dt.datetime.now(dt.UTC)
        timeout = self.timing.request_timeout
        try:
            lease = coordination.read_namespaced_lease(self.name, self.namespace, _request_timeout=timeout)
        except ApiException as exc:
            if exc.status != 404:
                raise
            spec = client.V1LeaseSpec(holder_identity=self.identity, lease_duration_seconds=int(self.timing.duration),
                                      acquire_time=now, renew_time=now, lease_transitions=0)  # fmt: skip
            body = client.V1Lease(metadata=client.V1ObjectMeta(name=self.name, namespace=self.namespace), spec=spec)
            return self._write(lambda: coordination.create_namespaced_lease(
                self.namespace, body, field_manager=FIELD_MANAGER, _request_timeout=timeout), started)  # fmt: skip
        spec = lease.spec or client.V1LeaseSpec()
        holder = spec.holder_identity or ""
        if holder and holder != self.identity:
            seen = (holder, spec.renew_time, lease.metadata.resource_version if lease.metadata else None)
            if seen != self._observed:
                self._observed, self._observed_at = seen, started
                return False
            if started - self._observed_at < float(spec.lease_duration_seconds or self.timing.duration):
                return False
            log.info("lease of %s expired; taking over", holder)
        lease.spec = self._spec(spec, now, taking=holder != self.identity)
        # metadata.resourceVersion rides along: a concurrent writer turns this into a 409, never two holders.
        return self._write(lambda: coordination.replace_namespaced_lease(
            self.name, self.namespace, lease, field_manager=FIELD_MANAGER, _request_timeout=timeout),
            started)  # fmt: skip

    def release(self) -> None:
        """On a clean stop: hand the Lease over at once instead of making the next replica wait ``duration``."""
        if not self.is_leader():
            return
        self._renewed_at = None
        coordination = client.CoordinationV1Api(self.api)
        timeout = self.timing.request_timeout
        for _ in range(3):  # a renewal still in flight may have moved the resourceVersion: read again
            try:
                lease = coordination.read_namespaced_lease(self.name, self.namespace, _request_timeout=timeout)
                if lease.spec is None or lease.spec.holder_identity != self.identity:
                    return
                lease.spec.holder_identity = None
                coordination.replace_namespaced_lease(self.name, self.namespace, lease, field_manager=FIELD_MANAGER,
                                                      _request_timeout=timeout)  # fmt: skip
                return
            except ApiException as exc:
                if exc.status != 409:
                    log.warning("lease %s/%s not released: %s", self.namespace, self.name, exc.reason)
                    return
            except Exception as exc:  # the Lease then simply expires
                log.warning("lease %s/%s not released: %s", self.namespace, self.name, exc)
                return

    def _spec(self, spec: client.V1LeaseSpec, now: dt.datetime, *, taking: bool) -> client.V1LeaseSpec:
        spec.holder_identity = self.identity
        spec.lease_duration_seconds = int(self.timing.duration)
        spec.renew_time = now
        if taking:
            spec.acquire_time = now
            spec.lease_transitions = int(spec.lease_transitions or 0) + 1
        return spec

    def _write(self, call: Callable[[], object], started: float) -> bool:
        try:
            call()
        except ApiException as exc:
            if exc.status == 409:  # another replica wrote first
                return False
            raise
        self._renewed_at = started
        self._observed = None
        return True


def always_leader() -> bool:
    """The single-replica default (no ``--leader-lease``): this process is the only writer."""
    return True
