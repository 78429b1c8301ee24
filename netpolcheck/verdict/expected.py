"""The expected matrix of a snapshot under a profile, keyed by the case's logical names, with the
model's explanation of any cell (`netpolcheck expect --explain`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from netpolcheck.model import Probe, Profile, State, expected_results, explain, parse_state
from netpolcheck.report.cells import CellKey, ExpectedCell
from netpolcheck.verdict.case import ProbeDef

KeyMap = Callable[[str], str]


@dataclass(frozen=True)
class Target:
    """One cell to probe: the cluster names of both pods, the destination IP and the resolved port."""

    source: str  # namespace/name on the cluster
    destination: str
    source_ip: str
    ip: str  # the destination's
    port: int
    protocol: str
    probe: Probe  # as the state says it (a number or a port name)


@dataclass
class Expectation:
    profile: str
    cells: dict[CellKey, ExpectedCell]
    targets: dict[CellKey, Target]
    cautions: tuple[str, ...]
    state: State = field(repr=False)
    model_profile: Profile = field(repr=False)

    def explain(self, key: CellKey) -> str:
        """The model's story of one cell: which policy and rule decided it, and any deviation."""
        target = self.targets[key]
        return explain(self.state, self.model_profile, target.source, target.destination, target.probe).text()


def state_document(snapshot: dict[str, Any], probes: Sequence[ProbeDef]) -> dict[str, Any]:
    """The STATE of `snapshot` with the case's probes."""
    doc = {k: v for k, v in snapshot.items() if k != "probes"}
    doc["probes"] = [{"port": p.port, "protocol": p.protocol} for p in probes]
    return doc


def expect(document: dict[str, Any], profile: Profile, logical: KeyMap = str) -> Expectation:
    """Expected cells of STATE `document` under `profile`; `logical` maps cluster keys to case keys."""
    state = parse_state(document)
    ips = {pod.key: str(pod.ip) for pod in state.pods}
    ips |= {ext.key: str(ext.ip) for ext in state.externals}
    result = expected_results(state, profile)
    cells: dict[CellKey, ExpectedCell] = {}
    targets: dict[CellKey, Target] = {}
    for row in result["results"]:
        key = CellKey(row["protocol"], int(row["port"]), logical(row["from"]), logical(row["to"]))
        cells[key] = ExpectedCell(
            bool(row["allowed"]), row.get("reason", ""), row.get("spec"), tuple(row.get("deviations", ()))
        )
        probe = Probe(row.get("portName", row["port"]), row["protocol"])
        targets[key] = Target(
            row["from"], row["to"], ips[row["from"]], ips[row["to"]], int(row["port"]), row["protocol"], probe
        )
    return Expectation(profile.name, cells, targets, tuple(result.get("cautions", ())), state, profile)
