"""Watching a rolling upgrade: every round judged against the old and the new expectations; leaks and
outages found, outages measured and judged against a bound; the step's own failure re-raised."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from netpolcheck.model import SPEC
from netpolcheck.verdict.driver import PodSpec
from netpolcheck.verdict.expected import expect
from netpolcheck.verdict.probing import Prober
from netpolcheck.verdict.watch import watch_while
from tests.verdict.double import Cell, FakeClock, FakeDriver

DENY_C = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "NetworkPolicy",
    "metadata": {"name": "deny-c", "namespace": "x"},
    "spec": {"podSelector": {"matchLabels": {"pod": "c"}}},
}


def _world(script: dict[int, dict[str, str]]) -> tuple[FakeClock, FakeDriver, Any, threading.Event]:
    """x/a, x/b, x/c; round n of the watch answers per destination as `script[n]` says (else allowed)."""
    clock = FakeClock()
    rounds = {"n": 0}
    finished = threading.Event()

    def dataplane(d: FakeDriver, cell: Cell, now: float) -> str:
        dst = next(p["name"] for p in d.pods.values() if p["ip"] == cell[1])
        return script.get(rounds["n"], {}).get(dst, "dropped" if dst == "c" else "allowed")

    driver = FakeDriver(clock, dataplane)
    driver.create_namespace("x", {})
    driver.create_pods([PodSpec("x", n, {"pod": n}, ports=((80, "TCP"),)) for n in "abc"])
    driver.apply_policy("x", DENY_C)
    doc = driver.snapshot(["x"]) | {"probes": [{"port": 80, "protocol": "TCP"}]}
    expectation = expect(doc, SPEC)
    original = driver.probe

    def counting_probe(*args: Any, **kwargs: Any) -> Any:
        out = original(*args, **kwargs)
        if args[1] == "c":  # the last source of a round (sources are probed in order a, b, c)
            rounds["n"] += 1
            if rounds["n"] >= 6:
                finished.set()
        return out

    driver.probe = counting_probe  # type: ignore[method-assign]
    return clock, driver, expectation, finished


def test_a_clean_rollout_has_no_violation() -> None:
    clock, driver, exp, finished = _world({})
    watch = watch_while(
        lambda: finished.wait(30), exp.cells, exp.cells, exp.targets, Prober(driver, 1.0, 1), clock.clock()
    )
    assert watch.rounds >= 6 and not watch.leaks and not watch.outages
    assert watch.violations(0) == []


def test_leaks_and_outages_are_found_and_outages_judged_against_the_bound() -> None:
    # rounds 2 and 3: b goes dark (both versions allow it); round 4: c answers (both versions deny it)
    script = {2: {"b": "dropped"}, 3: {"b": "dropped"}, 4: {"c": "allowed"}}
    clock, driver, exp, finished = _world(script)
    watch = watch_while(
        lambda: finished.wait(30), exp.cells, exp.cells, exp.targets, Prober(driver, 1.0, 1), clock.clock()
    )
    assert {(lk.key.source, lk.key.destination) for lk in watch.leaks} == {("x/a", "x/c"), ("x/b", "x/c")}
    assert {(o.key.source, o.key.destination) for o in watch.outages} == {("x/a", "x/b"), ("x/c", "x/b")}
    outage = watch.outages[0]
    assert outage.end_ms is not None and outage.end_ms > outage.start_ms
    long_bound = watch.violations(outage_bound_ms=1e9)
    assert len(long_bound) == 2 and all(v.startswith("leak:") for v in long_bound)
    assert len(watch.violations(outage_bound_ms=0)) == 4
    assert "2 leak(s), 2 outage(s)" in watch.summary()


def test_a_failing_step_is_re_raised_after_the_last_round() -> None:
    clock, driver, exp, _ = _world({})

    def broken() -> None:
        raise RuntimeError("rollout stuck")

    with pytest.raises(RuntimeError, match="rollout stuck"):
        watch_while(broken, exp.cells, exp.cells, exp.targets, Prober(driver, 1.0, 1), clock.clock())
