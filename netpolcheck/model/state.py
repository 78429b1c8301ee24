"""The STATE document of `netpolcheck expect`, parsed and validated into a `State` (its contract:
docs/design.md#contract-expect; its fields: docs/model.md).

The fields a real object has are checked as the API server checks them (`apivalidation`); what only
STATE has (externals, probes, unknown fields, unique names and pod IPs) is checked here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from netpolcheck.model import apivalidation as api
from netpolcheck.model import validation as v
from netpolcheck.model.errors import StateError
from netpolcheck.model.objects import ContainerPort, Endpoint, External, IPAddress, Namespace, Pod, Probe
from netpolcheck.model.policy import Policy, parse_policy
from netpolcheck.model.schema import fields

TOP_LEVEL = fields()
NAMESPACE_FIELDS = fields("namespace")
POD_FIELDS = fields("pod")
CONTAINER_PORT_FIELDS = fields("containerPort")
PROBE_FIELDS = fields("probe")
EXTERNAL_FIELDS = fields("external")
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
    causes: api.Causes = []
    ip = api.ip_address(causes, field, value)
    v.check(where, causes)
    assert ip is not None
    return ip


def _namespace(value: Any, index: int) -> Namespace:
    where = f"namespaces[{index}]"
    obj = v.require_object(value, where, "")
    name = v.require_string(obj.get("name"), where, "name")
    where = f"namespace {name}"
    v.reject_unknown(obj, NAMESPACE_FIELDS, where)
    causes: api.Causes = []
    api.dns1123_label(causes, "name", name)
    api.labels(causes, "labels", obj.get("labels"))
    api.annotation_map(causes, "annotations", obj.get("annotations"))
    v.check(where, causes)
    return Namespace(name, dict(obj.get("labels") or {}), dict(obj.get("annotations") or {}))


def _pod(value: Any, index: int, namespaces: dict[str, Namespace]) -> Pod:
    where = f"pods[{index}]"
    obj = v.require_object(value, where, "")
    namespace = v.require_string(obj.get("namespace"), where, "namespace")
    name = v.require_string(obj.get("name"), where, "name")
    where = f"pod {namespace}/{name}"
    v.reject_unknown(obj, POD_FIELDS, where)
    ports_raw = v.require_list(obj.get("ports"), where, "ports")
    for i, port in enumerate(ports_raw):
        v.reject_unknown(
            v.require_object(port, where, f"ports[{i}]"), CONTAINER_PORT_FIELDS, where, f"ports[{i}]."
        )
    causes: api.Causes = []
    api.dns1123_label(causes, "namespace", namespace)
    api.dns1123_subdomain(causes, "name", name)
    api.labels(causes, "labels", obj.get("labels"))
    if obj.get("node") is not None:
        api.dns1123_subdomain(causes, "node", obj.get("node"))
    if not isinstance(obj.get("hostNetwork", False), bool):
        api.wrong_type(causes, "hostNetwork", obj.get("hostNetwork"), "true or false")
    api.container_ports(causes, "ports", ports_raw)
    v.check(where, causes)
    if namespace not in namespaces:
        raise StateError(where, "namespace", f"namespace {api.quote(namespace)} is not in namespaces")
    ports = tuple(
        ContainerPort(p["containerPort"], p.get("protocol") or "TCP", p.get("name")) for p in ports_raw
    )
    return Pod(
        namespace,
        name,
        _ip(obj.get("ip"), where, "ip"),
        dict(obj.get("labels") or {}),
        obj.get("node"),
        bool(obj.get("hostNetwork", False)),
        ports,
    )


def _probe(value: Any, index: int) -> Probe:
    where = f"probes[{index}]"
    obj = v.require_object(value, where, "")
    v.reject_unknown(obj, PROBE_FIELDS, where)
    causes: api.Causes = []
    if obj.get("port") is None:
        api.required(causes, "port", "a port number or name")
    else:
        api.port_number_or_name(causes, "port", obj.get("port"))
    api.protocol(causes, "protocol", obj.get("protocol"))
    v.check(where, causes)
    return Probe(obj["port"], obj.get("protocol") or "TCP")


def _external(value: Any, index: int) -> External:
    where = f"externals[{index}]"
    obj = v.require_object(value, where, "")
    v.reject_unknown(obj, EXTERNAL_FIELDS, where)
    name = v.require_string(obj.get("name"), where, "name")
    if "/" in name or not (name.isascii() and name.isprintable()) or " " in name or len(name) > 253:
        raise StateError(
            where,
            "name",
            f"invalid external name {api.quote(name)}: up to 253 printable ASCII characters, no space "
            "and no '/' (that would look like a pod)",
        )
    return External(name, _ip(obj.get("ip"), f"external {name}", "ip"))


def _unique(keys: list[str], what: str) -> None:
    seen: set[str] = set()
    for key in keys:
        if key in seen:
            raise StateError(f"{what} {key}", "name", "appears twice")
        seen.add(key)


def _unique_addresses(pods: tuple[Pod, ...], externals: tuple[External, ...]) -> None:
    """No two endpoints share an IP, except hostNetwork pods of one node (they have the node's IP)."""
    owners: dict[IPAddress, Endpoint] = {}
    endpoints: tuple[Endpoint, ...] = (*pods, *externals)
    for ep in endpoints:
        first = owners.setdefault(ep.ip, ep)
        if first is ep or _same_node_host_pods(first, ep):
            continue
        what = f"pod {ep.key}" if isinstance(ep, Pod) else f"external {ep.key}"
        other = f"pod {first.key}" if isinstance(first, Pod) else f"external {first.key}"
        raise StateError(what, "ip", f"{ep.ip} is already the address of {other}")


def _same_node_host_pods(a: Endpoint, b: Endpoint) -> bool:
    return (
        isinstance(a, Pod)
        and isinstance(b, Pod)
        and a.host_network
        and b.host_network
        and a.node is not None
        and a.node == b.node
    )


def parse_state(doc: Any) -> State:
    """Validate a decoded STATE document; raises StateError (exit 2 on the command line)."""
    if not isinstance(doc, dict):
        raise StateError("STATE", "(top level)", "must be a JSON object")
    v.reject_unknown(doc, TOP_LEVEL, "STATE")
    lists = {key: v.require_list(doc.get(key), "STATE", key) for key in TOP_LEVEL}
    namespaces = [_namespace(n, i) for i, n in enumerate(lists["namespaces"])]
    _unique([n.name for n in namespaces], "namespace")
    by_name = {n.name: n for n in namespaces}
    pods = tuple(_pod(p, i, by_name) for i, p in enumerate(lists["pods"]))
    _unique([p.key for p in pods], "pod")
    policies = tuple(parse_policy(p, i) for i, p in enumerate(lists["policies"]))
    _unique([p.key for p in policies], "policy")
    for policy in policies:
        if policy.namespace not in by_name:
            raise StateError(
                f"policy {policy.key}",
                "metadata.namespace",
                f"namespace {api.quote(policy.namespace)} is not in namespaces",
            )
    probes = tuple(_probe(p, i) for i, p in enumerate(lists["probes"])) or DEFAULT_PROBES
    externals = tuple(_external(e, i) for i, e in enumerate(lists["externals"]))
    _unique([e.name for e in externals], "external")
    _unique_addresses(pods, externals)
    return State(by_name, pods, policies, probes, externals)
