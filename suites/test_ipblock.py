"""ipBlock peers with pod addresses: a cidr with an except, and a single pod's IP."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from netpolcheck.verdict import case as c
from netpolcheck.verdict.builders import labels, policy
from netpolcheck.verdict.results import CaseResult
from suites.catalog import apply, params, xyz_case

pytestmark = [pytest.mark.catalog, pytest.mark.ipblock]

CASES = [
    xyz_case(
        "ingress-ipblock-with-except-denies-the-excepted-pod",
        apply(
            "x",
            policy(
                "all-but-y-b",
                labels(pod="a"),
                ingress=[{"from": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["{ip:y/b}/32"]}}]}],
            ),
        ),
    ),
    xyz_case(
        "ingress-from-one-pod-ip",
        apply(
            "x",
            policy("only-z-c", labels(pod="a"), ingress=[{"from": [{"ipBlock": {"cidr": "{ip:z/c}/32"}}]}]),
        ),
    ),
    xyz_case(
        "egress-ipblock-with-except",
        apply(
            "x",
            policy(
                "egress-not-y-a",
                labels(pod="b"),
                policyTypes=["Egress"],
                egress=[{"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["{ip:y/a}/32"]}}]}],
            ),
        ),
    ),
]


@pytest.mark.parametrize("case", params(*CASES))
def test_ipblock_peers(case: c.Case, verdict: Callable[[c.Case], CaseResult]) -> None:
    verdict(case)
