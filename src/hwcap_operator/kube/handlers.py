"""kopf handlers: translate watch events into ClusterView updates and wake the affected domain daemons.

Thin on purpose. NodeFeatures, namespaces and pods are *indexed* (kopf fills every index before any daemon
starts) and Nodes are LISTed by the startup handler before any daemon (kube/node_list.py), so a restarted
operator never evaluates a domain against a half-listed cluster and never flaps the member labels; each
MigrationDomain has one daemon that sleeps until something it depends on changed, then runs
:class:`~hwcap_operator.kube.reconcile.Reconciler`. No handler writes to a
Node except the member-label patch, and no persistence annotations are put on Nodes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from typing import Any

import kopf

from hwcap_operator import keys
from hwcap_operator.kube.reconcile import Reconciler
from hwcap_operator.kube.view import ClusterView

log = logging.getLogger("hwcap_operator.handlers")

NFD_GROUP, NFD_VERSION, NFD_PLURAL = keys.NFD_GROUP, keys.NFD_VERSION, keys.NFD_PLURAL

#: How often a standby asks whether a domain being deleted is gone (the leader removes it within a reconcile).
STANDBY_DELETE_POLL_SECONDS = 1.0


def retry_delay(failures: int, *, base: float = 0.5, cap: float = 60.0) -> float:
    """Exponential back-off with full jitter after ``failures`` consecutive failed reconciles (0: none).

    Replicas and domains that failed together (the apiserver restarted) must not retry in lock-step.
    """
    return 0.0 if failures <= 0 else random.uniform(0.0, min(cap, base * 2 ** min(failures, 16)))


def build_registry(view: ClusterView, reconciler: Reconciler, *, resync_seconds: float = 300.0,
                   debounce_seconds: float = 0.1) -> kopf.OperatorRegistry:  # fmt: skip
    """All handlers of the operator on a registry of their own (tests can run several operators)."""
    registry = kopf.OperatorRegistry()

    # ---- inputs: indexes (pre-populated before daemons start) and deletions --------------------------
    # Nodes are not watched through kopf: kube/node_list.py lists and follows them (why: see there).

    @kopf.index(NFD_GROUP, NFD_VERSION, NFD_PLURAL, registry=registry)
    async def nodefeature_index(body: kopf.Body, **_: Any) -> None:
        view.wake(view.update_nodefeature(body))

    @kopf.on.event(NFD_GROUP, NFD_VERSION, NFD_PLURAL, registry=registry,
                   when=lambda type, **_: type == "DELETED")  # fmt: skip
    async def nodefeature_deleted(body: kopf.Body, **_: Any) -> None:
        view.wake(view.delete_nodefeature(body))

    @kopf.index("namespaces", registry=registry)
    async def namespace_index(body: kopf.Body, **_: Any) -> None:
        view.wake(view.update_namespace(body))

    @kopf.on.event("namespaces", registry=registry)
    async def namespace_event(name: str, type: str | None, **_: Any) -> None:
        # kopf runs no handler but index handlers until every index (domains, NodeFeatures when the CRD exists,
        # namespaces, pods) holds its first complete LIST, and the nodes were LISTed before any watch started;
        # namespaces always exist, so the first call here is the moment the view is loaded and the webhook may
        # decide.
        view.mark_loaded()
        if type == "DELETED":
            view.delete_namespace(name)

    # Every pod, not only those we injected: a pod of a domain without our annotations is an escape (admitted
    # while the webhook was down under Ignore, created before the domain, or opted out) and must be reported.
    @kopf.index("pods", registry=registry)
    async def pod_index(body: kopf.Body, **_: Any) -> None:
        view.wake(view.update_pod(body))

    @kopf.on.event("pods", registry=registry, when=lambda type, **_: type == "DELETED")
    async def pod_deleted(namespace: str | None, name: str, **_: Any) -> None:
        view.wake(view.delete_pod(namespace or "", name))

    # ---- the domains ---------------------------------------------------------------------------------
    @kopf.index(keys.GROUP, keys.VERSION, keys.PLURAL, registry=registry)
    async def domain_index(body: kopf.Body, **_: Any) -> None:
        # Indexes are filled before any daemon runs: the first reconcile after a restart already knows every
        # domain, so the webhook configuration sync (one entry per served domain) never drops one that
        # simply was not listed yet.
        view.upsert_domain(body)

    @kopf.on.event(keys.GROUP, keys.VERSION, keys.PLURAL, registry=registry,
                   when=lambda type, **_: type != "DELETED")  # fmt: skip
    async def domain_changed(body: kopf.Body, name: str, **_: Any) -> None:
        record = view.upsert_domain(body)
        # Another domain's selector may now cover this one's nodes, and the webhook must see a new spec.
        record.wake.set()
        view.refresh_webhook_domains()
        del name

    @kopf.daemon(keys.GROUP, keys.VERSION, keys.PLURAL, registry=registry, cancellation_timeout=5.0)
    async def domain_daemon(body: kopf.Body, name: str, stopped: kopf.DaemonStopped, **_: Any) -> None:
        record = view.domains.get(name) or view.upsert_domain(body)
        record.wake.set()  # evaluate once at start (or after an operator restart)
        failures = 0
        loop = asyncio.get_running_loop()
        last = -debounce_seconds
        while not stopped:
            with contextlib.suppress(TimeoutError):  # a timeout is the periodic resync: writes nothing if idle
                await asyncio.wait_for(record.wake.wait(), timeout=resync_seconds)
            # Leading edge: a change after a quiet spell is evaluated at once; the rest of a burst (node events,
            # the echoes of our own writes) folds into at most one evaluation per debounce period.
            await asyncio.sleep(max(0.0, last + debounce_seconds - loop.time()))
            last = loop.time()
            record.wake.clear()
            if stopped:
                break
            ok = await reconciler.reconcile(view.domains.get(name, record))
            failures = 0 if ok else failures + 1
            if failures:
                record.wake.set()  # retry after the back-off, even if nothing else changes
                await asyncio.sleep(retry_delay(failures))

    @kopf.on.delete(keys.GROUP, keys.VERSION, keys.PLURAL, registry=registry)
    async def domain_deleted(name: str, uid: str, **_: Any) -> None:
        # Only the leader releases the members and then lets the finalizer go. A standby must neither write nor
        # succeed (its success would drop the shared finalizer first) nor fail (a failed handler is an Error Event
        # and a retry annotation on the domain, and the domain would stay in its view: its webhook would go on
        # masking pods for a deleted domain). It waits until the domain is gone, or until it leads itself.
        while not reconciler.may_write():
            if not await asyncio.to_thread(reconciler.still_stored, name, uid):
                reconciler.forget(name)
                return
            await asyncio.sleep(STANDBY_DELETE_POLL_SECONDS)
        await asyncio.to_thread(reconciler.release_members, name)
        reconciler.forget(name)
        await asyncio.to_thread(reconciler.sync_webhook_configuration)  # its webhook entry goes too

    return registry


def configure_settings(settings: kopf.OperatorSettings) -> None:
    """Settings that keep kopf's own bookkeeping off built-in objects and in our own API group.

    kopf always runs standalone: every replica keeps its watches and indexes (its webhook answers from a live
    view); who writes is decided by the leader Lease (kube/leader.py), not by kopf peering, which pauses
    watching replicas altogether.
    """
    settings.persistence.finalizer = f"{keys.GROUP}/finalizer"
    # kopf logs each handler success at INFO with its settings attached: a line per watch event, thousands at
    # startup on a large cluster (measurable CPU). Handler failures are warnings and errors: still shown.
    logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    # kopf's initial LIST in pages (default: the whole list at once, every object parsed before the first is
    # handled: the operator's peak memory on a large cluster).
    settings.watching.chunk_size = 500
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=keys.GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=keys.GROUP, key="last-handled-configuration"
    )
    settings.posting.reporting_component = "hwcap-operator"
    settings.posting.level = logging.INFO
    settings.queueing.worker_limit = None  # indexes over thousands of pods must not deadlock
    settings.watching.inactivity_timeout = 70
    settings.peering.standalone = True
