"""Label selectors (matchLabels + matchExpressions) as Kubernetes evaluates them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from netpolcheck.model.apivalidation import OPERATORS
from netpolcheck.model.schema import fields
from netpolcheck.model.validation import reject_unknown

__all__ = ["EVERYTHING", "OPERATORS", "Requirement", "Selector", "parse_selector"]


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

    def miss(self, labels: Mapping[str, str]) -> str:
        """Why `labels` fail this requirement (call only when they do)."""
        if self.operator in ("Exists", "In") and self.key not in labels:
            return f"no label {self.key}"
        if self.operator == "DoesNotExist":
            return f"has label {self.key}"
        verb = "not in" if self.operator == "In" else "in"
        return f"{self.key}={labels[self.key]} {verb} ({','.join(sorted(self.values))})"

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

    def miss(self, labels: Mapping[str, str]) -> str:
        """Why `labels` fail this selector: every requirement they fail."""
        return ", ".join(req.miss(labels) for req in self.requirements if not req.matches(labels))

    @property
    def is_empty(self) -> bool:
        return not self.requirements

    def describe(self) -> str:
        return ",".join(req.describe() for req in self.requirements) or "{} (everything)"


EVERYTHING = Selector(())


SELECTOR_FIELDS = fields("labelSelector")
EXPRESSION_FIELDS = fields("requirement")


def parse_selector(value: Any, where: str, field: str) -> Selector:
    """Build a LabelSelector `apivalidation.label_selector` accepted; `{}` matches everything.

    Only the strict-decoding check for unknown fields is added here.
    """
    reject_unknown(value, SELECTOR_FIELDS, where, f"{field}.")
    reqs = [Requirement(key, "In", frozenset({val})) for key, val in (value.get("matchLabels") or {}).items()]
    for i, expr in enumerate(value.get("matchExpressions") or []):
        reject_unknown(expr, EXPRESSION_FIELDS, where, f"{field}.matchExpressions[{i}].")
        reqs.append(Requirement(expr["key"], expr["operator"], frozenset(expr.get("values") or ())))
    canonical = sorted(set(reqs), key=lambda r: (r.key, r.operator, sorted(r.values)))
    return Selector(tuple(canonical))
