"""One domain reconciliation: evaluate with the pure policy, then write what changed (status, labels, Events).

The writes are the only side effects and each is skipped when nothing changed, so a resync of an idle
domain costs no API call. Status is a merge patch in which removed fields are explicit nulls.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from hwcap_operator import keys
from hwcap_operator.domain import api
from hwcap_operator.domain.impact import UnmaskedPod, with_unmasked
from hwcap_operator.domain.policy import DomainState, MaskValidator, evaluate
from hwcap_operator.kube import raw_api
from hwcap_operator.kube.client import FIELD_MANAGER
from hwcap_operator.kube.leader import always_leader
from hwcap_operator.kube.metrics import OperatorMetrics
from hwcap_operator.kube.view import ClusterView, DomainRecord

log = logging.getLogger("hwcap_operator.reconcile")

#: Posts an Event: (object body, type, reason, message). kopf.event in the operator, a recorder in tests.
EventPoster = Callable[[dict[str, Any], str, str, str], None]


@dataclass
class Reconciler:
    """Everything a domain reconciliation needs; one instance per operator."""

    view: ClusterView
    api_client: client.ApiClient
    metrics: OperatorMetrics
    post_event: EventPoster
    validate: MaskValidator
    #: Brings the webhook configuration in line with the served domains (None: not managed).
    webhook_sync: Callable[[], None] | None = None
    #: True while this replica holds the leader Lease; a standby evaluates nothing and writes nothing (its
    #: view and webhook follow the leader's published status through the watch).
    may_write: Callable[[], bool] = always_leader
    #: Unmasked pods already reported per domain (namespace, name, uid): each gets one Event, not one per pass.
    reported_unmasked: dict[str, set[tuple[str, str, str]]] = field(default_factory=dict)

    def evaluate(self, record: DomainRecord) -> DomainState | None:
        if record.spec is None:
            return None
        state = evaluate(record.spec, self.view.candidates(record.spec), record.status, record.generation,
                         pods=self.view.injected_pods(record.name), validate=self.validate)  # fmt: skip
        unmasked = self.view.unmasked_pods(record.name)
        impact = with_unmasked(state.status.pod_impact, unmasked)
        return dataclasses.replace(state, status=state.status.model_copy(update={"pod_impact": impact}))

    async def reconcile(self, record: DomainRecord) -> bool:
        """Evaluate and publish one domain; False on an error (logged and counted: the caller backs off and
        retries)."""
        started = time.perf_counter()
        result = "ok"
        try:
            if not self.may_write():
                result = "standby"
            elif record.spec is None:
                await asyncio.to_thread(self._publish_invalid_spec, record)
                result = "invalid-spec"
            else:
                served = self._served(record.name)
                state = self.evaluate(record)
                assert state is not None
                await asyncio.to_thread(self._publish, record, state)
                if not served and self._served(record.name):
                    record.wake.set()  # its first mask: now its selectors can find escapes
        except ApiException as exc:
            result = "api-error"
            self.metrics.reconcile_errors.labels(kind=keys.KIND).inc()
            log.error("publishing the domain failed", extra={"domain": record.name, "status": exc.status,
                                                             "reason": exc.reason})  # fmt: skip
        except Exception:
            result = "error"
            self.metrics.reconcile_errors.labels(kind=keys.KIND).inc()
            log.exception("reconciling the domain failed", extra={"domain": record.name})
        finally:
            self.metrics.reconciles.labels(kind=keys.KIND, result=result).inc()
            self.metrics.reconcile_duration.labels(kind=keys.KIND).observe(time.perf_counter() - started)
        return result not in ("api-error", "error")

    # ---- writes (run in a worker thread: the kubernetes client is synchronous) -----------------------
    def _publish(self, record: DomainRecord, state: DomainState) -> None:
        # Labels first: once status says Ready, the webhook's placement label is already on every member.
        self._label_members(record.name, state.members)
        self._patch_status(record, state.status)
        for event in state.events:
            self.post_event(record.body, event.type, event.reason, event.message)
            if event.node and event.node in self.view.nodes:
                self.post_event(self.view.nodes[event.node], event.type, event.reason,
                                f"MigrationDomain {record.name}: {event.message}")  # fmt: skip
        self._report_unmasked(record, self.view.unmasked_pods(record.name))
        m = state.metrics
        self.metrics.domain_members.labels(domain=record.name).set(m.members)
        self.metrics.domain_excluded.labels(domain=record.name).set(m.excluded)
        self.metrics.domain_mask_features.labels(domain=record.name).set(m.mask_features)
        self.metrics.domain_stale_pods.labels(domain=record.name).set(m.stale_pods)
        self.metrics.domain_nodes_without_agent_report.labels(domain=record.name).set(
            len(self.view.candidates_without_agent_report(record.name)))  # fmt: skip
        self.metrics.publish_conditions(record.name, state.status.conditions)
        self._drop_series_unless_leading()
        record.status = state.status
        for problem in self.view.refresh_webhook_domains():
            log.error("domain cannot be served by the webhook", extra={"problem": problem})
        self.sync_webhook_configuration()

    def _drop_series_unless_leading(self) -> None:
        # Leadership lost while this publish ran: the elector's clear may already have happened, so clear again.
        if not self.may_write():
            self.metrics.forget_all_domains()

    def _served(self, domain: str) -> bool:
        return any(d.name == domain for d in self.view.webhook_domains)

    def _report_unmasked(self, record: DomainRecord, pods: Sequence[UnmaskedPod]) -> None:
        """A gauge per reason; a Warning Event on each newly found pod (at most NAME_CAP per pass) and one on
        the domain naming them: nothing unmasked is silent."""
        for reason in ("NotInjected", "OptedOut"):
            self.metrics.domain_unmasked_pods.labels(domain=record.name, reason=reason).set(
                sum(1 for p in pods if p.reason == reason))  # fmt: skip
        current = {(p.namespace, p.name, p.uid) for p in pods}
        seen = self.reported_unmasked.get(record.name, set())
        new = sorted((p for p in pods if (p.namespace, p.name, p.uid) not in seen), key=lambda p: (p.namespace, p.name))
        self.reported_unmasked[record.name] = current
        if not new:
            return
        why = {"NotInjected": "it was admitted without the hwcap-operator webhook (down under failurePolicy Ignore, "
               "or created before the domain or its namespace selection)",
               "OptedOut": f"it opted out with {keys.POD_OPT_OUT_ANNOTATION}=false"}  # fmt: skip
        for pod in new[: api.NAME_CAP]:
            body = {"apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": pod.name, "namespace": pod.namespace, "uid": pod.uid}}  # fmt: skip
            message = (f"MigrationDomain {record.name} selects this pod but it runs without the domain's mask: "
                       f"{why[pod.reason]}; recreate it to mask it")  # fmt: skip
            self.post_event(body, "Warning", "UnmaskedPod", message)
        names = ", ".join(f"{p.namespace}/{p.name} ({p.reason})" for p in new[:10])
        more = f" and {len(new) - 10} more" if len(new) > 10 else ""
        self.post_event(record.body, "Warning", "UnmaskedPods", f"{len(new)} newly found pod(s) run without "
                        f"this domain's mask: {names}{more}; see status.podImpact.unmasked")  # fmt: skip

    def sync_webhook_configuration(self) -> None:
        """One entry per served domain in the webhook configuration; failures are logged, the next reconcile
        (or the domain's periodic resync) retries."""
        if self.webhook_sync is None or not self.may_write():
            return
        try:
            self.webhook_sync()
        except Exception:
            self.metrics.reconcile_errors.labels(kind="MutatingWebhookConfiguration").inc()
            log.exception("syncing the webhook configuration failed")

    def _publish_invalid_spec(self, record: DomainRecord) -> None:
        message = f"the spec cannot be used: {record.spec_error}"
        self.metrics.domain_ready.labels(domain=record.name).set(0)
        self._drop_series_unless_leading()
        self.post_event(record.body, "Warning", "InvalidSpec", message)
        log.error("invalid MigrationDomain spec", extra={"domain": record.name, "error": record.spec_error})
        self.view.refresh_webhook_domains()
        self.sync_webhook_configuration()

    def _patch_status(self, record: DomainRecord, status: api.MigrationDomainStatus) -> None:
        new = status.model_dump(by_alias=True, mode="json", exclude_none=True)
        old = (record.status.model_dump(by_alias=True, mode="json", exclude_none=True)
               if record.status is not None else None)  # fmt: skip
        if new == old:
            return
        body = {"status": merge_patch(old or {}, new)}
        client.CustomObjectsApi(self.api_client).patch_cluster_custom_object_status(
            keys.GROUP, keys.VERSION, keys.PLURAL, record.name, body, field_manager=FIELD_MANAGER
        )

    def _label_members(self, domain: str, members: Sequence[str]) -> None:
        key = f"{keys.DOMAIN_MEMBER_LABEL_PREFIX}{domain}"
        current = self.view.labelled_members(domain)
        wanted = {m for m in members if m in self.view.nodes}
        changes = [(n, "true") for n in sorted(wanted - current)] + [(n, None) for n in sorted(current - wanted)]
        for node, value in changes:
            try:
                raw_api.patch_node(self.api_client, node, {"metadata": {"labels": {key: value}}})
            except ApiException as exc:
                if exc.status != 404:  # a node deleted meanwhile needs no label
                    raise

    def release_members(self, domain: str) -> None:
        """Remove the member label from every node (the domain is being deleted)."""
        self._label_members(domain, ())

    def still_stored(self, domain: str, uid: str) -> bool:
        """Whether this very MigrationDomain (same uid, not a namesake created since) is still in the API. An
        error reading it counts as stored: the caller waits and asks again."""
        try:
            return raw_api.read_domain_uid(self.api_client, domain) == uid
        except (ApiException, OSError) as exc:
            log.warning("reading MigrationDomain %s failed; asking again", domain, extra={"error": str(exc)})
            return True

    def forget(self, domain: str) -> None:
        """Drop a deleted domain from the view (the webhook stops serving it) and its metric series."""
        self.view.remove_domain(domain)
        self.metrics.forget_domain(domain)


def merge_patch(old: Any, new: Any) -> Any:
    """RFC 7386 merge patch turning ``old`` into ``new``: removed keys become null; lists are replaced."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        return new
    patch: dict[str, Any] = {}
    for key in old.keys() - new.keys():
        patch[key] = None
    for key, value in new.items():
        if key not in old:
            patch[key] = value
        elif old[key] != value:
            patch[key] = merge_patch(old[key], value)
    return patch
