"""Parse and validate the JSON target list that `probe` reads."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from netpolcheck.probe.errors import BadInput, shown
from netpolcheck.probe.inputs import load_json

PROTOCOLS = ("TCP", "UDP", "SCTP")
UNSPECIFIED = ipaddress.ip_network("0.0.0.0/8")  # "this network": never a destination
LIMITED_BROADCAST = ipaddress.ip_address("255.255.255.255")
MULTICAST = ipaddress.ip_network("224.0.0.0/4")


@dataclass(frozen=True)
class Target:
    id: str
    ip: str
    port: int
    protocol: str  # one of PROTOCOLS


def parse_port(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadInput(f"{where}: port must be an integer, got {shown(value)}")
    if not 1 <= value <= 65535:
        raise BadInput(f"{where}: port {shown(value)} out of range 1-65535")
    return value


def parse_ipv4(value: Any, where: str) -> str:
    """A unicast IPv4 address. Broadcast, "this network" (0.0.0.0/8) and multicast are refused: no answer
    can come from such an address, so any verdict about it would mislead."""
    if not isinstance(value, str):
        raise BadInput(f"{where}: ip must be a string, got {shown(value)}")
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        raise BadInput(f"{where}: {shown(value)} is not an IP address") from None
    if address.version != 4:
        raise BadInput(f"{where}: {shown(value)} is IPv6; only IPv4 targets are supported")
    if address == LIMITED_BROADCAST:
        raise BadInput(f"{where}: {address} is the broadcast address, not a pod or host")
    if address in UNSPECIFIED:
        raise BadInput(f'{where}: {address} is in 0.0.0.0/8 ("this network"), not a destination')
    if address in MULTICAST:
        raise BadInput(f"{where}: {address} is a multicast address; only unicast targets can answer")
    return str(address)


def parse_protocol(value: Any, where: str) -> str:
    if not isinstance(value, str) or value.upper() not in PROTOCOLS:
        raise BadInput(f"{where}: unknown protocol {shown(value)} (expected one of {', '.join(PROTOCOLS)})")
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
        raise BadInput(f"{where}: id must be a non-empty string, got {shown(target_id)}")
    where = f"target {index} (id {shown(target_id)})"
    return Target(
        id=target_id,
        ip=parse_ipv4(item["ip"], where),
        port=parse_port(item["port"], where),
        protocol=parse_protocol(item["protocol"], where),
    )


def parse_targets(text: str) -> list[Target]:
    """The targets in `text` (a JSON list); BadInput names the first thing wrong."""
    return targets_from(load_json(text, "targets"))


def targets_from(document: Any) -> list[Target]:
    """The targets of an already decoded JSON list (the resident agent's requests carry one)."""
    if not isinstance(document, list):
        raise BadInput(f"targets must be a JSON list, got {type(document).__name__}")
    targets = [parse_target(item, index) for index, item in enumerate(document)]
    seen: set[str] = set()
    for target in targets:
        if target.id in seen:
            raise BadInput(f"duplicate target id {shown(target.id)}")
        seen.add(target.id)
    return targets
