"""Watching a rolling upgrade: every round judged against the old and the new expectations; leaks and
outages found, outages measured and judged against a bound; the step's own failure re-raised."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from netpolcheck.model import SPEC
from netpolcheck.verdict.driver import AgentAnswer, NoResidentAgent, PodSpec, ProbeTarget, Stagger
from netpolcheck.verdict.expected import expect
from netpolcheck.verdict.probing import Prober, ResidentProber
from netpolcheck.verdict.watch import watch_while, watch_with_agents
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


# ----- watching with the resident agents (watch_with_agents) ------------------------------------------

STARTED = 100.0  # the agents' watch start, on their clock


@dataclass
class TimelineDouble(FakeDriver):
    """FakeDriver whose pods' agents answer `timeline` from a script: `runs[(source pod, destination
    pod)]` (default: one run of the verdict the policy gives, 180 attempts over 18 s)."""

    runs: dict[tuple[str, str], list[list[Any]]] = field(default_factory=dict)
    agentless: frozenset[str] = frozenset()
    failure: str | None = None
    ended: float = STARTED + 19.0
    watched: dict[str, list[ProbeTarget]] = field(default_factory=dict)
    stopped: list[str] = field(default_factory=list)

    @property
    def shared_clock(self) -> bool:
        return True

    def watch(
        self, namespace: str, pod: str, targets: Sequence[ProbeTarget], stagger: Stagger, limit: float
    ) -> AgentAnswer:
        if pod in self.agentless:
            raise NoResidentAgent(f"no resident agent in {namespace}/{pod}")
        self.watched[pod] = list(targets)
        return AgentAnswer({"agent": "resident", "watch": f"w-{pod}", "started_at": STARTED}, 0.0, 0.0)

    def settle(self, *args: Any, **kwargs: Any) -> AgentAnswer:
        raise AssertionError("a watched step settles nothing")

    def stop_watch(self, namespace: str, pod: str, watch: str) -> None:
        self.stopped.append(watch)

    def timeline(self, namespace: str, pod: str, watch: str) -> AgentAnswer:
        names = {p["ip"]: p["name"] for p in self.pods.values()}
        targets = []
        for target in self.watched.pop(pod):
            destination = names[target["ip"]]
            verdict = "dropped" if destination == "c" else "allowed"
            runs = self.runs.get((pod, destination), [[verdict, STARTED, STARTED + 18.0, 180, "as ever"]])
            targets.append({"id": target["id"], "runs": runs})
        document = {"watch": watch, "started_at": STARTED, "ended_at": self.ended, "failure": self.failure}
        return AgentAnswer({**document, "received_at": STARTED + 19.0, "targets": targets}, 0.0, 0.0)


def _agents(**script: Any) -> tuple[FakeClock, TimelineDouble, Any]:
    clock = FakeClock()
    driver = TimelineDouble(clock, **script)
    driver.create_namespace("x", {})
    driver.create_pods([PodSpec("x", n, {"pod": n}, ports=((80, "TCP"),)) for n in "abc"])
    driver.apply_policy("x", DENY_C)
    doc = driver.snapshot(["x"]) | {"probes": [{"port": 80, "protocol": "TCP"}]}
    return clock, driver, expect(doc, SPEC)


def _watch(clock: FakeClock, driver: TimelineDouble, exp: Any, step: Any = None) -> Any:
    prober = ResidentProber(driver, Stagger(0.05, 0.01, 0.3), 1)
    calls: list[float] = []
    watch = watch_with_agents(
        step or (lambda: calls.append(clock.now())),
        exp.cells,
        exp.cells,
        exp.targets,
        prober,
        clock.clock(),
        0.1,
        600.0,
        1.0,
    )
    return watch, calls


def test_with_agents_a_clean_rollout_has_no_violation_and_counts_attempts_per_cell() -> None:
    clock, driver, exp = _agents()
    before = clock.now()
    watch, calls = _watch(clock, driver, exp)
    assert len(calls) == 1 and clock.now() == pytest.approx(before + 1.0)  # watched 1 s after the step
    assert (watch.interval_ms, watch.rounds, watch.duration_ms) == (100.0, 180, 19000.0)
    assert not watch.leaks and not watch.outages and watch.violations(0) == []
    assert watch.summary().startswith("every cell every 100 ms (180+ attempts each) in 19000 ms: 0 leak(s)")
    # every cell of a source in one watch request, each at the watched interval; nothing left running
    assert driver.watched == {} and driver.stopped == []


def test_with_agents_leaks_and_outages_are_timed_to_the_attempt() -> None:
    dark = [
        ["allowed", 100.0, 105.0, 50, "SYN-ACK"],
        ["dropped", 105.1, 105.5, 5, "no answer"],
        ["allowed", 105.6, 118.0, 124, "SYN-ACK"],
    ]
    leaking = [
        ["dropped", 100.0, 109.9, 99, "no answer"],
        ["allowed", 110.0, 110.2, 3, "SYN-ACK from 10.0.0.3:80"],
        ["dropped", 110.3, 118.0, 77, "no answer"],
    ]
    still_dark = [["allowed", 100.0, 117.0, 170, "SYN-ACK"], ["dropped", 117.1, 118.0, 10, "no answer"]]
    clock, driver, exp = _agents(runs={("a", "b"): dark, ("b", "c"): leaking, ("c", "a"): still_dark})
    watch, _ = _watch(clock, driver, exp)
    (leak,) = watch.leaks
    assert (leak.key.source, leak.key.destination, leak.at_ms) == ("x/b", "x/c", pytest.approx(10000.0))
    assert "10.0.0.3" in leak.observed.evidence
    outages = {(o.key.source, o.key.destination): o for o in watch.outages}
    assert set(outages) == {("x/a", "x/b"), ("x/c", "x/a")}
    assert outages["x/a", "x/b"].duration_ms(watch.duration_ms) == pytest.approx(500.0)
    assert outages["x/c", "x/a"].end_ms is None  # dark when the watch ended: until its end
    assert outages["x/c", "x/a"].duration_ms(watch.duration_ms) == pytest.approx(1900.0)
    assert len(watch.violations(outage_bound_ms=400)) == 3
    assert [v.split(":")[0] for v in watch.violations(outage_bound_ms=5000)] == ["leak"]


def test_with_agents_a_pod_without_one_means_rounds_and_nothing_ran() -> None:
    clock, driver, exp = _agents(agentless=frozenset({"c"}))
    watch, calls = _watch(clock, driver, exp)
    assert watch is None and calls == []  # the caller probes in rounds and runs the step itself
    assert sorted(driver.stopped) == ["w-a", "w-b"]  # the watches that did start are stopped


@pytest.mark.parametrize(
    ("failure", "ended", "said"),
    [
        ("the watch failed: OSError: no buffer space", STARTED + 19.0, "no buffer space"),
        (None, STARTED + 12.0, "ended 7.0 s before it was asked"),
    ],
)
def test_with_agents_a_watch_that_did_not_cover_the_step_is_a_violation(
    failure: str | None, ended: float, said: str
) -> None:
    clock, driver, exp = _agents(failure=failure, ended=ended)
    watch, _ = _watch(clock, driver, exp)
    broken = [v for v in watch.violations(1e9) if v.startswith("not watched throughout")]
    assert len(broken) == 3 and all(said in v for v in broken)


def test_with_agents_the_steps_failure_is_raised_after_the_watches_are_read() -> None:
    clock, driver, exp = _agents()

    def failing() -> None:
        raise RuntimeError("rollout stuck")

    with pytest.raises(RuntimeError, match="rollout stuck"):
        _watch(clock, driver, exp, failing)
    assert driver.watched == {} and driver.stopped == []  # read, so stopped by the agents themselves
