"""Compare observed cells with expected ones: ok, wrong, or a documented deviation of the profile."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from netpolcheck.report.cells import DENIED, CellKey, ExpectedCell, ObservedCell, Outcome

# counted in the summary only when present (the summary line is otherwise unchanged)
_RARE = ((Outcome.ERROR, "probe errors"), (Outcome.UNSUPPORTED, "unsupported (not probed, not passed)"))


@dataclass(frozen=True)
class CellComparison:
    key: CellKey
    expected: ExpectedCell
    observed: ObservedCell | None
    outcome: Outcome
    note: str = ""


@dataclass(frozen=True)
class Comparison:
    cells: tuple[CellComparison, ...]

    def counts(self) -> Counter[Outcome]:
        return Counter(c.outcome for c in self.cells)

    @property
    def wrong(self) -> tuple[CellComparison, ...]:
        """Cells that fail the check (and are probed again): wrong, missing, or a failed probe."""
        return tuple(c for c in self.cells if c.outcome in (Outcome.WRONG, Outcome.MISSING, Outcome.ERROR))

    @property
    def errors(self) -> tuple[CellComparison, ...]:
        return tuple(c for c in self.cells if c.outcome is Outcome.ERROR)

    @property
    def unsupported(self) -> tuple[CellComparison, ...]:
        """Cells not probed because the source cannot send the protocol: neither passed nor failed."""
        return tuple(c for c in self.cells if c.outcome is Outcome.UNSUPPORTED)

    @property
    def passed(self) -> bool:
        return not self.wrong

    def summary(self) -> str:
        counts = self.counts()
        return (
            f"correct: {counts[Outcome.OK]}, documented deviations: {counts[Outcome.DEVIATION]}, "
            f"wrong: {counts[Outcome.WRONG]}, missing: {counts[Outcome.MISSING]}, "
            + "".join(f"{name}: {counts[outcome]}, " for outcome, name in _RARE if counts[outcome])
            + f"result={'pass' if self.passed else 'FAIL'}"
        )


def classify(
    expected: ExpectedCell, observed: ObservedCell | None, denied_verdicts: frozenset[str] = DENIED
) -> tuple[Outcome, str]:
    if observed is None:
        return Outcome.MISSING, "not probed"
    if observed.unsupported:
        return Outcome.UNSUPPORTED, f"not probed: {observed.evidence or 'the source cannot send it'}"
    if observed.failed:
        return Outcome.ERROR, f"probe failed: {observed.evidence or 'no reason given'}"
    if expected.allowed != observed.permitted:
        want = "allowed" if expected.allowed else "denied"
        return Outcome.WRONG, f"expected {want}, observed {observed.verdict}"
    if not expected.allowed and observed.verdict not in denied_verdicts:
        return Outcome.WRONG, (
            f"denied as expected but {observed.verdict}; this implementation denies "
            f"by {' or '.join(sorted(denied_verdicts))}"
        )
    if expected.spec_allowed is not None and expected.spec_allowed != expected.allowed:
        return (
            Outcome.DEVIATION,
            f"spec says {'allowed' if expected.spec_allowed else 'denied'}; "
            f"explained by {', '.join(expected.deviations) or 'the profile'}",
        )
    return Outcome.OK, ""


def compare(
    expected: Mapping[CellKey, ExpectedCell],
    observed: Mapping[CellKey, ObservedCell],
    denied_verdicts: frozenset[str] = DENIED,
) -> Comparison:
    """Classify every expected cell; `denied_verdicts` is how the profile's denials may look."""
    cells = []
    for key in sorted(expected):
        outcome, note = classify(expected[key], observed.get(key), denied_verdicts)
        cells.append(CellComparison(key, expected[key], observed.get(key), outcome, note))
    return Comparison(tuple(cells))


def wrong_cell_details(comparison: Comparison, explain: Callable[[CellKey], str] | None = None) -> list[str]:
    """For each wrong or missing cell: what differed, the probe's evidence, and why it was expected."""
    lines = []
    for cell in comparison.wrong:
        k = cell.key
        lines.append(f"{k.source} -> {k.destination} {k.protocol}/{k.port}: {cell.note}")
        if cell.observed is not None:
            lines.append(f"  evidence ({cell.observed.attempts} attempt(s)): {cell.observed.evidence or '-'}")
        lines.append(f"  expected because: {cell.expected.reason or '-'}")
        if explain is not None:
            lines += [f"  | {line}" for line in explain(k).splitlines()]
    return lines
