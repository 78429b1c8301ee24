"""Ingress: deny-all and allow-all, `ingress: []` vs `[{}]`, pod / namespace / both-in-one-peer
selectors, matchExpressions, `kubernetes.io/metadata.name`, a policy selecting no pods."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from netpolcheck.verdict import case as c
from netpolcheck.verdict.builders import labels, policy, ports
from netpolcheck.verdict.driver import Driver
from netpolcheck.verdict.results import CaseResult
from suites.catalog import apply, needs_isolation_by_policy, params, xyz_case

pytestmark = [pytest.mark.catalog, pytest.mark.ingress]

A = labels(pod="a")

CASES = [
    xyz_case("no-policy-allows-everything", check_first=True),
    xyz_case(
        "deny-all-ingress-isolates-every-pod-of-the-namespace", apply("x", policy("deny-all", ingress=[]))
    ),
    xyz_case("deny-all-ingress-from-empty-spec-defaults-to-ingress", apply("x", policy("deny-all"))),
    xyz_case("allow-all-ingress-with-one-empty-rule", apply("x", policy("allow-all", ingress=[{}]))),
    xyz_case(
        "deny-all-plus-allow-all-is-allow-all",
        apply("x", policy("deny-all", ingress=[])),
        apply("x", policy("allow-all", ingress=[{}])),
    ),
    xyz_case(
        "policy-selecting-no-pods-isolates-nothing",
        apply("x", policy("none", labels(pod="nobody"), ingress=[])),
    ),
]
SELECTORS = [
    xyz_case(
        "pod-selector-allows-only-labelled-pods-of-the-same-namespace",
        apply("x", policy("from-b", A, ingress=[{"from": [{"podSelector": labels(pod="b")}]}])),
    ),
    xyz_case(
        "namespace-selector-allows-every-pod-of-matching-namespaces",
        apply("x", policy("from-y", A, ingress=[{"from": [{"namespaceSelector": labels(ns="y")}]}])),
    ),
    xyz_case(
        "namespace-and-pod-selector-in-one-peer-is-and",
        apply(
            "x",
            policy(
                "from-y-c",
                A,
                ingress=[{"from": [{"namespaceSelector": labels(ns="y"), "podSelector": labels(pod="c")}]}],
            ),
        ),
    ),
    xyz_case(
        "namespace-and-pod-selector-in-two-peers-is-or",
        apply(
            "x",
            policy(
                "from-y-or-c",
                A,
                ingress=[{"from": [{"namespaceSelector": labels(ns="y")}, {"podSelector": labels(pod="c")}]}],
            ),
        ),
    ),
    xyz_case(
        "all-namespaces-selector-allows-every-pod",
        apply("x", policy("from-all", A, ingress=[{"from": [{"namespaceSelector": {}}]}])),
    ),
    xyz_case(
        "match-expressions-not-in",
        apply(
            "x",
            policy(
                "not-b",
                A,
                ingress=[
                    {
                        "from": [
                            {
                                "namespaceSelector": {},
                                "podSelector": {
                                    "matchExpressions": [{"key": "pod", "operator": "NotIn", "values": ["b"]}]
                                },
                            }
                        ]
                    }
                ],
            ),
        ),
    ),
    xyz_case(
        "metadata-name-label-selects-the-namespace-by-name",
        apply(
            "x",
            policy(
                "from-z-by-name",
                A,
                ingress=[
                    {"from": [{"namespaceSelector": labels(**{"kubernetes.io/metadata.name": "{ns:z}"})}]}
                ],
            ),
        ),
    ),
]


TARGETS = [
    xyz_case(
        "target-pods-selected-by-match-expressions",
        apply(
            "x",
            policy(
                "deny-a-and-b",
                {"matchExpressions": [{"key": "pod", "operator": "In", "values": ["a", "b"]}]},
                ingress=[],
            ),
        ),
    ),
    xyz_case(
        "target-pods-selected-by-a-label-that-must-not-exist",
        c.LabelPod("x", "c", {"exempt": "yes"}),
        apply(
            "x",
            policy(
                "deny-unexempt",
                {"matchExpressions": [{"key": "exempt", "operator": "DoesNotExist"}]},
                ingress=[],
            ),
        ),
    ),
    xyz_case(
        "a-policy-applies-only-in-its-own-namespace",
        apply("y", policy("deny-a", labels(pod="a"), ingress=[])),
    ),
]

PAIRS = [
    xyz_case(
        "empty-pod-selector-peer-means-the-policy-namespace",
        apply("y", policy("from-own-namespace", ingress=[{"from": [{"podSelector": {}}]}])),
    ),
    xyz_case(
        "allow-by-pod-and-deny-by-ip-in-two-rules-is-a-union",
        apply(
            "x",
            policy(
                "pod-or-ip",
                A,
                ingress=[
                    {"from": [{"namespaceSelector": {}, "podSelector": labels(pod="b")}]},
                    {
                        "from": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["{ip:y/b}/32"]}}],
                        "ports": ports((81, "UDP")),
                    },
                ],
            ),
        ),
    ),
    xyz_case(
        "namespace-selector-match-expressions-exists-and-does-not-exist",
        apply(
            "x",
            policy(
                "ns-exists",
                A,
                ingress=[
                    {
                        "from": [
                            {
                                "namespaceSelector": {
                                    "matchExpressions": [
                                        {"key": "ns", "operator": "In", "values": ["y", "z"]},
                                        {"key": "team", "operator": "DoesNotExist"},
                                    ]
                                }
                            }
                        ]
                    }
                ],
            ),
        ),
        c.LabelNamespace("z", {"team": "blue"}),
    ),
    xyz_case(
        "a-pod-peer-and-an-ipblock-peer-in-one-rule-are-or",
        apply(
            "x",
            policy(
                "c-or-z-a-ip",
                A,
                ingress=[{"from": [{"podSelector": labels(pod="c")}, {"ipBlock": {"cidr": "{ip:z/a}/32"}}]}],
            ),
        ),
    ),
    xyz_case(
        "two-policies-on-one-pod-are-a-union",
        apply("x", policy("from-y", A, ingress=[{"from": [{"namespaceSelector": labels(ns="y")}]}])),
        apply(
            "x",
            policy(
                "from-z-c",
                A,
                ingress=[{"from": [{"namespaceSelector": labels(ns="z"), "podSelector": labels(pod="c")}]}],
            ),
        ),
    ),
]


@pytest.mark.selectors
@pytest.mark.parametrize("case", params(*PAIRS))
def test_ingress_peer_pairs_and_unions(case: c.Case, verdict: Callable[[c.Case], CaseResult]) -> None:
    verdict(case)


@pytest.mark.selectors
@pytest.mark.parametrize("case", params(*TARGETS))
def test_ingress_targets(case: c.Case, verdict: Callable[[c.Case], CaseResult]) -> None:
    verdict(case)


@pytest.mark.parametrize("case", params(*CASES))
def test_ingress_rules(case: c.Case, verdict: Callable[[c.Case], CaseResult]) -> None:
    verdict(case)


@pytest.mark.selectors
@pytest.mark.parametrize("case", params(*SELECTORS))
def test_ingress_peers(case: c.Case, verdict: Callable[[c.Case], CaseResult]) -> None:
    verdict(case)


NODES = xyz_case(
    "same-node-and-cross-node-traffic-are-policed-alike",
    apply("x", policy("from-y", ingress=[{"from": [{"namespaceSelector": labels(ns="y")}]}])),
)


@pytest.mark.parametrize("case", params(NODES))
def test_same_node_and_cross_node_traffic(
    case: c.Case, verdict: Callable[[c.Case], CaseResult], verdict_driver: Driver
) -> None:
    """Pod i of each namespace is on node i: x's pods are denied from z and allowed from y both from
    their own node and from the others (a node-local shortcut, or a rule only on the remote path,
    would show here)."""
    if len(verdict_driver.info().nodes) < 2:
        pytest.skip("one schedulable node: no cross-node traffic to compare")
    needs_isolation_by_policy(verdict_driver)
    check = verdict(case).checks[-1]
    node = {pod.key: pod.node for pod in check.expectation.state.pods}
    seen = {
        (check.expectation.cells[k].allowed, node[t.source] == node[t.destination])
        for k, t in check.expectation.targets.items()
        if k.destination.startswith("x/") and k.source[0] in "yz"
    }
    assert seen == {(True, True), (True, False), (False, True), (False, False)}
