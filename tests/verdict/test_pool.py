"""Reused topologies (netpolcheck/verdict/pool.py): which cases may hand theirs back, how it is put back
as it was made, and when it is deleted instead; with the scripted driver double."""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

import pytest

from netpolcheck.verdict import case as c
from netpolcheck.verdict.deviations import Status
from netpolcheck.verdict.naming import CASE_LABEL
from netpolcheck.verdict.pool import Layout, Lease, TopologyPool, differences, restore_plan, reusable
from netpolcheck.verdict.runner import CaseRunner, RunOptions
from tests.verdict.double import Cell, FakeClock, FakeDriver
from tests.verdict.test_runner import CASE, DENY_B, isolating_dataplane

RELABEL = dataclasses.replace(
    CASE,
    id="relabel",
    steps=(
        c.ApplyPolicy("x", DENY_B),
        c.LabelPod("x", "a", {"pod": "b", "extra": "1"}),
        c.LabelNamespace("x", {"ns": None, "team": "blue"}),
    ),
)


NUMBERS = itertools.count()


@pytest.fixture(autouse=True)
def numbered_from_zero() -> None:
    """Each test's topologies are np-0, np-1, ... in the order they are made."""
    global NUMBERS
    NUMBERS = itertools.count()


def runner(driver: FakeDriver, clock: FakeClock, pool: TopologyPool | None, **options: Any) -> CaseRunner:
    names = (f"np-{i}" for i in NUMBERS)  # unique across runners, as run_prefix's are
    defaults: dict[str, Any] = {"profile": "weave", "deadline": 3.0, "probe_workers": 1}
    opts = RunOptions(**(defaults | options))
    return CaseRunner(
        driver, opts, clock.clock(), progress=lambda _: None, prefix=lambda _: next(names), pool=pool
    )


def test_only_cases_that_change_policies_and_labels_can_hand_back() -> None:
    assert reusable(CASE) is None and reusable(RELABEL) is None
    moved = dataclasses.replace(CASE, steps=(c.DeletePod("x", "a"),))
    assert "DeletePod" in str(reusable(moved))
    held = dataclasses.replace(CASE, steps=(c.Hold("h", "x", "a", "x", "b"), c.Release("h")))
    assert "Hold" in str(reusable(held))
    assert "whole cluster" in str(reusable(dataclasses.replace(CASE, steps=(c.RestartController(),))))
    assert "whole cluster" in str(reusable(dataclasses.replace(CASE, weave_version="2.0.5")))
    host = dataclasses.replace(CASE, pods=(*CASE.pods, c.PodDef("x", "h", host_network=True)))
    assert "hostNetwork" in str(reusable(host))


def test_the_layout_is_the_topology_not_the_case() -> None:
    assert Layout.of(CASE) == Layout.of(RELABEL)
    other = dataclasses.replace(CASE, pods=(c.PodDef("x", "a", {"pod": "z"}, node=0), CASE.pods[1]))
    assert Layout.of(other) != Layout.of(CASE)
    assert Layout.of(dataclasses.replace(CASE, namespaces=(c.NamespaceDef("x", {"ns": "q"}),))) != Layout.of(
        CASE
    )


def test_the_second_case_runs_on_the_first_ones_pods_with_everything_put_back() -> None:
    clock = FakeClock()
    driver = FakeDriver(clock, isolating_dataplane(0.25))
    pool = TopologyPool()
    first = runner(driver, clock, pool).run(RELABEL)
    assert first.status is Status.PASS, [ch.report for ch in first.checks]
    assert "delete namespace np-0-x" not in driver.calls
    assert driver.policies == {}  # deleted on hand-back
    assert driver.pods["np-0-x/a"]["labels"] == {"pod": "a"}  # put back
    assert driver.namespaces["np-0-x"]["ns"] == "x" and "team" not in driver.namespaces["np-0-x"]
    ips = {k: p["ip"] for k, p in driver.pods.items()}
    driver.calls.clear()

    second = runner(driver, clock, pool).run(CASE)
    assert second.status is Status.PASS, [ch.report for ch in second.checks]
    assert not any(call.startswith("create") for call in driver.calls), driver.calls
    assert {k: p["ip"] for k, p in driver.pods.items()} == ips  # the same pods
    assert driver.namespaces["np-0-x"][CASE_LABEL] == CASE.id
    assert len(pool.idle) == 1 and pool.idle[0].uses == 2
    for lease in pool.drain():
        assert lease.prefix == "np-0"


def test_a_topology_whose_matrix_is_wrong_without_policies_is_deleted() -> None:
    """A dataplane that keeps isolating after the policy is gone: the next case must not inherit it."""
    clock = FakeClock()
    stuck: dict[str, bool] = {}

    def sticky(d: FakeDriver, cell: Cell, now: float) -> str:
        if d.policies:
            stuck["on"] = True
        dst = next(p for p in d.pods.values() if p["ip"] == cell[1])
        return "dropped" if stuck and dst["labels"].get("pod") == "b" else "allowed"

    driver = FakeDriver(clock, sticky)
    pool = TopologyPool()
    case = dataclasses.replace(CASE, steps=(c.ApplyPolicy("x", DENY_B),))
    result = runner(driver, clock, pool, deadline=1.0).run(case)
    assert result.status is Status.PASS
    assert pool.idle == [] and driver.namespaces == {}, driver.calls
    assert "delete namespace np-0-x" in driver.calls


def test_without_a_pool_or_with_keep_nothing_is_handed_back() -> None:
    clock = FakeClock()
    driver = FakeDriver(clock)
    runner(driver, clock, None).run(CASE)
    assert driver.namespaces == {}
    pool = TopologyPool()
    runner(driver, clock, pool, keep=True).run(CASE)
    assert pool.idle == [] and list(driver.namespaces) == ["np-1-x"]


def test_a_case_that_raises_deletes_its_topology() -> None:
    clock = FakeClock()
    driver = FakeDriver(clock)
    pool = TopologyPool()

    def refuse(namespace: str, manifest: Any) -> None:
        raise RuntimeError("the API server refused it")

    driver.apply_policy = refuse  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="refused"):
        runner(driver, clock, pool).run(CASE)
    assert pool.idle == [] and driver.namespaces == {}


def test_the_pool_keeps_at_most_its_limit_oldest_out_first() -> None:
    pool = TopologyPool(limit=2)
    leases = [Lease(f"np-{i}", Layout.of(CASE), {"namespaces": [], "pods": []}) for i in range(3)]
    assert pool.give(leases[0]) == [] and pool.give(leases[1]) == []
    assert pool.give(leases[2]) == [leases[0]]
    assert pool.take(Layout.of(CASE)) is leases[1]
    assert pool.take(Layout.of(dataclasses.replace(CASE, pods=CASE.pods[:1]))) is None


def test_restore_plan_and_differences_ignore_only_the_case_label() -> None:
    pristine = {
        "namespaces": [{"name": "n-x", "labels": {"ns": "x", CASE_LABEL: "one"}}],
        "pods": [{"namespace": "n-x", "name": "a", "labels": {"pod": "a"}, "ip": "10.0.0.1", "node": "n1"}],
        "policies": [],
    }
    now = {
        "namespaces": [{"name": "n-x", "labels": {"team": "blue", CASE_LABEL: "two"}}],
        "pods": [{"namespace": "n-x", "name": "a", "labels": {"pod": "b"}, "ip": "10.0.0.1", "node": "n1"}],
        "policies": [{"metadata": {"namespace": "n-x", "name": "p"}}],
    }
    ignore = frozenset({CASE_LABEL})
    plan = restore_plan(pristine, now, ignore)
    assert plan.policies == (("n-x", "p"),)
    assert plan.namespace_labels == (("n-x", {"ns": "x", "team": None}),)
    assert plan.pod_labels == (("n-x", "a", {"pod": "a"}),)
    found = differences(pristine, now, ignore)
    assert any("namespace n-x" in f for f in found) and any("pod n-x/a" in f for f in found)
    assert "policy n-x/p exists" in found
    moved = {**pristine, "pods": [{**pristine["pods"][0], "ip": "10.0.0.9"}]}
    assert differences(pristine, moved, ignore) == [
        "pod n-x/a was ('10.0.0.1', 'n1', (('pod', 'a'),)), is ('10.0.0.9', 'n1', (('pod', 'a'),))"
    ]
    assert (
        differences(
            pristine,
            {**now, "namespaces": pristine["namespaces"], "pods": pristine["pods"], "policies": []},
            ignore,
        )
        == []
    )


ALLOW_ALL: dict[str, Any] = {
    "kind": "NetworkPolicy",
    "metadata": {"name": "allow-all"},
    "spec": {"podSelector": {}, "ingress": [{}]},
}


def deletes_ignored() -> Any:
    """Scripted: a dataplane that never forgets a policy (deletes are ignored), per namespace."""
    ever: dict[str, set[str]] = {}

    def dataplane(d: FakeDriver, cell: Cell, now: float) -> str:
        for namespace, name in d.policies:
            ever.setdefault(namespace, set()).add(name)
        dst = next(p for p in d.pods.values() if p["ip"] == cell[1])
        names = ever.get(dst["namespace"], set())
        if "allow-all" in names:
            return "allowed"
        return "dropped" if "deny-b" in names and dst["labels"].get("pod") == "b" else "allowed"

    return dataplane


def test_a_failure_on_a_reused_topology_is_run_again_on_its_own_and_blamed_on_what_was_left() -> None:
    """The case before leaves an allow-all in force that the matrix of no policies cannot show; the next
    case fails on that topology, passes on its own, and fails saying which cases left it."""
    clock = FakeClock()
    driver = FakeDriver(clock, deletes_ignored())
    pool = TopologyPool()
    lenient = dataclasses.replace(CASE, id="lenient", steps=(c.ApplyPolicy("x", ALLOW_ALL),))
    assert runner(driver, clock, pool).run(lenient).status is Status.PASS
    assert [lease.history for lease in pool.idle] == [["lenient"]]

    progress: list[str] = []
    strict = dataclasses.replace(CASE, id="strict", steps=(c.ApplyPolicy("x", DENY_B),))
    second = runner(driver, clock, pool, deadline=1.0)
    second.progress = progress.append
    result = second.run(strict)
    assert result.status is Status.FAIL
    assert "on the topology that lenient used before" in result.error, result.error
    assert "on a topology of its own it did not" in result.error
    assert [ch.status for ch in result.checks] == [Status.PASS, Status.PASS]  # the fresh run's checks
    assert any("running it again on a topology of its own" in line for line in progress), progress
    # the topology it failed on is not handed back; nor the fresh one, whose deny-b outlives its delete
    assert "delete namespace np-0-x" in driver.calls and "delete namespace np-1-x" in driver.calls
    assert pool.idle == []


def test_a_case_that_fails_on_its_own_topology_too_is_its_own_failure() -> None:
    clock = FakeClock()
    driver = FakeDriver(clock, isolating_dataplane(100.0))  # never isolates in time: deny-b fails
    pool = TopologyPool()
    open_case = dataclasses.replace(CASE, id="open", steps=())
    runner(driver, clock, pool).run(open_case)
    progress: list[str] = []
    again = runner(driver, clock, pool, deadline=0.5)
    again.progress = progress.append
    result = again.run(dataclasses.replace(CASE, steps=(c.ApplyPolicy("x", DENY_B),)))
    assert result.status is Status.FAIL and result.error == ""
    assert any("the failure is its own" in line for line in progress), progress
    assert pool.idle == []  # neither failing topology is kept
