"""foresee.after_step: the STATE a step will leave, for the steps known in advance, and nothing else."""

from __future__ import annotations

from typing import Any

from netpolcheck.verdict import case as c
from netpolcheck.verdict.foresee import after_step
from netpolcheck.verdict.naming import Naming

NAMING = Naming("case", "np-t")
POLICY: dict[str, Any] = {
    "kind": "NetworkPolicy",
    "metadata": {"name": "p", "namespace": "np-t-x"},
    "spec": {},
}


def state() -> dict[str, Any]:
    return {
        "namespaces": [{"name": "np-t-x", "labels": {"ns": "x"}}, {"name": "np-t-y", "labels": {"ns": "y"}}],
        "pods": [{"namespace": "np-t-x", "name": "a", "labels": {"pod": "a"}, "ip": "10.32.0.2"}],
        "policies": [],
        "probes": [{"port": 80, "protocol": "TCP"}],
    }


def test_policy_steps_add_replace_and_remove_the_policy() -> None:
    applied = after_step(state(), c.ApplyPolicy("x", POLICY), NAMING, POLICY)
    assert applied is not None and applied["policies"] == [POLICY]
    changed = {**POLICY, "spec": {"podSelector": {}}}
    again = after_step(applied, c.ApplyPolicy("x", changed), NAMING, changed)
    assert again is not None and again["policies"] == [changed]
    deleted = after_step(again, c.DeletePolicy("x", "p"), NAMING)
    assert deleted is not None and deleted["policies"] == []
    assert applied["policies"] == [POLICY]  # the input is never changed


def test_label_steps_set_and_remove_labels() -> None:
    pod = after_step(state(), c.LabelPod("x", "a", {"role": "web", "pod": None}), NAMING)
    assert pod is not None and pod["pods"][0]["labels"] == {"role": "web"}
    namespace = after_step(state(), c.LabelNamespace("y", {"team": "red"}), NAMING)
    assert namespace is not None and namespace["namespaces"][1]["labels"] == {"ns": "y", "team": "red"}
    assert state()["namespaces"][1]["labels"] == {"ns": "y"}


def test_steps_it_cannot_foresee_give_none() -> None:
    assert after_step(state(), c.DeletePod("x", "a"), NAMING) is None
    assert after_step(state(), c.DeleteNamespace("y"), NAMING) is None
    assert after_step(state(), c.ApplyPolicy("x", POLICY), NAMING, None) is None
