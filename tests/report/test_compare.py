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
