"""Staggered convergence through resident agents, on a scripted dataplane and a fake clock: per-cell
brackets from the agent's attempts, the confirming full round, re-settling after a refuted settlement,
and the recorded fallback to probe rounds when the pods have no resident agent."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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
from netpolcheck.verdict.runner import CaseRunner, RunOptions
from tests.verdict.double import Cell, FakeClock, FakeDriver
from tests.verdict.test_runner import CASE, isolating_dataplane

DENIED = frozenset({"dropped"})
INTERVAL = 0.01
SILENT_RUN = 3  # the agent's CONFIRM_SILENCE
EXEC = 0.05  # fake seconds between the agents' answers and the next full round


@dataclass
class StaggeredDriver(FakeDriver):
    """FakeDriver with a resident agent: a settle request walks staggered attempts (one every INTERVAL
    of fake time per target, from the request's moment) through the scripted dataplane, as the agent
    judges them; `settles` counts requests (one per source pod)."""

    settles: int = 0
    agentless: bool = False  # probe pods without a resident agent (an old image): settle is refused
    batch: tuple[float, float] | None = None  # (start, end) of the settle requests of one round

    @property
    def shared_clock(self) -> bool:
        return True

    def watch(
        self, namespace: str, pod: str, targets: Sequence[ProbeTarget], stagger: Stagger, limit: float
    ) -> AgentAnswer:
        return AgentAnswer({"agent": "resident", "watch": "w"}, self.clock.now(), self.clock.now())

    def settle(
        self,
        namespace: str,
        pod: str,
        targets: Sequence[ProbeTarget],
        stagger: Stagger,
        deadline: float,
        watch: str | None,
    ) -> AgentAnswer:
        if self.agentless:
            raise NoResidentAgent(f"no resident agent in {namespace}/{pod}: exit 4")
        self.settles += 1
        if self.batch is None:  # the sources' requests run at once: all start at the same moment
            self.batch = (self.clock.now(), self.clock.now())
        start = self.batch[0]
        walked = [
            self._settle_one(f"{namespace}/{pod}", t, start, stagger.interval, deadline, stagger.silence)
            for t in targets
        ]
        results = [result for result, _ in walked]
        self.batch = (start, max([self.batch[1], *(done for _, done in walked)]))
        return AgentAnswer({"agent": "resident", "results": results}, start, self.batch[1])

    def probe(
        self, namespace: str, pod: str, targets: Sequence[ProbeTarget], timeout: float
    ) -> list[ProbeResult]:
        """A full round starts when every settle request has answered, one exec later."""
        if self.batch is not None:
            self.clock.t = max(self.clock.t, self.batch[1] + EXEC)
            self.batch = None
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


def test_a_late_deny_is_bracketed_by_two_attempts_one_interval_apart() -> None:
    clock = FakeClock()
    start = clock.t

    def dataplane(d: FakeDriver, cell: Cell, now: float) -> str:
        denied = cell[1] == d.ip("x/b") and now >= start + 0.2
        return "dropped" if denied else "allowed"

    driver = StaggeredDriver(clock, dataplane)
    assert isinstance(driver, ResidentDriver)
    result = _converge(driver, clock)
    conv = result.convergence
    assert conv.converged and result.comparison.passed and conv.method == "staggered"
    assert conv.ms is not None and conv.lower_ms <= 200 <= conv.ms
    assert conv.resolution_ms is not None and conv.resolution_ms <= INTERVAL * 1000 + 1e-6
    assert conv.rounds == 2  # one settlement, one confirming full round
    # attempts are counted: 2 cells toward x/b needed >= 20 attempts each before the deny, + 3 silent
    assert conv.probes >= 2 * (20 + SILENT_RUN)


def test_a_cell_right_from_the_first_attempt_gives_no_lower_bound() -> None:
    clock = FakeClock()
    driver = StaggeredDriver(clock, lambda d, cell, now: "dropped" if cell[1] == d.ip("x/b") else "allowed")
    conv = _converge(driver, clock).convergence
    assert conv.converged and conv.lower_ms == 0.0
    assert conv.ms is not None and conv.ms <= INTERVAL * 1000  # the first attempt already showed it


def test_a_settlement_the_full_round_refutes_is_settled_again() -> None:
    clock = FakeClock()
    start = clock.t

    def dataplane(d: FakeDriver, cell: Cell, now: float) -> str:
        # x/b -> x/a: open at first (the settlement sees it), dark for the full round, open for good at 1 s
        dark = cell[1] == d.ip("x/a") and start + 0.01 <= now < start + 1.0
        denied = cell[1] == d.ip("x/b") or dark
        return "dropped" if denied else "allowed"

    driver = StaggeredDriver(clock, dataplane)
    result = _converge(driver, clock)
    conv = result.convergence
    # settled twice (the second time only source x/b, whose cell the full round found wrong)
    assert conv.converged and driver.settles == 3 and conv.rounds == 4
    assert conv.ms is not None and conv.lower_ms <= 1000 <= conv.ms
    assert conv.resolution_ms is not None and conv.resolution_ms <= INTERVAL * 1000 + 1e-6


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
