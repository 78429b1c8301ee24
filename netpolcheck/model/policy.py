"""NetworkPolicy objects parsed, validated and defaulted as the API server would store them.

Both `networking.k8s.io/v1` and `extensions/v1beta1` are accepted: on the API servers Weave 2.0.x ran
against, they are two views of one storage. `*_given` flags keep "absent" apart from "empty list",
because legacy Weave treats `from: []` / `ports: []` differently from an absent field.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from netpolcheck.model import validation as v
from netpolcheck.model.errors import StateError
from netpolcheck.model.objects import IPAddress
from netpolcheck.model.selectors import Selector, parse_selector

API_VERSIONS = ("networking.k8s.io/v1", "extensions/v1beta1")
POLICY_TYPES = ("Ingress", "Egress")
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
_METADATA_FIELDS = {
    "name",
    "namespace",
    "labels",
    "annotations",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "managedFields",
    "selfLink",
}


@dataclass(frozen=True)
class IPBlock:
    cidr: IPNetwork
    excepts: tuple[IPNetwork, ...] = ()

    def contains(self, ip: IPAddress) -> bool:
        if ip.version != self.cidr.version or ip not in self.cidr:
            return False
        return not any(ip in ex for ex in self.excepts)

    def describe(self) -> str:
        text = str(self.cidr)
        return f"{text} except {', '.join(map(str, self.excepts))}" if self.excepts else text


@dataclass(frozen=True)
class Peer:
    """One `from`/`to` entry: pod and/or namespace selector (ANDed), or an ipBlock."""

    pod_selector: Selector | None = None
    namespace_selector: Selector | None = None
    ip_block: IPBlock | None = None


@dataclass(frozen=True)
class PolicyPort:
    protocol: str = "TCP"
    port: int | str | None = None
    end_port: int | None = None

    def describe(self) -> str:
        if self.port is None:
            return f"{self.protocol}/all"
        if self.end_port is not None:
            return f"{self.protocol}/{self.port}-{self.end_port}"
        return f"{self.protocol}/{self.port}"


@dataclass(frozen=True)
class Rule:
    peers: tuple[Peer, ...] = ()
    peers_given: bool = False
    ports: tuple[PolicyPort, ...] = ()
    ports_given: bool = False


@dataclass(frozen=True)
class Policy:
    namespace: str
    name: str
    api_version: str
    pod_selector: Selector
    policy_types: frozenset[str]
    ingress: tuple[Rule, ...]
    egress: tuple[Rule, ...]

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def named_ports(self) -> bool:
        return any(isinstance(p.port, str) for rule in self.ingress + self.egress for p in rule.ports)


def _ip_block(value: Any, where: str, field: str) -> IPBlock:
    obj = v.require_object(value, where, field)
    v.reject_unknown(obj, {"cidr", "except"}, where, f"{field}.")
    cidr = _network(obj.get("cidr"), where, f"{field}.cidr")
    excepts = []
    for i, raw in enumerate(obj.get("except") or []):
        net = _network(raw, where, f"{field}.except[{i}]")
        if net.version != cidr.version or not net.subnet_of(cidr) or net == cidr:  # type: ignore[arg-type]
            raise StateError(where, f"{field}.except[{i}]", f"{raw} must be strictly within cidr {cidr}")
        excepts.append(net)
    return IPBlock(cidr, tuple(excepts))


def _network(value: Any, where: str, field: str) -> IPNetwork:
    if not isinstance(value, str) or "/" not in value:
        raise StateError(where, field, f"invalid CIDR {value!r}")
    try:
        return ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise StateError(where, field, f"invalid CIDR {value!r}") from None


def _peer(value: Any, where: str, field: str) -> Peer:
    obj = v.require_object(value, where, field)
    v.reject_unknown(obj, {"podSelector", "namespaceSelector", "ipBlock"}, where, f"{field}.")
    if "ipBlock" in obj:
        if len(obj) > 1:
            raise StateError(where, field, "ipBlock cannot be combined with a pod or namespace selector")
        return Peer(ip_block=_ip_block(obj["ipBlock"], where, f"{field}.ipBlock"))
    if not obj:
        raise StateError(where, field, "a peer needs podSelector, namespaceSelector or ipBlock")
    pods = parse_selector(obj["podSelector"], where, f"{field}.podSelector") if "podSelector" in obj else None
    nss = (
        parse_selector(obj["namespaceSelector"], where, f"{field}.namespaceSelector")
        if "namespaceSelector" in obj
        else None
    )
    return Peer(pod_selector=pods, namespace_selector=nss)


def _port(value: Any, where: str, field: str) -> PolicyPort:
    obj = v.require_object(value, where, field)
    v.reject_unknown(obj, {"protocol", "port", "endPort"}, where, f"{field}.")
    proto = v.protocol(obj.get("protocol"), where, f"{field}.protocol")
    port = v.number_or_name(obj["port"], where, f"{field}.port") if obj.get("port") is not None else None
    end = obj.get("endPort")
    if end is not None:
        end = v.port_number(end, where, f"{field}.endPort")
        if not isinstance(port, int):
            raise StateError(where, f"{field}.endPort", "needs a numeric port")
        if end < port:
            raise StateError(where, f"{field}.endPort", f"{end} is below port {port}")
    return PolicyPort(proto, port, end)


def _rule(value: Any, where: str, field: str, peer_key: str) -> Rule:
    obj = v.require_object(value, where, field)
    v.reject_unknown(obj, {peer_key, "ports"}, where, f"{field}.")
    peers_raw, ports_raw = obj.get(peer_key), obj.get("ports")
    for name, raw in ((peer_key, peers_raw), ("ports", ports_raw)):
        if raw is not None and not isinstance(raw, list):
            raise StateError(where, f"{field}.{name}", "must be a list")
    peers = tuple(_peer(p, where, f"{field}.{peer_key}[{i}]") for i, p in enumerate(peers_raw or []))
    ports = tuple(_port(p, where, f"{field}.ports[{i}]") for i, p in enumerate(ports_raw or []))
    return Rule(peers, peers_raw is not None, ports, ports_raw is not None)


def _rules(spec: dict[str, Any], key: str, where: str, peer_key: str) -> tuple[Rule, ...]:
    raw = spec.get(key)
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise StateError(where, f"spec.{key}", "must be a list")
    return tuple(_rule(r, where, f"spec.{key}[{i}]", peer_key) for i, r in enumerate(raw))


def parse_policy(value: Any, index: int) -> Policy:
    """Parse and default one NetworkPolicy; `index` names it in messages until its name is known."""
    where = f"policies[{index}]"
    obj = v.require_object(value, where, "")
    meta = v.require_object(obj.get("metadata"), where, "metadata")
    name = v.require_string(meta.get("name"), where, "metadata.name")
    namespace = v.require_string(meta.get("namespace"), where, "metadata.namespace")
    where = f"policy {namespace}/{name}"
    v.reject_unknown(obj, {"apiVersion", "kind", "metadata", "spec", "status"}, where)
    v.reject_unknown(meta, _METADATA_FIELDS, where, "metadata.")
    if obj.get("apiVersion") not in API_VERSIONS:
        raise StateError(
            where, "apiVersion", f"{obj.get('apiVersion')!r} is not one of {', '.join(API_VERSIONS)}"
        )
    if obj.get("kind") != "NetworkPolicy":
        raise StateError(where, "kind", f"{obj.get('kind')!r} is not NetworkPolicy")
    spec = v.require_object(obj.get("spec"), where, "spec")
    v.reject_unknown(spec, {"podSelector", "policyTypes", "ingress", "egress"}, where, "spec.")
    if "podSelector" not in spec:
        raise StateError(where, "spec.podSelector", "required (use {} to select every pod)")
    selector = parse_selector(spec["podSelector"], where, "spec.podSelector")
    ingress = _rules(spec, "ingress", where, "from")
    egress = _rules(spec, "egress", where, "to")
    types_raw = spec.get("policyTypes") or []
    if not isinstance(types_raw, list) or any(t not in POLICY_TYPES for t in types_raw):
        raise StateError(where, "spec.policyTypes", f"must list only {' and '.join(POLICY_TYPES)}")
    if len(set(types_raw)) != len(types_raw):
        raise StateError(where, "spec.policyTypes", "lists a type twice")
    types = frozenset(types_raw) if types_raw else default_policy_types(egress)
    return Policy(namespace, name, str(obj["apiVersion"]), selector, types, ingress, egress)


def default_policy_types(egress: tuple[Rule, ...]) -> frozenset[str]:
    """The API server's default: Ingress always, Egress when the policy has egress rules."""
    return frozenset({"Ingress", "Egress"}) if egress else frozenset({"Ingress"})
