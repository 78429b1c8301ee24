"""NetworkPolicy objects parsed, validated and defaulted as the API server would store them.

Both `networking.k8s.io/v1` and `extensions/v1beta1` are accepted: on the API servers Weave 2.0.x ran
against, they are two views of one storage. `*_given` flags keep "absent" apart from "empty list",
because legacy Weave treats `from: []` / `ports: []` differently from an absent field.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from netpolcheck.model import apivalidation as api
from netpolcheck.model import validation as v
from netpolcheck.model.errors import StateError
from netpolcheck.model.objects import IPAddress
from netpolcheck.model.schema import fields
from netpolcheck.model.selectors import Selector, parse_selector

API_VERSIONS = ("networking.k8s.io/v1", "extensions/v1beta1")
POLICY_TYPES = api.POLICY_TYPES
IPNetwork = api.IPNetwork
_METADATA_FIELDS = fields("objectMeta")


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


PEER_FIELDS = fields("peer")
IPBLOCK_FIELDS = fields("ipBlock")
PORT_FIELDS = fields("policyPort")
SPEC_FIELDS = fields("networkPolicySpec")
TOP_FIELDS = fields("networkPolicy")
RULE_FIELDS = {"from": fields("ingressRule"), "to": fields("egressRule")}

# The parsers below build a Policy from a document `apivalidation` has already accepted (types,
# syntax, ranges); they only add the strict-decoding check for unknown fields.


def _ip_block(obj: dict[str, Any], where: str, field: str) -> IPBlock:
    v.reject_unknown(obj, IPBLOCK_FIELDS, where, f"{field}.")
    return IPBlock(
        ipaddress.ip_network(obj["cidr"], strict=False),
        tuple(ipaddress.ip_network(e, strict=False) for e in obj.get("except") or []),
    )


def _peer(obj: dict[str, Any], where: str, field: str) -> Peer:
    v.reject_unknown(obj, PEER_FIELDS, where, f"{field}.")
    if obj.get("ipBlock") is not None:
        return Peer(ip_block=_ip_block(obj["ipBlock"], where, f"{field}.ipBlock"))
    selectors = [
        parse_selector(obj[key], where, f"{field}.{key}") if obj.get(key) is not None else None
        for key in ("podSelector", "namespaceSelector")
    ]
    return Peer(pod_selector=selectors[0], namespace_selector=selectors[1])


def _port(obj: dict[str, Any], where: str, field: str) -> PolicyPort:
    v.reject_unknown(obj, PORT_FIELDS, where, f"{field}.")
    return PolicyPort(obj.get("protocol") or "TCP", obj.get("port"), obj.get("endPort"))


def _rule(obj: dict[str, Any], where: str, field: str, peer_key: str) -> Rule:
    v.reject_unknown(obj, RULE_FIELDS[peer_key], where, f"{field}.")
    peers_raw, ports_raw = obj.get(peer_key), obj.get("ports")
    peers = tuple(_peer(p, where, f"{field}.{peer_key}[{i}]") for i, p in enumerate(peers_raw or []))
    ports = tuple(_port(p, where, f"{field}.ports[{i}]") for i, p in enumerate(ports_raw or []))
    return Rule(peers, peers_raw is not None, ports, ports_raw is not None)


def _rules(spec: dict[str, Any], key: str, where: str, peer_key: str) -> tuple[Rule, ...]:
    return tuple(_rule(r, where, f"spec.{key}[{i}]", peer_key) for i, r in enumerate(spec.get(key) or []))


def _where(index: int, meta: Any) -> str:
    """How messages name a policy: `policy NS/NAME` once both are strings, else its index."""
    if isinstance(meta, dict):
        name, namespace = v.name_of(meta.get("name")), v.name_of(meta.get("namespace"))
        if name and namespace:
            return f"policy {namespace}/{name}"
    return f"policies[{index}]"


def parse_policy(value: Any, index: int) -> Policy:
    """Validate (as the API server does), then parse and default one NetworkPolicy."""
    obj = v.require_object(value, f"policies[{index}]", "")
    where = _where(index, obj.get("metadata"))
    causes: api.Causes = []
    api.object_meta(causes, obj.get("metadata"), "subdomain")
    v.check(where, causes)
    meta = obj["metadata"]
    v.require_string(meta.get("namespace"), where, "metadata.namespace")
    api.dns1123_label(causes, "metadata.namespace", meta["namespace"])
    v.check(where, causes)
    v.reject_unknown(obj, TOP_FIELDS, where)
    v.reject_unknown(meta, _METADATA_FIELDS, where, "metadata.")
    if obj.get("apiVersion") not in API_VERSIONS:
        raise StateError(
            where, "apiVersion", f"{api.quote(obj.get('apiVersion'))} is not one of {', '.join(API_VERSIONS)}"
        )
    if obj.get("kind") != "NetworkPolicy":
        raise StateError(where, "kind", f"{api.quote(obj.get('kind'))} is not NetworkPolicy")
    if obj.get("spec") is None:
        raise StateError(where, "spec", "Required value")
    api.network_policy_spec(causes, "spec", obj["spec"])
    v.check(where, causes)
    spec = obj["spec"]
    v.reject_unknown(spec, SPEC_FIELDS, where, "spec.")
    if "podSelector" not in spec:
        raise StateError(where, "spec.podSelector", "Required value (use {} to select every pod)")
    selector = parse_selector(spec["podSelector"], where, "spec.podSelector")
    ingress = _rules(spec, "ingress", where, "from")
    egress = _rules(spec, "egress", where, "to")
    types_raw = spec.get("policyTypes") or []
    types = frozenset(types_raw) if types_raw else default_policy_types(egress)
    return Policy(meta["namespace"], meta["name"], str(obj["apiVersion"]), selector, types, ingress, egress)


def default_policy_types(egress: tuple[Rule, ...]) -> frozenset[str]:
    """The API server's default: Ingress always, Egress when the policy has egress rules."""
    return frozenset({"Ingress", "Egress"}) if egress else frozenset({"Ingress"})
