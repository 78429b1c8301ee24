"""Small checks shared by the STATE and policy parsers; each raises StateError naming object and field."""

from __future__ import annotations

import re
from typing import Any

from netpolcheck.model.errors import StateError
from netpolcheck.model.objects import PROTOCOLS

_PORT_NAME = re.compile(r"^(?=.*[a-z])[a-z0-9]([a-z0-9-]*[a-z0-9])?$")


def require_object(value: Any, where: str, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise StateError(where, field, "must be an object")
    return value


def reject_unknown(value: dict[str, Any], allowed: set[str], where: str, prefix: str = "") -> None:
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise StateError(where, f"{prefix}{unknown[0]}", "unknown field")


def require_string(value: Any, where: str, field: str) -> str:
    if not isinstance(value, str) or not value:
        raise StateError(where, field, "must be a non-empty string")
    return value


def string_map(value: Any, where: str, field: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise StateError(where, field, "must be an object of string keys to string values")
    return {str(k): v for k, v in value.items()}


def port_number(value: Any, where: str, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise StateError(where, field, f"must be a port number, got {value!r}")
    if not 1 <= value <= 65535:
        raise StateError(where, field, f"port {value} out of range 1-65535")
    return value


def port_name(value: Any, where: str, field: str) -> str:
    if not isinstance(value, str) or len(value) > 15 or not _PORT_NAME.match(value):
        raise StateError(
            where,
            field,
            f"invalid port name {value!r} (IANA service name: <=15 lowercase "
            "letters, digits and '-', at least one letter)",
        )
    return value


def number_or_name(value: Any, where: str, field: str) -> int | str:
    if isinstance(value, str):
        return port_name(value, where, field)
    return port_number(value, where, field)


def protocol(value: Any, where: str, field: str) -> str:
    if value is None:
        return "TCP"
    if value not in PROTOCOLS:
        raise StateError(where, field, f"unknown protocol {value!r}; use one of {', '.join(PROTOCOLS)}")
    return str(value)
