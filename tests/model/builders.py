"""Terse builders for STATE documents, and a matrix helper that cross-checks engine and evaluator."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from netpolcheck.model.cell import Evaluator
from netpolcheck.model.engine import ExpectedMatrix
from netpolcheck.model.profiles import PROFILES, Profile
from netpolcheck.model.reasons import ReasonWriter, RowReasons
from netpolcheck.model.state import State, parse_state


def ns(name: str, **labels: str) -> dict[str, Any]:
    return {"name": name, "labels": {"ns": name, **labels}}


def pod(
    key: str, ip: str, node: str = "n1", host: bool = False, ports: list[Any] | None = None, **labels: str
) -> dict[str, Any]:
    namespace, name = key.split("/")
    return {
        "namespace": namespace,
        "name": name,
        "labels": {"pod": name, **labels},
        "ip": ip,
        "node": node,
        "hostNetwork": host,
        "ports": ports or [],
    }


def netpol(key: str, spec: dict[str, Any], api: str = "networking.k8s.io/v1") -> dict[str, Any]:
    namespace, name = key.split("/")
    return {
        "apiVersion": api,
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def sel(**labels: str) -> dict[str, Any]:
    return {"matchLabels": labels}


def world(
    policies: list[dict[str, Any]] | None = None,
    probes: list[dict[str, Any]] | None = None,
    externals: list[dict[str, Any]] | None = None,
    namespaces: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """x, y, z namespaces with pods a, b, c each (10.0.<ns>.<pod>), all on node n1."""
    namespaces = namespaces or [ns("x"), ns("y"), ns("z")]
    pods = [
        pod(
            f"{n['name']}/{p}",
            f"10.0.{i + 1}.{j + 1}",
            ports=[
                {"name": "http", "containerPort": 80},
                {"name": "alt", "containerPort": 81},
                {"name": "dns", "containerPort": 53, "protocol": "UDP"},
            ],
        )
        for i, n in enumerate(namespaces)
        for j, p in enumerate("abc")
    ]
    return {
        "namespaces": namespaces,
        "pods": pods,
        "policies": policies or [],
        "probes": probes or [{"port": 80, "protocol": "TCP"}],
        "externals": externals or [],
    }


def one_policy_world(externals: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """`world()` with x/p: x/a admits x/b on port 80 (the valid base that bad-input tests mutate)."""
    rule = {"from": [{"podSelector": sel(pod="b")}], "ports": [{"port": 80}]}
    return world([netpol("x/p", {"podSelector": sel(pod="a"), "ingress": [rule]})], externals=externals)


def set_at(path: tuple[Any, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    """A mutation of a STATE document: the field at `path` (keys and list indices) becomes `value`."""

    def apply(doc: dict[str, Any]) -> None:
        target: Any = doc
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = value

    return apply


Cells = dict[tuple[str, str, int, str], bool]


def matrix(doc: dict[str, Any] | State, profile: str | Profile = "spec") -> Cells:
    """Every cell's verdict from the indexed engine, asserting the per-cell evaluator agrees (verdict
    and reason)."""
    state = doc if isinstance(doc, State) else parse_state(doc)
    prof = PROFILES[profile] if isinstance(profile, str) else profile
    m = ExpectedMatrix(state, prof)
    reasons = ReasonWriter(m)
    rows = RowReasons(m)
    row_reasons = {(s, p): rows.row(s, p) for p in range(len(m.probes)) for s in range(len(m.keys))}
    evaluator, endpoints = Evaluator(state, prof), state.endpoints
    cells: Cells = {}
    for s, d, p in m.cells():
        verdict = evaluator.cell(endpoints[s], endpoints[d], m.probes[p].probe)
        assert verdict is not None
        fast = bool(m.probes[p].allowed[s] >> d & 1)
        assert fast == verdict.allowed, f"engine/evaluator disagree on {verdict} ({prof.name})"
        assert reasons.reason(s, d, p) == verdict.reason, f"reason differs on {verdict} ({prof.name})"
        assert row_reasons[(s, p)][d] == verdict.reason, f"row reason differs on {verdict} ({prof.name})"
        cells[(verdict.source, verdict.destination, verdict.port, verdict.protocol)] = fast
    return cells


def allowed(cells: Cells, source: str, destination: str, port: int = 80, protocol: str = "TCP") -> bool:
    return cells[(source, destination, port, protocol)]


def denied_cells(cells: Cells) -> set[tuple[str, str, int, str]]:
    return {k for k, v in cells.items() if not v}
