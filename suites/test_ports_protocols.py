"""Ports and protocols: a number, a named port, a protocol-only entry, an endPort range."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from netpolcheck.verdict import case as c
from netpolcheck.verdict.builders import labels, policy, ports, probes
from netpolcheck.verdict.driver import Driver
from netpolcheck.verdict.results import CaseResult
from suites.catalog import apply, needs_isolation_by_policy, params, xyz_case

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


# probing TCP 82 too: no pod serves it, so an allowed probe is refused (RST); x/a's TCP 80 is dropped
WITH_82 = probes((80, 82), ("TCP",))
UNSERVED = [
    xyz_case(
        "a-policy-naming-a-port-no-pod-serves",
        apply("x", policy("named-82", A, ingress=[{"ports": ports(("serve-82-tcp", "TCP"))}])),
    ),
    xyz_case(
        "a-port-nobody-serves-is-refused-where-allowed-and-dropped-where-denied",
        apply("x", policy("tcp-82", A, ingress=[{"ports": ports((82, "TCP"))}])),
        probed=WITH_82,
    ),
]


@pytest.mark.parametrize("case", params(*UNSERVED))
def test_ports_nobody_serves(
    case: c.Case, verdict: Callable[[c.Case], CaseResult], verdict_driver: Driver
) -> None:
    needs_isolation_by_policy(verdict_driver)
    result = verdict(case)
    observed = result.checks[-1].observed
    if any(k.port == 82 for k in observed):  # the kernel's RST tells "allowed, closed" from "denied"
        assert {o.verdict for k, o in observed.items() if k.port == 82} == {"refused"}
        assert {o.verdict for k, o in observed.items() if k.port == 80 and k.destination == "x/a"} == {
            "dropped"
        }


@pytest.mark.parametrize("case", params(*CASES))
def test_ports_and_protocols(case: c.Case, verdict: Callable[[c.Case], CaseResult]) -> None:
    verdict(case)
