"""Actions: update and delete a policy, set and remove pod and namespace labels, create and delete pods."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from netpolcheck.verdict import case as c
from netpolcheck.verdict.builders import labels, policy
from netpolcheck.verdict.results import CaseResult
from suites.catalog import apply, params, xyz_case

pytestmark = [pytest.mark.catalog, pytest.mark.selectors]

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
