"""The full story of one cell: who selects the endpoints, which rule matched or why none did, and
which profile deviation makes the implementation's verdict differ from the Kubernetes spec."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from netpolcheck.model.caveats import unpredictable
from netpolcheck.model.cell import CellVerdict, DirectionVerdict, Evaluator
from netpolcheck.model.effective import EffectivePolicy
from netpolcheck.model.engine import ExpectedMatrix, bits
from netpolcheck.model.errors import StateError
from netpolcheck.model.objects import Endpoint, Pod, Probe
from netpolcheck.model.profiles import SPEC, Profile
from netpolcheck.model.state import State


@dataclass(frozen=True)
class Explanation:
    verdict: CellVerdict
    spec_allowed: bool
    deviations: tuple[str, ...]  # deviations that explain profile != spec (empty when they agree)
    lines: tuple[str, ...]

    @property
    def differs_from_spec(self) -> bool:
        return self.verdict.allowed != self.spec_allowed

    def text(self) -> str:
        return "\n".join(self.lines)


def _endpoint(state: State, key: str) -> Endpoint:
    for ep in state.endpoints:
        if ep.key == key:
            return ep
    raise StateError("cell", key, "no such pod or external in the state")


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
        verdict = self.matrix.verdict(s, d, p)
        return touched_deviations(
            self.matrix.evaluator, verdict, endpoints[s], endpoints[d], self._policies_around
        )

    def _policies_around(self, endpoint: Endpoint) -> list[EffectivePolicy]:
        found = self._around.get(endpoint.key)
        if found is None:
            found = self._around[endpoint.key] = _policies_around(self.matrix.evaluator, endpoint)
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


def _policies_around(evaluator: Evaluator, endpoint: Endpoint) -> list[EffectivePolicy]:
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

    `around(endpoint)` may supply `_policies_around` from a cache (a matrix asks it per endpoint many times).
    """
    policies_of = around or (lambda ep: _policies_around(evaluator, ep))
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


def _direction_lines(direction: DirectionVerdict, evaluator: Evaluator, endpoint: Endpoint) -> list[str]:
    name = direction.direction
    lines = [f"{name}: {'allowed' if direction.allowed else 'DENIED'}"]
    if direction.note:
        lines.append(f"  {direction.note}")
    elif not direction.isolated_by:
        lines.append(f"  no policy isolates {endpoint.key} for {name}: not isolated")
    else:
        lines.append(f"  isolated by: {', '.join(direction.isolated_by)}")
    for check in direction.checks:
        extra = f" [deviations: {', '.join(check.deviations)}]" if check.deviations else ""
        lines.append(f"  - {check.describe()}{extra}")
    for policy in _policies_around(evaluator, endpoint):
        if policy.skipped_by:
            lines.append(f"  - {policy.key} would select {endpoint.key} but is skipped ({policy.skipped_by})")
        elif policy.deviations:
            lines.append(f"  - {policy.key} is enforced with deviations: {', '.join(policy.deviations)}")
    return lines


def explain(
    state: State, profile: Profile, source_key: str, destination_key: str, probe: Probe
) -> Explanation:
    """Explain the cell source -> destination on `probe` under `profile`."""
    source, destination = _endpoint(state, source_key), _endpoint(state, destination_key)
    evaluator = Evaluator(state, profile)
    verdict = evaluator.cell(source, destination, probe)
    if verdict is None:
        raise StateError("cell", probe.label(), f"{destination_key} has no port for this probe")
    spec = Evaluator(state, SPEC).cell(source, destination, probe)
    assert spec is not None
    deviations = explaining_deviations(state, profile, source, destination, probe)
    lines = [
        f"{source_key} -> {destination_key} {verdict.protocol}/{verdict.port} under {profile.name}: "
        f"{'allowed' if verdict.allowed else 'denied'} ({verdict.reason})"
    ]
    if verdict.override:
        lines.append(f"decided by deviation {verdict.override}: {profile.deviation(verdict.override).reason}")
    lines += _direction_lines(verdict.egress, evaluator, source)
    lines += _direction_lines(verdict.ingress, evaluator, destination)
    if profile.deviations:
        lines.append(f"spec says: {'allowed' if spec.allowed else 'denied'} ({spec.reason})")
    for dev_id in deviations:
        d = profile.deviation(dev_id)
        lines.append(f"deviation {d.id} ({d.versions}; {d.provenance}): {d.reason}")
    for d, why in unpredictable(state, profile):
        lines.append(f"caution: {d.id} ({why}): {d.reason}")
    return Explanation(verdict, spec.allowed, deviations, tuple(lines))
