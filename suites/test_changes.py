"""Actions: update and delete a policy, set and remove pod and namespace labels, create and delete
pods and namespaces, a policy created before its target pod."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from netpolcheck.verdict import case as c
from netpolcheck.verdict.builders import labels, policy
from netpolcheck.verdict.results import CaseResult
from suites.catalog import apply, params, xyz_case

pytestmark = [pytest.mark.catalog, pytest.mark.actions]

FROM_TEAM = policy(
    "from-team-red", labels(pod="a"), ingress=[{"from": [{"namespaceSelector": labels(team="red")}]}]
)
FROM_ROLE = policy(
    "from-role-web",
    labels(pod="a"),
    ingress=[{"from": [{"namespaceSelector": {}, "podSelector": labels(role="web")}]}],
)

CASES = [
    xyz_case(
        "namespace-label-set-then-removed",
        apply("x", FROM_TEAM),
        c.LabelNamespace("y", {"team": "red"}),
        c.LabelNamespace("y", {"team": None}),
    ),
    xyz_case(
        "pod-label-set-then-removed",
        apply("x", FROM_ROLE),
        c.LabelPod("z", "b", {"role": "web"}),
        c.LabelPod("z", "b", {"role": None}),
    ),
    xyz_case(
        "policy-updated-then-deleted",
        apply("x", policy("p", labels(pod="a"), ingress=[])),
        apply("x", policy("p", labels(pod="a"), ingress=[{"from": [{"podSelector": {}}]}])),
        c.DeletePolicy("x", "p"),
    ),
    xyz_case(
        "namespace-created-matching-a-selector-then-deleted",
        apply(
            "x",
            policy(
                "from-team-red",
                labels(pod="a"),
                ingress=[{"from": [{"namespaceSelector": labels(team="red")}]}],
            ),
        ),
        c.CreateNamespace(c.NamespaceDef("w", {"ns": "w", "team": "red"})),
        c.CreatePod(c.PodDef("w", "a", {"pod": "a"}, node=1)),
        c.DeleteNamespace("w"),
    ),
    xyz_case(
        "target-pod-label-removed-then-set-again",
        apply("x", policy("deny-a", labels(pod="a"), ingress=[])),
        c.LabelPod("x", "a", {"pod": None}),
        c.LabelPod("x", "a", {"pod": "a"}),
    ),
    xyz_case(
        "policy-created-before-its-target-pod-exists",
        apply("x", policy("deny-d", labels(pod="d"), ingress=[])),
        c.CreatePod(c.PodDef("x", "d", {"pod": "d"}, node=1)),
    ),
    xyz_case(
        "pod-created-into-a-selected-namespace-then-deleted",
        apply(
            "x",
            policy("from-y", labels(pod="a"), ingress=[{"from": [{"namespaceSelector": labels(ns="y")}]}]),
        ),
        c.CreatePod(c.PodDef("y", "d", {"pod": "d"}, node=2)),
        c.DeletePod("y", "d"),
    ),
]


@pytest.mark.parametrize("case", params(*CASES))
def test_changes(case: c.Case, verdict: Callable[[c.Case], CaseResult]) -> None:
    verdict(case)
