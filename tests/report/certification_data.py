"""A certification report built the way the verdict engine's plugin builds one: real comparisons of
expected and observed cells through `report.compare`, then `check_entry`, `case_entry`, `build_report`."""

from __future__ import annotations

from typing import Any

from netpolcheck.report.cells import CellKey, ExpectedCell, ObservedCell
from netpolcheck.report.certification import build_report, case_entry, check_entry, environment_entry
from netpolcheck.report.compare import compare

DROPPED = frozenset({"dropped"})
A, B, C = "x/a", "x/b", "y/c"
EVIDENCE = "no answer to 8 SYN over 1.0 s"
HOLD = "hold a-to-c: tcp: 1 gap(s), udp: 0 gap(s); ended: stopped"


def _key(src: str, dst: str, port: int = 80) -> CellKey:
    return CellKey("TCP", port, src, dst)


def _check(
    step: int,
    name: str,
    status: str,
    expected: dict[CellKey, ExpectedCell],
    observed: dict[CellKey, ObservedCell],
    ms: float | None,
    shown: tuple[str, ...] = (),
    note: str = "",
) -> dict[str, Any]:
    convergence = {
        "converged": ms is not None,
        "ms": ms,
        "lowerMs": 0.0 if ms is None else ms / 2,
        "rounds": 3,
        "probes": 12,
        "waitedMs": 15000.0 if ms is None else ms,
    }
    return check_entry(
        step, name, status, compare(expected, observed, DROPPED), convergence, note, "2.8.1", shown
    )


def sample_report(case_prefix: str = "") -> dict[str, Any]:
    everyone = [_key(s, d) for s in (A, B, C) for d in (A, B, C) if s != d]
    open_all = {k: ExpectedCell(True, "not isolated") for k in everyone}
    allowed = {k: ObservedCell("allowed", 1, "SYN-ACK") for k in everyone}
    deny_b = {
        k: ExpectedCell(True, "not isolated")
        if k.destination != B
        else ExpectedCell(False, "ingress denied: isolated by x/deny-b and no rule allows it")
        for k in everyone
    }
    # the implementation leaks a -> b: one wrong cell
    leaked = {
        k: ObservedCell("allowed", 1, "SYN-ACK")
        if k.destination != B or k.source == A
        else ObservedCell("dropped", 8, EVIDENCE)
        for k in everyone
    }
    passing = case_entry(
        f"{case_prefix}ingress-allow-all",
        "pass",
        [_check(0, "no policy", "pass", open_all, allowed, 4.2)],
        features=("ingress",),
    )
    failing = case_entry(
        f"{case_prefix}ingress-deny-b",
        "fail",
        [
            _check(0, "no policy", "pass", open_all, allowed, 3.0),
            _check(1, "apply x/deny-b", "fail", deny_b, leaked, None, note="1 wrong cell(s)"),
        ],
        features=("ingress", "selectors"),
        holds=[{"name": "a-to-c", "survived": False, "summary": HOLD}],
        rollouts=[{"step": 1, "summary": "no restart seen"}],
    )
    endport = {_key(A, B, 85): ExpectedCell(False, "ingress denied", True, ("endport-ignored",))}
    deviation = case_entry(
        f"{case_prefix}endport-range",
        "expected failure",
        [
            _check(
                1,
                "apply x/range",
                "expected failure",
                endport,
                {_key(A, B, 85): ObservedCell("dropped", 8, EVIDENCE)},
                12.5,
                ("endport-ignored",),
                "documented deviation of weave-2.8.1: endport-ignored",
            )
        ],
        features=("ports",),
    )
    environment = environment_entry(
        "hollow",
        "v1.31.0",
        [{"name": "node1", "kernel": "6.1.0-test"}, {"name": "node2", "kernel": "6.1.0-test"}],
        ("weave-net", "2.8.1"),
        "0.1.0",
        "weave-2.8.1",
        {"probe-timeout": 0.3, "negative-control": False},
    )
    profile = {
        "endport-ignored": "endPort is ignored: only `port` is enforced",
        "multicast-always-allowed": "destinations in 224.0.0.0/4 are always accepted",
    }
    return build_report(environment, [passing, failing, deviation], profile, "2026-11-30T22:00:00Z")
