"""The agent's two verdicts that are not a policy's answer: `unsupported` (nothing sent: the source's
kernel has no SCTP) and `error` (the probe of that target failed). Unsupported cells are probed once,
kept out of every later round and reported as skipped, never as passing; error cells are wrong until a
probe gives a verdict, and a check whose errors persist fails with their evidence."""

from __future__ import annotations

from typing import Any

from netpolcheck.report.cells import Outcome
from netpolcheck.verdict import case as c
from netpolcheck.verdict.deviations import Status
from netpolcheck.verdict.runner import CaseRunner, RunOptions, negative_control_verdict
from tests.verdict.double import Cell, FakeClock, FakeDriver
from tests.verdict.test_runner import CASE, isolating_dataplane

NO_SCTP = (
    "this pod's kernel has no SCTP (socket(IPPROTO_SCTP): Protocol not supported), so it cannot probe SCTP"
)
BROKEN = "target not probed: the agent stopped early (out of sockets)"
TCP_AND_SCTP = (c.ProbeDef(80, "TCP"), c.ProbeDef(80, "SCTP"))


def _runner(driver: FakeDriver, clock: FakeClock, **options: Any) -> CaseRunner:
    defaults: dict[str, Any] = {"profile": "weave", "deadline": 3.0, "probe_workers": 1}
    opts = RunOptions(**(defaults | options))
    return CaseRunner(driver, opts, clock.clock(), progress=lambda _: None, prefix=lambda case_id: "np-test")


class Recording:
    """A dataplane that answers `unsupported` for SCTP (with the agent's evidence) and records each probe."""

    def __init__(self, tcp: Any, error_until: float = 0.0) -> None:
        self.tcp = tcp
        self.error_until = error_until  # fake time before which a -> b TCP fails to probe (0: never)
        self.seen: list[tuple[str, float]] = []

    def __call__(self, d: FakeDriver, cell: Cell, now: float) -> str:
        self.seen.append((cell[3], now))
        if cell[3] == "SCTP":
            return "unsupported"
        if cell[0].endswith("x/a") and cell[1] == d.ip(cell[0][:-1] + "b") and now < self.error_until:
            return "error"
        return str(self.tcp(d, cell, now))


def _evidence(driver: FakeDriver) -> None:
    """The double's evidence is generic: give each verdict the agent's real wording."""
    plain = driver.probe

    def probe(namespace: str, pod: str, targets: Any, timeout: float) -> Any:
        out = plain(namespace, pod, targets, timeout)
        for r in out:
            r["evidence"] = {"unsupported": NO_SCTP, "error": BROKEN}.get(r["verdict"], r["evidence"])
            if r["verdict"] == "unsupported":
                r["attempts"] = 0
        return out

    driver.probe = probe  # type: ignore[method-assign]


def test_unsupported_cells_are_probed_once_and_reported_as_skipped_not_passed() -> None:
    clock = FakeClock()
    dataplane = Recording(isolating_dataplane(0.25))
    driver = FakeDriver(clock, dataplane)
    _evidence(driver)
    case = c.Case("sctp", CASE.namespaces, CASE.pods, CASE.steps[:1], TCP_AND_SCTP)
    result = _runner(driver, clock).run(case)
    applied = result.checks[1]
    # the late deny needed quick rounds: none of them (nor the confirming round) sent SCTP again
    assert applied.convergence.rounds > 2
    assert [p for p, _ in dataplane.seen].count("SCTP") == 4  # 2 cells x (1 initial + 1 applied check)
    counts = applied.comparison.counts()
    assert counts[Outcome.UNSUPPORTED] == 2 and counts[Outcome.OK] == 2
    assert applied.status is Status.PASS
    assert "2 SCTP cell(s) not probed (unsupported by the source's kernel): skipped, not passed" in (
        applied.status_note
    )
    assert all(applied.observed[cell.key].verdict == "unsupported" for cell in applied.comparison.unsupported)
    assert "unsupported (not probed, not passed): 2" in applied.comparison.summary()


def test_a_check_whose_every_cell_is_unsupported_does_not_pass() -> None:
    clock = FakeClock()
    driver = FakeDriver(clock, Recording(lambda d, cell, now: "allowed"))
    _evidence(driver)
    case = c.Case("sctp-only", CASE.namespaces, CASE.pods, (), (c.ProbeDef(80, "SCTP"),))
    result = _runner(driver, clock).run(case)
    assert result.checks[0].status is Status.FAIL
    assert "not probed" in result.checks[0].status_note
    assert result.checks[0].comparison.counts()[Outcome.OK] == 0


def test_a_probe_error_is_probed_again_and_passes_once_a_verdict_comes() -> None:
    clock = FakeClock()
    driver = FakeDriver(clock, Recording(lambda d, cell, now: "allowed", error_until=clock.t + 0.2))
    _evidence(driver)
    case = c.Case("flaky-probe", CASE.namespaces, CASE.pods, (), (c.ProbeDef(80, "TCP"),))
    result = _runner(driver, clock).run(case)
    check = result.checks[0]
    assert check.status is Status.PASS, check.report
    assert check.convergence.rounds > 2 and not check.comparison.errors


def test_a_persistent_probe_error_fails_the_check_with_its_evidence() -> None:
    clock = FakeClock()
    driver = FakeDriver(clock, Recording(lambda d, cell, now: "allowed", error_until=float("inf")))
    _evidence(driver)
    case = c.Case("broken-probe", CASE.namespaces, CASE.pods, (), (c.ProbeDef(80, "TCP"),))
    result = _runner(driver, clock, deadline=1.0).run(case)
    check = result.checks[0]
    assert check.status is Status.FAIL
    assert not check.convergence.converged and check.convergence.waited_ms >= 1000
    assert f"1 cell(s) could not be probed (first: {BROKEN})" in check.status_note
    assert f"x/a -> x/b TCP/80: probe failed: {BROKEN}" in check.report
    assert "probe errors: 1" in check.report


def test_a_probe_error_on_a_predicted_deviation_is_a_failure_not_an_expected_one() -> None:
    """Weave 2.1.3 isolates b's ingress for an egress-only policy; spec says allowed: a -> b is the
    predicted deviation. A failed probe of exactly that cell must not pass for the deviation."""
    egress_only = {
        "kind": "NetworkPolicy",
        "metadata": {"name": "egress-only"},
        "spec": {"podSelector": {"matchLabels": {"pod": "b"}}, "policyTypes": ["Egress"], "egress": [{}]},
    }
    case = c.Case("egress-only", CASE.namespaces, CASE.pods, (c.ApplyPolicy("x", egress_only),), CASE.probes)
    clock = FakeClock()
    driver = FakeDriver(clock, Recording(isolating_dataplane(0.0), float("inf")), weave_version="2.1.3")
    _evidence(driver)
    result = _runner(driver, clock, profile="spec", deadline=1.0).run(case)
    check = result.checks[1]
    assert check.status is Status.FAIL and "could not be probed" in check.status_note


def test_negative_control_is_not_proved_by_probe_errors() -> None:
    clock = FakeClock()
    driver = FakeDriver(clock, Recording(lambda d, cell, now: "allowed"))
    _evidence(driver)
    result = _runner(driver, clock, negative_control=True, deadline=0.5).run(CASE)
    assert result.checks[1].status is Status.FAIL  # the policy's wrong cells
    proved, why = negative_control_verdict(result)
    assert proved and "failed as it must" in why
    # only errors, no cell the policy changed: nothing proved
    allow_all = {
        "kind": "NetworkPolicy",
        "metadata": {"name": "allow"},
        "spec": {"podSelector": {}, "ingress": [{}]},
    }
    case = c.Case("allow-all", CASE.namespaces, CASE.pods, (c.ApplyPolicy("x", allow_all),), CASE.probes)
    clock = FakeClock()
    driver = FakeDriver(clock, Recording(lambda d, cell, now: "allowed", float("inf")))
    _evidence(driver)
    result = _runner(driver, clock, negative_control=True, deadline=0.5).run(case)
    assert all(ch.status is Status.FAIL for ch in result.checks)
    assert negative_control_verdict(result)[0] is False
