"""The indexed engine: the whole expected matrix as one bitset row per source and probe.

Selectors, peers and ports become integer bitsets over the endpoints (bit i = state.endpoints[i]);
each ingress rule is a rectangle peers x (targets whose port matches), each egress rule a rectangle
targets x (peers whose port matches). A row is the OR of the rectangles containing its source, so the
cost grows with rules x matched endpoints rather than pods squared x policies. Booleans come from the
bitsets; reasons are written from the same bitsets by `reasons.py` (per cell or per row), and the
per-cell evaluator (`cell.Evaluator`) gives the full verdict behind an explanation. Rules decided by
the endpoints alone (endpoint-level deviations, legacy isolation) come from `endpoint_rules`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from netpolcheck.model.effective import EffectivePolicy, effective_policies
from netpolcheck.model.endpoint_rules import EndpointRules
from netpolcheck.model.index import EndpointIndex, bits, union
from netpolcheck.model.objects import Probe
from netpolcheck.model.policy import PolicyPort
from netpolcheck.model.profiles import Profile
from netpolcheck.model.state import State

__all__ = ["ExpectedMatrix", "ProbeMatrix", "RuleMask", "bits"]


@dataclass(frozen=True)
class ProbeMatrix:
    """Rows for one probe: bit d of row[s] says whether source s may reach destination d."""

    probe: Probe
    probed: int  # destinations that have this probe's port
    allowed: tuple[int, ...]
    ingress: tuple[int, ...]
    egress: tuple[int, ...]
    # per entry of ExpectedMatrix.targets: (rule label, sources, destinations) of each rule that matches any
    ingress_rules: tuple[tuple[RuleMask, ...], ...] = ()
    egress_rules: tuple[tuple[RuleMask, ...], ...] = ()


RuleMask = tuple[str, int, int]


class ExpectedMatrix:
    """The expected matrix of a state under a profile (verdict bitsets per probe).

    `reasons.ReasonWriter` / `reasons.RowReasons` write reasons; the per-cell evaluator (`cell.Evaluator`)
    gives the full verdict behind an explanation.
    """

    def __init__(self, state: State, profile: Profile) -> None:
        self.state = state
        self.profile = profile
        self.index = EndpointIndex(state)
        self.rules = EndpointRules(state, profile, self.index)
        self.policies = effective_policies(state.policies, profile)
        self.keys = [ep.key for ep in state.endpoints]
        self.position = {key: i for i, key in enumerate(self.keys)}
        self.targets: tuple[tuple[EffectivePolicy, int], ...] = tuple(
            (policy, targets)
            for policy in self.policies
            if policy.skipped_by is None
            and (
                targets := self.index.pods_matching(policy.target)
                & self.index.by_namespace.get(policy.namespace, 0)
            )
        )
        self.probes = tuple(self._probe(p) for p in state.probes)

    # -- building ---------------------------------------------------------------------------------
    def _port_groups(self, probe: Probe) -> list[tuple[int, int]]:
        """(port number, destinations probed on it) for this probe."""
        groups: dict[int, int] = {}
        for i, ep in enumerate(self.state.endpoints):
            number = probe.resolve(ep)
            if number is not None:
                groups[number] = groups.get(number, 0) | (1 << i)
        return sorted(groups.items())

    def _port_mask(
        self, ports: tuple[PolicyPort, ...] | None, protocol: str, groups: list[tuple[int, int]]
    ) -> int:
        """Destinations where one of `ports` matches the probe."""
        mask = 0
        for number, dests in groups:
            if ports is None:
                mask |= dests
                continue
            for port in ports:
                if port.protocol != protocol:
                    continue
                if isinstance(port.port, str):
                    mask |= dests & self.index.by_named_port.get((port.port, protocol, number), 0)
                elif (
                    port.port is None
                    or (port.end_port is None and port.port == number)
                    or (port.end_port is not None and port.port <= number <= port.end_port)
                ):
                    mask |= dests
        return mask

    def _probe(self, probe: Probe) -> ProbeMatrix:
        index, n = self.index, len(self.keys)
        groups = self._port_groups(probe)
        probed = union(m for _, m in groups)
        in_isolated = eg_isolated = 0
        ingress_rects: dict[int, int] = {}  # sources -> destinations
        egress_rects: dict[int, int] = {}
        ingress_rules: list[tuple[RuleMask, ...]] = []
        egress_rules: list[tuple[RuleMask, ...]] = []
        for policy, targets in self.targets:
            if policy.isolates_ingress:
                in_isolated |= targets
            if policy.isolates_egress:
                eg_isolated |= targets
            kept: list[RuleMask] = []
            for rule in policy.ingress:
                dests = targets & self._port_mask(rule.ports, probe.protocol, groups)
                sources = index.peers(rule)
                if dests and sources:
                    ingress_rects[sources] = ingress_rects.get(sources, 0) | dests
                    kept.append((rule.label, sources, dests))
            ingress_rules.append(tuple(kept))
            kept = []
            for rule in policy.egress:
                dests = index.peers(rule) & self._port_mask(rule.ports, probe.protocol, groups)
                if dests:
                    egress_rects[targets] = egress_rects.get(targets, 0) | dests
                    kept.append((rule.label, targets, dests))
            egress_rules.append(tuple(kept))
        if self.rules.legacy:
            in_isolated = self.rules.legacy_isolated
        ingress_rows = [index.all & ~in_isolated] * n
        for sources, dests in ingress_rects.items():
            for s in bits(sources):
                ingress_rows[s] |= dests
        egress_rows = [0 if eg_isolated >> s & 1 else index.all for s in range(n)]
        for sources, dests in egress_rects.items():
            for s in bits(sources & eg_isolated):
                egress_rows[s] |= dests
        override = [0] * n
        self._apply_endpoint_deviations(egress_rows, override)
        allowed = tuple(
            ((egress_rows[s] & ingress_rows[s]) | override[s]) & probed & ~(1 << s) for s in range(n)
        )
        return ProbeMatrix(
            probe,
            probed,
            allowed,
            tuple(r | o for r, o in zip(ingress_rows, override, strict=False)),
            tuple(r | o for r, o in zip(egress_rows, override, strict=False)),
            tuple(ingress_rules),
            tuple(egress_rules),
        )

    def _apply_endpoint_deviations(self, egress_rows: list[int], override: list[int]) -> None:
        for s in range(len(self.keys)):
            override[s] = union(mask for mask, _ in self.rules.decided(s))
            egress_rows[s] |= self.rules.own_node(s)

    # -- reading ----------------------------------------------------------------------------------
    def allowed(self, source: str, destination: str, probe: int = 0) -> bool:
        s, d = self.position[source], self.position[destination]
        return bool(self.probes[probe].allowed[s] >> d & 1)

    def count_allowed(self) -> int:
        return sum(row.bit_count() for pm in self.probes for row in pm.allowed)

    def cells(self) -> Iterator[tuple[int, int, int]]:
        """(source index, destination index, probe index) for every probed ordered pair."""
        n = len(self.keys)
        for p, pm in enumerate(self.probes):
            for s in range(n):
                for d in bits(pm.probed & ~(1 << s)):
                    yield s, d, p
