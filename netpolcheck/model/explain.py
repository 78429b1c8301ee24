"""The full story of one cell: who selects the endpoints, which rule matched or why none did, and
which profile deviation makes the implementation's verdict differ from the Kubernetes spec."""

from __future__ import annotations

from dataclasses import dataclass

from netpolcheck.model import profiles as dev
from netpolcheck.model.caveats import unpredictable
from netpolcheck.model.cell import CellVerdict, DirectionVerdict, Evaluator
from netpolcheck.model.deviations import explaining_deviations, policies_around
from netpolcheck.model.effective import EffectivePolicy
from netpolcheck.model.errors import StateError
from netpolcheck.model.objects import Endpoint, Probe
from netpolcheck.model.profiles import SPEC, Profile
from netpolcheck.model.state import State

__all__ = ["Explanation", "explain", "explaining_deviations"]


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
    lines += [
        f"  - {line}"
        for p in policies_around(evaluator, endpoint)
        if (line := _policy_note(p, name, evaluator))
    ]
    return lines


def _policy_note(policy: EffectivePolicy, direction: str, evaluator: Evaluator) -> str:
    """How the profile treats a policy selecting the endpoint, for one direction: ignored (skipped, or
    this direction dropped by a deviation) or enforced with deviations; "" when it is as the spec says."""
    profile = evaluator.profile.name
    spec = next(p for p in evaluator.state.policies if p.key == policy.key)
    spec_acts = direction.capitalize() in spec.policy_types or bool(
        spec.ingress if direction == "ingress" else spec.egress
    )
    isolates = policy.isolates_ingress if direction == "ingress" else policy.isolates_egress
    rules = policy.ingress if direction == "ingress" else policy.egress
    if not spec_acts and not isolates and not rules:
        return ""  # the policy says nothing about this direction, here or under spec
    if policy.skipped_by:
        return f"{policy.key} selects this pod but is ignored under {profile} ({policy.skipped_by})"
    if spec_acts and not isolates and not rules:
        why = [d for d in policy.deviations if direction == "egress" or d != dev.EGRESS_IGNORED]
        return f"{policy.key} is ignored for {direction} under {profile} ({', '.join(why)})"
    if policy.deviations:
        return f"{policy.key} is enforced with deviations: {', '.join(policy.deviations)}"
    return ""


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
