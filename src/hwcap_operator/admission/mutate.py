"""Pod in, admission decision out: the whole webhook mutation as one pure function.

For a pod selected by exactly one domain the patch adds an emptyDir, an init container that installs
``hwcap-exec`` into it, wraps every container's command (argv preserved, see ``entrypoint``), requires the
domain's member label in every node selector term, records domain/mask on annotations, and sets
``HWCAP_DOMAIN``/``HWCAP_MASK_ID`` and the merged userspace fallbacks in every container. The patch is
computed with ``jsonpatch.make_patch`` from the original and the mutated copy, so paths are right for pods
that lack env, volumes or affinity.

Decisions made here (documented for users):
- init containers of the pod are wrapped too (``MutationConfig.wrap_init_containers``): they run on the
  node like any other process of the pod and must not see features a later migration target lacks;
- every step is idempotent: a pod that already carries our annotation or install step (webhook
  re-invocation, a re-created copy) is never wrapped twice; only containers added since (e.g. a sidecar
  injected by a later webhook) get wrapped. A pod injected for another domain or an older mask id is
  left unchanged with a warning, since its wrappers carry that mask;
- pods owned by a DaemonSet get a warning: the affinity confines them to member nodes, and the DaemonSet
  controller (which reads its template, not our patch) would keep a Pending pod on every other node;
- nothing injected asks for privilege: the install step runs as non-root, with no capability, no privilege
  escalation, RuntimeDefault seccomp and a read-only root filesystem; user containers' securityContext is
  never touched.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jsonpatch

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
) -> AdmissionDecision:
    """Decide and compute the mutation for one Pod CREATE.

    ``namespace`` is the request's namespace (a pod object may lack ``metadata.namespace``);
    ``namespace_labels`` its labels from the operator's cache. ``resolver`` is consulted only for
    containers without ``command`` and no override annotation; it may block on a registry, so the async
    glue calls this function in a worker thread. Never raises for bad pod input: the decision says why.
    """
    if namespace in never_touched_namespaces(
        config.operator_namespace, config.nfd_namespace, config.extra_excluded_namespaces
    ):
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
    annotations = meta.get("annotations") or {}
    injected_into = annotations.get(keys.POD_DOMAIN_ANNOTATION)
    injected_mask = annotations.get(keys.POD_MASK_ID_ANNOTATION)
    has_install = any(c.get("name") == config.init_container_name for c in spec.get("initContainers") or [])
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
    reentry = injected_into is not None or has_install
    if reentry:
        wrapper = wrapper_argv(domain, config)
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
        return _inject(pod, namespace, who, domain, config, resolver, reentry)
    except _Denied as exc:
        return AdmissionDecision(False, "denied", message=f"hwcap-operator: {exc}", domain=domain.name)


def _inject(
    pod: Mapping[str, Any],
    namespace: str,
    who: str,
    domain: DomainView,
    config: MutationConfig,
    resolver: EntrypointResolver,
    reentry: bool,
) -> AdmissionDecision:
    """Build the mutated copy and diff it. Every step is idempotent, so a re-invocation (``reentry``: the
    pod already has our annotation or install step, e.g. after another webhook added a sidecar) only
    wraps what is not wrapped yet and otherwise yields an empty patch."""
    mutated: Json = copy.deepcopy(dict(pod))
    meta = mutated.setdefault("metadata", {})
    annotations: dict[str, str] = meta.get("annotations") or {}
    spec = mutated.setdefault("spec", {})
    warnings: list[str] = []
    events: list[AdmissionEvent] = []
    unwrapped: list[str] = []
    wrapper = wrapper_argv(domain, config)
    pull_secrets = tuple(s.get("name", "") for s in spec.get("imagePullSecrets") or [] if s.get("name"))
    resolved: dict[str, ImageEntrypoint | Unresolvable] = {}

    def image_of(container: Json) -> ImageEntrypoint:
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

    groups = (["initContainers"] if config.wrap_init_containers else []) + ["containers"]
    wrapped = 0
    for group in groups:
        for container in spec.get(group) or []:
            name = container.get("name", "")
            if reentry and group == "initContainers" and name == config.init_container_name:
                continue  # our own install step (re-invocation): it runs unmasked by design
            why = _wrap(container, annotations, wrapper, config, image_of, domain)
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
        for container in spec.get(group) or []:
            if not (reentry and group == "initContainers" and container.get("name") == config.init_container_name):
                warnings += _set_env(container, domain)
    if wrapped:  # checked on re-entry too: containers left unwrapped earlier may resolve now
        _add_volume(spec, config, reentry)
        inits = spec.get("initContainers") or []
        if not any(c.get("name") == config.init_container_name for c in inits):
            spec["initContainers"] = [install_init_container(config), *inits]
    if _owned_by(pod, "DaemonSet") and not reentry:
        warnings.append(
            f"pod {who} belongs to a DaemonSet: it can only run on member nodes of domain {domain.name} "
            f"(label {domain.member_label_key}); give the DaemonSet that nodeSelector or it stays Pending elsewhere"
        )
    _require_member_label(spec, domain)
    annotations.update(
        {
            keys.POD_DOMAIN_ANNOTATION: domain.name,
            keys.POD_MASK_ID_ANNOTATION: domain.mask_id,
            keys.POD_MASK_ANNOTATION: domain.mask_canonical,
            keys.POD_HWCAP_WORDS_ANNOTATION: domain.hwcap_words_text(),
        }
    )
    if unwrapped:
        annotations[keys.POD_UNWRAPPED_ANNOTATION] = ",".join(unwrapped)
    else:
        annotations.pop(keys.POD_UNWRAPPED_ANNOTATION, None)
    meta["annotations"] = annotations
    patch = jsonpatch.make_patch(dict(pod), mutated).patch
    if not patch:
        return _untouched("already injected", domain.name, warnings)
    return AdmissionDecision(
        True,
        "mutated",
        patch=patch,
        message=f"injected mask {domain.mask_id} of domain {domain.name}",
        warnings=tuple(warnings),
        events=tuple(events),
        domain=domain.name,
    )


def _wrap(
    container: Json,
    annotations: Mapping[str, str],
    wrapper: Sequence[str],
    config: MutationConfig,
    image_of: Callable[[Json], ImageEntrypoint],
    domain: DomainView,
) -> str | None:
    """Wrap one container in place; returns why it must stay unwrapped (Warn policy). Raises _Denied."""
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
        new = rewrite(container, wrapper, image)
    except Unresolvable as exc:
        if domain.unresolved_entrypoint == "Deny":
            raise _Denied(f"container {name!r}: {exc}") from None
        return str(exc)
    for mount in container.get("volumeMounts") or []:
        if mount.get("mountPath", "").rstrip("/") == config.mount_path.rstrip("/"):
            raise _Denied(f"container {name!r} already mounts {config.mount_path}, where hwcap-exec is installed")
    container["command"] = new.command
    if new.args is not None:
        container["args"] = new.args
    mounts = container.get("volumeMounts") or []
    container["volumeMounts"] = [
        *mounts,
        {"name": config.volume_name, "mountPath": config.mount_path, "readOnly": True},
    ]
    return None


def _set_env(container: Json, domain: DomainView) -> list[str]:
    """Set HWCAP_DOMAIN/HWCAP_MASK_ID and merge the fallbacks into one container's env; returns warnings."""
    name = container.get("name", "")
    env: list[Json] = list(container.get("env") or [])
    warnings: list[str] = []

    def last(var: str) -> int | None:
        found = [i for i, e in enumerate(env) if e.get("name") == var]
        return found[-1] if found else None

    def put(var: str, value: str) -> None:
        i = last(var)
        if i is None:
            env.append({"name": var, "value": value})
        else:
            env[i] = {"name": var, "value": value}

    put(keys.ENV_DOMAIN, domain.name)
    put(keys.ENV_MASK_ID, domain.mask_id)
    for var in domain.fallbacks.variables():
        i = last(var)
        current: str | None = None
        if i is not None:
            if "valueFrom" in env[i]:
                warnings.append(
                    f"container {name!r}: {var} comes from valueFrom and cannot be merged; "
                    f"the mask's {var} fallback is not applied"
                )
                continue
            current = env[i].get("value")
        elif container.get("envFrom"):
            warnings.append(
                f"container {name!r}: an explicit {var} is added and overrides any {var} from envFrom"
            )
        try:
            put(var, domain.fallbacks.merge(var, current))
        except FallbackMergeError as exc:
            warnings.append(f"container {name!r}: {exc}; the mask's {var} fallback is not applied")
    container["env"] = env
    return warnings


def _add_volume(spec: Json, config: MutationConfig, reentry: bool) -> None:
    volumes = spec.get("volumes") or []
    if any(v.get("name") == config.volume_name for v in volumes):
        if reentry:
            return  # ours, from the first admission
        raise _Denied(f"the pod already has a volume named {config.volume_name!r}")
    spec["volumes"] = [*volumes, {"name": config.volume_name, "emptyDir": {"sizeLimit": config.volume_size_limit}}]


def _require_member_label(spec: Json, domain: DomainView) -> None:
    """AND ``<member label> In (true)`` into every required node selector term (terms are ORed)."""
    requirement = {"key": domain.member_label_key, "operator": "In", "values": [MEMBER_LABEL_VALUE]}
    affinity = spec.setdefault("affinity", {}) or {}
    spec["affinity"] = affinity
    node_affinity = affinity.setdefault("nodeAffinity", {}) or {}
    affinity["nodeAffinity"] = node_affinity
    required = node_affinity.get("requiredDuringSchedulingIgnoredDuringExecution") or {}
    terms = required.get("nodeSelectorTerms") or []
    if not terms:
        terms = [{}]
    for term in terms:
        expressions = term.get("matchExpressions") or []
        if requirement not in expressions:
            term["matchExpressions"] = [*expressions, requirement]
    required["nodeSelectorTerms"] = terms
    node_affinity["requiredDuringSchedulingIgnoredDuringExecution"] = required
