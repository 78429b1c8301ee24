"""Probe continuously while a long step (a Weave upgrade rolling node by node) runs, and judge every
round: each cell must show the verdict the old version expects or the one the new version expects
(both are legitimate mid-rollout). A cell both deny that connects is a **leak**; a cell both allow that
goes dark is an **outage**, measured from the first round that saw it dark to the first that saw it
back, and a violation above a bound."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from netpolcheck.report.cells import CellKey, ExpectedCell, ObservedCell
from netpolcheck.verdict.convergence import Clock
from netpolcheck.verdict.expected import Target
from netpolcheck.verdict.probing import Prober


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
    """What the rounds saw while the step ran."""

    rounds: int = 0
    duration_ms: float = 0.0
    leaks: list[Leak] = field(default_factory=list)
    outages: list[Outage] = field(default_factory=list)
    error: str = ""  # the step itself failed

    def violations(self, outage_bound_ms: float) -> list[str]:
        out = [
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
        return (
            f"{self.rounds} rounds in {self.duration_ms:.0f} ms: {len(self.leaks)} leak(s), "
            f"{len(self.outages)} outage(s), longest {longest:.0f} ms"
        )


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
    dark: dict[CellKey, float] = {}
    thread = threading.Thread(target=run_step, name="watched-step", daemon=True)
    thread.start()
    while True:
        finished_before = done.is_set()
        current = prober.run(keys, targets, clock.now)
        result.rounds += 1
        at = (current.started - start) * 1000
        for key in keys:
            seen = current.cells.get(key)
            if seen is None or seen.unsupported or seen.failed:  # no verdict: neither a leak nor dark
                continue
            if seen.permitted and not old[key].allowed and not new[key].allowed:
                result.leaks.append(Leak(key, at, seen))
            both_allow = old[key].allowed and new[key].allowed
            if both_allow and not seen.permitted:
                dark.setdefault(key, at)
            elif key in dark:
                result.outages.append(Outage(key, dark.pop(key), at))
        if finished_before:
            break
    thread.join()
    result.duration_ms = (clock.now() - start) * 1000
    result.outages += [Outage(key, since, None) for key, since in dark.items()]
    if failure:
        result.error = f"{type(failure[0]).__name__}: {failure[0]}"
        raise failure[0]
    return result
