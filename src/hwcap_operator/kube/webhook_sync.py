"""Keep the MutatingWebhookConfiguration's entries equal to what the domains want (pure part:
:mod:`hwcap_operator.admission.webhook_entries`).

Called after every domain reconcile and deletion, and once at startup from a fresh LIST of the domains (so
a cluster with no domain gets an empty list, and a domain deleted while the operator was down loses its
entry). Writes are JSON patches guarded by a ``test`` of the resourceVersion, so a concurrent writer
(``helm upgrade``, cert-manager's cainjector) is never overwritten blindly: the sync re-reads and retries.
An unchanged want costs no API call until ``refresh_seconds`` passed (then one GET notices outside edits).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from hwcap_operator import keys
from hwcap_operator.admission.webhook_entries import TemplateError, plan_sync
from hwcap_operator.domain.api import MigrationDomainSpec
from hwcap_operator.kube import raw_api
from hwcap_operator.kube.view import ClusterView

log = logging.getLogger(__name__)

DomainSpecs = Sequence[tuple[str, MigrationDomainSpec]]
_RETRIES = 5


def served_domains(view: ClusterView) -> list[tuple[str, MigrationDomainSpec]]:
    """The domains the webhook serves (a published, usable mask), with their specs."""
    out = []
    for served in view.webhook_domains:
        record = view.domains.get(served.name)
        if record is not None and record.spec is not None:
            out.append((served.name, record.spec))
    return out


def listed_domains(api: client.ApiClient, operator_namespace: str) -> list[tuple[str, MigrationDomainSpec]]:
    """Served domains from a LIST (startup, before the watches filled the view)."""
    listed: Any = client.CustomObjectsApi(api).list_cluster_custom_object(keys.GROUP, keys.VERSION, keys.PLURAL)
    view = ClusterView(operator_namespace=operator_namespace)
    for body in listed.get("items") or []:
        if not (body.get("metadata") or {}).get("deletionTimestamp"):
            view.upsert_domain(body)
    view.refresh_webhook_domains()
    return served_domains(view)


class WebhookConfigSync:
    """Patches one MutatingWebhookConfiguration; thread-safe (reconciles run in worker threads)."""

    def __init__(self, api: client.ApiClient, name: str, never_touched: Iterable[str],
                 refresh_seconds: float = 300.0) -> None:  # fmt: skip
        self.api = api
        self.name = name
        self.never_touched = frozenset(never_touched)
        self.refresh_seconds = refresh_seconds
        self._lock = threading.Lock()
        self._last: tuple[Any, float] | None = None
        self._reported: str | None = None

    def sync(self, domains: DomainSpecs, *, force: bool = False) -> bool:
        """Bring the configuration in line with ``domains``; True when it was patched. API errors other than
        a conflict are raised (the caller logs and the next reconcile retries). ``force`` re-reads the live
        object even when the domains did not change (someone else, e.g. ``helm upgrade``, may have)."""
        key = tuple((name, spec.workloads.model_dump_json()) for name, spec in sorted(domains, key=lambda d: d[0]))
        with self._lock:
            fresh = self._last is not None and time.monotonic() - self._last[1] < self.refresh_seconds
            if not force and fresh and self._last is not None and self._last[0] == key:
                return False
            for _ in range(_RETRIES):
                outcome = self._try(domains)
                if outcome is not None:
                    self._last = (key, time.monotonic())
                    return outcome
            raise RuntimeError(f"MutatingWebhookConfiguration {self.name}: still conflicting after {_RETRIES} tries")

    def _try(self, domains: DomainSpecs) -> bool | None:
        """One read-compare-patch; None on a lost race (re-read), else whether it patched."""
        try:
            live = raw_api.read_mutating_webhook_configuration(self.api, self.name)
        except ApiException as exc:
            if exc.status != 404:
                raise
            self._report(f"MutatingWebhookConfiguration {self.name} not found: nothing to keep in sync "
                         "(is the chart's webhook installed?)")  # fmt: skip
            return False
        try:
            plan = plan_sync(live, domains, self.never_touched)
        except TemplateError as exc:
            self._report(f"MutatingWebhookConfiguration {self.name}: {exc}")
            return False
        self._reported = None
        if not plan.changed:
            return False
        patch = [
            {"op": "test", "path": "/metadata/resourceVersion", "value": live["metadata"]["resourceVersion"]},
            {"op": "add", "path": "/metadata/annotations", "value": plan.annotations},
            {"op": "add", "path": "/webhooks", "value": plan.webhooks},
        ]
        try:
            raw_api.json_patch_mutating_webhook_configuration(self.api, self.name, patch)
        except ApiException as exc:
            if exc.status in (409, 422):  # someone wrote in between: the test op failed
                return None
            raise
        log.info("webhook configuration synced", extra={
            "configuration": self.name, "webhooks": [w["name"] for w in plan.webhooks],
            "template": plan.template_source})  # fmt: skip
        return True

    def _report(self, message: str) -> None:
        """Log a persistent problem once (every reconcile would repeat it)."""
        if message != self._reported:
            log.warning(message)
            self._reported = message
