"""Egress: deny-all, allow to a namespace on one protocol, egress and ingress together."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from netpolcheck.verdict import case as c
from netpolcheck.verdict.builders import labels, policy, ports
from netpolcheck.verdict.results import CaseResult
from suites.catalog import apply, params, xyz_case

pytestmark = [pytest.mark.catalog, pytest.mark.egress]

EGRESS = ["Egress"]
CASES = [
    xyz_case(
        "egress-deny-all-isolates-every-pod-of-the-namespace",
        apply("x", policy("deny-egress", policyTypes=EGRESS)),
    ),
    xyz_case(
        "egress-allowed-to-one-namespace-on-udp-only",
        apply(
            "x",
            policy(
                "to-y-udp",
                labels(pod="a"),
                policyTypes=EGRESS,
                egress=[{"to": [{"namespaceSelector": labels(ns="y")}], "ports": ports((None, "UDP"))}],
            ),
        ),
    ),
    xyz_case(
        "egress-allowed-to-labelled-pods-of-every-namespace",
        apply(
            "x",
            policy(
                "to-every-b",
                labels(pod="a"),
                policyTypes=EGRESS,
                egress=[{"to": [{"namespaceSelector": {}, "podSelector": labels(pod="b")}]}],
            ),
        ),
    ),
    xyz_case(
        "deny-all-in-both-directions",
        apply("x", policy("deny-both", labels(pod="a"), policyTypes=["Ingress", "Egress"])),
    ),
    xyz_case(
        "egress-allow-all-with-one-empty-rule",
        apply("x", policy("allow-egress", policyTypes=EGRESS, egress=[{}])),
    ),
    xyz_case(
        "egress-and-ingress-policies-both-apply",
        apply("x", policy("deny-egress-a", labels(pod="a"), policyTypes=EGRESS)),
        apply("y", policy("deny-ingress-b", labels(pod="b"), ingress=[])),
    ),
]


@pytest.mark.parametrize("case", params(*CASES))
def test_egress_rules(case: c.Case, verdict: Callable[[c.Case], CaseResult]) -> None:
    verdict(case)
