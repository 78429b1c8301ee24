"""Building blocks for cases: the 3 namespaces x 3 pods topology and NetworkPolicy manifests."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from netpolcheck.verdict.case import NamespaceDef, PodDef, ProbeDef

NAMESPACES = ("x", "y", "z")
PODS = ("a", "b", "c")
PORTS = (80, 81)
PROTOCOLS = ("TCP", "UDP")


def xyz_namespaces(names: Sequence[str] = NAMESPACES) -> tuple[NamespaceDef, ...]:
    """Namespaces labelled `ns: <name>` (as upstream's older model and Cyclonus do)."""
    return tuple(NamespaceDef(n, {"ns": n}) for n in names)


def xyz_pods(namespaces: Sequence[str] = NAMESPACES, pods: Sequence[str] = PODS) -> tuple[PodDef, ...]:
    """Pods labelled `pod: <name>`, spread over the nodes: pod i of a namespace on node i (mod nodes),
    so every namespace has pods on the same node and on different nodes."""
    return tuple(PodDef(ns, p, {"pod": p}, node=i) for ns in namespaces for i, p in enumerate(pods))


def probes(ports: Sequence[int | str] = PORTS, protocols: Sequence[str] = PROTOCOLS) -> tuple[ProbeDef, ...]:
    return tuple(ProbeDef(port, proto) for proto in protocols for port in ports)


def policy(name: str, pod_selector: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    """A NetworkPolicy manifest; `pod_selector` defaults to `{}` (every pod of the namespace)."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name},
        "spec": {"podSelector": pod_selector if pod_selector is not None else {}, **spec},
    }


def labels(**match: str) -> dict[str, Any]:
    """A selector with matchLabels."""
    return {"matchLabels": dict(match)}


def ports(*entries: tuple[int | str | None, str]) -> list[dict[str, Any]]:
    """`ports:` entries from (port or None, protocol)."""
    return [{"protocol": proto} | ({"port": port} if port is not None else {}) for port, proto in entries]


def two_namespaces_three_pods() -> tuple[tuple[NamespaceDef, ...], tuple[PodDef, ...]]:
    """x/a, x/b and y/a on three different nodes: the small topology of the Weave-behaviour cases."""
    return (
        xyz_namespaces(("x", "y")),
        (
            PodDef("x", "a", {"pod": "a"}, node=0),
            PodDef("x", "b", {"pod": "b"}, node=1),
            PodDef("y", "a", node=2),
        ),
    )
