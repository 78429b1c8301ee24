"""What an upgrade from one profile to another changes: the cells whose verdict flips, grouped by the
documented deviation that explains each flip, and the policies that decide them.

A profile is the spec plus deviations, so two profiles differ only by the deviations one has and the
other has not. A changed cell is explained by a deviation the upgrade *removes* when dropping it from
the old profile alone gives the new verdict, and by one it *introduces* when dropping it from the new
profile alone gives the old verdict. When no single deviation does (several act together), every
differing deviation that touched the cell is named. Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from netpolcheck.model.caveats import unpredictable
from netpolcheck.model.cell import CellVerdict, DirectionVerdict, Evaluator
from netpolcheck.model.deviations import touched_deviations
from netpolcheck.model.engine import ExpectedMatrix
from netpolcheck.model.errors import StateError
from netpolcheck.model.index import bits
from netpolcheck.model.profiles import PROFILES, Deviation, Profile, weave_profile
from netpolcheck.model.reasons import RowReasons
from netpolcheck.model.state import State

REMOVED = "removed"
INTRODUCED = "introduced"
_WEAVE_VERSION = re.compile(r"weave-(\d+)\.(\d+)\.(\d+)")


def profile_named(name: str, option: str) -> Profile:
    """`spec`, a listed profile, or `weave-X.Y.Z` for any release (its deviations by version range)."""
    if name in PROFILES:
        return PROFILES[name]
    if _WEAVE_VERSION.fullmatch(name):
        return weave_profile(name.removeprefix("weave-"))
    raise StateError(option, name, f"unknown profile; use spec or weave-X.Y.Z (e.g. {', '.join(PROFILES)})")


@dataclass(frozen=True)
class ChangedCell:
    source: str
    destination: str
    port: int
    protocol: str
    port_name: str | None
    before: bool
    after: bool
    reason_before: str
    reason_after: str
    policies: tuple[str, ...]  # the policies that decide the cell before or after
    deviations: tuple[tuple[str, str], ...]  # (deviation id, REMOVED | INTRODUCED)

    @property
    def change(self) -> str:
        return "opens" if self.after else "closes"

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "from": self.source,
            "to": self.destination,
            "port": self.port,
            "protocol": self.protocol,
            "change": self.change,
            "before": self.before,
            "after": self.after,
            "reasonBefore": self.reason_before,
            "reasonAfter": self.reason_after,
            "policies": list(self.policies),
        }
        if self.port_name is not None:
            out["portName"] = self.port_name
        return out


@dataclass(frozen=True)
class ImpactGroup:
    deviations: tuple[tuple[Deviation, str], ...]  # empty: no documented deviation explains the change
    cells: tuple[ChangedCell, ...]

    @property
    def policies(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(p for c in self.cells for p in c.policies))

    def as_dict(self) -> dict[str, Any]:
        return {
            "deviations": [
                {
                    "id": d.id,
                    "change": how,
                    "versions": d.versions,
                    "reason": d.reason,
                    "provenance": d.provenance,
                }
                for d, how in self.deviations
            ],
            "policies": list(self.policies),
            "opens": sum(c.after for c in self.cells),
            "closes": sum(not c.after for c in self.cells),
            "cells": [c.as_dict() for c in self.cells],
        }


@dataclass(frozen=True)
class Impact:
    before: Profile
    after: Profile
    groups: tuple[ImpactGroup, ...]
    cautions: tuple[str, ...]
    cells_compared: int

    @property
    def changed(self) -> tuple[ChangedCell, ...]:
        return tuple(c for g in self.groups for c in g.cells)

    def as_dict(self) -> dict[str, Any]:
        changed = self.changed
        return {
            "from": self.before.name,
            "to": self.after.name,
            "cellsCompared": self.cells_compared,
            "changed": len(changed),
            "opens": sum(c.after for c in changed),
            "closes": sum(not c.after for c in changed),
            "removedDeviations": sorted(self.before.ids - self.after.ids),
            "introducedDeviations": sorted(self.after.ids - self.before.ids),
            "groups": [g.as_dict() for g in self.groups],
            "cautions": list(self.cautions),
        }


def _direction_policies(direction: DirectionVerdict) -> tuple[str, ...]:
    if not direction.isolated_by:
        return ()
    hit = direction.matched
    return (hit.policy,) if hit is not None else direction.isolated_by


def deciding_policies(*verdicts: CellVerdict) -> tuple[str, ...]:
    """The policies that decide the cells (none where a deviation decided outright). A function of the
    verdicts' reasons, which name exactly these policies: computed once per pair of reasons."""
    found: list[str] = []
    for verdict in verdicts:
        if verdict.override is not None:
            continue
        for direction in (verdict.egress, verdict.ingress):
            found += _direction_policies(direction)
    return tuple(dict.fromkeys(found))


class _Verdicts:
    """Full per-cell verdicts of a matrix, from an evaluator built only when first asked."""

    def __init__(self, matrix: ExpectedMatrix) -> None:
        self.matrix = matrix
        self._evaluator: Evaluator | None = None

    @property
    def evaluator(self) -> Evaluator:
        if self._evaluator is None:
            self._evaluator = Evaluator(self.matrix.state, self.matrix.profile)
        return self._evaluator

    def verdict(self, s: int, d: int, p: int) -> CellVerdict:
        endpoints = self.matrix.state.endpoints
        verdict = self.evaluator.cell(endpoints[s], endpoints[d], self.matrix.probes[p].probe)
        assert verdict is not None  # probed cells have a port
        return verdict


class _Attribution:
    """Which differing deviations explain a flip, with one counterfactual matrix per deviation."""

    def __init__(self, state: State, before: ExpectedMatrix, after: ExpectedMatrix) -> None:
        self.before, self.after = before, after
        self.verdicts = (_Verdicts(before), _Verdicts(after))
        b, a = before.profile, after.profile
        self.variants: list[tuple[str, str, ExpectedMatrix]] = sorted(
            [
                (d.id, REMOVED, ExpectedMatrix(state, b.without(d.id)))
                for d in b.deviations
                if d.modelled and not a.has(d.id)
            ]
            + [
                (d.id, INTRODUCED, ExpectedMatrix(state, a.without(d.id)))
                for d in a.deviations
                if d.modelled and not b.has(d.id)
            ],
            key=lambda v: (v[0], v[1]),
        )

    def explain_row(self, s: int, p: int, changed: int) -> dict[int, tuple[tuple[str, str], ...]]:
        """`explain` for every changed destination of row s, one bitset test per deviation and row: a
        removed deviation explains d when its variant agrees with the new row there, an introduced
        one when its variant agrees with the old row."""
        old_row, new_row = self.before.probes[p].allowed[s], self.after.probes[p].allowed[s]
        masks = [
            ((dev_id, how), changed & ~(v.probes[p].allowed[s] ^ (new_row if how == REMOVED else old_row)))
            for dev_id, how, v in self.variants  # sorted: one group key per set of deviations
        ]
        out: dict[int, tuple[tuple[str, str], ...]] = {}
        interned: dict[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]] = {}
        for d in bits(changed):
            ids = tuple(key for key, mask in masks if mask >> d & 1)
            out[d] = interned.setdefault(ids, ids) if ids else self.touched(s, d, p)
        return out

    def touched(self, s: int, d: int, p: int) -> tuple[tuple[str, str], ...]:
        """No single deviation flips the cell: every differing one that touched it."""
        endpoints = self.before.state.endpoints
        touched: list[tuple[str, str]] = []
        for verdicts, how in zip(self.verdicts, (REMOVED, INTRODUCED), strict=True):
            verdict = verdicts.verdict(s, d, p)
            other = self.after.profile if how == REMOVED else self.before.profile
            touched += [
                (dev_id, how)
                for dev_id in touched_deviations(verdicts.evaluator, verdict, endpoints[s], endpoints[d])
                if not other.has(dev_id)
            ]
        return tuple(sorted(set(touched)))


def upgrade_impact(state: State, before: Profile, after: Profile) -> Impact:
    """Every cell of `state` whose verdict differs between `before` and `after`, grouped by deviation."""
    old, new = ExpectedMatrix(state, before), ExpectedMatrix(state, after)
    attribution = _Attribution(state, old, new)
    endpoints = state.endpoints
    reasons_old, reasons_new = RowReasons(old), RowReasons(new)
    policies: dict[tuple[str, str], tuple[str, ...]] = {}
    grouped: dict[tuple[tuple[str, str], ...], list[ChangedCell]] = {}
    compared = 0
    for p, (pm_old, pm_new) in enumerate(zip(old.probes, new.probes, strict=True)):
        probe = pm_old.probe
        for s in range(len(endpoints)):
            compared += (pm_old.probed & ~(1 << s)).bit_count()
            changed = (pm_old.allowed[s] ^ pm_new.allowed[s]) & pm_old.probed
            if not changed:
                continue
            row_old, row_new = reasons_old.row(s, p), reasons_new.row(s, p)
            explained = attribution.explain_row(s, p, changed)
            for d in bits(changed):
                reasons = (row_old[d], row_new[d])
                if reasons not in policies:
                    policies[reasons] = deciding_policies(*(v.verdict(s, d, p) for v in attribution.verdicts))
                deviations = explained[d]
                port = probe.resolve(endpoints[d])
                assert port is not None  # probed destinations resolve
                grouped.setdefault(deviations, []).append(
                    ChangedCell(
                        endpoints[s].key,
                        endpoints[d].key,
                        port,
                        probe.protocol,
                        probe.port if isinstance(probe.port, str) else None,
                        bool(pm_old.allowed[s] >> d & 1),
                        bool(pm_new.allowed[s] >> d & 1),
                        *reasons,
                        policies[reasons],
                        deviations,
                    )
                )
    groups = tuple(
        ImpactGroup(
            tuple((before.deviation(i) if how == REMOVED else after.deviation(i), how) for i, how in key),
            tuple(cells),
        )
        for key, cells in sorted(grouped.items(), key=lambda item: (not item[0], item[0]))
    )
    cautions = tuple(
        f"{profile.name}: {dev.id} ({why}): {dev.reason}"
        for profile in (before, after)
        for dev, why in unpredictable(state, profile)
    )
    return Impact(before, after, groups, cautions, compared)
