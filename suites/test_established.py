"""Established connections: a held TCP connection and UDP flow across a deny that blocks them anew,
and replies to an allowed egress under default-deny ingress.

Kubernetes leaves what a new policy does to a live connection to the implementation; Weave accepts
RELATED,ESTABLISHED before any policy rule in every version, so under a Weave profile the flows must
survive (no lost tick) while new connections are dropped. Under `--profile spec` survive-or-cut is
recorded (JUnit property `holds`), not judged.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from netpolcheck.verdict import case as c
from netpolcheck.verdict.builders import labels, policy, probes, two_namespaces_three_pods
from netpolcheck.verdict.results import CaseResult

pytestmark = [pytest.mark.established]

NAMESPACES, PODS = two_namespaces_three_pods()
TCP_UDP_80 = probes((80,), ("TCP", "UDP"))

SURVIVE_DENY = c.Case(
    "held-tcp-and-udp-flows-survive-a-deny-that-blocks-new-connections",
    NAMESPACES,
    PODS,
    (
        c.Hold("a-to-b", "x", "a", "x", "b"),  # same namespace, different nodes
        c.Hold("y-to-b", "y", "a", "x", "b"),  # from another namespace
        c.ApplyPolicy("x", policy("deny-all", ingress=[])),
        c.Release("a-to-b"),
        c.Release("y-to-b"),
    ),
    TCP_UDP_80,
    check_first=False,
)
REPLIES = c.Case(
    "replies-to-an-allowed-egress-pass-under-default-deny-ingress",
    NAMESPACES,
    PODS,
    (c.ApplyPolicy("x", policy("deny-ingress-a", labels(pod="a"), ingress=[])),),
    TCP_UDP_80,
    check_first=False,
)


def test_held_flows_survive_a_new_deny(verdict: Callable[[c.Case], CaseResult]) -> None:
    result = verdict(SURVIVE_DENY)  # the holds' summaries are a JUnit property
    assert set(result.holds) == {"a-to-b", "y-to-b"}
    if result.profile != "spec":
        cut = [h.summary() for h in result.holds.values() if not h.gapless]
        assert not cut, f"Weave accepts established connections before any policy rule: {cut}"


def test_replies_to_allowed_egress_pass_under_default_deny_ingress(
    verdict: Callable[[c.Case], CaseResult],
) -> None:
    """x/a is isolated for ingress; its own connections out are allowed and their replies come back."""
    result = verdict(REPLIES)
    cells = result.checks[-1].expectation.cells
    assert all(cells[k].allowed for k in cells if k.source == "x/a")
