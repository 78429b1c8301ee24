"""Kubernetes label selectors as weave-npc sees them: a canonical string (its set key) and matching.

The string follows apimachinery's `labels.Selector.String()`: requirements sorted by key, joined by
commas; `k=v`, `k in (a,b)`, `k notin (a)`, `k`, `!k`. An empty selector is `""` and matches everything.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class SelectorError(ValueError):
    """A selector weave-npc would refuse (unknown operator, missing values)."""


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: str  # "=", "in", "notin", "exists", "!"
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        if self.operator in ("=", "in"):
            return self.key in labels and labels[self.key] in self.values
        if self.operator == "notin":
            return self.key not in labels or labels[self.key] not in self.values
        if self.operator == "exists":
            return self.key in labels
        return self.key not in labels

    def __str__(self) -> str:
        if self.operator == "=":
            return f"{self.key}={self.values[0]}"
        if self.operator in ("in", "notin"):
            return f"{self.key} {self.operator} ({','.join(sorted(self.values))})"
        if self.operator == "exists":
            return self.key
        return f"!{self.key}"


_OPERATORS = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}


@dataclass(frozen=True)
class LabelSelector:
    requirements: tuple[Requirement, ...]

    @classmethod
    def parse(cls, spec: Mapping[str, Any] | None, *, ignore_expressions: bool = False) -> LabelSelector:
        """Build from a `metav1.LabelSelector` dict; `ignore_expressions` is the matchExpressions fault."""
        spec = spec or {}
        reqs = [Requirement(str(k), "=", (str(v),)) for k, v in (spec.get("matchLabels") or {}).items()]
        for expr in [] if ignore_expressions else (spec.get("matchExpressions") or []):
            op = _OPERATORS.get(expr.get("operator", ""))
            if op is None:
                raise SelectorError(f"{expr.get('operator')!r} is not a valid pod selector operator")
            values = tuple(str(v) for v in expr.get("values") or ())
            if op in ("in", "notin") and not values:
                raise SelectorError(
                    f"for 'in', 'notin' operators, values set can't be empty ({expr.get('key')})"
                )
            reqs.append(Requirement(str(expr.get("key", "")), op, values))
        reqs.sort(key=lambda r: r.key)
        return cls(tuple(reqs))

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        labels = labels or {}
        return all(r.matches(labels) for r in self.requirements)

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)
