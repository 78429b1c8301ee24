"""Probe a set of cells: one probe-agent request per source pod, all sources at once."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Collection, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from netpolcheck.report.cells import CellKey, ObservedCell
from netpolcheck.verdict.driver import (
    AgentAnswer,
    Driver,
    NoResidentAgent,
    ProbeTarget,
    ResidentDriver,
    Stagger,
    TimelineDriver,
)
from netpolcheck.verdict.expected import Target

A = TypeVar("A")


@dataclass(frozen=True)
class ProbeRound:
    """What one round saw: a cell per probed key, the raw agent results, and when it ran (monotonic)."""

    cells: dict[CellKey, ObservedCell]
    raw: dict[CellKey, dict[str, Any]]
    started: float
    ended: float


def by_source(keys: Collection[CellKey], targets: Mapping[CellKey, Target]) -> dict[str, list[CellKey]]:
    """The keys of each source pod, in key order (a source's request lists them in this order)."""
    grouped: dict[str, list[CellKey]] = {}
    for key in sorted(keys):
        grouped.setdefault(targets[key].source, []).append(key)
    return grouped


def _request(keys: list[CellKey], targets: Mapping[CellKey, Target]) -> list[ProbeTarget]:
    return [
        {"id": str(i), "ip": targets[k].ip, "port": targets[k].port, "protocol": targets[k].protocol}
        for i, k in enumerate(keys)
    ]


def observed_cell(result: Mapping[str, Any]) -> ObservedCell:
    """The cell a probe result shows."""
    return ObservedCell(
        str(result["verdict"]), int(result.get("attempts", 1)), str(result.get("evidence", ""))
    )


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
        grouped = by_source(keys, targets)
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
                cells[key] = observed_cell(result)
        return ProbeRound(cells, raw, started, ended)


@dataclass(frozen=True)
class SettledCell:
    """What a settle request said about one cell, its times on this machine's clock (Unix seconds).

    `at` (latest) is when the first attempt of the final run of wanted verdicts was sent, `after`
    (earliest) when the attempt before it was sent, which still showed something else; None: the very
    first attempt already showed it (the cell changed before the watch began, or never had to)."""

    cell: ObservedCell
    raw: dict[str, Any]
    settled: bool
    at: float | None
    after: float | None


@dataclass(frozen=True)
class SettleRound:
    cells: dict[CellKey, SettledCell]
    attempts: int
    agents: frozenset[str]  # "resident" unless a pod fell back
    # the probe result of each cell the agents probed once more after settling (`confirm`), as a full
    # round's; a cell whose agent answered no confirmation (an older image) is not here
    confirmed: dict[CellKey, dict[str, Any]] = dataclasses.field(default_factory=dict)


def _agent_times(answer: AgentAnswer, shared: bool) -> tuple[float, float]:
    """(earliest, latest) offset to add to the agent's clock to get this machine's: 0 on a shared clock,
    else bracketed by the exec (the agent got the request after we sent it, answered before it returned)."""
    if shared:
        return 0.0, 0.0
    received = float(answer.document.get("received_at", answer.sent))
    answered = float(answer.document.get("answered_at", answer.returned))
    return answer.sent - received, max(answer.sent - received, answer.returned - answered)


class ResidentProber:
    """Staggered watches in the resident agents (`stagger`: each attempt's window, the time between two
    attempts, how long silence must last)."""

    def __init__(self, driver: ResidentDriver, stagger: Stagger, workers: int = 16) -> None:
        self.driver = driver
        self.stagger = stagger
        self.workers = workers

    def _each(
        self, grouped: dict[str, list[CellKey]], ask: Callable[[str, list[CellKey]], A]
    ) -> dict[str, A]:
        """`ask` for every source at once."""
        with ThreadPoolExecutor(max_workers=max(1, min(self.workers, len(grouped)))) as pool:
            futures = {src: pool.submit(ask, src, ks) for src, ks in grouped.items()}
            return {src: f.result() for src, f in futures.items()}

    def watch(
        self,
        keys: Collection[CellKey],
        targets: Mapping[CellKey, Target],
        limit: float,
        intervals: Mapping[CellKey, float] | None = None,
    ) -> dict[str, str]:
        """Start a watch over `keys` in every source pod before a step (source -> watch id), one request
        per source: one attempt per cell every interval of this prober, or every `intervals[key]` for
        a cell given one (so the cells that change are seen changing finely, the others less often);
        a source without a resident agent is left out."""
        grouped = by_source(keys, targets)
        given = intervals or {}

        def one(source: str, ks: list[CellKey]) -> AgentAnswer | None:
            namespace, _, pod = source.partition("/")
            request = [
                {**t, "interval": given[k]} if k in given else t
                for k, t in zip(ks, _request(ks, targets), strict=True)
            ]
            try:
                return self.driver.watch(namespace, pod, request, self.stagger, limit)
            except NoResidentAgent:
                return None

        answers = self._each(grouped, one)
        keys_of = {src: a.document.get("watch") for src, a in answers.items() if a is not None}
        return {src: key for src, key in keys_of.items() if isinstance(key, str)}

    def timelines(
        self, grouped: Mapping[str, list[CellKey]], watches: Mapping[str, str]
    ) -> dict[str, SourceTimeline]:
        """Stop every source's watch and read what each cell showed, attempt by attempt (`grouped`: the
        keys each watch was started with, by_source). Raises NoResidentAgent when the driver's agents
        cannot answer it."""
        driver = self.driver
        if not isinstance(driver, TimelineDriver):
            raise NoResidentAgent("this driver's agents answer no timeline")

        def one(source: str, keys: list[CellKey]) -> SourceTimeline:
            namespace, _, pod = source.partition("/")
            return timeline_of(source, keys, driver.timeline(namespace, pod, watches[source]))

        return self._each({src: ks for src, ks in grouped.items() if src in watches}, one)

    def stop(self, watches: Mapping[str, str]) -> None:
        """Stop watches no settle request took over (best effort: each stops at its limit anyway)."""
        for source, key in watches.items():
            namespace, _, pod = source.partition("/")
            with contextlib.suppress(Exception):
                self.driver.stop_watch(namespace, pod, key)

    def settle(
        self,
        keys: Collection[CellKey],
        targets: Mapping[CellKey, Target],
        wants: Mapping[CellKey, frozenset[str]],
        deadline: float,
        watches: Mapping[str, str] | None = None,
        confirm: float | None = None,
    ) -> SettleRound:
        """One settle request per source pod, all at once, waiting at most `deadline` seconds; a source
        with a watch in `watches` (source -> id, see `watch`) continues it. With `confirm` (a window,
        seconds), each agent then probes its cells once more in the same exec (`confirmed`). Raises
        NoResidentAgent when a source pod has none (the caller probes in rounds instead)."""
        grouped = by_source(keys, targets)
        watches = watches or {}

        def one(source: str, ks: list[CellKey]) -> AgentAnswer:
            namespace, _, pod = source.partition("/")
            request = [
                {**t, "want": sorted(wants[k])} for k, t in zip(ks, _request(ks, targets), strict=True)
            ]
            return self.driver.settle(
                namespace, pod, request, self.stagger, deadline, watches.get(source), confirm
            )

        answers = self._each(grouped, one)
        cells: dict[CellKey, SettledCell] = {}
        confirmed: dict[CellKey, dict[str, Any]] = {}
        attempts = 0
        agents = set()
        for src, ks in grouped.items():
            answer = answers[src]
            agents.add(str(answer.document.get("agent", "resident")))
            earliest, latest = _agent_times(answer, self.driver.shared_clock)
            failure = answer.document.get("failure")
            by_id = {str(r.get("id")): r for r in answer.document.get("results") or []}
            for index, key in enumerate(ks):
                result = by_id.get(str(index))
                if result is None:
                    raise RuntimeError(f"the resident agent in {src} answered no result for id {index}")
                attempts += int(result.get("attempts") or 0)
                at, after = result.get("settled_at"), result.get("previous_at")
                verdict, evidence = str(result["verdict"]), str(result.get("evidence", ""))
                if failure and not result.get("settled"):  # the watch broke: no verdict, say why
                    verdict, evidence = "error", f"the resident agent in {src}: {failure}"
                cells[key] = SettledCell(
                    ObservedCell(verdict, int(result.get("attempts") or 0), evidence),
                    result,
                    bool(result.get("settled")),
                    None if at is None else float(at) + latest,
                    None if after is None else float(after) + earliest,
                )
            if confirm is not None and isinstance(answer.document.get("confirm"), list):
                confirmed.update(_confirmed(src, ks, answer.document["confirm"]))
        return SettleRound(cells, attempts, frozenset(agents), confirmed)


@dataclass(frozen=True)
class VerdictRun:
    """Consecutive attempts toward one cell that showed the same verdict: when the first was sent, in
    seconds since the source's watch started (its agent's clock: differences only). The run lasts until
    the next run's first attempt, or the watch's end."""

    cell: ObservedCell  # the verdict, the run's attempts, the first attempt's evidence
    first: float


@dataclass(frozen=True)
class SourceTimeline:
    """What one source pod's agent answered `timeline`: each of its cells' runs, how long its watch ran
    (seconds), and what broke it (None: it ran until asked)."""

    runs: dict[CellKey, list[VerdictRun]]
    lasted: float
    broken: str | None


def timeline_of(source: str, keys: list[CellKey], answer: AgentAnswer) -> SourceTimeline:
    """`answer` (a `timeline` answer for the watch over `keys`) as runs per cell. A watch that ended
    more than half a second before it was asked stopped by itself (its limit, or a failure): broken."""
    document = answer.document
    started = float(document.get("started_at") or 0.0)
    ended = float(document.get("ended_at") or started)
    asked = float(document.get("received_at") or ended)
    by_id = {str(t.get("id")): t for t in document.get("targets") or [] if isinstance(t, dict)}
    runs: dict[CellKey, list[VerdictRun]] = {}
    for index, key in enumerate(keys):
        found = by_id.get(str(index))
        if found is None:
            raise RuntimeError(f"the resident agent in {source} answered no timeline for id {index}")
        if found.get("verdict") == "unsupported":
            runs[key] = [VerdictRun(ObservedCell("unsupported", 0, str(found.get("evidence", ""))), 0.0)]
            continue
        runs[key] = [
            VerdictRun(ObservedCell(str(v), int(n), str(e)), float(first) - started)
            for v, first, _last, n, e in found.get("runs") or []
        ]
    broken = document.get("failure")
    if broken is None and ended < asked - 0.5:
        broken = f"its watch ended {asked - ended:.1f} s before it was asked (the watch's limit)"
    return SourceTimeline(runs, max(0.0, ended - started), None if broken is None else str(broken))


def _confirmed(source: str, keys: list[CellKey], results: list[Any]) -> dict[CellKey, dict[str, Any]]:
    """The confirming probe results of `source`'s settle answer, by cell (as `Driver.probe` returns
    them: each says it came from the resident agent)."""
    by_id = {str(r.get("id")): r for r in results if isinstance(r, dict)}
    missing = [str(i) for i in range(len(keys)) if str(i) not in by_id]
    if missing:
        raise RuntimeError(f"the resident agent in {source} confirmed no result for ids {', '.join(missing)}")
    return {key: {**by_id[str(i)], "agent": "resident"} for i, key in enumerate(keys)}
