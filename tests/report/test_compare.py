"""Classifying observed cells against expected ones."""

from __future__ import annotations

import pytest

from netpolcheck.report.cells import CellKey, ExpectedCell, ObservedCell, Outcome
from netpolcheck.report.compare import classify, compare, wrong_cell_details

DROPPED_ONLY = frozenset({"dropped"})


@pytest.mark.parametrize(
    ("expected", "observed", "denied", "outcome"),
    [
        (ExpectedCell(True), ObservedCell("allowed"), DROPPED_ONLY, Outcome.OK),
        (ExpectedCell(True), ObservedCell("refused"), DROPPED_ONLY, Outcome.OK),  # reached the pod
        (ExpectedCell(True), ObservedCell("dropped"), DROPPED_ONLY, Outcome.WRONG),
        (ExpectedCell(False), ObservedCell("dropped"), DROPPED_ONLY, Outcome.OK),
        (ExpectedCell(False), ObservedCell("rejected"), DROPPED_ONLY, Outcome.WRONG),  # Weave never rejects
        (ExpectedCell(False), ObservedCell("rejected"), frozenset({"dropped", "rejected"}), Outcome.OK),
        (ExpectedCell(False), ObservedCell("allowed"), DROPPED_ONLY, Outcome.WRONG),
        (
            ExpectedCell(True, spec_allowed=False, deviations=("legacy-isolation",)),
            ObservedCell("allowed"),
            DROPPED_ONLY,
            Outcome.DEVIATION,
        ),
        (ExpectedCell(True, spec_allowed=False), ObservedCell("dropped"), DROPPED_ONLY, Outcome.WRONG),
        (ExpectedCell(True), None, DROPPED_ONLY, Outcome.MISSING),
        # nothing sent (no SCTP in the source's kernel): neither expectation is met nor missed
        (ExpectedCell(True), ObservedCell("unsupported", 0), DROPPED_ONLY, Outcome.UNSUPPORTED),
        (ExpectedCell(False), ObservedCell("unsupported", 0), DROPPED_ONLY, Outcome.UNSUPPORTED),
        # a failed probe is no verdict: not a drop that would match a denied cell
        (ExpectedCell(False), ObservedCell("error", 2), DROPPED_ONLY, Outcome.ERROR),
        (ExpectedCell(True), ObservedCell("error", 2), DROPPED_ONLY, Outcome.ERROR),
    ],
)
def test_classify(
    expected: ExpectedCell, observed: ObservedCell | None, denied: frozenset[str], outcome: Outcome
) -> None:
    assert classify(expected, observed, denied)[0] is outcome


def test_unknown_probe_verdict_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown probe verdict"):
        ObservedCell("timeout")


def test_compare_counts_and_details() -> None:
    a_b, b_a = CellKey("TCP", 80, "x/a", "x/b"), CellKey("TCP", 80, "x/b", "x/a")
    expected = {
        a_b: ExpectedCell(True, "not isolated"),
        b_a: ExpectedCell(False, "ingress denied: isolated by x/p"),
    }
    observed = {
        a_b: ObservedCell("allowed", 1, "SYN-ACK from 10.0.0.2:80"),
        b_a: ObservedCell("allowed", 1, "SYN-ACK from 10.0.0.1:80"),
    }
    result = compare(expected, observed, DROPPED_ONLY)
    assert result.counts()[Outcome.OK] == 1 and result.counts()[Outcome.WRONG] == 1
    assert not result.passed
    assert result.summary().endswith("wrong: 1, missing: 0, result=FAIL")
    details = wrong_cell_details(result, explain=lambda key: f"story of {key.source}\nsecond line")
    assert details == [
        "x/b -> x/a TCP/80: expected denied, observed allowed",
        "  evidence (1 attempt(s)): SYN-ACK from 10.0.0.1:80",
        "  expected because: ingress denied: isolated by x/p",
        "  | story of x/b",
        "  | second line",
    ]


def test_unsupported_cells_are_skipped_and_error_cells_fail_with_their_evidence() -> None:
    sctp, tcp = CellKey("SCTP", 80, "x/a", "x/b"), CellKey("TCP", 80, "x/a", "x/b")
    expected = {sctp: ExpectedCell(True), tcp: ExpectedCell(False, "ingress denied")}
    no_sctp = "this pod's kernel has no SCTP, so it cannot probe SCTP"
    result = compare(expected, {sctp: ObservedCell("unsupported", 0, no_sctp), tcp: ObservedCell("dropped")})
    assert result.passed and [c.key for c in result.unsupported] == [sctp] and not result.errors
    assert result.counts()[Outcome.OK] == 1  # the unsupported cell is not counted as correct
    assert result.summary() == (
        "correct: 1, documented deviations: 0, wrong: 0, missing: 0, "
        "unsupported (not probed, not passed): 1, result=pass"
    )
    assert result.unsupported[0].note == f"not probed: {no_sctp}"
    broken = "target not probed: the agent stopped early"
    result = compare(expected, {sctp: ObservedCell("unsupported", 0), tcp: ObservedCell("error", 3, broken)})
    assert not result.passed and [c.key for c in result.wrong] == [tcp] == [c.key for c in result.errors]
    assert "probe errors: 1, " in result.summary() and result.summary().endswith("result=FAIL")
    assert wrong_cell_details(result) == [
        f"x/a -> x/b TCP/80: probe failed: {broken}",
        f"  evidence (3 attempt(s)): {broken}",
        "  expected because: ingress denied",
    ]
