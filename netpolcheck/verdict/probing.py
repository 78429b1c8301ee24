"""Probe a set of cells: one probe-agent request per source pod, all sources at once."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from netpolcheck.report.cells import CellKey, ObservedCell
from netpolcheck.verdict.driver import Driver, ProbeTarget
from netpolcheck.verdict.expected import Target


@dataclass(frozen=True)
class ProbeRound:
    """What one round saw: a cell per probed key, the raw agent results, and when it ran (monotonic)."""

    cells: dict[CellKey, ObservedCell]
    raw: dict[CellKey, dict[str, Any]]
    started: float
    ended: float


def _by_source(keys: Collection[CellKey], targets: Mapping[CellKey, Target]) -> dict[str, list[CellKey]]:
    grouped: dict[str, list[CellKey]] = {}
    for key in sorted(keys):
        grouped.setdefault(targets[key].source, []).append(key)
    return grouped


def _request(keys: list[CellKey], targets: Mapping[CellKey, Target]) -> list[ProbeTarget]:
    return [
        {"id": str(i), "ip": targets[k].ip, "port": targets[k].port, "protocol": targets[k].protocol}
        for i, k in enumerate(keys)
    ]


class Prober:
    """Probes cells through a driver; `timeout` is the agent's window per request (seconds)."""

    def __init__(self, driver: Driver, timeout: float, workers: int = 16) -> None:
        self.driver = driver
        self.timeout = timeout
        self.workers = workers

    def _one_source(self, source: str, keys: list[CellKey], targets: Mapping[CellKey, Target]) -> list[Any]:
        namespace, _, pod = source.partition("/")
        results = self.driver.probe(namespace, pod, _request(keys, targets), self.timeout)
        by_id = {str(r["id"]): r for r in results}
        missing = [str(i) for i in range(len(keys)) if str(i) not in by_id]
        if missing:
            raise RuntimeError(f"probe agent in {source} answered no result for ids {', '.join(missing)}")
        return [by_id[str(i)] for i in range(len(keys))]

    def run(self, keys: Collection[CellKey], targets: Mapping[CellKey, Target], clock: Any) -> ProbeRound:
        """Probe `keys` (every source pod in parallel); `clock()` is a monotonic time source."""
        grouped = _by_source(keys, targets)
        started = clock()
        with ThreadPoolExecutor(max_workers=max(1, min(self.workers, len(grouped)))) as pool:
            futures = {src: pool.submit(self._one_source, src, ks, targets) for src, ks in grouped.items()}
            answers = {src: f.result() for src, f in futures.items()}
        ended = clock()
        cells: dict[CellKey, ObservedCell] = {}
        raw: dict[CellKey, dict[str, Any]] = {}
        for src, ks in grouped.items():
            for key, result in zip(ks, answers[src], strict=True):
                raw[key] = result
                cells[key] = ObservedCell(
                    str(result["verdict"]), int(result.get("attempts", 1)), str(result.get("evidence", ""))
                )
        return ProbeRound(cells, raw, started, ended)
