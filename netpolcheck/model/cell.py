"""Per-cell evaluation: the plain, unindexed statement of the rules, with the story of each verdict.

This is the reference the indexed engine is tested against, the source of every `reason`, and the
baseline of the benchmark.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from netpolcheck.model import profiles as dev
from netpolcheck.model import wording
from netpolcheck.model.effective import EffectivePeer, EffectivePolicy, EffectiveRule, effective_policies
from netpolcheck.model.endpoint_rules import EndpointRules
from netpolcheck.model.index import EndpointIndex
from netpolcheck.model.objects import Endpoint, Pod, Probe
from netpolcheck.model.policy import PolicyPort
from netpolcheck.model.profiles import Profile
from netpolcheck.model.state import State


@dataclass(frozen=True)
class RuleCheck:
    """One rule of a selecting policy, checked against the peer and port of a cell."""

    policy: str
    rule: str
    peer_ok: bool
    port_ok: bool
    deviations: tuple[str, ...] = ()
    # what failed to match, worded only when an explanation asks (the evaluator checks many cells)
    miss: Callable[[], str] = field(default=lambda: "", compare=False, repr=False)

    @property
    def matched(self) -> bool:
        return self.peer_ok and self.port_ok

    def describe(self) -> str:
        if self.matched:
            return f"{self.policy} {self.rule} matches"
        return f"{self.policy} {self.rule} does not match: {self.miss()}"


@dataclass(frozen=True)
class DirectionVerdict:
    direction: str
    allowed: bool
    isolated_by: tuple[str, ...] = ()
    checks: tuple[RuleCheck, ...] = ()
    note: str = ""  # why the direction is not policed, when it is not
    deviations: tuple[str, ...] = field(default=())

    @property
    def matched(self) -> RuleCheck | None:
        return next((c for c in self.checks if c.matched), None)

    def reason(self) -> str:
        hit = self.matched
        match = f"{hit.policy} {hit.rule}" if hit is not None else ""
        return wording.direction(self.direction, self.isolated_by, match, self.note)


@dataclass(frozen=True)
class CellVerdict:
    source: str
    destination: str
    port: int
    protocol: str
    allowed: bool
    ingress: DirectionVerdict
    egress: DirectionVerdict
    override: str | None = None  # a profile deviation that decided the cell outright

    @property
    def reason(self) -> str:
        if self.override is not None:
            return wording.decided_by(self.override)
        return wording.cell(
            bool(self.egress.isolated_by),
            self.egress.reason(),
            bool(self.ingress.isolated_by),
            self.ingress.reason(),
        )


class Evaluator:
    """Evaluates single cells of `state` under `profile`."""

    def __init__(self, state: State, profile: Profile, memoise: bool = True) -> None:
        self.state = state
        self.profile = profile
        self.policies = effective_policies(state.policies, profile)
        self.by_namespace: dict[str, list[EffectivePolicy]] = {}
        for policy in self.policies:
            self.by_namespace.setdefault(policy.namespace, []).append(policy)
        self.rules = EndpointRules(state, profile, EndpointIndex(state))
        self.position = {ep.key: i for i, ep in enumerate(state.endpoints)}
        self._selecting: dict[str, list[EffectivePolicy]] = {}
        self._memoise = memoise  # the benchmark's naive baseline turns this off

    # -- matching ---------------------------------------------------------------------------------
    def peer_matches(self, peer: EffectivePeer, endpoint: Endpoint) -> bool:
        if peer.kind == "any":
            return True
        if peer.kind == "none":
            return False
        if peer.kind == "ipblock":
            assert peer.ip_block is not None
            return peer.ip_block.contains(endpoint.ip)
        if not isinstance(endpoint, Pod) or endpoint.host_network:
            return False
        if peer.namespace_selector is None:
            if endpoint.namespace != peer.namespace:
                return False
        elif not peer.namespace_selector.matches(self.state.namespaces[endpoint.namespace].labels):
            return False
        return peer.pod_selector is None or peer.pod_selector.matches(endpoint.labels)

    @staticmethod
    def port_matches(port: PolicyPort, number: int, protocol: str, destination: Endpoint) -> bool:
        if port.protocol != protocol:
            return False
        if port.port is None:
            return True
        if isinstance(port.port, str):
            return isinstance(destination, Pod) and destination.named_port(port.port, protocol) == number
        if port.end_port is not None:
            return port.port <= number <= port.end_port
        return port.port == number

    def rule_check(
        self,
        policy: EffectivePolicy,
        rule: EffectiveRule,
        peer: Endpoint,
        number: int,
        protocol: str,
        destination: Endpoint,
    ) -> RuleCheck:
        peer_ok = rule.peers is None or any(self.peer_matches(p, peer) for p in rule.peers)
        port_ok = rule.ports is None or any(
            self.port_matches(p, number, protocol, destination) for p in rule.ports
        )
        return RuleCheck(
            policy.key,
            rule.label,
            peer_ok,
            port_ok,
            rule.deviations,
            lambda: self._miss(rule, peer_ok, port_ok, peer, number, protocol),
        )

    def _miss(
        self, rule: EffectiveRule, peer_ok: bool, port_ok: bool, peer: Endpoint, number: int, protocol: str
    ) -> str:
        """What failed to match in a rule: the label, namespace or CIDR of each peer, or the port."""
        why = []
        if not peer_ok and rule.peers is not None:
            misses = [self.peer_miss(p, peer) for p in rule.peers] or ["the rule lists no peer"]
            why.append(f"peer {peer.key}: {' | '.join(misses)}")
        if not port_ok and rule.ports is not None:
            listed = ", ".join(p.describe() for p in rule.ports) or "no port"
            why.append(f"port {protocol}/{number} is not {listed}")
        return "; ".join(why)

    def peer_miss(self, peer: EffectivePeer, endpoint: Endpoint) -> str:
        """Why `endpoint` is not `peer` (call only when it is not)."""
        if peer.kind == "none":
            return "the profile reads this peer as matching nothing"
        if peer.kind == "ipblock":
            assert peer.ip_block is not None
            block = peer.ip_block
            inside = endpoint.ip.version == block.cidr.version and endpoint.ip in block.cidr
            if not inside:
                return f"{endpoint.ip} is not in ipBlock {block.cidr}"
            excluded = next(ex for ex in block.excepts if endpoint.ip in ex)
            return f"{endpoint.ip} is in the except {excluded} of ipBlock {block.cidr}"
        if not isinstance(endpoint, Pod):
            return "pod and namespace selectors match pods only"
        if endpoint.host_network:
            return "selectors never match a hostNetwork pod"
        if peer.namespace_selector is None:
            if endpoint.namespace != peer.namespace:
                return f"namespace {endpoint.namespace} is not the policy's namespace {peer.namespace}"
        else:
            labels = self.state.namespaces[endpoint.namespace].labels
            if not peer.namespace_selector.matches(labels):
                return f"namespace {endpoint.namespace}: {peer.namespace_selector.miss(labels)}"
        assert peer.pod_selector is not None
        return f"labels: {peer.pod_selector.miss(endpoint.labels)}"

    def selecting(self, pod: Pod) -> list[EffectivePolicy]:
        """Policies whose podSelector selects `pod` (memoised: the engine asks per cell)."""
        found = self._selecting.get(pod.key)
        if found is None:
            found = [p for p in self.by_namespace.get(pod.namespace, []) if self.selects(p, pod)]
            if self._memoise:
                self._selecting[pod.key] = found
        return found

    def selects(self, policy: EffectivePolicy, pod: Pod) -> bool:
        return (
            policy.skipped_by is None
            and pod.namespace == policy.namespace
            and policy.target.matches(pod.labels)
        )

    # -- directions -------------------------------------------------------------------------------
    def ingress(
        self, source: Endpoint, destination: Endpoint, number: int, protocol: str
    ) -> DirectionVerdict:
        note = self.rules.unpoliced("ingress", destination)
        if note or not isinstance(destination, Pod):
            return DirectionVerdict("ingress", True, note=note)
        selecting = self.selecting(destination)
        isolated = (
            self.rules.legacy_isolators(destination)
            if self.rules.legacy
            else tuple(p.isolator for p in selecting if p.isolates_ingress)
        )
        checks = tuple(
            self.rule_check(p, r, source, number, protocol, destination) for p in selecting for r in p.ingress
        )
        allowed = not isolated or any(c.matched for c in checks)
        return DirectionVerdict("ingress", allowed, isolated, checks)

    def egress(self, source: Endpoint, destination: Endpoint, number: int, protocol: str) -> DirectionVerdict:
        note = self.rules.unpoliced("egress", source)
        if note or not isinstance(source, Pod):
            return DirectionVerdict("egress", True, note=note)
        if self.rules.own_node(self.position[source.key]) >> self.position[destination.key] & 1:
            return DirectionVerdict(
                "egress",
                True,
                note=wording.not_policed_by(dev.EGRESS_TO_OWN_NODE),
                deviations=(dev.EGRESS_TO_OWN_NODE,),
            )
        selecting = self.selecting(source)
        isolated = tuple(p.isolator for p in selecting if p.isolates_egress)
        checks = tuple(
            self.rule_check(p, r, destination, number, protocol, destination)
            for p in selecting
            for r in p.egress
        )
        allowed = not isolated or any(c.matched for c in checks)
        return DirectionVerdict("egress", allowed, isolated, checks)

    def cell(self, source: Endpoint, destination: Endpoint, probe: Probe) -> CellVerdict | None:
        """The verdict for one cell, or None when `destination` has no port for this probe."""
        number = probe.resolve(destination)
        if number is None:
            return None
        ingress = self.ingress(source, destination, number, probe.protocol)
        egress = self.egress(source, destination, number, probe.protocol)
        override = self.rules.decided_cell(self.position[source.key], self.position[destination.key])
        allowed = override is not None or (ingress.allowed and egress.allowed)
        return CellVerdict(
            source.key, destination.key, number, probe.protocol, allowed, ingress, egress, override
        )
