"""The STATE parser's own checks (shape, unknown fields) and the bridge to the API server's rules.

Field syntax the Kubernetes API server checks (names, labels, selectors, CIDRs, ports, protocols) is
in `apivalidation`, shared with the embedded API server's admission; `check` turns its first cause
into the one StateError line the command prints.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from netpolcheck.model import apivalidation as api
from netpolcheck.model.errors import StateError


def check(where: str, causes: api.Causes) -> None:
    """Raise the first cause as a StateError (saying how many more there are)."""
    if not causes:
        return
    field, _, message = causes[0]
    more = len(causes) - 1
    if more:
        message += f" (and {more} more problem{'s' if more > 1 else ''} in this object)"
    raise StateError(where, field, message)


def require_object(value: Any, where: str, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise StateError(where, field, f"must be an object, got {api.quote(value)}")
    return value


def require_list(value: Any, where: str, field: str) -> list[Any]:
    """A list; an absent (null) field is the empty list."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise StateError(where, field, f"must be a list, got {api.quote(value)}")
    return value


def reject_unknown(value: dict[str, Any], allowed: Iterable[str], where: str, prefix: str = "") -> None:
    """Strict decoding (as `kubectl --validate=strict`): an unknown field is an error naming known ones."""
    known = set(allowed)
    unknown = sorted(str(k) for k in value if k not in known)
    if unknown:
        raise StateError(
            where, f"{prefix}{unknown[0]}", f"unknown field; allowed here: {', '.join(sorted(known))}"
        )


def require_string(value: Any, where: str, field: str) -> str:
    if not isinstance(value, str) or not value:
        raise StateError(where, field, f"must be a non-empty string, got {api.quote(value)}")
    return value


def name_of(value: Any) -> str | None:
    """`value` when it can name an object in a message (a non-empty string), else None."""
    return value if isinstance(value, str) and value else None
