"""Policies as an implementation enforces them: spec semantics plus the policy-level deviations of a profile.

The engine and the per-cell evaluator both read only these effective policies, so a profile changes
verdicts in one place. Each effective rule lists the deviations that changed it (for explanations).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, replace

from netpolcheck.model import profiles as dev
from netpolcheck.model import wording
from netpolcheck.model.ipset_clash import AT_NAMESPACE_SETS, AT_POD_NAMESPACE_SETS, clash_losers
from netpolcheck.model.policy import IPBlock, Peer, Policy, PolicyPort, Rule
from netpolcheck.model.profiles import Profile
from netpolcheck.model.selectors import Selector


@dataclass(frozen=True)
class EffectivePeer:
    """kind: `pods` (selectors; None = policy namespace / all pods), `ipblock`, `any` or `none`."""

    kind: str
    namespace: str
    pod_selector: Selector | None = None
    namespace_selector: Selector | None = None
    ip_block: IPBlock | None = None

    def describe(self) -> str:
        if self.kind == "ipblock" and self.ip_block is not None:
            return f"ipBlock {self.ip_block.describe()}"
        if self.kind in ("any", "none"):
            return f"{self.kind} source/destination"
        ns = (
            f"namespaces [{self.namespace_selector.describe()}]"
            if self.namespace_selector is not None
            else f"namespace {self.namespace}"
        )
        pods = f"pods [{self.pod_selector.describe()}]" if self.pod_selector is not None else "all pods"
        return f"{pods} in {ns}"


@dataclass(frozen=True)
class EffectiveRule:
    direction: str  # "ingress" | "egress"
    index: int
    peers: tuple[EffectivePeer, ...] | None  # None: every peer
    ports: tuple[PolicyPort, ...] | None  # None: every port and protocol
    deviations: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return f"{self.direction}[{self.index}]"


@dataclass(frozen=True)
class EffectivePolicy:
    key: str
    namespace: str
    target: Selector
    isolates_ingress: bool
    isolates_egress: bool
    ingress: tuple[EffectiveRule, ...]
    egress: tuple[EffectiveRule, ...]
    skipped_by: str | None = None  # deviation id when the implementation ignores the whole policy
    deviations: tuple[str, ...] = ()  # policy-level deviations that changed isolation
    rules_dropped_by: str | None = None  # deviation id when it isolates but installs no allow rule

    @property
    def isolator(self) -> str:
        """How a reason names this policy when it isolates a pod."""
        return wording.isolator(self.key, self.rules_dropped_by)


def _peer(
    peer_ns: str, peer: Peer, direction: str, rule: Rule, profile: Profile, used: list[str]
) -> EffectivePeer:
    if peer.ip_block is not None:
        if direction == "ingress" and profile.has(dev.INGRESS_IPBLOCK_ALLOWS_ALL):
            used.append(dev.INGRESS_IPBLOCK_ALLOWS_ALL)
            return EffectivePeer("any", peer_ns)
        if direction == "ingress" and rule.ports and profile.has(dev.INGRESS_IPBLOCK_WITH_PORTS_ALLOWS_ALL):
            used.append(dev.INGRESS_IPBLOCK_WITH_PORTS_ALLOWS_ALL)
            return EffectivePeer("any", peer_ns)
        return EffectivePeer("ipblock", peer_ns, ip_block=peer.ip_block)
    pods, nss = peer.pod_selector, peer.namespace_selector
    if pods is not None and nss is not None:
        if profile.has(dev.NAMESPACE_SELECTOR_WINS):
            used.append(dev.NAMESPACE_SELECTOR_WINS)
            pods = None
        elif profile.has(dev.POD_SELECTOR_WINS):
            used.append(dev.POD_SELECTOR_WINS)
            nss = None
    return EffectivePeer("pods", peer_ns, pods, nss)


def _ports(rule: Rule, profile: Profile, used: list[str]) -> tuple[PolicyPort, ...] | None:
    if not rule.ports:
        if rule.ports_given and profile.has(dev.LEGACY_EMPTY_LISTS):
            used.append(dev.LEGACY_EMPTY_LISTS)
            return ()
        return None
    if profile.has(dev.ENDPORT_IGNORED) and any(p.end_port is not None for p in rule.ports):
        used.append(dev.ENDPORT_IGNORED)
        return tuple(PolicyPort(p.protocol, p.port, None) for p in rule.ports)
    return rule.ports


def _rule(policy: Policy, direction: str, index: int, rule: Rule, profile: Profile) -> EffectiveRule:
    used: list[str] = []
    peers: tuple[EffectivePeer, ...] | None
    if rule.peers:
        peers = tuple(_peer(policy.namespace, p, direction, rule, profile, used) for p in rule.peers)
    elif rule.peers_given and profile.has(dev.LEGACY_EMPTY_LISTS):
        used.append(dev.LEGACY_EMPTY_LISTS)
        peers = ()
    else:
        peers = None
    ports = _ports(rule, profile, used)
    return EffectiveRule(direction, index, peers, ports, tuple(dict.fromkeys(used)))


def _same_selector(policy: Policy) -> bool:
    return any(
        peer.pod_selector == policy.pod_selector and peer.namespace_selector is None
        for rule in policy.ingress
        for peer in rule.peers
    )


def _skipped(policy: Policy, deviation_id: str) -> EffectivePolicy:
    return EffectivePolicy(
        policy.key, policy.namespace, policy.pod_selector, False, False, (), (), skipped_by=deviation_id
    )


def _named_port_skipped(policy: Policy, profile: Profile) -> bool:
    return profile.has(dev.NAMED_PORT_POLICY_SKIPPED) and policy.named_ports


def effective_policy(policy: Policy, profile: Profile, clash: str | None = None) -> EffectivePolicy:
    """How `profile`'s implementation enforces `policy`; `clash` is where it lost the ipset name clash
    (`ipset_clash.AT_*`), which depends on the other policies (see `effective_policies`)."""
    if _named_port_skipped(policy, profile):
        return _skipped(policy, dev.NAMED_PORT_POLICY_SKIPPED)
    if clash == AT_NAMESPACE_SETS:
        return _skipped(policy, dev.IPSET_NAME_CLASH)
    enforced = _enforced(policy, profile)
    if clash == AT_POD_NAMESPACE_SETS:
        return replace(
            enforced,
            ingress=(),
            egress=(),
            deviations=(*enforced.deviations, dev.IPSET_NAME_CLASH),
            rules_dropped_by=dev.IPSET_NAME_CLASH,
        )
    return enforced


def _enforced(policy: Policy, profile: Profile) -> EffectivePolicy:
    used: list[str] = []
    types = policy.policy_types
    isolates_ingress = "Ingress" in types
    isolates_egress = "Egress" in types
    ingress_rules = "Ingress" in types or profile.has(dev.RULES_IGNORE_POLICY_TYPES)
    egress_rules = "Egress" in types or profile.has(dev.RULES_IGNORE_POLICY_TYPES)
    if profile.has(dev.RULES_IGNORE_POLICY_TYPES) and (
        ("Ingress" not in types and policy.ingress) or ("Egress" not in types and policy.egress)
    ):
        used.append(dev.RULES_IGNORE_POLICY_TYPES)
    if profile.has(dev.EGRESS_IGNORED):
        if isolates_egress or policy.egress:
            used.append(dev.EGRESS_IGNORED)
        isolates_egress, egress_rules = False, False
    if profile.has(dev.EGRESS_ONLY_ISOLATES_INGRESS):
        if not isolates_ingress:
            used.append(dev.EGRESS_ONLY_ISOLATES_INGRESS)
        isolates_ingress, ingress_rules = True, True
    if profile.has(dev.SAME_SELECTOR_NO_ISOLATION) and isolates_ingress and _same_selector(policy):
        used.append(dev.SAME_SELECTOR_NO_ISOLATION)
        isolates_ingress = False
    if profile.has(dev.LEGACY_ISOLATION):
        used.append(dev.LEGACY_ISOLATION)
        isolates_ingress = isolates_egress = egress_rules = False
        ingress_rules = True
    ingress = (
        tuple(_rule(policy, "ingress", i, r, profile) for i, r in enumerate(policy.ingress))
        if ingress_rules
        else ()
    )
    egress = (
        tuple(_rule(policy, "egress", i, r, profile) for i, r in enumerate(policy.egress))
        if egress_rules
        else ()
    )
    return EffectivePolicy(
        policy.key,
        policy.namespace,
        policy.pod_selector,
        isolates_ingress,
        isolates_egress,
        ingress,
        egress,
        None,
        tuple(dict.fromkeys(used)),
    )


LEGACY_ANNOTATION = "net.beta.kubernetes.io/network-policy"


def legacy_default_deny(annotations: dict[str, str]) -> bool:
    """True when the namespace carries `{"ingress": {"isolation": "DefaultDeny"}}` (legacy isolation)."""
    raw = annotations.get(LEGACY_ANNOTATION)
    if raw is None:
        return False
    try:
        value = json.loads(raw)
    except ValueError:
        return False
    ingress = value.get("ingress") if isinstance(value, dict) else None
    return isinstance(ingress, dict) and ingress.get("isolation") == "DefaultDeny"


def effective_policies(policies: Iterable[Policy], profile: Profile) -> tuple[EffectivePolicy, ...]:
    """Every policy of a state, in the order the implementation sees them, as `profile` enforces it
    (the engine and the evaluator read these)."""
    ordered = tuple(policies)
    lost: dict[str, str] = {}
    if profile.has(dev.IPSET_NAME_CLASH):
        lost = clash_losers(ordered, lambda p: _named_port_skipped(p, profile))
    return tuple(effective_policy(p, profile, lost.get(p.key)) for p in ordered)
