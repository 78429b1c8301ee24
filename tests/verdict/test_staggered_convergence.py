"""Staggered convergence through resident agents, on a scripted dataplane and a fake clock: per-cell
brackets from the agent's attempts, the confirming round (run by the agents in the settle's own exec,
or as a full round of ours for an agent too old to), re-settling after a refuted settlement, one watch
request per source pod with each cell's cadence, and the recorded fallback to probe rounds when the pods
have no resident agent."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

from netpolcheck.model import SPEC
from netpolcheck.verdict.convergence import ConvergenceResult, Policy, converge_staggered
from netpolcheck.verdict.driver import (
    AgentAnswer,
    NoResidentAgent,
    ProbeResult,
    ProbeTarget,
    ResidentDriver,
    Stagger,
)
from netpolcheck.verdict.expected import Expectation, expect
from netpolcheck.verdict.probing import Prober, ResidentProber
from netpolcheck.verdict.runner import COARSE, CaseRunner, RunOptions
from tests.verdict.double import Cell, Dataplane, FakeClock, FakeDriver, allow_everything
from tests.verdict.test_runner import CASE, isolating_dataplane

DENIED = frozenset({"dropped"})
INTERVAL = 0.01
SILENT_RUN = 3  # the agent's CONFIRM_SILENCE
EXEC = 0.05  # fake seconds between the agents' answers and the next full round
CONFIRM_AFTER = 0.001  # fake seconds between an agent's settlement and its confirming probes


@dataclass
class StaggeredDriver(FakeDriver):
    """FakeDriver with a resident agent: a settle request walks staggered attempts (one every INTERVAL
    of fake time per target, from the request's moment) through the scripted dataplane, as the agent
    judges them, then (asked to confirm) probes every target once more; `settles` counts requests (one
    per source pod), `watches` records the watch requests (source, targets)."""

    settles: int = 0
    agentless: bool = False  # probe pods without a resident agent (an old image): settle is refused
    confirmless: bool = False  # an agent older than the settle's confirmation: it answers none
    batch: tuple[float, float] | None = None  # (start, end) of the settle requests of one round
    batch_sources: set[str] = field(default_factory=set)  # the sources a request of this batch asked
    confirm_windows: list[float] = field(default_factory=list)  # one per confirmation the agents ran
    watches: list[tuple[str, list[ProbeTarget]]] = field(default_factory=list)

    @property
    def shared_clock(self) -> bool:
        return True

    def watch(
        self, namespace: str, pod: str, targets: Sequence[ProbeTarget], stagger: Stagger, limit: float
    ) -> AgentAnswer:
        self.watches.append((f"{namespace}/{pod}", list(targets)))
        return AgentAnswer({"agent": "resident", "watch": "w"}, self.clock.now(), self.clock.now())

    def settle(
        self,
        namespace: str,
        pod: str,
        targets: Sequence[ProbeTarget],
        stagger: Stagger,
        deadline: float,
        watch: str | None,
        confirm: float | None = None,
    ) -> AgentAnswer:
        if self.agentless:
            raise NoResidentAgent(f"no resident agent in {namespace}/{pod}: exit 4")
        source = f"{namespace}/{pod}"
        self.settles += 1
        if self.batch is None or source in self.batch_sources:  # a new round: its requests start at once
            begin = self.clock.now() if self.batch is None else max(self.clock.now(), self.batch[1] + EXEC)
            self.batch, self.batch_sources = (begin, begin), set()
        self.batch_sources.add(source)
        start = self.batch[0]
        walked = [
            self._settle_one(source, t, start, stagger.interval, deadline, stagger.silence) for t in targets
        ]
        document: dict[str, object] = {"agent": "resident", "results": [result for result, _ in walked]}
        end = max([start, *(done for _, done in walked)])
        if confirm is not None and not self.confirmless:
            confirmed = self.answers(source, targets, end + CONFIRM_AFTER)
            document["confirm"] = confirmed
            end += CONFIRM_AFTER + self.probe_cost(confirmed, confirm)
            self.confirm_windows.append(confirm)
        self.batch = (start, max(self.batch[1], end))
        self.clock.t = max(self.clock.t, self.batch[1])
        return AgentAnswer(document, start, end)

    def probe(
        self, namespace: str, pod: str, targets: Sequence[ProbeTarget], timeout: float
    ) -> list[ProbeResult]:
        """A full round starts when every settle request has answered, one exec later."""
        if self.batch is not None:
            self.clock.t = max(self.clock.t, self.batch[1] + EXEC)
            self.batch, self.batch_sources = None, set()
        return super().probe(namespace, pod, targets, timeout)

    def _settle_one(
        self, source: str, target: ProbeTarget, start: float, interval: float, deadline: float, silence: float
    ) -> tuple[dict[str, object], float]:
        """The agent's result for one target, and when (fake time) it was known."""
        seen: list[tuple[float, str]] = []
        want = set(target["want"])
        k = 0
        while start + k * interval <= start + deadline:
            at = start + k * interval
            cell: Cell = (source, target["ip"], target["port"], target["protocol"])
            seen.append((at, self.dataplane(self, cell, at)))
            k += 1
            first = len(seen)
            while first > 0 and seen[first - 1][1] in want:
                first -= 1
            run = len(seen) - first
            silent = seen[-1][1] == "dropped"
            if run >= 1 and (not silent or (run >= SILENT_RUN and at - seen[first][0] >= silence)):
                settled = {
                    "id": target["id"],
                    "verdict": seen[first][1],
                    "attempts": len(seen),
                    "evidence": "scripted",
                    "settled": True,
                    "settled_at": seen[first][0],
                    "previous_at": seen[first - 1][0] if first else None,
                }
                return settled, at
        unsettled = {
            "id": target["id"],
            "verdict": seen[-1][1],
            "attempts": len(seen),
            "evidence": "scripted",
            "settled": False,
            "settled_at": None,
            "previous_at": None,
        }
        return unsettled, start + deadline

    def stop_watch(self, namespace: str, pod: str, watch: str) -> None:
        self.calls.append(f"stop watch {watch} in {namespace}/{pod}")


def _expectation(driver: FakeDriver) -> Expectation:
    from netpolcheck.verdict.driver import PodSpec

    driver.create_namespace("x", {})
    driver.create_pods([PodSpec("x", "a", {"pod": "a"}), PodSpec("x", "b", {"pod": "b"})])
    driver.apply_policy(
        "x",
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "deny", "namespace": "x"},
            "spec": {"podSelector": {"matchLabels": {"pod": "b"}}},
        },
    )
    return expect(driver.snapshot(["x"]) | {"probes": [{"port": 80, "protocol": "TCP"}]}, SPEC)


def _converge(driver: StaggeredDriver, clock: FakeClock, deadline: float = 5.0) -> ConvergenceResult:
    expectation = _expectation(driver)
    full = Prober(driver, 0.3, workers=1)
    resident = ResidentProber(driver, Stagger(0.05, INTERVAL, 0.3), workers=1)
    since = clock.now()
    return converge_staggered(
        expectation.cells,
        expectation.targets,
        full,
        resident,
        since,
        since,
        clock.clock(),
        DENIED,
        Policy(deadline),
    )


def late_deny(start: float) -> Dataplane:
    """Traffic to x/b is dropped from 0.2 s after `start`."""

    def dataplane(d: FakeDriver, cell: Cell, now: float) -> str:
        denied = cell[1] == d.ip("x/b") and now >= start + 0.2
        return "dropped" if denied else "allowed"

    return dataplane


def test_a_late_deny_is_bracketed_by_two_attempts_one_interval_apart() -> None:
    clock = FakeClock()
    driver = StaggeredDriver(clock, late_deny(clock.t))
    assert isinstance(driver, ResidentDriver)
    result = _converge(driver, clock)
    conv = result.convergence
    assert conv.converged and result.comparison.passed and conv.method == "staggered"
    assert conv.ms is not None and conv.lower_ms <= 200 <= conv.ms
    assert conv.resolution_ms is not None and conv.resolution_ms <= INTERVAL * 1000 + 1e-6
    assert conv.rounds == 2  # one settlement, one confirming round
    # attempts are counted: 2 cells toward x/b needed >= 20 attempts each before the deny, + 3 silent
    assert conv.probes >= 2 * (20 + SILENT_RUN)
    # the agents confirmed in their settle's exec (the full window), so no full round of ours ran
    assert driver.settles == 2 and driver.confirm_windows == [0.3, 0.3] and driver.probe_timeouts == []
    assert all(raw["agent"] == "resident" for raw in result.raw.values())


def test_an_agent_that_cannot_confirm_is_confirmed_by_a_full_round_with_the_same_result() -> None:
    clock, old_clock = FakeClock(), FakeClock()
    confirming = StaggeredDriver(clock, late_deny(clock.t))
    older = StaggeredDriver(old_clock, late_deny(old_clock.t), confirmless=True)
    new, old = _converge(confirming, clock), _converge(older, old_clock)
    assert older.confirm_windows == [] and older.probe_timeouts == [0.3, 0.3]  # a full round, per source
    assert confirming.probe_timeouts == []
    same = ("converged", "ms", "lower_ms", "rounds", "probes", "method")
    assert [getattr(new.convergence, f) for f in same] == [getattr(old.convergence, f) for f in same]
    assert new.observed == old.observed and new.comparison.passed and old.comparison.passed


def test_a_cell_right_from_the_first_attempt_gives_no_lower_bound() -> None:
    clock = FakeClock()
    driver = StaggeredDriver(clock, lambda d, cell, now: "dropped" if cell[1] == d.ip("x/b") else "allowed")
    conv = _converge(driver, clock).convergence
    assert conv.converged and conv.lower_ms == 0.0
    assert conv.ms is not None and conv.ms <= INTERVAL * 1000  # the first attempt already showed it


@pytest.mark.parametrize("confirmless", [False, True], ids=["agents-confirm", "full-rounds"])
def test_a_settlement_the_confirmation_refutes_is_settled_again(confirmless: bool) -> None:
    clock = FakeClock()
    start = clock.t

    def dataplane(d: FakeDriver, cell: Cell, now: float) -> str:
        # x/b -> x/a: open for the first attempt (the settlement sees it), dark for the confirming
        # probes, whoever runs them, open for good at 1 s
        dark = cell[1] == d.ip("x/a") and start + CONFIRM_AFTER / 2 <= now < start + 1.0
        denied = cell[1] == d.ip("x/b") or dark
        return "dropped" if denied else "allowed"

    driver = StaggeredDriver(clock, dataplane, confirmless=confirmless)
    result = _converge(driver, clock)
    conv = result.convergence
    # settled twice (the second time only source x/b, whose cell the confirmation found wrong)
    assert conv.converged and driver.settles == 3 and conv.rounds == 4
    assert conv.ms is not None and conv.lower_ms <= 1000 <= conv.ms
    assert conv.resolution_ms is not None and conv.resolution_ms <= INTERVAL * 1000 + 1e-6
    if confirmless:  # a full round per source after each settlement
        assert driver.probe_timeouts == [0.3] * 4 and driver.confirm_windows == []
    else:  # the second settle confirms x/b's cell; x/a's cell, not settled again, gets a full round
        assert driver.confirm_windows == [0.3] * 3 and driver.probe_timeouts == [0.3]


def test_the_deadline_ends_an_unsettled_check_as_not_converged() -> None:
    clock = FakeClock()
    driver = StaggeredDriver(clock, lambda d, cell, now: "allowed")
    result = _converge(driver, clock, deadline=1.0)
    assert not result.convergence.converged and result.convergence.ms is None
    assert not result.comparison.passed and len(result.comparison.wrong) == 1


def test_without_resident_agents_the_runner_probes_in_rounds_and_records_why() -> None:
    clock = FakeClock()
    driver = StaggeredDriver(clock, isolating_dataplane(0.25), agentless=True)
    progress: list[str] = []
    options = RunOptions(profile="weave", deadline=3.0, probe_workers=1)
    runner = CaseRunner(driver, options, clock.clock(), progress=progress.append, prefix=lambda _: "np-test")
    result = runner.run(CASE)
    assert result.status.value == "pass", [ch.report for ch in result.checks]
    methods = [ch.convergence.method for ch in result.checks]
    assert len(methods) == 3
    assert all(m.startswith("rounds (no resident agent: no resident agent in np-test-x/") for m in methods)
    assert any("no resident agent, probing in rounds instead" in line for line in progress)


def test_one_watch_request_per_source_carries_each_cells_cadence() -> None:
    clock = FakeClock()
    driver = StaggeredDriver(clock, allow_everything)
    expectation = _expectation(driver)
    resident = ResidentProber(driver, Stagger(0.05, INTERVAL, 0.3), workers=1)
    keys = sorted(expectation.targets)
    coarse = {key: 0.1 for key in keys[1:]}
    watches = resident.watch(keys, expectation.targets, 30.0, coarse)
    sources = sorted({expectation.targets[k].source for k in keys})
    assert sorted(watches) == sources and set(watches.values()) == {"w"}
    assert sorted(source for source, _ in driver.watches) == sources  # one request each
    sent = {
        (source, t["ip"], t["port"], t["protocol"]): t.get("interval")
        for source, ts in driver.watches
        for t in ts
    }
    wanted = {
        (t.source, t.ip, t.port, t.protocol): coarse.get(k)
        for k, t in expectation.targets.items()
        if k in keys
    }
    assert sent == wanted and None in sent.values() and 0.1 in sent.values()


def test_the_runner_watches_each_step_with_one_request_per_source() -> None:
    clock = FakeClock()
    driver = StaggeredDriver(clock, isolating_dataplane(0.25))
    options = RunOptions(profile="weave", deadline=3.0, probe_workers=1)
    runner = CaseRunner(driver, options, clock.clock(), progress=lambda _: None, prefix=lambda _: "np-test")
    result = runner.run(CASE)
    assert result.status.value == "pass", [ch.report for ch in result.checks]
    assert all(ch.convergence.method == "staggered" for ch in result.checks)
    # two steps (apply deny-b, delete it), each watched by one request per source pod
    assert sorted(source for source, _ in driver.watches) == ["np-test-x/a"] * 2 + ["np-test-x/b"] * 2
    slow = options.staggered_interval * COARSE
    # x/a's one cell goes toward x/b, which both steps change (fine); x/b's toward x/a, which neither does
    cadence = {(source, t.get("interval")) for source, targets in driver.watches for t in targets}
    assert cadence == {("np-test-x/a", None), ("np-test-x/b", slow)}
