"""The operator's in-memory view of the cluster: slim copies of what the watches delivered.

Watches (kopf indexes and event handlers) feed it; the domain reconcilers and the webhook read it, so
neither lists Nodes nor calls the API on its hot path. Every update returns the names of the domains it
affects, and only those are woken: a node change costs O(domains that select it), not O(cluster).
Nothing here imports kopf, so the view is unit-tested on its own.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from pydantic import ValidationError

from hwcap_operator import keys
from hwcap_operator.admission.model import DomainView
from hwcap_operator.admission.selection import is_mirror_pod, matching_domains, opted_out
from hwcap_operator.arch import UnknownArchError, normalize_arch
from hwcap_operator.domain import api
from hwcap_operator.domain.impact import InjectedPod, UnmaskedPod
from hwcap_operator.domain.node_features import ARCH_LABEL, NodeFeatures, node_features
from hwcap_operator.domain.policy import node_selector, selects
from hwcap_operator.mask import FeatureMask, MaskParseError
from hwcap_operator.selectors import LabelSelector, SelectorError

#: The NodeFeature label that names its node (NFD sets it; the object's own name usually matches too).
NFD_NODE_NAME_LABEL = "nfd.node.kubernetes.io/node-name"

Json = dict[str, Any]


def slim_node(body: Mapping[str, Any]) -> Json:
    """Keep only what feature parsing and membership read (managed fields and images would bloat memory)."""
    meta = body.get("metadata") or {}
    info = ((body.get("status") or {}).get("nodeInfo")) or {}
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items()
                   if str(k).startswith(keys.AGENT_ANNOTATION_PREFIX)}  # fmt: skip
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": meta.get("name"),
            "uid": meta.get("uid"),
            "resourceVersion": meta.get("resourceVersion"),
            # Interned: every node repeats the same ~60 NFD label keys and values; one copy each instead of
            # one per node (5,000 nodes: the decoded label strings were ~27 MiB of the view's ~74 MiB).
            "labels": {sys.intern(str(k)): sys.intern(str(v)) for k, v in (meta.get("labels") or {}).items()},
            "annotations": annotations,
        },
        "status": {"nodeInfo": {k: info[k] for k in ("architecture", "kernelVersion") if k in info}},
    }


def nodefeature_node_name(body: Mapping[str, Any]) -> str | None:
    meta = body.get("metadata") or {}
    return (meta.get("labels") or {}).get(NFD_NODE_NAME_LABEL) or meta.get("name")


def _published_by_our_agent(body: Mapping[str, Any]) -> bool:
    return keys.NODEFEATURE_PUBLISHER_LABEL in ((body.get("metadata") or {}).get("labels") or {})


def _member_label(domain: str) -> str:
    return f"{keys.DOMAIN_MEMBER_LABEL_PREFIX}{domain}"


@dataclass
class DomainRecord:
    """One MigrationDomain as the operator knows it; ``wake`` is set when something it depends on changed."""

    name: str
    body: Json
    spec: api.MigrationDomainSpec | None
    spec_error: str | None
    generation: int
    status: api.MigrationDomainStatus | None
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    #: The compiled node selector (None: no usable spec); compiled once per spec change, not per node event.
    selector: LabelSelector | None = None

    def selects(self, arch: str | None, labels: Mapping[str, str]) -> bool:
        return self.spec is not None and self.selector is not None and selects(self.spec, self.selector, arch, labels)


@dataclass(frozen=True, slots=True)
class BarePod:
    """A pod without our annotations: what escape detection needs to know (no spec, no status copy)."""

    uid: str
    labels: tuple[tuple[str, str], ...]
    opted_out: bool
    node: str | None
    finished: bool  # Succeeded or Failed: nothing runs, nothing to protect


def bare_pod(body: Mapping[str, Any]) -> BarePod | None:
    """The slim record of a pod we did not wrap; None for a mirror pod (never ours to wrap)."""
    if is_mirror_pod(body):
        return None
    meta = body.get("metadata") or {}
    phase = (body.get("status") or {}).get("phase")
    return BarePod(str(meta.get("uid") or ""), tuple(sorted((meta.get("labels") or {}).items())), opted_out(body),
                   (body.get("spec") or {}).get("nodeName"), phase in ("Succeeded", "Failed"))  # fmt: skip


@dataclass
class ClusterView:
    """Nodes, NodeFeatures, namespaces, injected pods and domains, kept current by the watches."""

    operator_namespace: str = "hwcap-operator"
    nodes: dict[str, Json] = field(default_factory=dict)
    nodefeatures: dict[str, Json] = field(default_factory=dict)
    namespaces: dict[str, dict[str, str]] = field(default_factory=dict)
    pods: dict[tuple[str, str], tuple[str, InjectedPod]] = field(default_factory=dict)
    #: Pods without our annotations, by namespace then name (escape detection reads one namespace at a time).
    bare_pods: dict[str, dict[str, BarePod]] = field(default_factory=dict)
    #: Namespaces the webhook never touches (their pods are never escapes).
    never_touched: frozenset[str] = frozenset({"kube-system"})
    domains: dict[str, DomainRecord] = field(default_factory=dict)
    _features: dict[str, tuple[tuple[Any, Any], NodeFeatures]] = field(default_factory=dict)
    #: Parses shared between nodes whose feature inputs are identical (bounded; see _parse).
    _shared: dict[tuple[Any, ...], NodeFeatures] = field(default_factory=dict)
    _by_arch: dict[str | None, set[str]] = field(default_factory=dict)
    #: label key -> value -> nodes, only for keys some domain's node selector requires with ``In`` (matchLabels):
    #: a domain added after the LIST reads its ~50 candidates from here instead of testing every node of its
    #: arch (a restart at 5,000 nodes and 100 domains ran 500,000 selector checks). Not every label: ~60 NFD
    #: labels per node would cost more memory than the scan costs time.
    _by_label: dict[str, dict[str, set[str]]] = field(default_factory=dict)
    #: Per domain, the nodes its selector matches and the nodes carrying its member label: kept current as
    #: node events arrive, so a reconcile reads its ~50 candidates instead of scanning every node of its arch.
    _selected: dict[str, set[str]] = field(default_factory=dict)
    _labelled: dict[str, set[str]] = field(default_factory=dict)
    #: What the webhook reads: replaced whole (never mutated), so a worker thread can read it safely.
    webhook_domains: tuple[DomainView, ...] = ()
    #: Each served domain's view and what it was built from (spec, mask, dropped features): a refresh
    #: rebuilds only the domains whose inputs changed (it runs after every domain's reconcile).
    _served: dict[str, tuple[tuple[Any, ...], DomainView]] = field(default_factory=dict)
    #: Called once per (re)parse of a node whose feature data has errors or unknown names (metrics, logs).
    on_node_issue: Callable[[NodeFeatures], None] | None = None
    #: True once the first complete LIST of domains, nodes, namespaces (and NodeFeatures) is in the view.
    #: Until then the webhook refuses to decide and /readyz is false: an empty view would answer "untouched".
    loaded: bool = False

    def mark_loaded(self) -> None:
        """The watches delivered their first complete LIST: serve the published masks from now on."""
        if not self.loaded:
            self.refresh_webhook_domains()
            self.loaded = True

    # ---- nodes -------------------------------------------------------------------------------------
    def update_node(self, body: Mapping[str, Any]) -> set[str]:
        """Record a node; returns the domains to wake (it may have joined, changed, or left their selector)."""
        slim = slim_node(body)
        name = str(slim["metadata"]["name"])
        old = self.nodes.get(name)
        if old is not None and old == {**slim, "metadata": {**slim["metadata"],
                                                            "resourceVersion": old["metadata"]["resourceVersion"]}}:
            self.nodes[name] = slim  # only the resourceVersion moved (a heartbeat): nothing to wake
            return set()
        old_labels = old["metadata"]["labels"] if old else None
        self._unindex_arch(name)
        self.nodes[name] = slim
        arch, labels = self._arch(slim), slim["metadata"]["labels"]
        self._by_arch.setdefault(arch, set()).add(name)
        self._index_labels(name, old_labels or {}, labels)
        # Each domain's selector runs once per node event: the domains that selected the node before come from
        # the index, those that select it now from updating it.
        before = {domain for domain, names in self._selected.items() if name in names}
        now = self._index_membership(name, arch, labels, old_labels or {})
        return before | now | self._listing(name, {**(old_labels or {}), **labels})

    def delete_node(self, name: str) -> set[str]:
        old = self.nodes.get(name)
        if old is None:
            return set()
        hit = self._affected(name, old["metadata"]["labels"], self._arch(old), None)  # its last labels
        del self.nodes[name]
        self._features.pop(name, None)
        self._unindex_arch(name)
        self._index_labels(name, old["metadata"]["labels"], {})
        self._index_membership(name, None, {}, old["metadata"]["labels"])
        return hit

    def update_nodefeature(self, body: Mapping[str, Any]) -> set[str]:
        node = nodefeature_node_name(body)
        if not node or _published_by_our_agent(body):  # a copy of the agent's annotations, not NFD's reading
            return set()
        self.nodefeatures[node] = {"metadata": dict(body.get("metadata") or {}), "spec": body.get("spec") or {}}
        return self._node_domains(node)

    def delete_nodefeature(self, body: Mapping[str, Any]) -> set[str]:
        node = nodefeature_node_name(body)
        if not node or _published_by_our_agent(body) or self.nodefeatures.pop(node, None) is None:
            return set()
        return self._node_domains(node)

    def node_features(self, name: str) -> NodeFeatures:
        """Parsed features of one node, re-parsed only when the node or its NodeFeature changed."""
        node = self.nodes[name]
        nf = self.nodefeatures.get(name)
        key = (node["metadata"].get("resourceVersion"), (nf or {}).get("metadata", {}).get("resourceVersion"))
        cached = self._features.get(name)
        if cached is not None and cached[0] == key:
            return cached[1]
        parsed = self._parse(node, nf)
        self._features[name] = (key, parsed)
        if self.on_node_issue is not None and (parsed.errors or parsed.unknown_features or parsed.warnings):
            self.on_node_issue(parsed)
        return parsed

    def _parse(self, node: Json, nf: Json | None) -> NodeFeatures:
        """node_features(), computed once per distinct feature input: the nodes of one pool carry the same NFD
        labels and agent report, and only their name and labels differ (put back here). A restart of the
        operator parsed every node anew (~2 ms each: 10 s for 5,000 nodes). Nodes with a NodeFeature object
        are parsed on their own."""
        if nf is not None:
            return node_features(node, nf)
        meta = node["metadata"]
        labels = meta["labels"]
        key = (tuple(sorted((k, v) for k, v in labels.items()
                            if k == ARCH_LABEL or k.startswith(keys.NFD_CPUID_LABEL_PREFIX))),
               tuple(sorted(meta["annotations"].items())),
               tuple(sorted(node["status"]["nodeInfo"].items())))  # fmt: skip
        shared = self._shared.get(key)
        if shared is None:
            if len(self._shared) >= 4096:  # many distinct machines: start over rather than grow without bound
                self._shared.clear()
            shared = self._shared[key] = node_features(node, None)
        return replace(shared, name=str(meta["name"]), labels=labels)

    def candidates(self, spec: api.MigrationDomainSpec) -> list[NodeFeatures]:
        """The nodes a recorded domain with this very spec selects (its index), else every node of the spec's
        arch; plus nodes whose arch is unreadable (the policy reports them)."""
        owner = next((name for name, record in self.domains.items() if record.spec is spec), None)
        selected = self._selected.get(owner, set()) if owner is not None else self._by_arch.get(spec.arch, set())
        return [self.node_features(n) for n in sorted(selected | self._by_arch.get(None, set()))]

    def candidates_without_agent_report(self, domain: str) -> list[str]:
        """Nodes the domain's selector picks that carry no agent report (``agent.hwcap.dev/hwcap``): the agent
        never ran there, or never got its words onto the Node. Read by an operator gauge, so the "agent missing"
        alert needs no kube-state-metrics."""
        return sorted(n for n in self._selected.get(domain, ())
                      if keys.AGENT_HWCAP_ANNOTATION not in self.nodes[n]["metadata"]["annotations"])  # fmt: skip

    def labelled_members(self, domain: str) -> set[str]:
        """Nodes that currently carry the domain's member label."""
        return set(self._labelled.get(domain, ()))

    def _index_membership(self, name: str, arch: str | None, labels: Mapping[str, str],
                          old_labels: Mapping[str, str]) -> set[str]:  # fmt: skip
        """Keep the per-domain selected/labelled sets current for one node (``arch`` None: deleted); returns the
        domains that select it now."""
        selecting: set[str] = set()
        for domain, record in self.domains.items():
            if arch is not None and record.selects(arch, labels):
                self._selected.setdefault(domain, set()).add(name)
                selecting.add(domain)
            else:
                self._selected.get(domain, set()).discard(name)
        prefix = keys.DOMAIN_MEMBER_LABEL_PREFIX
        for key in old_labels.keys() - labels.keys():
            if key.startswith(prefix):
                self._labelled.get(key[len(prefix) :], set()).discard(name)
        for key in labels.keys() - old_labels.keys():
            if key.startswith(prefix):
                self._labelled.setdefault(key[len(prefix) :], set()).add(name)
        return selecting

    def _select_all(self, record: DomainRecord) -> None:
        """Recompute one domain's selected nodes (its spec changed, or it is new).

        Only nodes of the domain's arch can be selected; when the selector requires a label value (matchLabels,
        or ``In``), only the nodes the label index holds for its narrowest such requirement are tested.
        """
        if record.spec is None or record.selector is None:
            self._selected[record.name] = set()
            return
        arch = record.spec.arch
        names = self._by_arch.get(arch, set())
        narrowed = [self._having(r.key, r.values) for r in record.selector.requirements if r.operator == "In"]
        if narrowed:
            names = min(narrowed, key=len) & names
        self._selected[record.name] = {n for n in names if record.selects(arch, self.nodes[n]["metadata"]["labels"])}

    def _having(self, key: str, values: frozenset[str]) -> set[str]:
        """Nodes whose label ``key`` has one of ``values`` (the key is indexed from now on)."""
        by_value = self._by_label.get(key)
        if by_value is None:
            by_value = self._by_label[key] = {}
            for name, slim in self.nodes.items():
                value = slim["metadata"]["labels"].get(key)
                if value is not None:
                    by_value.setdefault(value, set()).add(name)
        if len(values) == 1:
            return by_value.get(next(iter(values)), set())
        return set().union(*(by_value.get(v, set()) for v in values))

    def _index_labels(self, name: str, old: Mapping[str, str], new: Mapping[str, str]) -> None:
        for key, by_value in self._by_label.items():
            before, after = old.get(key), new.get(key)
            if before == after:
                continue
            if before is not None:
                by_value.get(before, set()).discard(name)
            if after is not None:
                by_value.setdefault(after, set()).add(name)

    def _arch(self, slim: Mapping[str, Any]) -> str | None:
        raw = slim["metadata"]["labels"].get(ARCH_LABEL) or slim["status"]["nodeInfo"].get("architecture")
        try:
            return normalize_arch(str(raw)) if raw else None
        except UnknownArchError:
            return None

    def _unindex_arch(self, name: str) -> None:
        for names in self._by_arch.values():
            names.discard(name)

    def _affected(self, node: str, labels: Mapping[str, str], arch: str | None,
                  old_labels: Mapping[str, str] | None) -> set[str]:  # fmt: skip
        """Domains selecting the node now or before this update, plus those that list or labelled it."""
        hit = {name for name, record in self.domains.items()
               if record.selects(arch, labels) or (old_labels is not None and record.selects(arch, old_labels))}
        return hit | self._listing(node, {**(old_labels or {}), **labels})  # fmt: skip

    def _node_domains(self, node: str) -> set[str]:
        """Domains a change of the node's feature data concerns (its labels are unchanged)."""
        slim = self.nodes.get(node)
        if slim is None:
            return self._listing(node, {})
        labels = slim["metadata"]["labels"]
        return self._affected(node, labels, self._arch(slim), None)

    def _listing(self, node: str, labels: Mapping[str, str]) -> set[str]:
        """Domains whose member label the node carries or whose published members name it."""
        hit = {d for d in self.domains if _member_label(d) in labels}
        for name, record in self.domains.items():
            status = record.status
            if status and status.members and node in status.members.names:
                hit.add(name)
        return hit

    # ---- namespaces and pods -------------------------------------------------------------------------
    def update_namespace(self, body: Mapping[str, Any]) -> set[str]:
        """Record a namespace's labels; when they change, the domains with pods there (escapes may come or go)."""
        meta = body.get("metadata") or {}
        name, labels = str(meta.get("name")), dict(meta.get("labels") or {})
        previous = self.namespaces.get(name)
        self.namespaces[name] = labels
        if previous is None or previous == labels or name not in self.bare_pods:
            return set()
        return {d.name for d in self.webhook_domains}

    def delete_namespace(self, name: str) -> None:
        self.namespaces.pop(name, None)

    def update_pod(self, body: Mapping[str, Any]) -> set[str]:
        """Track a pod; returns the domains whose impact report it changes (its domain, or for a pod we did not
        wrap, the domains selecting it now or before)."""
        meta = body.get("metadata") or {}
        annotations = meta.get("annotations") or {}
        domain = annotations.get(keys.POD_DOMAIN_ANNOTATION)
        key = (str(meta.get("namespace")), str(meta.get("name")))
        if not domain:
            hit = self.delete_pod(*key)
            return hit | self._update_bare(key, bare_pod(body))
        hit = self._update_bare(key, None)
        mask: FeatureMask | None
        try:
            mask = FeatureMask.parse(str(annotations.get(keys.POD_MASK_ANNOTATION, "")))
        except (MaskParseError, UnknownArchError):
            mask = None
        pod = InjectedPod(key[0], key[1], str(annotations.get(keys.POD_MASK_ID_ANNOTATION, "")), mask,
                          (body.get("spec") or {}).get("nodeName"))  # fmt: skip
        previous = self.pods.get(key)
        self.pods[key] = (str(domain), pod)
        return hit | ({str(domain)} if previous != (domain, pod) else set())

    def delete_pod(self, namespace: str, name: str) -> set[str]:
        previous = self.pods.pop((namespace, name), None)
        return ({previous[0]} if previous else set()) | self._update_bare((namespace, name), None)

    def _update_bare(self, key: tuple[str, str], record: BarePod | None) -> set[str]:
        namespace, name = key
        in_namespace = self.bare_pods.get(namespace, {})
        previous = in_namespace.get(name)
        if previous == record:
            return set()
        if record is None:
            in_namespace.pop(name, None)
            if not in_namespace:
                self.bare_pods.pop(namespace, None)
        else:
            self.bare_pods.setdefault(namespace, {})[name] = record
        return {d for p in (previous, record) if p is not None for d in self._selecting(namespace, p)}

    def _selecting(self, namespace: str, pod: BarePod) -> list[str]:
        if namespace in self.never_touched:
            return []
        labels = self.namespaces.get(namespace, {})
        return [d.name for d in matching_domains(namespace, labels, dict(pod.labels), self.webhook_domains)]

    def unmasked_pods(self, domain: str) -> list[UnmaskedPod]:
        """Running pods ``domain`` selects that carry no mask of it (never injected, or opted out).

        Only a domain the webhook serves (a published mask) can have escapes; its selectors are the webhook's.
        """
        served = [d for d in self.webhook_domains if d.name == domain]
        if not served:
            return []
        found: list[UnmaskedPod] = []
        for namespace, pods in self.bare_pods.items():
            if namespace in self.never_touched:
                continue
            labels = self.namespaces.get(namespace, {})
            for name, pod in pods.items():
                if pod.finished or not matching_domains(namespace, labels, dict(pod.labels), served):
                    continue
                found.append(UnmaskedPod(namespace, name, pod.uid, "OptedOut" if pod.opted_out else "NotInjected",
                                         pod.node))  # fmt: skip
        return found

    def injected_pods(self, domain: str) -> list[InjectedPod]:
        return [pod for d, pod in self.pods.values() if d == domain]

    # ---- domains -------------------------------------------------------------------------------------
    def upsert_domain(self, body: Mapping[str, Any]) -> DomainRecord:
        """Record a domain's spec (parsed; a bad one is kept as ``spec_error``) and last published status."""
        meta = body.get("metadata") or {}
        name = str(meta.get("name"))
        spec: api.MigrationDomainSpec | None = None
        error: str | None = None
        try:
            spec = api.MigrationDomainSpec.model_validate(body.get("spec") or {})
        except ValidationError as exc:
            error = "; ".join(f"spec.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        status: api.MigrationDomainStatus | None = None
        try:
            status = api.MigrationDomainStatus.model_validate(body.get("status") or {}) if body.get("status") else None
        except ValidationError:
            status = None  # unreadable status: recomputed, never trusted
        selector: LabelSelector | None = None
        if spec is not None:
            try:
                selector = node_selector(spec)
            except SelectorError as exc:
                error = f"spec.nodeSelector: {exc}"
        record = self.domains.get(name)
        slim = {"apiVersion": keys.API_VERSION, "kind": keys.KIND,
                "metadata": {k: meta.get(k) for k in ("name", "uid", "generation", "resourceVersion")}}  # fmt: skip
        if record is None:
            record = DomainRecord(name, slim, spec, error, int(meta.get("generation") or 0), status, selector=selector)
            self.domains[name] = record
            self._select_all(record)
        else:
            reselect = record.spec != spec or record.selector is None or selector is None
            record.body, record.spec, record.spec_error, record.selector = slim, spec, error, selector
            if reselect:  # a status-only event (each of our own patches) costs no scan of the nodes
                self._select_all(record)
            record.generation = int(meta.get("generation") or 0)
            if status is not None:
                record.status = status
        return record

    def remove_domain(self, name: str) -> None:
        self.domains.pop(name, None)
        self._selected.pop(name, None)
        self.refresh_webhook_domains()

    def wake(self, names: Iterable[str]) -> None:
        for name in names:
            record = self.domains.get(name)
            if record is not None:
                record.wake.set()

    def refresh_webhook_domains(self) -> list[str]:
        """Rebuild what the webhook serves from each domain's published mask; returns per-domain problems."""
        views: list[DomainView] = []
        problems: list[str] = []
        served: dict[str, tuple[tuple[Any, ...], DomainView]] = {}
        for name, record in sorted(self.domains.items()):
            spec, status = record.spec, record.status
            if spec is None or status is None or status.mask is None:
                continue
            inputs = (spec, status.mask.canonical, tuple(status.dropped_features))
            cached = self._served.get(name)
            if cached is not None and cached[0] == inputs:
                served[name] = cached
                views.append(cached[1])
                continue
            try:
                mask = FeatureMask.parse(status.mask.canonical)
                view = DomainView.from_spec(name, spec, mask, status.dropped_features)
            except (MaskParseError, UnknownArchError, SelectorError) as exc:
                problems.append(f"{name}: {exc}")
                continue
            served[name] = (inputs, view)
            views.append(view)
        self._served = served
        self.webhook_domains = tuple(views)
        return problems

