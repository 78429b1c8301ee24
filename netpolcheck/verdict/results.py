"""What a check and a case found: the comparison, the convergence, and the status (pass, fail,
expected failure, unexpected pass)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from netpolcheck.report import certification
from netpolcheck.report.cells import CellKey, ObservedCell, Outcome
from netpolcheck.report.compare import Comparison
from netpolcheck.verdict.convergence import Convergence
from netpolcheck.verdict.deviations import Prediction, Status
from netpolcheck.verdict.expected import Expectation
from netpolcheck.verdict.watch import Watch


@dataclass(frozen=True)
class CheckResult:
    case_id: str
    step_index: int  # 0 = the check before the first step
    step: str
    expectation: Expectation
    observed: dict[CellKey, ObservedCell]
    raw: dict[CellKey, dict[str, Any]]
    comparison: Comparison
    convergence: Convergence
    status: Status
    status_note: str = ""
    prediction: Prediction | None = None
    report: str = ""  # the failure text (tables and cells) when the check did not pass
    weave_version: str | None = None  # what the cluster ran at this check

    @property
    def deviations_shown(self) -> tuple[str, ...]:
        """Ids of the profile's documented deviations the observed cells showed (pass under weave-X)."""
        ids: dict[str, None] = {}
        for cell in self.comparison.cells:
            if cell.outcome is Outcome.DEVIATION:
                ids |= dict.fromkeys(cell.expected.deviations)
        if self.prediction is not None and self.status is Status.XFAIL:
            ids |= dict.fromkeys(d.id for d in self.prediction.deviations)
        return tuple(ids)


@dataclass(frozen=True)
class HoldReport:
    """A held connection's story: gaps per flow (TCP, UDP) and how it ended."""

    name: str
    status: dict[str, Any]

    def gaps(self, flow: str) -> list[dict[str, Any]]:
        return list(self.status.get("flows", {}).get(flow, {}).get("gaps", []))

    @property
    def ended(self) -> str:
        return str((self.status.get("ended") or {}).get("how", "running"))

    @property
    def survived(self) -> bool:
        """The connection was still up when it was released and every flow echoed again after its last
        gap: it outlived what happened, perhaps with pauses (see `gapless`, `longest_gap_ms`)."""
        flows = self.status.get("flows", {})
        return (
            bool(flows)
            and self.ended in ("stopped", "running")
            and all(gap.get("end") is not None for f in flows for gap in self.gaps(f))  # no gap still open
        )

    @property
    def gapless(self) -> bool:
        """Survived, and no flow lost a single tick."""
        return self.survived and not any(self.gaps(f) for f in self.status.get("flows", {}))

    def longest_gap_ms(self) -> float:
        """The longest pause of any flow (0 without gaps; an unended gap counts as infinite)."""
        spans = [
            float("inf") if gap.get("end") is None else (float(gap["end"]) - float(gap["start"])) * 1000
            for f in self.status.get("flows", {})
            for gap in self.gaps(f)
        ]
        return max(spans, default=0.0)

    def summary(self) -> str:
        flows = ", ".join(f"{f}: {len(self.gaps(f))} gap(s)" for f in self.status.get("flows", {}))
        longest = self.longest_gap_ms()
        pause = f" (longest {longest:.0f} ms)" if longest else ""
        if longest == float("inf"):
            pause = " (one unended)"
        return f"hold {self.name}: {flows}{pause}; ended: {self.ended}"


@dataclass
class CaseResult:
    case_id: str
    profile: str
    negative_control: bool = False
    checks: list[CheckResult] = field(default_factory=list)
    holds: dict[str, HoldReport] = field(default_factory=dict)
    watches: dict[int, Watch] = field(default_factory=dict)  # step index -> what was seen while it ran
    error: str = ""  # set-up, a step or clean-up went wrong (not a verdict)

    @property
    def status(self) -> Status:
        statuses = [c.status for c in self.checks]
        if self.error or Status.FAIL in statuses or Status.XPASS in statuses:
            return Status.FAIL
        if Status.XFAIL in statuses:
            return Status.XFAIL
        return Status.PASS

    @property
    def convergence_ms(self) -> list[float | None]:
        return [c.convergence.ms for c in self.checks]

    def failures(self) -> list[CheckResult]:
        return [c for c in self.checks if c.status in (Status.FAIL, Status.XPASS)]


# -- the certification report's entries (netpolcheck/report/certification.py builds the document) --


def check_report_entry(check: CheckResult) -> dict[str, Any]:
    """One check as the certification report records it."""
    cv = check.convergence
    return certification.check_entry(
        check.step_index,
        check.step,
        check.status.value,
        check.comparison,
        {
            "converged": cv.converged,
            "ms": cv.ms,
            "lowerMs": cv.lower_ms,
            "rounds": cv.rounds,
            "probes": cv.probes,
            "waitedMs": cv.waited_ms,
            "method": cv.method,
        },
        note=check.status_note,
        weave_version=check.weave_version,
        deviations_shown=check.deviations_shown,
        deviations_predicted=[d.id for d in check.prediction.deviations] if check.prediction else (),
    )


def case_report_entry(result: CaseResult, features: Iterable[str]) -> dict[str, Any]:
    """One case as the certification report records it; `features`: its feature markers."""
    return certification.case_entry(
        result.case_id,
        result.status.value,
        [check_report_entry(c) for c in result.checks],
        features=features,
        error=result.error,
        negative_control=result.negative_control,
        holds=[
            {"name": h.name, "survived": h.survived, "summary": h.summary()} for h in result.holds.values()
        ],
        rollouts=[{"step": i, "summary": w.summary()} for i, w in result.watches.items()],
    )


def skipped_report_entry(case_id: str, features: Iterable[str], reason: str = "") -> dict[str, Any]:
    """A case pytest skipped before it ran: status `skipped`, no checks, and why."""
    return certification.case_entry(case_id, "skipped", [], features=features, skip_reason=reason)


def broken_report_entry(case_id: str, features: Iterable[str], error: str) -> dict[str, Any]:
    """A test that failed before its case produced a result (a fixture, the set-up): a failed case."""
    return certification.case_entry(case_id, "fail", [], features=features, error=error)
