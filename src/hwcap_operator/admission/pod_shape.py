"""Is this object shaped like a pod where the mutation reads it? One linear pass, a message naming the field.

The API server only sends pods it decoded into its typed Pod, so their shape is always right; anything
else reaching the webhook (a client calling it directly, a broken proxy, a fuzzer) must get a clear
denial, not an exception halfway through the mutation. Only the fields :mod:`~.mutate` and
:mod:`~.selection` read are checked, with the types the Pod schema gives them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_STRING_MAPS = ("labels", "annotations")
_CONTAINER_GROUPS = ("initContainers", "containers")


def pod_shape_problem(pod: Any) -> str | None:
    """Why ``pod`` cannot be a Pod as the API server sends it (the first problem found), or None."""
    if not isinstance(pod, dict):
        return f"the object is a {type(pod).__name__}, not a Pod"
    if pod.get("kind") not in (None, "Pod"):
        return f"the object is a {pod.get('kind')!r}, not a Pod"
    meta = pod.get("metadata")
    if meta is not None:
        if not isinstance(meta, dict):
            return "metadata is not an object"
        for field in _STRING_MAPS:
            if (problem := _string_map(meta.get(field), f"metadata.{field}")) is not None:
                return problem
        for field in ("name", "generateName", "namespace"):
            if not isinstance(meta.get(field), str | None):
                return f"metadata.{field} is not a string"
        if (problem := _objects(meta.get("ownerReferences"), "metadata.ownerReferences")) is not None:
            return problem
    spec = pod.get("spec")
    if spec is None:
        return None
    if not isinstance(spec, dict):
        return "spec is not an object"
    if not isinstance(spec.get("os"), dict | None):
        return "spec.os is not an object"
    for field in ("volumes", "imagePullSecrets"):
        if (problem := _objects(spec.get(field), f"spec.{field}")) is not None:
            return problem
    for group in _CONTAINER_GROUPS:
        if (problem := _objects(spec.get(group), f"spec.{group}")) is not None:
            return problem
        for i, container in enumerate(spec.get(group) or []):
            if (problem := _container_problem(container, f"spec.{group}[{i}]")) is not None:
                return problem
    return _affinity_problem(spec.get("affinity"))


def _container_problem(container: Mapping[str, Any], where: str) -> str | None:
    if not isinstance(container.get("name", ""), str):
        return f"{where}.name is not a string"
    if not isinstance(container.get("image"), str | None):
        return f"{where}.image is not a string"
    for field in ("command", "args"):
        value = container.get(field)
        if value is not None and not (isinstance(value, list) and all(isinstance(a, str) for a in value)):
            return f"{where}.{field} is not a list of strings"
    for field in ("env", "volumeMounts", "envFrom"):
        if (problem := _objects(container.get(field), f"{where}.{field}")) is not None:
            return problem
    for i, entry in enumerate(container.get("env") or []):
        if not isinstance(entry.get("name"), str) or not isinstance(entry.get("value"), str | None):
            return f"{where}.env[{i}] needs a string name and value"
    for i, mount in enumerate(container.get("volumeMounts") or []):
        if not isinstance(mount.get("mountPath"), str | None):
            return f"{where}.volumeMounts[{i}].mountPath is not a string"
    return None


def _affinity_problem(affinity: Any) -> str | None:
    where = "spec.affinity"
    for field in ("nodeAffinity", "requiredDuringSchedulingIgnoredDuringExecution"):
        if affinity is None:
            return None
        if not isinstance(affinity, dict):
            return f"{where} is not an object"
        affinity, where = affinity.get(field), f"{where}.{field}"
    if affinity is None:
        return None
    if not isinstance(affinity, dict):
        return f"{where} is not an object"
    terms = affinity.get("nodeSelectorTerms")
    if (problem := _objects(terms, f"{where}.nodeSelectorTerms")) is not None:
        return problem
    for i, term in enumerate(terms or []):
        if not isinstance(term.get("matchExpressions"), list | None):
            return f"{where}.nodeSelectorTerms[{i}].matchExpressions is not a list"
    return None


def _string_map(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        return f"{where} is not a map of strings"
    return None


def _objects(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        return f"{where} is not a list of objects"
    return None
