"""Cells of a reachability matrix: what was expected, what a probe observed, and how they compare.

Independent of Kubernetes and of the probe code: cells are keyed by endpoint names, port and protocol.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

PERMITTED = frozenset({"allowed", "refused"})  # the packet reached the pod (refused: port closed)
DENIED = frozenset({"dropped", "rejected"})
UNSUPPORTED = "unsupported"  # nothing sent: the source's kernel has no such protocol (SCTP)
ERROR = "error"  # the probe of this target failed (the reason is the evidence): no verdict at all
VERDICTS = PERMITTED | DENIED | {UNSUPPORTED, ERROR}


@dataclass(frozen=True, order=True)
class CellKey:
    protocol: str
    port: int
    source: str
    destination: str

    @property
    def group(self) -> str:
        return f"{self.protocol} {self.port}"


@dataclass(frozen=True)
class ExpectedCell:
    allowed: bool
    reason: str = ""
    spec_allowed: bool | None = None  # set when the profile's verdict differs from the spec's
    deviations: tuple[str, ...] = ()


@dataclass(frozen=True)
class ObservedCell:
    verdict: str  # allowed | refused | rejected | dropped | unsupported | error
    attempts: int = 1
    evidence: str = ""

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"unknown probe verdict {self.verdict!r}; expected one of {sorted(VERDICTS)}")

    @property
    def permitted(self) -> bool:
        return self.verdict in PERMITTED

    @property
    def unsupported(self) -> bool:
        """Not probed: says nothing about the policy, so it can neither pass nor fail a cell."""
        return self.verdict == UNSUPPORTED

    @property
    def failed(self) -> bool:
        """The probe itself failed: neither permitted nor denied."""
        return self.verdict == ERROR


class Outcome(Enum):
    OK = "ok"
    WRONG = "wrong"
    DEVIATION = "documented deviation"
    MISSING = "missing"
    UNSUPPORTED = "unsupported"  # not probed (the source cannot send the protocol): skipped, not passed
    ERROR = "probe error"  # the probe failed: a wrong cell until a probe gives a verdict


def observed_from_probe_results(
    results: list[dict[str, Any]], keys: Mapping[str, CellKey]
) -> dict[CellKey, ObservedCell]:
    """Cells from the probe agent's JSON list (`id`, `verdict`, `attempts`, `evidence`); `keys` maps ids."""
    cells = {}
    for result in results:
        key = keys[result["id"]]
        cells[key] = ObservedCell(
            str(result["verdict"]), int(result.get("attempts", 1)), str(result.get("evidence", ""))
        )
    return cells


def expected_from_document(document: dict[str, Any]) -> dict[CellKey, ExpectedCell]:
    """Cells of a `netpolcheck expect` JSON document."""
    cells = {}
    for row in document["results"]:
        key = CellKey(row["protocol"], int(row["port"]), row["from"], row["to"])
        cells[key] = ExpectedCell(
            bool(row["allowed"]), row.get("reason", ""), row.get("spec"), tuple(row.get("deviations", ()))
        )
    return cells
