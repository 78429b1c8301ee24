"""How Weave denies: silently (dropped, never rejected) and with a "blocked by Weave NPC" line per
denied connection attempt, on the destination's node."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from netpolcheck.verdict import case as c
from netpolcheck.verdict.builders import policy, probes, two_namespaces_three_pods
from netpolcheck.verdict.driver import Driver
from netpolcheck.verdict.forensics import blocked_for
from netpolcheck.verdict.results import CaseResult

pytestmark = [pytest.mark.weave]

DENY = c.Case(
    "deny-all-drops-and-logs",
    *two_namespaces_three_pods(),
    (c.ApplyPolicy("x", policy("deny-all", ingress=[])),),
    probes((80,), ("TCP", "UDP")),
    check_first=False,
)


def test_denied_connections_are_dropped_not_rejected_and_logged(
    verdict: Callable[[c.Case], CaseResult], verdict_driver: Driver
) -> None:
    since = time.time()
    result = verdict(DENY)
    check = result.checks[-1]
    denied = sorted(k for k, cell in check.expectation.cells.items() if not cell.allowed)
    assert len(denied) == 8  # to x/a and x/b from each of the two others, TCP and UDP
    assert {check.observed[k].verdict for k in denied} == {"dropped"}
    lines = verdict_driver.blocked_lines(since)
    unlogged = [k for k in denied if not blocked_for(lines, check.expectation.targets[k])]
    assert not unlogged, f"denied without a 'blocked by Weave NPC' line: {unlogged}"


RESTART = c.Case(
    "policies-hold-across-a-policy-controller-restart",
    *two_namespaces_three_pods(),
    (
        c.ApplyPolicy(
            "x", policy("from-b", ingress=[{"from": [{"podSelector": {"matchLabels": {"pod": "b"}}}]}])
        ),
        c.RestartController(),
    ),
    probes((80,), ("TCP",)),
    check_first=False,
)


@pytest.mark.cluster_wide
def test_policies_hold_across_a_policy_controller_restart(verdict: Callable[[c.Case], CaseResult]) -> None:
    """weave-npc's pods are deleted and the DaemonSet starts new ones; after the restart the matrix is
    the same (its convergence time is the outage bound of the restart, a JUnit property)."""
    result = verdict(RESTART)
    assert [ch.step for ch in result.checks] == ["apply policy x/from-b", "restart the policy controller"]
