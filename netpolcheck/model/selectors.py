"""Label selectors (matchLabels + matchExpressions) as Kubernetes evaluates them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from netpolcheck.model.errors import StateError

OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: str
    values: frozenset[str]

    def matches(self, labels: Mapping[str, str]) -> bool:
        if self.operator == "In":
            return self.key in labels and labels[self.key] in self.values
        if self.operator == "NotIn":
            return self.key not in labels or labels[self.key] not in self.values
        if self.operator == "Exists":
            return self.key in labels
        return self.key not in labels  # DoesNotExist

    def describe(self) -> str:
        if self.operator in ("Exists", "DoesNotExist"):
            return self.key if self.operator == "Exists" else f"!{self.key}"
        word = "in" if self.operator == "In" else "notin"
        return f"{self.key} {word} ({','.join(sorted(self.values))})"


@dataclass(frozen=True)
class Selector:
    """A parsed label selector. The empty selector matches everything."""

    requirements: tuple[Requirement, ...]

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(req.matches(labels) for req in self.requirements)

    @property
    def is_empty(self) -> bool:
        return not self.requirements

    def describe(self) -> str:
        return ",".join(req.describe() for req in self.requirements) or "{} (everything)"


EVERYTHING = Selector(())


def _labels_requirements(value: Any, where: str, field: str) -> list[Requirement]:
    if value is None:
        return []
    if not isinstance(value, dict):
        raise StateError(where, field, "must be an object of label key to value")
    reqs = []
    for key, val in value.items():
        if not isinstance(val, str):
            raise StateError(where, f"{field}.{key}", "label value must be a string")
        reqs.append(Requirement(str(key), "In", frozenset({val})))
    return reqs


def _expression(value: Any, where: str, field: str) -> Requirement:
    if not isinstance(value, dict):
        raise StateError(where, field, "must be an object with key, operator and values")
    unknown = set(value) - {"key", "operator", "values"}
    if unknown:
        raise StateError(where, f"{field}.{sorted(unknown)[0]}", "unknown field")
    key, operator, values = value.get("key"), value.get("operator"), value.get("values")
    if not isinstance(key, str) or not key:
        raise StateError(where, f"{field}.key", "must be a non-empty string")
    if operator not in OPERATORS:
        raise StateError(
            where, f"{field}.operator", f"invalid operator {operator!r}; use one of " + ", ".join(OPERATORS)
        )
    if values is None:
        values = []
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise StateError(where, f"{field}.values", "must be a list of strings")
    if operator in ("In", "NotIn") and not values:
        raise StateError(where, f"{field}.values", f"operator {operator} needs at least one value")
    if operator in ("Exists", "DoesNotExist") and values:
        raise StateError(where, f"{field}.values", f"operator {operator} takes no values")
    return Requirement(key, operator, frozenset(values))


def parse_selector(value: Any, where: str, field: str) -> Selector:
    """Parse a LabelSelector object; `{}` is the empty selector (matches everything)."""
    if not isinstance(value, dict):
        raise StateError(where, field, "must be a label selector object")
    unknown = set(value) - {"matchLabels", "matchExpressions"}
    if unknown:
        raise StateError(where, f"{field}.{sorted(unknown)[0]}", "unknown field")
    reqs = _labels_requirements(value.get("matchLabels"), where, f"{field}.matchLabels")
    exprs = value.get("matchExpressions") or []
    if not isinstance(exprs, list):
        raise StateError(where, f"{field}.matchExpressions", "must be a list")
    reqs += [_expression(e, where, f"{field}.matchExpressions[{i}]") for i, e in enumerate(exprs)]
    canonical = sorted(set(reqs), key=lambda r: (r.key, r.operator, sorted(r.values)))
    return Selector(tuple(canonical))
