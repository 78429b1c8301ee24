"""Case data validation: a case that cannot run is refused before anything is created, naming where."""

from __future__ import annotations

from typing import Any

import pytest

from netpolcheck.errors import UsageError
from netpolcheck.verdict import case as c
from netpolcheck.verdict.validation import CaseError, validate

DENY: dict[str, Any] = {"kind": "NetworkPolicy", "metadata": {"name": "deny"}, "spec": {"podSelector": {}}}


def _case(*steps: c.Step, **kw: Any) -> c.Case:
    defaults: dict[str, Any] = {
        "id": "demo",
        "namespaces": (c.NamespaceDef("x", {"ns": "x"}),),
        "pods": (c.PodDef("x", "a", {"pod": "a"}), c.PodDef("x", "b", {"pod": "b"})),
        "steps": steps,
    }
    return c.Case(**(defaults | kw))


def test_a_well_formed_case_passes_and_says_what_it_is() -> None:
    case = validate(
        _case(
            c.ApplyPolicy("x", DENY),
            c.LabelPod("x", "a", {"app": "busybox", "pod": None}),
            c.DeletePolicy("x", "deny"),
            c.CreateNamespace(c.NamespaceDef("y")),
            c.CreatePod(c.PodDef("y", "a")),
            c.DeletePod("y", "a"),
            c.DeleteNamespace("y"),
        )
    )
    assert case.policy_case and not case.cluster_wide
    assert validate(_case(c.RestartController())).cluster_wide
    assert validate(_case(c.UpgradeWeave("2.1.3"))).cluster_wide


@pytest.mark.parametrize(
    ("case", "message"),
    [
        (_case(id="Bad Id"), "case Bad Id: id: use lower-case"),
        (_case(namespaces=(c.NamespaceDef("X"),), pods=()), "namespaces[0]: 'X' is not a valid name"),
        (_case(pods=(c.PodDef("q", "a"),)), "pods[0]: no namespace 'q' at this step"),
        (_case(pods=(c.PodDef("x", "a"), c.PodDef("x", "a"))), "pods[1]: pod x/a exists already"),
        (_case(pods=(c.PodDef("x", "a", ports=((0, "TCP"),)),)), "port 0 out of 1-65535"),
        (_case(pods=(c.PodDef("x", "a", ports=((80, "ICMP"),)),)), "unknown protocol 'ICMP'"),
        (_case(pods=(c.PodDef("x", "a", {"bad key!": "v"}),)), "invalid label key 'bad key!'"),
        (
            _case(c.DeletePolicy("x", "nope")),
            "steps[0] (delete policy x/nope): no policy x/nope at this step",
        ),
        (_case(c.ApplyPolicy("x", {"kind": "Pod"})), "manifest kind must be NetworkPolicy"),
        (_case(c.ApplyPolicy("x", {**DENY, "metadata": {}})), "manifest needs metadata.name"),
        (
            _case(c.ApplyPolicy("x", {**DENY, "metadata": {"name": "p", "namespace": "y"}})),
            "metadata.namespace 'y' differs from the step's",
        ),
        (_case(c.LabelPod("x", "zz", {"a": "b"})), "no pod x/zz at this step"),
        (_case(c.LabelNamespace("x", {"a": "not ok!"})), "invalid value 'not ok!' for label 'a'"),
        (
            _case(c.DeleteNamespace("x"), c.LabelPod("x", "a", {"a": "b"})),
            "steps[1] (label pod x/a a=b): no pod",
        ),
        (_case(c.UpgradeWeave("latest")), "Weave version 'latest' is not X.Y.Z"),
        (_case(probes=()), "probes: nothing to probe"),
        (_case(check_first=False), "the case checks nothing"),
    ],
)
def test_a_broken_case_is_refused_naming_case_place_and_problem(case: c.Case, message: str) -> None:
    with pytest.raises(CaseError) as info:
        validate(case)
    assert message in str(info.value)
    assert isinstance(info.value, UsageError)  # one line, exit 2 on the command line
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ((c.Release("h"),), "no hold h at this step"),
        ((c.Hold("h", "x", "a", "x", "b"), c.Hold("h", "x", "b", "x", "a")), "hold h is running already"),
        ((c.Hold("h", "x", "a", "x", "zz"),), "no pod x/zz at this step"),
        ((c.Hold("H!", "x", "a", "x", "b"),), "'H!' is not a valid name"),
    ],
)
def test_holds_are_checked_through_the_steps(steps: tuple[c.Step, ...], message: str) -> None:
    with pytest.raises(CaseError, match=message.replace("(", r"\(")):
        validate(_case(*steps))
