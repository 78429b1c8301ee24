"""Which deviations of a profile explain a verdict that differs from the Kubernetes spec.

By counterfactual: a deviation explains a cell when removing it alone flips the cell back to the spec
verdict (`explaining_deviations` for one cell with the evaluator, `DeviationFinder` for whole matrices,
one engine run per deviation); when no single one does, every deviation that touched the cell is named.
"""

from __future__ import annotations

from collections.abc import Callable

from netpolcheck.model.cell import CellVerdict, Evaluator
from netpolcheck.model.effective import EffectivePolicy
from netpolcheck.model.engine import ExpectedMatrix
from netpolcheck.model.index import bits
from netpolcheck.model.objects import Endpoint, Pod, Probe
from netpolcheck.model.profiles import SPEC, Profile
from netpolcheck.model.state import State


def explaining_deviations(
    state: State, profile: Profile, source: Endpoint, destination: Endpoint, probe: Probe
) -> tuple[str, ...]:
    """Deviations of `profile` whose removal alone flips the cell back to the spec verdict.

    When no single one does (several deviations agree), every deviation that touched the cell is named.
    """
    evaluator = Evaluator(state, profile)
    here = evaluator.cell(source, destination, probe)
    spec = Evaluator(state, SPEC).cell(source, destination, probe)
    if here is None or spec is None or here.allowed == spec.allowed:
        return ()
    flipping = tuple(
        d.id
        for d in profile.deviations
        if (c := Evaluator(state, profile.without(d.id)).cell(source, destination, probe)) is not None
        and c.allowed == spec.allowed
    )
    return flipping or touched_deviations(evaluator, here, source, destination)


class DeviationFinder:
    """The same answer as `explaining_deviations`, for many cells: one matrix per counterfactual profile."""

    def __init__(self, state: State, profile: Profile, matrix: ExpectedMatrix | None = None) -> None:
        self.state = state
        self.profile = profile
        self.matrix = matrix or ExpectedMatrix(state, profile)
        self.spec = self.matrix if not profile.deviations else ExpectedMatrix(state, SPEC)
        self._without: dict[str, ExpectedMatrix] = {}
        self._around: dict[str, list[EffectivePolicy]] = {}
        self._evaluator: Evaluator | None = None

    @property
    def evaluator(self) -> Evaluator:
        """The per-cell evaluator, built only when a cell no single deviation explains needs its story."""
        if self._evaluator is None:
            self._evaluator = Evaluator(self.state, self.profile)
        return self._evaluator

    def spec_allowed(self, s: int, d: int, p: int) -> bool:
        return bool(self.spec.probes[p].allowed[s] >> d & 1)

    def differs(self, s: int, d: int, p: int) -> bool:
        return self.spec_allowed(s, d, p) != bool(self.matrix.probes[p].allowed[s] >> d & 1)

    def _variant(self, deviation_id: str) -> ExpectedMatrix:
        if deviation_id not in self._without:
            self._without[deviation_id] = ExpectedMatrix(self.state, self.profile.without(deviation_id))
        return self._without[deviation_id]

    def explain(self, s: int, d: int, p: int) -> tuple[str, ...]:
        if not self.differs(s, d, p):
            return ()
        want = self.spec_allowed(s, d, p)
        flipping = tuple(
            dev.id
            for dev in self.profile.deviations
            if dev.modelled and bool(self._variant(dev.id).probes[p].allowed[s] >> d & 1) == want
        )
        if flipping:
            return flipping
        endpoints = self.state.endpoints
        verdict = self.evaluator.cell(endpoints[s], endpoints[d], self.matrix.probes[p].probe)
        assert verdict is not None
        return touched_deviations(self.evaluator, verdict, endpoints[s], endpoints[d], self._policies_around)

    def _policies_around(self, endpoint: Endpoint) -> list[EffectivePolicy]:
        found = self._around.get(endpoint.key)
        if found is None:
            found = self._around[endpoint.key] = policies_around(self.evaluator, endpoint)
        return found

    def differing(self, s: int, p: int) -> int:
        """Destinations whose verdict from source s differs from spec on probe p (a bitset)."""
        return self.spec.probes[p].allowed[s] ^ self.matrix.probes[p].allowed[s]

    def explain_row(self, s: int, p: int) -> dict[int, tuple[str, ...]]:
        """`explain(s, d, p)` for every differing destination d of row s, with one bitset test per
        deviation and row instead of per cell; counterfactual matrices are built only for rows that
        differ."""
        differ = self.differing(s, p)
        if not differ:
            return {}
        spec_row = self.spec.probes[p].allowed[s]
        flips = [
            (dev.id, differ & ~(self._variant(dev.id).probes[p].allowed[s] ^ spec_row))
            for dev in self.profile.deviations
            if dev.modelled
        ]
        out: dict[int, tuple[str, ...]] = {}
        interned: dict[tuple[str, ...], tuple[str, ...]] = {}
        for d in bits(differ):
            ids = tuple(dev_id for dev_id, mask in flips if mask >> d & 1)
            out[d] = interned.setdefault(ids, ids) if ids else self.explain(s, d, p)
        return out


def policies_around(evaluator: Evaluator, endpoint: Endpoint) -> list[EffectivePolicy]:
    """Policies in the endpoint's namespace whose podSelector matches it, skipped ones included."""
    if not isinstance(endpoint, Pod) or endpoint.host_network:
        return []
    return [
        p for p in evaluator.by_namespace.get(endpoint.namespace, []) if p.target.matches(endpoint.labels)
    ]


def touched_deviations(
    evaluator: Evaluator,
    verdict: CellVerdict,
    source: Endpoint,
    destination: Endpoint,
    around: Callable[[Endpoint], list[EffectivePolicy]] | None = None,
) -> tuple[str, ...]:
    """Every deviation that changed something on the way to this verdict.

    `around(endpoint)` may supply `policies_around` from a cache (a matrix asks it per endpoint many times).
    """
    policies_of = around or (lambda ep: policies_around(evaluator, ep))
    found: list[str] = []
    if verdict.override:
        found.append(verdict.override)
    for direction in (verdict.egress, verdict.ingress):
        found += direction.deviations
        for check in direction.checks:
            found += check.deviations
    for policy in policies_of(source) + policies_of(destination):
        found += policy.deviations
        if policy.skipped_by:
            found.append(policy.skipped_by)
    return tuple(dict.fromkeys(found))
