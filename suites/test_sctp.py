"""SCTP, where the nodes' kernel has it: the catalog's SCTP cells (a port, a protocol-only entry,
deny-all), as upstream and Cyclonus probe them. Whether the cluster can send SCTP is found once per
run (fixture `sctp_missing`); without it every case here is skipped with the probe agent's reason,
never passed. Nothing serves SCTP in the probe pods: an allowed INIT is answered by an ABORT
(`refused`, which only an allowed packet can get), a denied one by nothing (`dropped`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from netpolcheck.verdict import case as c
from netpolcheck.verdict.builders import labels, policy, ports
from netpolcheck.verdict.results import CaseResult
from suites.catalog import apply, params, xyz_case

pytestmark = [pytest.mark.catalog, pytest.mark.ports, pytest.mark.sctp]

A = labels(pod="a")
# SCTP on both ports, TCP 80 beside it: an SCTP rule must not open TCP, nor a TCP rule SCTP
SCTP_PROBES = (c.ProbeDef(80, "SCTP"), c.ProbeDef(81, "SCTP"), c.ProbeDef(80, "TCP"))


def sctp_case(case_id: str, manifest: dict[str, Any]) -> c.Case:
    """`manifest` applied in namespace x of the xyz topology, probed with SCTP_PROBES."""
    return xyz_case(case_id, apply("x", manifest), probed=SCTP_PROBES)


CASES = [
    sctp_case("deny-all-ingress-blocks-sctp", policy("deny-all", ingress=[])),
    sctp_case("ingress-on-sctp-80-only", policy("sctp-80", A, ingress=[{"ports": ports((80, "SCTP"))}])),
    sctp_case(
        "ingress-on-every-sctp-port-from-a-protocol-only-entry",
        policy("sctp", A, ingress=[{"ports": ports((None, "SCTP"))}]),
    ),
    sctp_case(
        "ingress-on-tcp-80-does-not-open-sctp-80",
        policy("tcp-80", A, ingress=[{"ports": ports((80, "TCP"))}]),
    ),
    sctp_case(
        "egress-on-sctp-only-to-one-namespace",
        policy(
            "to-y-sctp",
            A,
            policyTypes=["Egress"],
            egress=[{"to": [{"namespaceSelector": labels(ns="y")}], "ports": ports((None, "SCTP"))}],
        ),
    ),
]


@pytest.mark.parametrize("case", params(*CASES))
def test_sctp(case: c.Case, verdict: Callable[[c.Case], CaseResult], sctp_missing: str | None) -> None:
    if sctp_missing is not None:
        pytest.skip(f"SCTP not probed on this cluster: {sctp_missing}")
    verdict(case)
