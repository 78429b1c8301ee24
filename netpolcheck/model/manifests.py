"""Kubernetes manifests -> a STATE document, so nobody hand-writes STATE JSON. Pure: decoded documents
in, a plain STATE dict and notes out.

What is read: Namespaces, Pods, the pod templates of Deployments, StatefulSets, DaemonSets,
ReplicaSets and Jobs (one representative pod `<name>-0` each: replicas of one template are
indistinguishable to policy; left out when pods of it were given too, as in a `kubectl get -o yaml`
dump), NetworkPolicies, and `List`s of them. Other kinds are ignored with a note. Deleted and finished
pods are left out.
Objects without a namespace go to `default`; namespaces that objects use but no manifest declares are
created with only the label the API server adds (`kubernetes.io/metadata.name`).

Pods without `status.podIP` (every template) get a placeholder address from 198.18.0.0/15 (RFC 2544
benchmarking space, never a pod address). Selectors do not look at addresses, ipBlocks do: every cell
an ipBlock rule would decide on the pod's real address is named (`address_cautions`).
Probes: every distinct (containerPort, protocol) the pods declare, else the model's default (TCP 80).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from netpolcheck.model.errors import StateError
from netpolcheck.model.state import State

PLACEHOLDER_RANGE = ipaddress.ip_network("198.18.0.0/15")
WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job")
DEFAULT_NAMESPACE = "default"
GONE = ("Succeeded", "Failed")
NAME_LABEL = "kubernetes.io/metadata.name"
MAX_LISTED_CELLS = 20


@dataclass
class Conversion:
    document: dict[str, Any]
    placeholders: dict[str, str] = field(default_factory=dict)  # pod key -> placeholder address
    notes: list[str] = field(default_factory=list)

    def address_cautions(self, state: State) -> list[str]:
        """One line per policy with an ipBlock peer whose verdict depends on a placeholder address."""
        return address_cautions(state, set(self.placeholders))


def _mapping(value: Any, where: str, name: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise StateError(where, name, "must be a mapping")
    return value


def _labels(meta: dict[str, Any], where: str) -> dict[str, str]:
    labels = _mapping(meta.get("labels"), where, "metadata.labels")
    return dict(labels)  # keys and values are checked by parse_state, never stringified here


def _namespace_name(meta: dict[str, Any]) -> str:
    namespace = meta.get("namespace") or DEFAULT_NAMESPACE
    if not isinstance(namespace, str):
        raise StateError("manifest", "metadata.namespace", "must be a string")
    return namespace


def _list(value: Any, where: str, name: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise StateError(where, name, "must be a list")
    return value


def _container_ports(spec: dict[str, Any], where: str) -> list[dict[str, Any]]:
    ports = []
    for group in ("initContainers", "containers"):
        for i, container in enumerate(_list(spec.get(group), where, f"spec.{group}")):
            field = f"spec.{group}[{i}]"
            for j, raw in enumerate(
                _list(_mapping(container, where, field).get("ports"), where, f"{field}.ports")
            ):
                port = _mapping(raw, where, f"{field}.ports[{j}]")
                entry = {
                    "containerPort": port.get("containerPort"),
                    "protocol": port.get("protocol", "TCP"),
                }
                if port.get("name") is not None:
                    entry["name"] = port["name"]
                ports.append(entry)
    return ports


class _Builder:
    def __init__(self) -> None:
        self.namespaces: dict[str, dict[str, Any]] = {}
        self.used_namespaces: list[str] = []
        self.pods: list[dict[str, Any]] = []
        self.policies: list[dict[str, Any]] = []
        self.ignored: dict[str, int] = {}
        self.given_pods: list[dict[str, Any]] = []
        self.workloads: list[tuple[str, dict[str, Any], str, dict[str, Any]]] = []
        self.conversion = Conversion({})

    def namespace_of(self, meta: dict[str, Any]) -> str:
        namespace = _namespace_name(meta)
        if namespace not in self.used_namespaces:
            self.used_namespaces.append(namespace)
        return namespace

    def add(self, obj: Any, where: str) -> None:
        if not isinstance(obj, dict):
            raise StateError(where, "(document)", "a manifest must be a mapping with kind and metadata")
        kind = obj.get("kind")
        if not isinstance(kind, str) or not kind:
            raise StateError(where, "kind", "missing or not a string")
        if kind == "List" or (kind.endswith("List") and "items" in obj):
            for i, item in enumerate(_list(obj.get("items"), where, "items")):
                self.add(item, f"{where}.items[{i}]")
            return
        meta = _mapping(obj.get("metadata"), where, "metadata")
        name = meta.get("name")
        if not isinstance(name, str) or not name:
            raise StateError(f"{where} ({kind})", "metadata.name", "missing")
        here = f"{kind} {name}"
        if kind == "Namespace":
            self.namespaces[name] = {
                "name": name,
                "labels": _labels(meta, here) | {NAME_LABEL: name},
                "annotations": dict(_mapping(meta.get("annotations"), here, "metadata.annotations")),
            }
        elif kind == "Pod":
            status = obj.get("status") or {}
            if meta.get("deletionTimestamp") or (isinstance(status, dict) and status.get("phase") in GONE):
                self.conversion.notes.append(f"left out pod {name}: deleted or finished")
                return
            self.pod(meta, name, _mapping(obj.get("spec"), here, "spec"), status, here)
        elif kind in WORKLOADS:
            spec = _mapping(obj.get("spec"), here, "spec")
            template = _mapping(spec.get("template"), here, "spec.template")
            pod_meta = _mapping(template.get("metadata"), here, "spec.template.metadata")
            self.workloads.append(
                (
                    here,
                    {"namespace": meta.get("namespace"), "labels": pod_meta.get("labels")},
                    f"{name}-0",
                    _mapping(template.get("spec"), here, "spec.template.spec"),
                )
            )
        elif kind == "NetworkPolicy":
            policy = dict(obj)
            policy["metadata"] = dict(meta) | {"namespace": self.namespace_of(meta)}
            self.policies.append(policy)
        else:
            self.ignored[kind] = self.ignored.get(kind, 0) + 1

    def pod(self, meta: dict[str, Any], name: str, spec: dict[str, Any], status: Any, where: str) -> None:
        namespace = self.namespace_of(meta)
        pod: dict[str, Any] = {
            "namespace": namespace,
            "name": name,
            "labels": _labels(meta, where),
            "hostNetwork": bool(spec.get("hostNetwork", False)),
            "ports": _container_ports(spec, where),
        }
        if spec.get("nodeName"):
            pod["node"] = spec["nodeName"]
        ip = status.get("podIP") if isinstance(status, dict) else None
        if not ip:
            ip = str(PLACEHOLDER_RANGE[len(self.conversion.placeholders) + 1])
            self.conversion.placeholders[f"{namespace}/{name}"] = ip
        pod["ip"] = ip
        self.pods.append(pod)

    def add_workloads(self) -> None:
        """A template pod stands in for a workload only when none of its own pods were given (a
        `kubectl get -A -o yaml` dump has both): a given pod in the namespace carrying every label of
        the template is taken to be one of them."""
        for here, meta, name, spec in self.workloads:
            namespace = _namespace_name(meta)
            labels = _labels(meta, here)
            if labels and any(
                p["namespace"] == namespace and labels.items() <= p["labels"].items() for p in self.given_pods
            ):
                continue
            self.pod(meta, name, spec, {}, here)

    def finish(self) -> Conversion:
        self.given_pods = list(self.pods)
        self.add_workloads()
        for name in self.used_namespaces:
            self.namespaces.setdefault(name, {"name": name, "labels": {NAME_LABEL: name}, "annotations": {}})
        document: dict[str, Any] = {
            "namespaces": list(self.namespaces.values()),
            "pods": self.pods,
            "policies": self.policies,
        }
        probes = declared_probes(self.pods)
        if probes:
            document["probes"] = probes
        conversion = self.conversion
        conversion.document = document
        if conversion.placeholders:
            conversion.notes.append(
                f"{len(conversion.placeholders)} pod(s) without an address got placeholders from "
                f"{PLACEHOLDER_RANGE}: " + ", ".join(f"{k}={v}" for k, v in conversion.placeholders.items())
            )
        for kind, count in sorted(self.ignored.items()):
            conversion.notes.append(
                f"ignored {count} {kind} object(s): they do not change what policy allows"
            )
        return conversion


def declared_probes(pods: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """STATE probes for every distinct (containerPort, protocol) the pods (STATE entries) declare,
    by protocol then port; empty when they declare none (the model then probes TCP 80)."""
    probes = sorted(
        {
            (p["containerPort"], p["protocol"])
            for pod in pods
            for p in pod.get("ports") or []
            if isinstance(p.get("containerPort"), int) and isinstance(p.get("protocol"), str)
        },  # anything else is refused by parse_state with the pod's name
        key=lambda p: (str(p[1]), str(p[0])),
    )
    return [{"port": port, "protocol": protocol} for port, protocol in probes]


def manifests_to_state(documents: list[Any]) -> Conversion:
    """Decoded manifests (YAML/JSON documents) -> a STATE document, to be validated by `parse_state`."""
    builder = _Builder()
    for i, document in enumerate(documents):
        builder.add(document, f"document {i + 1}")
    return builder.finish()


def address_cautions(state: State, placeholder_pods: set[str]) -> list[str]:
    """Cells an ipBlock would decide on a real address: into a policy's targets from a placeholder pod
    (ingress ipBlock), out of them to a placeholder pod (egress ipBlock)."""
    if not placeholder_pods:
        return []
    pods = [p for p in state.pods if not p.host_network]
    placeholders = [p for p in state.pods if p.key in placeholder_pods]
    out = []
    for policy in state.policies:
        targets = [
            p for p in pods if p.namespace == policy.namespace and policy.pod_selector.matches(p.labels)
        ]
        cells: list[str] = []
        for direction, rules in (("ingress", policy.ingress), ("egress", policy.egress)):
            if not any(peer.ip_block is not None for rule in rules for peer in rule.peers):
                continue
            cells += [
                f"{a.key} -> {b.key}" if direction == "ingress" else f"{b.key} -> {a.key}"
                for b in targets
                for a in placeholders
                if a.key != b.key
            ]
        if cells:
            shown = ", ".join(cells[:MAX_LISTED_CELLS])
            more = f" and {len(cells) - MAX_LISTED_CELLS} more" if len(cells) > MAX_LISTED_CELLS else ""
            out.append(
                f"policy {policy.key} has an ipBlock peer: {len(cells)} cell(s) depend on real pod "
                f"addresses (placeholders used): {shown}{more}"
            )
    return out
