"""Probe continuously while a long step (a Weave upgrade rolling node by node, a controller restart)
runs, and judge what every cell showed: the verdict the old version expects or the one the new version
expects (both are legitimate mid-rollout). A cell both deny that connects is a **leak**; a cell both
allow that goes dark is an **outage**, measured from the first probe that saw it dark to the first that
saw it back, and a violation above a bound.

Two ways: `watch_with_agents` (the resident agents attempt every cell every `interval`, 100 ms by
default, for the whole step, and answer each cell's attempts as runs of one verdict: outages and leaks
to that interval), and `watch_while` (rounds of full probes, one exec per source pod each: to a round,
about half a second on the embedded cluster), for drivers whose pods have no such agent."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from netpolcheck.report.cells import CellKey, ExpectedCell, ObservedCell
from netpolcheck.verdict.convergence import Clock
from netpolcheck.verdict.driver import TimelineDriver
from netpolcheck.verdict.expected import Target
from netpolcheck.verdict.probing import Prober, ResidentProber, by_source


@dataclass(frozen=True)
class Leak:
    key: CellKey
    at_ms: float  # since the step started (start of the round that saw it)
    observed: ObservedCell


@dataclass(frozen=True)
class Outage:
    key: CellKey
    start_ms: float
    end_ms: float | None  # None: still dark when the watch ended

    def duration_ms(self, ended_ms: float) -> float:
        return (self.end_ms if self.end_ms is not None else ended_ms) - self.start_ms


@dataclass
class Watch:
    """What the probes saw while the step ran: `rounds` of full probes, or (`interval_ms` set) the agents'
    attempts every interval, `rounds` then being the fewest attempts any cell got."""

    rounds: int = 0
    duration_ms: float = 0.0
    leaks: list[Leak] = field(default_factory=list)
    outages: list[Outage] = field(default_factory=list)
    error: str = ""  # the step itself failed
    interval_ms: float | None = None  # None: rounds
    broken: list[str] = field(default_factory=list)  # sources whose watch did not cover the step
    _dark: dict[CellKey, float] = field(default_factory=dict, repr=False)  # dark since (ms), while judging

    def violations(self, outage_bound_ms: float) -> list[str]:
        out = [f"not watched throughout: {b}" for b in self.broken]
        out += [
            f"leak: {lk.key.source} -> {lk.key.destination} {lk.key.group} {lk.observed.verdict} "
            f"at {lk.at_ms:.0f} ms ({lk.observed.evidence})"
            for lk in self.leaks
        ]
        for o in self.outages:
            took = o.duration_ms(self.duration_ms)
            if took > outage_bound_ms:
                out.append(
                    f"outage: {o.key.source} -> {o.key.destination} {o.key.group} dark for "
                    f"{took:.0f} ms (bound {outage_bound_ms:.0f} ms) from {o.start_ms:.0f} ms"
                )
        return out

    def summary(self) -> str:
        longest = max((o.duration_ms(self.duration_ms) for o in self.outages), default=0.0)
        how = (
            f"{self.rounds} rounds"
            if self.interval_ms is None
            else f"every cell every {self.interval_ms:.0f} ms ({self.rounds}+ attempts each)"
        )
        broken = f", {len(self.broken)} source(s) not watched throughout" if self.broken else ""
        return (
            f"{how} in {self.duration_ms:.0f} ms: {len(self.leaks)} leak(s), "
            f"{len(self.outages)} outage(s), longest {longest:.0f} ms{broken}"
        )

    def judge(
        self, key: CellKey, at_ms: float, seen: ObservedCell, old: ExpectedCell, new: ExpectedCell
    ) -> None:
        """One observation of `key` at `at_ms`: a leak, the start or end of an outage, or legitimate."""
        if seen.unsupported or seen.failed:  # no verdict: neither a leak nor dark
            return
        if seen.permitted and not old.allowed and not new.allowed:
            self.leaks.append(Leak(key, at_ms, seen))
        if old.allowed and new.allowed and not seen.permitted:
            self._dark.setdefault(key, at_ms)
        elif key in self._dark:
            self.outages.append(Outage(key, self._dark.pop(key), at_ms))

    def close(self, duration_ms: float) -> None:
        """The watch ended: cells still dark are outages without an end."""
        self.duration_ms = duration_ms
        self.outages += [Outage(key, since, None) for key, since in self._dark.items()]
        self._dark.clear()


def watch_while(
    step: Callable[[], object],
    old: Mapping[CellKey, ExpectedCell],
    new: Mapping[CellKey, ExpectedCell],
    targets: Mapping[CellKey, Target],
    prober: Prober,
    clock: Clock,
) -> Watch:
    """Run `step` in a thread and probe every cell of `old`/`new` in rounds until it returns."""
    keys = sorted(set(old) & set(new))
    done = threading.Event()
    failure: list[BaseException] = []

    def run_step() -> None:
        try:
            step()
        except BaseException as exc:  # re-raised by the caller after the watch
            failure.append(exc)
        finally:
            done.set()

    result = Watch()
    start = clock.now()
    thread = threading.Thread(target=run_step, name="watched-step", daemon=True)
    thread.start()
    while True:
        finished_before = done.is_set()
        current = prober.run(keys, targets, clock.now)
        result.rounds += 1
        at = (current.started - start) * 1000
        for key in keys:
            seen = current.cells.get(key)
            if seen is not None:
                result.judge(key, at, seen, old[key], new[key])
        if finished_before:
            break
    thread.join()
    result.close((clock.now() - start) * 1000)
    if failure:
        result.error = f"{type(failure[0]).__name__}: {failure[0]}"
        raise failure[0]
    return result


def watch_with_agents(
    step: Callable[[], object],
    old: Mapping[CellKey, ExpectedCell],
    new: Mapping[CellKey, ExpectedCell],
    targets: Mapping[CellKey, Target],
    prober: ResidentProber,
    clock: Clock,
    interval: float,
    limit: float,
    after: float,
) -> Watch | None:
    """Run `step` while every source pod's agent attempts each of its cells every `interval` seconds
    (for at most `limit` seconds), and `after` seconds more once it returned; then read each cell's
    attempts as runs of one verdict and judge them. None when a source pod has no agent that can (the
    caller probes in rounds instead); nothing was changed then."""
    if not isinstance(prober.driver, TimelineDriver):
        return None
    keys = sorted(set(old) & set(new))
    grouped = by_source(keys, targets)
    watches = prober.watch(keys, targets, limit, dict.fromkeys(keys, interval))
    if set(watches) != set(grouped):  # a pod without a resident agent
        prober.stop(watches)
        return None
    failure: Exception | None = None
    read = False
    try:
        try:
            step()
        except Exception as exc:  # re-raised once the watches are read
            failure = exc
        if failure is None:
            clock.wait(after)
        timelines = prober.timelines(grouped, watches)
        read = True
    finally:
        if not read:  # Ctrl-C, or the timelines could not be read: the watches must not run on
            prober.stop(watches)
    result = Watch(interval_ms=interval * 1000)
    attempts: list[int] = []
    lasted = 0.0
    for source, timeline in sorted(timelines.items()):
        if timeline.broken:
            result.broken.append(f"{source}: {timeline.broken}")
        lasted = max(lasted, timeline.lasted)
        for key, runs in timeline.runs.items():
            attempts.append(sum(run.cell.attempts for run in runs))
            for run in runs:
                result.judge(key, run.first * 1000, run.cell, old[key], new[key])
    result.rounds = min(attempts, default=0)
    result.close(lasted * 1000)
    if failure is not None:
        result.error = f"{type(failure).__name__}: {failure}"
        raise failure
    return result
