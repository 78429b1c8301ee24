"""Known implementation bugs of this kind, each as the behaviour that must hold."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from netpolcheck.verdict import case as c
from netpolcheck.verdict.builders import labels, policy, ports, probes
from netpolcheck.verdict.results import CaseResult
from suites.catalog import apply, params, xyz_case

pytestmark = [pytest.mark.regressions]

TEAM = [f"t{i}" for i in range(9)]  # more than eight namespaces matching one selector
MANY_NAMESPACES = c.Case(
    "more-than-eight-namespaces-match-one-selector",
    (
        c.NamespaceDef("x", {"ns": "x"}),
        *(c.NamespaceDef(n, {"team": "red"}) for n in TEAM),
        c.NamespaceDef("o"),
    ),
    (
        c.PodDef("x", "a", {"pod": "a"}, node=0),
        *(c.PodDef(n, "a", {"pod": "a"}, node=i + 1) for i, n in enumerate(TEAM)),
        c.PodDef("o", "a", node=2),
    ),
    (apply("x", policy("from-team-red", ingress=[{"from": [{"namespaceSelector": labels(team="red")}]}])),),
    probes((80,), ("TCP",)),
    check_first=False,
)
MANY_PODS = c.Case(
    "many-pods-started-at-once-without-policies-see-no-denial",
    (c.NamespaceDef("x"),),
    tuple(c.PodDef("x", f"p{i}", {"pod": f"p{i}"}, node=i) for i in range(12)),
    (),
    probes((80,), ("TCP",)),
)
# y/b and y/c on one node, b first: when b is deleted, a pod started on that node next takes the
# lowest free address there, b's, on the embedded cluster (other IPAMs may not reuse it at once: the
# case holds either way, it only catches stale addresses where they are reused)
IP_REUSE = c.Case(
    "a-new-pod-reusing-a-deleted-pods-ip-gets-none-of-its-access",
    (c.NamespaceDef("x", {"ns": "x"}), c.NamespaceDef("y", {"ns": "y"})),
    (
        c.PodDef("x", "a", {"pod": "a"}, node=0),
        c.PodDef("y", "b", {"pod": "b"}, node=1),
        c.PodDef("y", "c", {"pod": "c"}, node=1),
    ),
    (
        apply(
            "x",
            policy(
                "from-y-b",
                labels(pod="a"),
                ingress=[{"from": [{"namespaceSelector": labels(ns="y"), "podSelector": labels(pod="b")}]}],
            ),
        ),
        c.DeletePod("y", "b"),
        c.CreatePod(c.PodDef("y", "d", {"pod": "d"}, node=1)),
    ),
    probes((80,), ("TCP",)),
    check_first=False,
)
CASES = [
    xyz_case(
        "namespace-deleted-and-recreated-with-the-same-name-the-policy-holds",
        apply(
            "x",
            policy("from-y", labels(pod="a"), ingress=[{"from": [{"namespaceSelector": labels(ns="y")}]}]),
        ),
        c.DeleteNamespace("y"),
        c.CreateNamespace(c.NamespaceDef("y", {"ns": "y"})),
        c.CreatePod(c.PodDef("y", "a", {"pod": "a"}, node=0)),
    ),
    xyz_case(
        "ingress-from-an-ipblock-on-one-port-does-not-open-the-others",
        apply(
            "x",
            policy(
                "y-b-on-81",
                labels(pod="a"),
                ingress=[{"from": [{"ipBlock": {"cidr": "{ip:y/b}/32"}}], "ports": ports((81, "TCP"))}],
            ),
        ),
    ),
    MANY_NAMESPACES,
    MANY_PODS,
    IP_REUSE,
]


@pytest.mark.parametrize("case", params(*CASES))
def test_regressions(case: c.Case, verdict: Callable[[c.Case], CaseResult]) -> None:
    verdict(case)
