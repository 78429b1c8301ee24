"""Convergence bookkeeping: rounds, the bracket [lower_ms, ms], quick re-probes of wrong cells only,
the confirming full round, and the deadline."""

from __future__ import annotations

from netpolcheck.model import SPEC
from netpolcheck.verdict.convergence import Policy, converge
from netpolcheck.verdict.expected import expect
from netpolcheck.verdict.probing import Prober
from tests.verdict.double import Cell, FakeClock, FakeDriver

DENIED = frozenset({"dropped"})
DENY_B = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "NetworkPolicy",
    "metadata": {"name": "deny", "namespace": "x"},
    "spec": {"podSelector": {"matchLabels": {"pod": "b"}}},
}


def _two_pods(driver: FakeDriver, policy: bool) -> None:
    driver.create_namespace("x", {})
    from netpolcheck.verdict.driver import PodSpec

    driver.create_pods(
        [PodSpec("x", "a", {"pod": "a"}, ports=((80, "TCP"),)), PodSpec("x", "b", {"pod": "b"})]
    )
    if policy:
        driver.apply_policy("x", DENY_B)


def _setup(dataplane, policy: bool = True):
    clock = FakeClock()
    driver = FakeDriver(clock, dataplane)
    _two_pods(driver, policy)
    doc = driver.snapshot(["x"]) | {"probes": [{"port": 80, "protocol": "TCP"}]}
    expectation = expect(doc, SPEC)
    return clock, driver, expectation


def _run(clock, driver, expectation, deadline=5.0):
    full, quick = Prober(driver, 1.0, workers=1), Prober(driver, 0.01, workers=1)
    return converge(
        expectation.cells,
        expectation.targets,
        full,
        quick,
        clock.now(),
        clock.clock(),
        DENIED,
        Policy(deadline),
    )


def test_a_matching_matrix_converges_in_one_round() -> None:
    clock, driver, expectation = _setup(lambda d, cell, now: "allowed", policy=False)
    result = _run(clock, driver, expectation)
    conv = result.convergence
    assert conv.converged and conv.rounds == 1 and conv.probes == 2
    assert conv.lower_ms == 0.0
    assert conv.ms is not None and conv.ms < 5  # two quick answers on the fake clock
    assert result.comparison.passed


def test_a_late_deny_is_bracketed_within_one_quick_round() -> None:
    start = FakeClock().t

    def dataplane(d: FakeDriver, cell: Cell, now: float) -> str:
        denied_now = cell[0] == "x/a" and cell[1] == d.ip("x/b") and now >= start + 0.3
        return "dropped" if denied_now else "allowed"

    clock, driver, expectation = _setup(dataplane)
    result = _run(clock, driver, expectation)
    conv = result.convergence
    assert conv.converged and result.comparison.passed
    assert conv.ms is not None
    # the deny took effect at 300 ms: the last wrong round started before it, the first right one ended after
    assert conv.lower_ms <= 300 <= conv.ms
    # resolution: one quick round (10 ms timeout) plus the poll interval and a round trip
    assert conv.resolution_ms is not None and conv.resolution_ms <= 20
    # only the wrong cell was re-probed quickly; the confirming round probed both cells again
    assert driver.probe_timeouts.count(0.01) >= 20
    assert conv.probes == 2 + (conv.rounds - 2) * 1 + 2


def test_a_matrix_that_never_matches_stops_at_the_deadline() -> None:
    clock, driver, expectation = _setup(lambda d, cell, now: "allowed")
    result = _run(clock, driver, expectation, deadline=2.0)
    conv = result.convergence
    assert not conv.converged and conv.ms is None
    assert conv.waited_ms >= 2000
    assert [c.key.destination for c in result.comparison.wrong] == ["x/b"]
    assert result.observed[result.comparison.wrong[0].key].verdict == "allowed"


def test_a_quick_match_that_the_full_round_refutes_keeps_probing() -> None:
    """A short window can mistake a slow answer for a drop: the full confirming round decides."""
    start = FakeClock().t

    def dataplane(d: FakeDriver, cell: Cell, now: float) -> str:
        if cell[0] != "x/a" or cell[1] != d.ip("x/b"):
            return "allowed"
        # from 0.2 s the answer is slower than the quick 10 ms window (a "drop" to a quick round only);
        # the real deny lands at 1.5 s
        quick = d.probe_timeouts[-1] < 0.1
        return "dropped" if (quick and now - start >= 0.2) or now - start >= 1.5 else "allowed"

    clock, driver, expectation = _setup(dataplane)
    result = _run(clock, driver, expectation)
    conv = result.convergence
    assert conv.converged and conv.ms is not None
    assert conv.ms >= 1500  # the false early match was not taken
    assert conv.lower_ms >= 1000
