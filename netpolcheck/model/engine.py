"""The indexed engine: the whole expected matrix as one bitset row per source and probe.

Selectors, peers and ports become integer bitsets over the endpoints (bit i = state.endpoints[i]);
each ingress rule is a rectangle peers x (targets whose port matches), each egress rule a rectangle
targets x (peers whose port matches). A row is the OR of the rectangles containing its source, so the
cost grows with rules x matched endpoints rather than pods squared x policies. Booleans come from the
bitsets; reasons are written from the same bitsets by `reasons.py` (per cell or per row), and the
per-cell evaluator (`verdict()`) gives the full verdict behind an explanation.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from netpolcheck.model import profiles as dev
from netpolcheck.model.cell import MULTICAST, CellVerdict, Evaluator
from netpolcheck.model.effective import EffectivePeer, EffectivePolicy, EffectiveRule, legacy_default_deny
from netpolcheck.model.objects import Pod, Probe
from netpolcheck.model.policy import IPBlock, PolicyPort
from netpolcheck.model.profiles import Profile
from netpolcheck.model.selectors import Requirement, Selector
from netpolcheck.model.state import State


def bits(mask: int) -> Iterator[int]:
    """Indices of the set bits of `mask` (non-negative), lowest first.

    Dense masks (rows of a big matrix) are read from their binary text, a few times faster than
    peeling bits off a 1,000-bit integer one by one; sparse ones are peeled.
    """
    if mask.bit_count() * 8 > mask.bit_length():
        return iter([i for i, c in enumerate(bin(mask)[:1:-1]) if c == "1"])
    return _peeled_bits(mask)


def _peeled_bits(mask: int) -> Iterator[int]:
    while mask:
        low = mask & -mask
        yield low.bit_length() - 1
        mask ^= low


class EndpointIndex:
    """Bitsets of the endpoints of a state by label, namespace, node, named port and IP block."""

    def __init__(self, state: State) -> None:
        self.state = state
        self.endpoints = state.endpoints
        self.all = (1 << len(self.endpoints)) - 1
        self.selectable = 0  # pods a selector can match (not hostNetwork)
        self.by_namespace: dict[str, int] = {}
        self.by_label: dict[tuple[str, str], int] = {}
        self.by_key: dict[str, int] = {}
        self.by_named_port: dict[tuple[str, str, int], int] = {}
        self.by_node: dict[str, int] = {}
        self.host_by_node: dict[str, int] = {}
        self.multicast = 0
        for i, ep in enumerate(self.endpoints):
            bit = 1 << i
            if ep.ip in MULTICAST:
                self.multicast |= bit
            if not isinstance(ep, Pod):
                continue
            for port in ep.ports:
                if port.name:
                    key = (port.name, port.protocol, port.number)
                    self.by_named_port[key] = self.by_named_port.get(key, 0) | bit
            if ep.node is not None:
                self.by_node[ep.node] = self.by_node.get(ep.node, 0) | bit
                if ep.host_network:
                    self.host_by_node[ep.node] = self.host_by_node.get(ep.node, 0) | bit
            if ep.host_network:
                continue
            self.selectable |= bit
            self.by_namespace[ep.namespace] = self.by_namespace.get(ep.namespace, 0) | bit
            for label, value in ep.labels.items():
                self.by_label[(label, value)] = self.by_label.get((label, value), 0) | bit
                self.by_key[label] = self.by_key.get(label, 0) | bit
        self._selector_cache: dict[Selector, int] = {}
        self._ns_selector_cache: dict[Selector, int] = {}
        self._ipblock_cache: dict[IPBlock, int] = {}

    def _requirement(self, req: Requirement) -> int:
        if req.operator == "In":
            return _or(self.by_label.get((req.key, v), 0) for v in req.values)
        if req.operator == "NotIn":
            return self.selectable & ~_or(self.by_label.get((req.key, v), 0) for v in req.values)
        if req.operator == "Exists":
            return self.by_key.get(req.key, 0)
        return self.selectable & ~self.by_key.get(req.key, 0)

    def pods_matching(self, selector: Selector) -> int:
        """Selectable pods in any namespace whose labels match."""
        mask = self._selector_cache.get(selector)
        if mask is None:
            mask = self.selectable
            for req in selector.requirements:
                mask &= self._requirement(req)
            self._selector_cache[selector] = mask
        return mask

    def pods_in_namespaces(self, selector: Selector) -> int:
        mask = self._ns_selector_cache.get(selector)
        if mask is None:
            mask = _or(
                self.by_namespace.get(ns.name, 0)
                for ns in self.state.namespaces.values()
                if selector.matches(ns.labels)
            )
            self._ns_selector_cache[selector] = mask
        return mask

    def in_block(self, block: IPBlock) -> int:
        mask = self._ipblock_cache.get(block)
        if mask is None:
            mask = _or(1 << i for i, ep in enumerate(self.endpoints) if block.contains(ep.ip))
            self._ipblock_cache[block] = mask
        return mask

    def peer(self, peer: EffectivePeer) -> int:
        if peer.kind == "any":
            return self.all
        if peer.kind == "none":
            return 0
        if peer.kind == "ipblock":
            assert peer.ip_block is not None
            return self.in_block(peer.ip_block)
        nss = (
            self.by_namespace.get(peer.namespace, 0)
            if peer.namespace_selector is None
            else self.pods_in_namespaces(peer.namespace_selector)
        )
        pods = self.selectable if peer.pod_selector is None else self.pods_matching(peer.pod_selector)
        return nss & pods

    def peers(self, rule: EffectiveRule) -> int:
        return self.all if rule.peers is None else _or(self.peer(p) for p in rule.peers)


def _or(masks: Iterable[int]) -> int:
    out = 0
    for mask in masks:
        out |= mask
    return out


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

    `reasons.ReasonWriter` / `reasons.RowReasons` write reasons; `verdict()` is the evaluator's full verdict.
    """

    def __init__(self, state: State, profile: Profile) -> None:
        self.state = state
        self.profile = profile
        self.index = EndpointIndex(state)
        self.evaluator = Evaluator(state, profile)
        self.keys = [ep.key for ep in state.endpoints]
        self.position = {key: i for i, key in enumerate(self.keys)}
        self.targets: tuple[tuple[EffectivePolicy, int], ...] = tuple(
            (policy, targets)
            for policy in self.evaluator.policies
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
        probed = _or(m for _, m in groups)
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
        if self.evaluator.legacy:
            in_isolated = _or(
                index.by_namespace.get(ns.name, 0)
                for ns in self.state.namespaces.values()
                if legacy_default_deny(ns.annotations)
            )
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
        index, profile = self.index, self.profile
        for s, ep in enumerate(self.state.endpoints):
            if profile.has(dev.MULTICAST_ALLOWED):
                override[s] |= index.multicast
            if not isinstance(ep, Pod) or ep.node is None:
                continue
            if ep.host_network and profile.has(dev.HOST_TO_LOCAL_POD):
                override[s] |= index.by_node.get(ep.node, 0) & index.selectable
            if not ep.host_network and profile.has(dev.EGRESS_TO_OWN_NODE):
                egress_rows[s] |= index.host_by_node.get(ep.node, 0)

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

    def verdict(self, s: int, d: int, p: int) -> CellVerdict:
        """The full per-cell verdict with its reason, from the per-cell evaluator."""
        endpoints = self.state.endpoints
        verdict = self.evaluator.cell(endpoints[s], endpoints[d], self.probes[p].probe)
        assert verdict is not None
        return verdict
