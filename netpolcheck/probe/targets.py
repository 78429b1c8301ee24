"""Parse and validate the JSON target list that `probe` reads."""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from typing import Any

from netpolcheck.probe.errors import BadInput

PROTOCOLS = ("TCP", "UDP", "SCTP")


@dataclass(frozen=True)
class Target:
    id: str
    ip: str
    port: int
    protocol: str  # one of PROTOCOLS


def parse_port(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadInput(f"{where}: port must be an integer, got {value!r}")
    if not 1 <= value <= 65535:
        raise BadInput(f"{where}: port {value} out of range 1-65535")
    return value


def parse_ipv4(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise BadInput(f"{where}: ip must be a string, got {value!r}")
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        raise BadInput(f"{where}: {value!r} is not an IP address") from None
    if address.version != 4:
        raise BadInput(f"{where}: {value!r} is IPv6; only IPv4 targets are supported")
    return str(address)


def parse_protocol(value: Any, where: str) -> str:
    if not isinstance(value, str) or value.upper() not in PROTOCOLS:
        raise BadInput(f"{where}: unknown protocol {value!r} (expected one of {', '.join(PROTOCOLS)})")
    return value.upper()


def parse_target(item: Any, index: int) -> Target:
    where = f"target {index}"
    if not isinstance(item, dict):
        raise BadInput(f"{where}: expected an object with id, ip, port, protocol, got {type(item).__name__}")
    missing = [key for key in ("id", "ip", "port", "protocol") if key not in item]
    if missing:
        raise BadInput(f"{where}: missing {', '.join(missing)}")
    target_id = item["id"]
    if not isinstance(target_id, str) or not target_id:
        raise BadInput(f"{where}: id must be a non-empty string, got {target_id!r}")
    where = f"target {index} (id {target_id!r})"
    return Target(
        id=target_id,
        ip=parse_ipv4(item["ip"], where),
        port=parse_port(item["port"], where),
        protocol=parse_protocol(item["protocol"], where),
    )


def parse_targets(text: str) -> list[Target]:
    """The targets in `text` (a JSON list); BadInput names the first thing wrong."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadInput(
            f"targets are not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    if not isinstance(document, list):
        raise BadInput(f"targets must be a JSON list, got {type(document).__name__}")
    targets = [parse_target(item, index) for index, item in enumerate(document)]
    seen: set[str] = set()
    for target in targets:
        if target.id in seen:
            raise BadInput(f"duplicate target id {target.id!r}")
        seen.add(target.id)
    return targets
