"""Documented deviations as expected failures, strictly.

When the run's profile (say `spec`) expects something the implementation's own profile (say
`weave-2.8.1`) says it does differently, those cells are *predicted* to fail, with the deviations that
explain them. The check then is an expected failure if exactly those cells fail the way the
implementation's profile says; if they pass, the deviation did not show (XPASS, reported as a failure,
like pytest's strict xfail); anything else is a plain failure.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from netpolcheck.model import Deviation, Profile
from netpolcheck.report.cells import CellKey
from netpolcheck.report.compare import Comparison
from netpolcheck.verdict.expected import Expectation


class Status(Enum):
    PASS = "pass"
    FAIL = "fail"
    XFAIL = "expected failure"
    XPASS = "unexpected pass"


@dataclass(frozen=True)
class Prediction:
    """Cells the run's profile expects differently from the implementation's, and why."""

    implementation: str  # the implementation's profile name
    cells: frozenset[CellKey]
    deviations: tuple[Deviation, ...]

    def reason(self) -> str:
        parts = [f"{d.id} ({d.versions}; {d.provenance}): {d.reason}" for d in self.deviations]
        return f"documented deviation of {self.implementation}: " + "; ".join(parts or ["(unnamed)"])


def predict(run: Expectation, implementation: Expectation, profile: Profile) -> Prediction | None:
    """None when the run's profile and the implementation's agree on every cell."""
    differing = frozenset(
        k
        for k, cell in run.cells.items()
        if k in implementation.cells and implementation.cells[k].allowed != cell.allowed
    )
    if not differing:
        return None
    ids: dict[str, None] = {}
    for key in sorted(differing):
        ids |= dict.fromkeys(implementation.cells[key].deviations)
    known = {d.id: d for d in profile.deviations}
    return Prediction(profile.name, differing, tuple(known[i] for i in ids if i in known))


def classify(comparison: Comparison, prediction: Prediction | None) -> tuple[Status, str]:
    wrong = frozenset(c.key for c in comparison.wrong)
    if prediction is None:
        return (Status.FAIL, f"{len(wrong)} wrong cell(s)") if wrong else (Status.PASS, "")
    if not wrong:
        return Status.XPASS, (
            f"{len(prediction.cells)} cell(s) were expected to show a documented deviation but matched: "
            + prediction.reason()
        )
    if wrong == prediction.cells:
        return Status.XFAIL, prediction.reason()
    extra, absent = wrong - prediction.cells, prediction.cells - wrong
    note = []
    if extra:
        note.append(f"{len(extra)} wrong cell(s) no documented deviation explains")
    if absent:
        note.append(f"{len(absent)} cell(s) did not show the predicted deviation")
    return Status.FAIL, "; ".join(note)
