"""The STATE document of `netpolcheck expect` (docs/design.md#contract-expect), parsed into a `State`."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from netpolcheck.model import validation as v
from netpolcheck.model.errors import StateError
from netpolcheck.model.objects import ContainerPort, Endpoint, External, IPAddress, Namespace, Pod, Probe
from netpolcheck.model.policy import Policy, parse_policy

TOP_LEVEL = {"namespaces", "pods", "policies", "probes", "externals"}
DEFAULT_PROBES = (Probe(80, "TCP"),)


@dataclass(frozen=True)
class State:
    namespaces: dict[str, Namespace]
    pods: tuple[Pod, ...]
    policies: tuple[Policy, ...]
    probes: tuple[Probe, ...]
    externals: tuple[External, ...] = ()

    @property
    def endpoints(self) -> tuple[Endpoint, ...]:
        """Pods first, then externals: the rows and columns of every matrix."""
        return self.pods + self.externals


def _ip(value: Any, where: str, field: str) -> IPAddress:
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        raise StateError(where, field, f"invalid IP address {value!r}") from None


def _list(doc: dict[str, Any], key: str) -> list[Any]:
    value = doc.get(key, [])
    if not isinstance(value, list):
        raise StateError("STATE", key, "must be a list")
    return value


def _namespace(value: Any, index: int) -> Namespace:
    where = f"namespaces[{index}]"
    obj = v.require_object(value, where, "")
    name = v.require_string(obj.get("name"), where, "name")
    where = f"namespace {name}"
    v.reject_unknown(obj, {"name", "labels", "annotations"}, where)
    return Namespace(
        name,
        v.string_map(obj.get("labels"), where, "labels"),
        v.string_map(obj.get("annotations"), where, "annotations"),
    )


def _container_port(value: Any, where: str, field: str) -> ContainerPort:
    obj = v.require_object(value, where, field)
    v.reject_unknown(obj, {"name", "containerPort", "protocol"}, where, f"{field}.")
    name = v.port_name(obj["name"], where, f"{field}.name") if obj.get("name") is not None else None
    return ContainerPort(
        v.port_number(obj.get("containerPort"), where, f"{field}.containerPort"),
        v.protocol(obj.get("protocol"), where, f"{field}.protocol"),
        name,
    )


def _pod(value: Any, index: int, namespaces: dict[str, Namespace]) -> Pod:
    where = f"pods[{index}]"
    obj = v.require_object(value, where, "")
    namespace = v.require_string(obj.get("namespace"), where, "namespace")
    name = v.require_string(obj.get("name"), where, "name")
    where = f"pod {namespace}/{name}"
    v.reject_unknown(obj, {"namespace", "name", "labels", "ip", "node", "hostNetwork", "ports"}, where)
    if namespace not in namespaces:
        raise StateError(where, "namespace", f"namespace {namespace!r} is not in namespaces")
    host_network = obj.get("hostNetwork", False)
    if not isinstance(host_network, bool):
        raise StateError(where, "hostNetwork", "must be true or false")
    node = obj.get("node")
    if node is not None:
        node = v.require_string(node, where, "node")
    ports_raw = obj.get("ports") or []
    if not isinstance(ports_raw, list):
        raise StateError(where, "ports", "must be a list")
    ports = tuple(_container_port(p, where, f"ports[{i}]") for i, p in enumerate(ports_raw))
    names = [p.name for p in ports if p.name]
    if len(names) != len(set(names)):
        raise StateError(where, "ports", "port names must be unique")
    return Pod(
        namespace,
        name,
        _ip(obj.get("ip"), where, "ip"),
        v.string_map(obj.get("labels"), where, "labels"),
        node,
        host_network,
        ports,
    )


def _probe(value: Any, index: int) -> Probe:
    where = f"probes[{index}]"
    obj = v.require_object(value, where, "")
    v.reject_unknown(obj, {"port", "protocol"}, where)
    return Probe(
        v.number_or_name(obj.get("port"), where, "port"), v.protocol(obj.get("protocol"), where, "protocol")
    )


def _external(value: Any, index: int) -> External:
    where = f"externals[{index}]"
    obj = v.require_object(value, where, "")
    v.reject_unknown(obj, {"name", "ip"}, where)
    name = v.require_string(obj.get("name"), where, "name")
    if "/" in name:
        raise StateError(f"external {name}", "name", "must not contain '/' (it would look like a pod)")
    return External(name, _ip(obj.get("ip"), f"external {name}", "ip"))


def _unique(keys: list[str], what: str) -> None:
    seen: set[str] = set()
    for key in keys:
        if key in seen:
            raise StateError(f"{what} {key}", "name", "appears twice")
        seen.add(key)


def parse_state(doc: Any) -> State:
    """Validate a decoded STATE document; raises StateError (exit 2 on the command line)."""
    if not isinstance(doc, dict):
        raise StateError("STATE", "(top level)", "must be a JSON object")
    v.reject_unknown(doc, TOP_LEVEL, "STATE")
    namespaces = [_namespace(n, i) for i, n in enumerate(_list(doc, "namespaces"))]
    _unique([n.name for n in namespaces], "namespace")
    by_name = {n.name: n for n in namespaces}
    pods = tuple(_pod(p, i, by_name) for i, p in enumerate(_list(doc, "pods")))
    _unique([p.key for p in pods], "pod")
    policies = tuple(parse_policy(p, i) for i, p in enumerate(_list(doc, "policies")))
    _unique([p.key for p in policies], "policy")
    for policy in policies:
        if policy.namespace not in by_name:
            raise StateError(
                f"policy {policy.key}",
                "metadata.namespace",
                f"namespace {policy.namespace!r} is not in namespaces",
            )
    probes = tuple(_probe(p, i) for i, p in enumerate(_list(doc, "probes"))) or DEFAULT_PROBES
    externals = tuple(_external(e, i) for i, e in enumerate(_list(doc, "externals")))
    _unique([e.name for e in externals], "external")
    return State(by_name, pods, policies, probes, externals)
