"""The patch as the webhook wrote it before it was written directly: mutate a deep copy, then diff.

``_inject`` and its helpers are a frozen copy of ``hwcap_operator/admission/mutate.py`` at commit b70d5f8
(``jsonpatch.make_patch`` of the original and a mutated deep copy), kept only as the reference the direct
patch is compared with in ``test_admission_patch_equivalence.py``. :func:`reference_mutate_pod` runs the
product's ``mutate_pod`` (selection, re-entry checks) with this ``_inject`` in place of the direct one, so
the comparison isolates exactly how the patch is written.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from unittest import mock

import jsonpatch

from hwcap_operator import keys
from hwcap_operator.admission import mutate
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
from hwcap_operator.admission.mutate import _Denied, _owned_by, _untouched, install_init_container, wrapper_argv

Json = dict[str, Any]


def reference_mutate_pod(pod: Mapping[str, Any], **kwargs: Any) -> AdmissionDecision:
    """``mutate_pod`` with the diff-based patch."""

    def diffing(pod: Mapping[str, Any], namespace: str, who: str, domain: DomainView, _parts: Any,
                config: MutationConfig, resolver: EntrypointResolver, reentry: bool) -> AdmissionDecision:  # fmt: skip
        return _inject(pod, namespace, who, domain, config, resolver, reentry)

    with mock.patch.object(mutate, "_inject", diffing):
        return mutate.mutate_pod(pod, **kwargs)


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
