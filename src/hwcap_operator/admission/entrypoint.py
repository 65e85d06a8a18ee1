"""Rewriting a container's command/args so that ``hwcap-exec`` runs first and then the real entrypoint.

Kubernetes decides what a container runs from four inputs (kubelet ``kuberuntime``; an empty list counts as
unset):

===========  ========  ==================================
command      args      argv the container runs
===========  ========  ==================================
set          set       command + args
set          unset     command            (image CMD ignored)
unset        set       ENTRYPOINT + args  (image CMD ignored)
unset        unset     ENTRYPOINT + CMD
===========  ========  ==================================

The rewrite keeps that argv exactly, prefixed by the wrapper: ``command`` becomes wrapper + (command or
ENTRYPOINT); ``args`` is kept, or set to CMD when both were unset (once ``command`` is set the runtime would
ignore the image CMD). Image values moved into the spec are escaped (``$`` → ``$$``) because the kubelet
expands ``$(VAR)`` in command/args but never in the image config.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from hwcap_operator import keys


class Unresolvable(Exception):
    """The image's ENTRYPOINT/CMD could not be learned; the message says why (registry, auth, format)."""


class BadEntrypointAnnotation(ValueError):
    """A per-container entrypoint annotation that is not a JSON list of strings; names the annotation."""


@dataclass(frozen=True)
class ImageEntrypoint:
    """The two argv parts an OCI image config carries (``config.Entrypoint`` / ``config.Cmd``)."""

    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()


@dataclass(frozen=True)
class ImageRequest:
    """Everything a resolver may need for one container image.

    ``pull_secrets`` are the pod's ``imagePullSecrets`` names in ``namespace``; ``arch`` (GOARCH) picks the
    platform's manifest from a multi-arch index, as the kubelet would on a member node.
    """

    image: str
    namespace: str
    pull_secrets: tuple[str, ...]
    arch: str


class EntrypointResolver(Protocol):
    """Looks up an image's ENTRYPOINT/CMD; the webhook glue supplies a cached, registry-backed one.

    Called synchronously from :func:`~hwcap_operator.admission.mutate.mutate_pod` (the glue runs it in a
    worker thread); must raise :class:`Unresolvable` rather than any other exception for lookups that fail.
    """

    def resolve(self, request: ImageRequest) -> ImageEntrypoint: ...


class NoResolver:
    """A resolver that knows no image: every container without ``command`` falls to the domain's policy."""

    def resolve(self, request: ImageRequest) -> ImageEntrypoint:
        raise Unresolvable(f"no image registry lookup configured for {request.image}")


def annotation_key(container_name: str) -> str:
    """Key of the per-container override, e.g. ``hwcap.dev/entrypoint.app``."""
    return f"{keys.POD_ENTRYPOINT_ANNOTATION_PREFIX}{container_name}"


def entrypoint_from_annotation(annotations: Mapping[str, str], container_name: str) -> ImageEntrypoint | None:
    """The override for ``container_name`` if the pod carries one.

    The value is the image's ENTRYPOINT as a JSON list (CMD taken as empty), or an object
    ``{"entrypoint": [...], "cmd": [...]}`` when the image's CMD matters (container with neither command
    nor args). Raises :class:`BadEntrypointAnnotation` naming the key on malformed values.
    """
    key = annotation_key(container_name)
    raw = annotations.get(key)
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except (TypeError, ValueError) as exc:
        raise BadEntrypointAnnotation(f"annotation {key}: not JSON ({exc})") from None
    if isinstance(value, list):
        return ImageEntrypoint(entrypoint=_str_list(value, key))
    if isinstance(value, dict):
        unknown = set(value) - {"entrypoint", "cmd"}
        if unknown:
            raise BadEntrypointAnnotation(f"annotation {key}: unknown field(s) {', '.join(sorted(unknown))}")
        return ImageEntrypoint(
            entrypoint=_str_list(value.get("entrypoint", []), f"{key}.entrypoint"),
            cmd=_str_list(value.get("cmd", []), f"{key}.cmd"),
        )
    raise BadEntrypointAnnotation(f"annotation {key}: expected a JSON list of strings or an object")


def _str_list(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadEntrypointAnnotation(f"annotation {where}: expected a JSON list of strings")
    return tuple(value)


def escape_for_spec(argv: Sequence[str]) -> list[str]:
    """Escape image argv for the pod spec, where the kubelet expands ``$(VAR)`` and ``$$`` → ``$``."""
    return [a.replace("$", "$$") for a in argv]


def needs_image(container: Mapping[str, Any]) -> bool:
    """True when the effective argv depends on the image config (no ``command``)."""
    return not container.get("command")


@dataclass(frozen=True)
class Rewrite:
    """The new ``command`` and ``args`` of a container (``args`` None = leave the field as it is)."""

    command: list[str]
    args: list[str] | None


def rewrite(container: Mapping[str, Any], wrapper: Sequence[str], image: ImageEntrypoint | None) -> Rewrite:
    """Prefix the container's effective argv with ``wrapper``, preserving it exactly (see module doc).

    ``image`` is required when :func:`needs_image` is true; passing None then raises :class:`Unresolvable`.
    """
    command = list(container.get("command") or [])
    args = list(container.get("args") or [])
    if command:
        return Rewrite(list(wrapper) + command, None)
    if image is None:
        raise Unresolvable(f"container {container.get('name')!r} has no command and its image is unresolved")
    if args:
        return Rewrite(list(wrapper) + escape_for_spec(image.entrypoint), None)
    if not image.entrypoint and not image.cmd:
        raise Unresolvable(f"image {container.get('image')!r} has neither ENTRYPOINT nor CMD")
    return Rewrite(list(wrapper) + escape_for_spec(image.entrypoint), escape_for_spec(image.cmd))
