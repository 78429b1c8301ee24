"""Ports and protocols: a number, a named port, a protocol-only entry, an endPort range."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from netpolcheck.verdict import case as c
from netpolcheck.verdict.builders import labels, policy, ports
from netpolcheck.verdict.results import CaseResult
from suites.catalog import apply, params, xyz_case

pytestmark = [pytest.mark.catalog, pytest.mark.ports]

A = labels(pod="a")
CASES = [
    xyz_case(
        "ingress-on-tcp-80-only", apply("x", policy("tcp-80", A, ingress=[{"ports": ports((80, "TCP"))}]))
    ),
    xyz_case(
        "ingress-on-every-udp-port", apply("x", policy("udp", A, ingress=[{"ports": ports((None, "UDP"))}]))
    ),
    xyz_case(
        "ingress-on-a-named-port",
        apply("x", policy("named-81-udp", A, ingress=[{"ports": ports(("serve-81-udp", "UDP"))}])),
    ),
    xyz_case(
        "ingress-on-an-endport-range",
        apply(
            "x",
            policy("range-80-81", A, ingress=[{"ports": [{"protocol": "TCP", "port": 80, "endPort": 81}]}]),
        ),
    ),
]


@pytest.mark.parametrize("case", params(*CASES))
def test_ports_and_protocols(case: c.Case, verdict: Callable[[c.Case], CaseResult]) -> None:
    verdict(case)
