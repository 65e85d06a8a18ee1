"""Pod in, admission decision out: the whole webhook mutation as one pure function.

For a pod selected by exactly one domain the patch adds an emptyDir, an init container that installs
``hwcap-exec`` into it, wraps every container's command (argv preserved, see ``entrypoint``), requires the
domain's member label in every node selector term, records domain/mask on annotations, and sets
``HWCAP_DOMAIN``/``HWCAP_MASK_ID`` and the merged userspace fallbacks in every container. The JSON patch
is written directly from what the mutation adds (an ``add`` of a whole field where the pod lacks it, an
append or an index replace where it has one): no deep copy of the pod and no diff, so the work is linear
in the pod's size and small (a diff of deep copies was ~85 % of a mutation's CPU). The input is never
modified; the per-domain parts (wrapper argv, install step, annotations) are computed once per domain
status change (:func:`domain_pieces`), not per admission.

Decisions made here (documented for users):
- init containers of the pod are wrapped too (``MutationConfig.wrap_init_containers``): they run on the
  node like any other process of the pod and must not see features a later migration target lacks;
- every step is idempotent: a pod that already carries our annotation or install step (webhook
  re-invocation, a re-created copy) is never wrapped twice; only containers added since (e.g. a sidecar
  injected by a later webhook) get wrapped. A pod injected for another domain or an older mask id is
  left unchanged with a warning, since its wrappers carry that mask;
- our install step is recognised by its name, image and command together: a pod's own init container
  that merely has the same name is not mistaken for it (it would skip wrapping and install nothing, or
  let the pod's image provide ``hwcap-exec``); such a pod is denied with a message, since two init
  containers cannot share a name;
- pods owned by a DaemonSet get a warning: the affinity confines them to member nodes, and the DaemonSet
  controller (which reads its template, not our patch) would keep a Pending pod on every other node;
- nothing injected asks for privilege: the install step runs as non-root, with no capability, no privilege
  escalation, RuntimeDefault seccomp and a read-only root filesystem; user containers' securityContext is
  never touched.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hwcap_operator import keys
from hwcap_operator.admission.entrypoint import (
    BadEntrypointAnnotation,
    EntrypointResolver,
    ImageEntrypoint,
    ImageRequest,
    Unresolvable,
    entrypoint_from_annotation,
    needs_image,
    rewrite,
)
from hwcap_operator.admission.fallbacks import FallbackMergeError
from hwcap_operator.admission.model import (
    MEMBER_LABEL_VALUE,
    AdmissionDecision,
    AdmissionEvent,
    DomainView,
    MutationConfig,
)
from hwcap_operator.admission.selection import (
    is_mirror_pod,
    matching_domains,
    never_touched_namespaces,
    opted_out,
)

Json = dict[str, Any]

#: Asked on every admission with the same few configurations (frozensets: hashable).
_never_touched = functools.lru_cache(maxsize=16)(never_touched_namespaces)


class _Denied(Exception):
    """Internal: stop mutating and deny with this message."""


def wrapper_argv(domain: DomainView, config: MutationConfig) -> list[str]:
    """``hwcap-exec --hwcap .. --hwcap2 .. --hwcap3 .. --hwcap4 .. --on-failure=.. --``.

    Every word is passed, zeros included: an omitted word would leave that auxv word unmasked.
    """
    argv = [config.shim_path]
    for i, word in enumerate(domain.hwcap):
        argv += ["--hwcap" if i == 0 else f"--hwcap{i + 1}", f"{word:#x}"]
    return [*argv, f"--on-failure={domain.on_failure}", "--"]


def install_init_container(config: MutationConfig) -> Json:
    """The init step: the operator image's shim copies itself into the shared emptyDir, unprivileged."""
    return {
        "name": config.init_container_name,
        "image": config.init_image,
        "imagePullPolicy": config.init_image_pull_policy,
        "command": list(config.install_command),
        "volumeMounts": [{"name": config.volume_name, "mountPath": config.mount_path}],
        "resources": {k: dict(v) for k, v in config.init_resources.items()},
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": config.run_as_user,
            "runAsGroup": config.run_as_user,
            "allowPrivilegeEscalation": False,
            "privileged": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }


def is_install_step(container: Mapping[str, Any], config: MutationConfig) -> bool:
    """Ours: our name, our image and our install command. A name alone proves nothing (any tenant can pick
    it), and an install step from another image could put any program at the shim's path."""
    return (
        container.get("name") == config.init_container_name
        and container.get("image") == config.init_image
        and list(container.get("command") or ()) == list(config.install_command)
        and not container.get("args")
    )


@dataclass(frozen=True)
class DomainPieces:
    """The per-domain parts of every patch under one configuration: built when the domain's status changes
    (the webhook keeps them with its snapshot of the domains), not per admission.

    The JSON values here go into patches as they are (not copied: a patch is serialized at once); whoever
    applies a patch and then edits the result must copy it first."""

    wrapper: tuple[str, ...]
    #: (annotation key, JSON-pointer-escaped key, value) of the four annotations recording domain and mask.
    annotations: tuple[tuple[str, str, str], ...]
    member_label_key: str
    requirement: Json
    install: Json
    volume: Json
    mount: Json


def domain_pieces(domain: DomainView, config: MutationConfig) -> DomainPieces:
    """Precompute what every admission of ``domain`` writes the same way."""
    recorded = {
        keys.POD_DOMAIN_ANNOTATION: domain.name,
        keys.POD_MASK_ID_ANNOTATION: domain.mask_id,
        keys.POD_MASK_ANNOTATION: domain.mask_canonical,
        keys.POD_HWCAP_WORDS_ANNOTATION: domain.hwcap_words_text(),
    }
    return DomainPieces(
        wrapper=tuple(wrapper_argv(domain, config)),
        annotations=tuple((k, _pointer(k), v) for k, v in recorded.items()),
        member_label_key=domain.member_label_key,
        requirement={"key": domain.member_label_key, "operator": "In", "values": [MEMBER_LABEL_VALUE]},
        install=install_init_container(config),
        volume={"name": config.volume_name, "emptyDir": {"sizeLimit": config.volume_size_limit}},
        mount={"name": config.volume_name, "mountPath": config.mount_path, "readOnly": True},
    )


def _pointer(token: str) -> str:
    """One JSON-pointer reference token (RFC 6901): ``~`` → ``~0``, ``/`` → ``~1``."""
    return token.replace("~", "~0").replace("/", "~1")


def _untouched(message: str, domain: str | None = None, warnings: Sequence[str] = ()) -> AdmissionDecision:
    return AdmissionDecision(True, "untouched", message=message, domain=domain, warnings=tuple(warnings))


def _owned_by(pod: Mapping[str, Any], kind: str) -> bool:
    refs = (pod.get("metadata") or {}).get("ownerReferences") or []
    return any(r.get("kind") == kind and r.get("controller") for r in refs)


def _pod_label(pod: Mapping[str, Any], namespace: str) -> str:
    meta = pod.get("metadata") or {}
    name = meta.get("name") or (f"{meta['generateName']}*" if meta.get("generateName") else "<unnamed>")
    return f"{namespace}/{name}"


def mutate_pod(
    pod: Mapping[str, Any],
    *,
    namespace: str,
    namespace_labels: Mapping[str, str],
    domains: Sequence[DomainView],
    config: MutationConfig,
    resolver: EntrypointResolver,
    pieces: Callable[[DomainView], DomainPieces] | None = None,
) -> AdmissionDecision:
    """Decide and compute the mutation for one Pod CREATE.

    ``namespace`` is the request's namespace (a pod object may lack ``metadata.namespace``);
    ``namespace_labels`` its labels from the operator's cache. ``resolver`` is consulted only for
    containers without ``command`` and no override annotation; it may block on a registry, so the async
    glue calls this function in a worker thread when it may. ``pieces`` returns the precomputed parts of a
    domain (default: computed on the spot). Never raises for bad pod input of the shape the API server
    sends: the decision says why.
    """
    if namespace in _never_touched(config.operator_namespace, config.nfd_namespace, config.extra_excluded_namespaces):
        return _untouched(f"namespace {namespace} is never touched")
    if is_mirror_pod(pod):
        return _untouched("mirror pod of a static pod")
    spec = pod.get("spec") or {}
    if ((spec.get("os") or {}).get("name") or "linux") != "linux":
        return _untouched("not a Linux pod")
    if opted_out(pod):
        return _untouched(f"opted out with {keys.POD_OPT_OUT_ANNOTATION}=false")
    meta = pod.get("metadata") or {}
    selected = matching_domains(namespace, namespace_labels, meta.get("labels") or {}, domains)
    if not selected:
        return _untouched("no domain selects this pod")
    who = _pod_label(pod, namespace)
    if len(selected) > 1:
        names = ", ".join(d.name for d in selected)
        return AdmissionDecision(
            False,
            "denied",
            message=f"hwcap-operator: pod {who} is selected by more than one MigrationDomain ({names}); "
            f"narrow their workload selectors or opt the pod out with {keys.POD_OPT_OUT_ANNOTATION}: \"false\"",
        )
    domain = selected[0]
    parts = pieces(domain) if pieces is not None else domain_pieces(domain, config)
    annotations = meta.get("annotations") or {}
    injected_into = annotations.get(keys.POD_DOMAIN_ANNOTATION)
    injected_mask = annotations.get(keys.POD_MASK_ID_ANNOTATION)
    if injected_into is not None and (injected_into != domain.name or injected_mask != domain.mask_id):
        # A copy of a pod injected elsewhere or under an older mask: its wrappers carry that mask, and
        # rewriting only the annotations would make them lie. Leave it exactly as it is, and say so.
        return _untouched(
            "already injected",
            domain.name,
            [
                f"pod {who} was injected for domain {injected_into} mask {injected_mask}, but domain "
                f"{domain.name} (mask {domain.mask_id}) selects it now; left unchanged: recreate it from its "
                "original spec (its controller does) to start under the current mask"
            ],
        )
    named_like_ours = [c for c in spec.get("initContainers") or [] if c.get("name") == config.init_container_name]
    has_install = any(is_install_step(c, config) for c in named_like_ours)
    if named_like_ours and not has_install:
        return AdmissionDecision(
            False,
            "denied",
            message=f"hwcap-operator: pod {who} has an init container named {config.init_container_name!r} that "
            f"is not hwcap-operator's install step; domain {domain.name} adds a step of that name: rename yours",
            domain=domain.name,
        )
    reentry = injected_into is not None or has_install
    if reentry:
        wrapper = list(parts.wrapper)
        stale = [
            c.get("name", "")
            for group in ("initContainers", "containers")
            for c in spec.get(group) or []
            if (c.get("command") or [None])[0] == config.shim_path and c["command"][: len(wrapper)] != wrapper
        ]
        if stale:
            return _untouched(
                "wrapped with another mask",
                domain.name,
                [f"pod {who}: containers {', '.join(stale)} are wrapped with a mask other than {domain.mask_id} "
                 f"of domain {domain.name}; left unchanged"],
            )
    try:
        return _inject(pod, namespace, who, domain, parts, config, resolver, reentry)
    except _Denied as exc:
        return AdmissionDecision(False, "denied", message=f"hwcap-operator: {exc}", domain=domain.name)


def _inject(
    pod: Mapping[str, Any],
    namespace: str,
    who: str,
    domain: DomainView,
    parts: DomainPieces,
    config: MutationConfig,
    resolver: EntrypointResolver,
    reentry: bool,
) -> AdmissionDecision:
    """Write the patch of what the mutation adds. Every step is idempotent, so a re-invocation (``reentry``:
    the pod already has our annotation or install step, e.g. after another webhook added a sidecar) only
    wraps what is not wrapped yet and otherwise yields an empty patch."""
    ops: list[Json] = []
    if not isinstance(pod.get("spec"), dict):
        ops.append({"op": "add", "path": "/spec", "value": {}})
    spec: Mapping[str, Any] = pod.get("spec") or {}
    meta = pod.get("metadata")
    annotations: Mapping[str, str] = (meta.get("annotations") if isinstance(meta, dict) else None) or {}
    warnings: list[str] = []
    events: list[AdmissionEvent] = []
    unwrapped: list[str] = []
    pull_secrets = tuple(s.get("name", "") for s in spec.get("imagePullSecrets") or [] if s.get("name"))
    resolved: dict[str, ImageEntrypoint | Unresolvable] = {}

    def image_of(container: Mapping[str, Any]) -> ImageEntrypoint:
        image = container.get("image") or ""
        if image not in resolved:
            try:
                resolved[image] = resolver.resolve(ImageRequest(image, namespace, pull_secrets, domain.arch))
            except Unresolvable as exc:
                resolved[image] = exc
        found = resolved[image]
        if isinstance(found, Unresolvable):
            raise found
        return found

    def ours(group: str, container: Mapping[str, Any]) -> bool:
        return reentry and group == "initContainers" and is_install_step(container, config)

    groups = (["initContainers"] if config.wrap_init_containers else []) + ["containers"]
    wrapped = 0
    for group in groups:
        for index, container in enumerate(spec.get(group) or []):
            if ours(group, container):
                continue  # our own install step (re-invocation): it runs unmasked by design
            name = container.get("name", "")
            why = _wrap(container, f"/spec/{group}/{index}", ops, annotations, parts, config, image_of, domain)
            if why is None:
                wrapped += 1
                continue
            unwrapped.append(name)
            message = (
                f"container {name!r} of pod {who} runs without the HWCAP mask of domain {domain.name}: "
                f"its image entrypoint could not be resolved ({why})"
            )
            warnings.append(message)
            events.append(AdmissionEvent(domain.name, "Warning", "EntrypointUnresolved", message))
    for group in ("initContainers", "containers"):
        for index, container in enumerate(spec.get(group) or []):
            if not ours(group, container):
                warnings += _set_env(container, f"/spec/{group}/{index}", ops, domain)
    if wrapped:  # checked on re-entry too: containers left unwrapped earlier may resolve now
        _add_volume(spec, ops, parts.volume, reentry)
        inits = spec.get("initContainers") or []
        if not any(is_install_step(c, config) for c in inits):
            install = parts.install  # prepended last: earlier ops use the original indices
            ops.append({"op": "add", "path": "/spec/initContainers/0", "value": install} if inits
                       else {"op": "add", "path": "/spec/initContainers", "value": [install]})  # fmt: skip
    if _owned_by(pod, "DaemonSet") and not reentry:
        warnings.append(
            f"pod {who} belongs to a DaemonSet: it can only run on member nodes of domain {domain.name} "
            f"(label {domain.member_label_key}); give the DaemonSet that nodeSelector or it stays Pending elsewhere"
        )
    _require_member_label(spec, ops, parts.requirement)
    _record_annotations(meta, annotations, ops, parts, unwrapped)
    if not ops:
        return _untouched("already injected", domain.name, warnings)
    return AdmissionDecision(
        True,
        "mutated",
        patch=ops,
        message=f"injected mask {domain.mask_id} of domain {domain.name}",
        warnings=tuple(warnings),
        events=tuple(events),
        domain=domain.name,
    )


def _wrap(
    container: Mapping[str, Any],
    path: str,
    ops: list[Json],
    annotations: Mapping[str, str],
    parts: DomainPieces,
    config: MutationConfig,
    image_of: Callable[[Mapping[str, Any]], ImageEntrypoint],
    domain: DomainView,
) -> str | None:
    """Add the ops wrapping the container at ``path``; returns why it must stay unwrapped (Warn policy).
    Raises _Denied."""
    name = container.get("name", "")
    command = container.get("command") or []
    if command and command[0] == config.shim_path:
        return None  # wrapped by an earlier admission of the same object
    image: ImageEntrypoint | None = None
    if needs_image(container):
        try:
            image = entrypoint_from_annotation(annotations, name)
            if image is None:
                image = image_of(container)
        except BadEntrypointAnnotation as exc:
            raise _Denied(str(exc)) from None
        except Unresolvable as exc:
            if domain.unresolved_entrypoint == "Deny":
                raise _Denied(
                    f"container {name!r} has no command and the entrypoint of image {container.get('image')!r} "
                    f"could not be resolved ({exc}); set command, or the annotation "
                    f"{keys.POD_ENTRYPOINT_ANNOTATION_PREFIX}{name} to its ENTRYPOINT as a JSON list"
                ) from None
            return str(exc)
    try:
        new = rewrite(container, parts.wrapper, image)
    except Unresolvable as exc:
        if domain.unresolved_entrypoint == "Deny":
            raise _Denied(f"container {name!r}: {exc}") from None
        return str(exc)
    mounts = container.get("volumeMounts") or []
    for mount in mounts:
        if (mount.get("mountPath") or "").rstrip("/") == config.mount_path.rstrip("/"):
            raise _Denied(f"container {name!r} already mounts {config.mount_path}, where hwcap-exec is installed")
    ops.append({"op": "add", "path": f"{path}/command", "value": new.command})
    if new.args is not None:
        ops.append({"op": "add", "path": f"{path}/args", "value": new.args})
    mount = parts.mount
    ops.append({"op": "add", "path": f"{path}/volumeMounts/-", "value": mount} if mounts
               else {"op": "add", "path": f"{path}/volumeMounts", "value": [mount]})  # fmt: skip
    return None


def _set_env(container: Mapping[str, Any], path: str, ops: list[Json], domain: DomainView) -> list[str]:
    """Add the ops setting HWCAP_DOMAIN/HWCAP_MASK_ID and merging the fallbacks into one container's env;
    returns warnings. Entries are replaced in place or appended, so the ops are index replaces and appends."""
    name = container.get("name", "")
    original: list[Json] = container.get("env") or []
    env = list(original)
    fallbacks = domain.fallbacks.variables()
    ours = {keys.ENV_DOMAIN, keys.ENV_MASK_ID, *fallbacks}
    last: dict[str, int] = {}
    for i, entry in enumerate(env):
        if entry.get("name") in ours:
            last[entry["name"]] = i
    changed: list[int] = []
    warnings: list[str] = []

    def put(var: str, value: str) -> None:
        entry = {"name": var, "value": value}
        i = last.get(var)
        if i is None:
            last[var] = len(env)
            env.append(entry)
        elif env[i] != entry:
            env[i] = entry
            changed.append(i)

    put(keys.ENV_DOMAIN, domain.name)
    put(keys.ENV_MASK_ID, domain.mask_id)
    for var in fallbacks:
        at = last.get(var)
        current: str | None = None
        if at is not None:
            if "valueFrom" in env[at]:
                warnings.append(
                    f"container {name!r}: {var} comes from valueFrom and cannot be merged; "
                    f"the mask's {var} fallback is not applied"
                )
                continue
            current = env[at].get("value")
        elif container.get("envFrom"):
            warnings.append(
                f"container {name!r}: an explicit {var} is added and overrides any {var} from envFrom"
            )
        try:
            put(var, domain.fallbacks.merge(var, current))
        except FallbackMergeError as exc:
            warnings.append(f"container {name!r}: {exc}; the mask's {var} fallback is not applied")
    if not original:
        ops.append({"op": "add", "path": f"{path}/env", "value": env})
        return warnings
    for i in sorted(set(changed)):
        ops.append({"op": "replace", "path": f"{path}/env/{i}", "value": env[i]})
    ops.extend({"op": "add", "path": f"{path}/env/-", "value": entry} for entry in env[len(original):])
    return warnings


def _add_volume(spec: Mapping[str, Any], ops: list[Json], volume: Json, reentry: bool) -> None:
    volumes = spec.get("volumes") or []
    name = volume["name"]
    for existing in volumes:
        if existing.get("name") == name:
            if reentry:
                return  # ours, from the first admission
            raise _Denied(f"the pod already has a volume named {name!r}")
    ops.append({"op": "add", "path": "/spec/volumes/-", "value": volume} if volumes
               else {"op": "add", "path": "/spec/volumes", "value": [volume]})  # fmt: skip


def _require_member_label(spec: Mapping[str, Any], ops: list[Json], requirement: Json) -> None:
    """AND ``<member label> In (true)`` into every required node selector term (terms are ORed).

    One ``add`` of the whole ``affinity`` with the terms that lacked it extended (pod and anti-affinity
    kept as they are); nothing when every term already requires it."""
    affinity = spec.get("affinity") or {}
    node_affinity = affinity.get("nodeAffinity") or {}
    required = node_affinity.get("requiredDuringSchedulingIgnoredDuringExecution") or {}
    terms = required.get("nodeSelectorTerms") or []
    if terms and all(requirement in (term.get("matchExpressions") or []) for term in terms):
        return
    new_terms = [
        term if requirement in (expressions := term.get("matchExpressions") or [])
        else {**term, "matchExpressions": [*expressions, requirement]}
        for term in terms or [{}]
    ]
    new_required = {**required, "nodeSelectorTerms": new_terms}
    new_node_affinity = {**node_affinity, "requiredDuringSchedulingIgnoredDuringExecution": new_required}
    ops.append({"op": "add", "path": "/spec/affinity", "value": {**affinity, "nodeAffinity": new_node_affinity}})


def _record_annotations(
    meta: Any, annotations: Mapping[str, str], ops: list[Json], parts: DomainPieces, unwrapped: Sequence[str]
) -> None:
    """Domain, mask id, mask and words on the pod; the unwrapped containers' names, or no such annotation."""
    wanted = [(key, pointer, value) for key, pointer, value in parts.annotations]
    if unwrapped:
        key = keys.POD_UNWRAPPED_ANNOTATION
        wanted.append((key, _pointer(key), ",".join(unwrapped)))
    if not isinstance(meta, dict):
        ops.append({"op": "add", "path": "/metadata", "value": {"annotations": {k: v for k, _, v in wanted}}})
        return
    if not annotations:
        ops.append({"op": "add", "path": "/metadata/annotations", "value": {k: v for k, _, v in wanted}})
        return
    ops.extend({"op": "add", "path": f"/metadata/annotations/{pointer}", "value": value}
               for key, pointer, value in wanted if annotations.get(key) != value)  # fmt: skip
    if not unwrapped and keys.POD_UNWRAPPED_ANNOTATION in annotations:
        ops.append({"op": "remove", "path": f"/metadata/annotations/{_pointer(keys.POD_UNWRAPPED_ANNOTATION)}"})
