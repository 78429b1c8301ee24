"""Re-probe until the observed matrix matches the expected one or a deadline passes, and say how long
the implementation took.

Round 1 probes every cell with the agent's normal window. While cells are wrong, only those are probed
again with a short window (on the embedded cluster the round trip is far below a millisecond), so the
moment the dataplane changes is seen within about one short round. When they all match, one more full
round with the normal window confirms the whole matrix; a short window never decides the result alone.

A cell the source cannot send (verdict `unsupported`: no SCTP in its kernel) is probed in round 1 only
and kept as it is: it is reported as not probed, never as matching. A cell whose probe failed (verdict
`error`) is wrong like any other and probed again until the deadline.

Convergence is bracketed, never guessed: the change happened after the start of the last round that
still saw a wrong cell (`lower_ms`) and before the end of the first round that saw none (`ms`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from netpolcheck.report.cells import CellKey, ExpectedCell, ObservedCell
from netpolcheck.report.compare import Comparison, compare
from netpolcheck.verdict.expected import Target
from netpolcheck.verdict.probing import Prober, ProbeRound


@dataclass(frozen=True)
class Clock:
    """`now()` monotonic seconds; `wait(s)` pauses between polls (an Event wait, injectable in tests)."""

    now: Callable[[], float]
    wait: Callable[[float], object]


@dataclass(frozen=True)
class Convergence:
    converged: bool
    ms: float | None  # upper bound: end of the first round after which every cell matched
    lower_ms: float  # lower bound: start of the last round that saw a wrong cell (0 when none did)
    rounds: int
    probes: int
    waited_ms: float  # how long the whole check took, converged or not

    @property
    def resolution_ms(self) -> float | None:
        return None if self.ms is None else self.ms - self.lower_ms


@dataclass(frozen=True)
class ConvergenceResult:
    convergence: Convergence
    comparison: Comparison
    observed: dict[CellKey, ObservedCell]
    raw: dict[CellKey, dict[str, object]]


@dataclass(frozen=True)
class Policy:
    """How hard to try: the deadline after the step, and the pause between quick rounds."""

    deadline: float = 15.0
    interval: float = 0.005


def converge(
    expected: Mapping[CellKey, ExpectedCell],
    targets: Mapping[CellKey, Target],
    full: Prober,
    quick: Prober,
    since: float,
    clock: Clock,
    denied: frozenset[str],
    policy: Policy = Policy(),
) -> ConvergenceResult:
    """Probe `expected`'s cells (from `since`, the monotonic time the step was accepted) until they match."""
    keys = list(expected)
    rounds = probes = 0
    last_bad: float | None = None

    def run(prober: Prober, which: list[CellKey]) -> ProbeRound:
        nonlocal rounds, probes
        rounds += 1
        probes += len(which)
        return prober.run(which, targets, clock.now)

    current = run(full, keys)
    observed, raw = dict(current.cells), dict(current.raw)
    skipped = {k: cell for k, cell in observed.items() if cell.unsupported}
    keys = [k for k in keys if k not in skipped]
    comparison = compare(expected, observed, denied)
    confirmed = comparison.passed
    while not confirmed and clock.now() < since + policy.deadline:
        last_bad = current.started
        wrong = [c.key for c in comparison.wrong]
        clock.wait(policy.interval)
        current = run(quick, wrong)
        observed.update(current.cells)
        raw.update(current.raw)
        comparison = compare(expected, observed, denied)
        if comparison.passed:
            good_end = current.ended
            check = run(full, keys)
            observed = {**skipped, **check.cells}
            raw = {**{k: raw[k] for k in skipped}, **check.raw}
            comparison = compare(expected, observed, denied)
            if comparison.passed:
                return _result(
                    True, good_end, last_bad, since, rounds, probes, clock, comparison, observed, raw
                )
            current = check
    if confirmed:
        return _result(True, current.ended, last_bad, since, rounds, probes, clock, comparison, observed, raw)
    return _result(False, None, last_bad, since, rounds, probes, clock, comparison, observed, raw)


def _result(
    converged: bool,
    good_end: float | None,
    last_bad: float | None,
    since: float,
    rounds: int,
    probes: int,
    clock: Clock,
    comparison: Comparison,
    observed: dict[CellKey, ObservedCell],
    raw: dict[CellKey, dict[str, object]],
) -> ConvergenceResult:
    ms = None if good_end is None else max(0.0, (good_end - since) * 1000)
    lower = 0.0 if last_bad is None else max(0.0, (last_bad - since) * 1000)
    waited = (clock.now() - since) * 1000
    return ConvergenceResult(
        Convergence(converged, ms, lower, rounds, probes, waited), comparison, observed, raw
    )
