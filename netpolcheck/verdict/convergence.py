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

With resident agents in the probe pods (`converge_staggered`), the rounds above are replaced by staggered
watches: each source pod's agent starts a fresh attempt toward each of its cells every `interval`
(10 ms) and reports, per cell, when the first attempt of the final run of wanted verdicts went out
(`ms` side) and when the attempt before it did (`lower_ms` side); a full round with the normal window
then confirms the whole matrix, as above. The agents run that round themselves, right after settling,
in the same exec as the settle (`confirm`); cells whose agent cannot (an older image) are probed by a
full round of their own. The check converged within the latest cell's bracket, so the
resolution is about one interval (plus the exec's own time where the agent's clock is not this one's).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from netpolcheck.report.cells import PERMITTED, CellKey, ExpectedCell, ObservedCell
from netpolcheck.report.compare import Comparison, compare
from netpolcheck.verdict.expected import Target
from netpolcheck.verdict.probing import (
    Prober,
    ProbeRound,
    ResidentProber,
    SettledCell,
    SettleRound,
    observed_cell,
)


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
    method: str = "rounds"  # "staggered" (resident agents), or "rounds" and why (no resident agent)

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
    """How hard to try: the deadline after the step, and the pause between quick rounds (or, staggered,
    between two attempts toward one cell)."""

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

    def result(converged: bool, good_end: float | None) -> ConvergenceResult:
        ms = None if good_end is None else _ms(good_end, since)
        lower = 0.0 if last_bad is None else _ms(last_bad, since)
        return _result(converged, ms, lower, rounds, probes, since, clock, comparison, observed, raw)

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
                return result(True, good_end)
            current = check
    if confirmed:
        return result(True, current.ended)
    return result(False, None)


def _ms(moment: float, since: float) -> float:
    """Milliseconds from `since` to `moment` on one clock; 0 for a moment before it."""
    return max(0.0, (moment - since) * 1000)


def _result(
    converged: bool,
    ms: float | None,
    lower_ms: float,
    rounds: int,
    probes: int,
    since: float,
    clock: Clock,
    comparison: Comparison,
    observed: dict[CellKey, ObservedCell],
    raw: dict[CellKey, dict[str, object]],
    method: str = "rounds",
) -> ConvergenceResult:
    """The check's result, ending now (`waited_ms` counts from `since` on the monotonic clock)."""
    waited = (clock.now() - since) * 1000
    convergence = Convergence(converged, ms, lower_ms, rounds, probes, waited, method)
    return ConvergenceResult(convergence, comparison, observed, raw)


def converge_staggered(
    expected: Mapping[CellKey, ExpectedCell],
    targets: Mapping[CellKey, Target],
    full: Prober,
    resident: ResidentProber,
    since: float,
    since_wall: float,
    clock: Clock,
    denied: frozenset[str],
    policy: Policy = Policy(),
    watches: Mapping[str, str] | None = None,
) -> ConvergenceResult:
    """Settle every cell with the resident agents, then confirm with a full round; cells a confirming
    round finds wrong are settled again, until the deadline. `since_wall` is `since` on the Unix clock
    (the agents' times are Unix times); `watches` (source pod -> watch id) were started before the step,
    so the first settlement continues their timelines. NoResidentAgent propagates (the caller probes in
    rounds)."""
    keys = list(expected)
    wants = {k: PERMITTED if expected[k].allowed else denied for k in keys}
    rounds = probes = 0
    observed: dict[CellKey, ObservedCell] = {}
    raw: dict[CellKey, dict[str, object]] = {}
    times: dict[CellKey, SettledCell] = {}
    pending, skipped = keys, dict[CellKey, ObservedCell]()
    # enough for one silent run to count, whatever is left of the deadline
    stagger = resident.stagger
    least = stagger.silence + stagger.timeout * 4 + stagger.interval * 4
    while pending:
        remaining = since + policy.deadline - clock.now()
        settled = resident.settle(pending, targets, wants, max(remaining, least), watches, full.timeout)
        if watches:
            asked = {targets[k].source for k in pending}
            resident.stop({src: key for src, key in watches.items() if src not in asked})
            watches = None
        rounds, probes = rounds + 1, probes + settled.attempts
        for key, cell in settled.cells.items():
            observed[key], raw[key] = cell.cell, cell.raw
            if cell.cell.unsupported:
                skipped[key] = cell.cell
            elif cell.settled:
                times[key] = cell
        if any(k not in times and k not in skipped for k in pending):
            break  # the agents' deadline passed with cells still wrong
        checked, checked_raw = _confirm([k for k in keys if k not in skipped], settled, full, targets, clock)
        rounds, probes = rounds + 1, probes + len(checked)
        observed, raw = {**skipped, **checked}, {**{k: raw[k] for k in skipped}, **checked_raw}
        comparison = compare(expected, observed, denied)
        if comparison.passed:
            ms = max((_ms(c.at, since_wall) for c in times.values() if c.at is not None), default=0.0)
            lower = max(
                (_ms(c.after, since_wall) for c in times.values() if c.after is not None), default=0.0
            )
            return _result(
                True, ms, min(lower, ms), rounds, probes, since, clock, comparison, observed, raw, "staggered"
            )
        pending = [c.key for c in comparison.wrong]
        for key in pending:
            times.pop(key, None)
        if clock.now() >= since + policy.deadline:
            break
    comparison = compare(expected, observed, denied)
    return _result(False, None, 0.0, rounds, probes, since, clock, comparison, observed, raw, "staggered")


def _confirm(
    keys: list[CellKey],
    settled: SettleRound,
    full: Prober,
    targets: Mapping[CellKey, Target],
    clock: Clock,
) -> tuple[dict[CellKey, ObservedCell], dict[CellKey, dict[str, object]]]:
    """The confirming full round over `keys`: what the agents probed right after settling, and a full
    round of our own for the cells they did not (an older agent; a cell this round did not settle, as
    a second settle asks only for the cells the first confirmation found wrong)."""
    raw: dict[CellKey, dict[str, object]] = {k: settled.confirmed[k] for k in keys if k in settled.confirmed}
    cells = {k: observed_cell(result) for k, result in raw.items()}
    rest = [k for k in keys if k not in raw]
    if rest:
        check = full.run(rest, targets, clock.now)
        cells.update(check.cells)
        raw.update(check.raw)
    return cells, raw
