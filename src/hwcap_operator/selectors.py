"""Kubernetes label selectors (``metav1.LabelSelector``) with the API server's semantics, parsed once.

Domains select nodes with them and the webhook selects namespaces and pods with them; both must agree
with what ``kubectl get -l`` would match, so there is one implementation, outside either layer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

Operator = Literal["In", "NotIn", "Exists", "DoesNotExist"]
_OPERATORS: tuple[Operator, ...] = ("In", "NotIn", "Exists", "DoesNotExist")


class SelectorError(ValueError):
    """A label selector that Kubernetes would reject; the message names the field and the bad value."""


@dataclass(frozen=True)
class Requirement:
    """One ``matchExpressions`` entry (``matchLabels`` entries become ``In`` with one value)."""

    key: str
    operator: Operator
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Kubernetes semantics: ``NotIn`` and ``DoesNotExist`` match a missing key."""
        present = self.key in labels
        if self.operator == "In":
            return present and labels[self.key] in self.values
        if self.operator == "NotIn":
            return not present or labels[self.key] not in self.values
        if self.operator == "Exists":
            return present
        return not present


@dataclass(frozen=True)
class LabelSelector:
    """A parsed ``metav1.LabelSelector``: every requirement must hold (an empty selector matches all)."""

    requirements: tuple[Requirement, ...] = ()

    @classmethod
    def parse(cls, raw: Mapping[str, Any] | None, *, field: str = "selector") -> LabelSelector:
        """Parse the Kubernetes JSON form; ``field`` is the path used in error messages."""
        if raw is None:
            return cls()
        if not isinstance(raw, Mapping):
            raise SelectorError(f"{field}: expected an object, got {type(raw).__name__}")
        unknown = set(raw) - {"matchLabels", "matchExpressions"}
        if unknown:
            raise SelectorError(f"{field}: unknown field(s) {', '.join(sorted(unknown))}")
        reqs: list[Requirement] = []
        match_labels = raw.get("matchLabels") or {}
        if not isinstance(match_labels, Mapping):
            raise SelectorError(f"{field}.matchLabels: expected an object of strings")
        for key, value in match_labels.items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise SelectorError(f"{field}.matchLabels[{key!r}]: key and value must be strings")
            reqs.append(Requirement(key, "In", frozenset({value})))
        expressions = raw.get("matchExpressions") or []
        if not isinstance(expressions, Sequence) or isinstance(expressions, str):
            raise SelectorError(f"{field}.matchExpressions: expected a list")
        for i, expr in enumerate(expressions):
            reqs.append(_parse_expression(expr, f"{field}.matchExpressions[{i}]"))
        return cls(tuple(reqs))

    def matches(self, labels: Mapping[str, str]) -> bool:
        """True when every requirement holds for ``labels``."""
        return all(r.matches(labels) for r in self.requirements)


def _parse_expression(expr: Any, where: str) -> Requirement:
    if not isinstance(expr, Mapping):
        raise SelectorError(f"{where}: expected an object")
    key = expr.get("key")
    op = expr.get("operator")
    values = expr.get("values") or []
    if not isinstance(key, str) or not key:
        raise SelectorError(f"{where}.key: required non-empty string")
    if op not in _OPERATORS:
        raise SelectorError(f"{where}.operator: {op!r} is not one of {', '.join(_OPERATORS)}")
    if not isinstance(values, Sequence) or isinstance(values, str) or not all(
        isinstance(v, str) for v in values
    ):
        raise SelectorError(f"{where}.values: expected a list of strings")
    if op in ("In", "NotIn") and not values:
        raise SelectorError(f"{where}.values: operator {op} needs at least one value")
    if op in ("Exists", "DoesNotExist") and values:
        raise SelectorError(f"{where}.values: operator {op} takes no values")
    return Requirement(key, op, frozenset(values))
