"""Pure analyser: the cluster as the controller knows it -> the dataplane weave-npc would program.

Written from docs/weave-facts.md (enforcement and deviations) and weave's npc/analyser.go, selector.go,
rule.go, ipblock.go and namespace.go at v2.8.1/v2.1.3/v2.0.5 (facts only). No I/O.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from netpolcheck.npc import dataplane as dp
from netpolcheck.npc.dataplane import Dataplane, IpSet, Rule
from netpolcheck.npc.profiles import Profile
from netpolcheck.npc.selectors import LabelSelector, SelectorError
from netpolcheck.npc.shortname import set_name
from netpolcheck.npc.world import World, labels_of, obj_key, pod_comment, pod_ip

LEGACY_ANNOTATION = "net.beta.kubernetes.io/network-policy"
INGRESS, EGRESS = "ingress", "egress"
TARGET_STAGE = 1  # set-creation stage of the target selectors (see Analyser._claim_sets)


class PolicyRejected(Exception):
    """weave-npc logs the error and skips the whole policy."""


@dataclass(frozen=True)
class SelectorSpec:
    """One selector-backed ipset: pods of one namespace, namespaces (list:set), or pods across namespaces."""

    key: str
    set_name: str
    set_type: str
    ns_name: str  # "" for namespace and namespace+pod selectors
    pod: LabelSelector | None
    namespace: LabelSelector | None

    def host(self, src: bool) -> tuple[Rule, str]:
        rule = ("-m", "set", "--match-set", self.set_name, "src" if src else "dst")
        if self.ns_name:
            return rule, f"pods: namespace: {self.ns_name}, selector: {self.key}"
        return rule, f"namespaces: selector: {self.key}"


@dataclass(frozen=True)
class IpBlockSpec:
    cidr: str
    excepts: tuple[str, ...]
    except_set: str | None

    def host(self, src: bool) -> tuple[Rule, str]:
        opt, direction = ("-s", "src") if src else ("-d", "dst")
        if not self.except_set:
            return (opt, self.cidr), f"cidr: {self.cidr}"
        rule = (opt, self.cidr, "-m", "set", "!", "--match-set", self.except_set, direction)
        return rule, f"cidr: {self.cidr} except [{' '.join(self.excepts)}]"


Host = SelectorSpec | IpBlockSpec | None


@dataclass
class PolicyPlan:
    """What one policy contributes (weave's analysePolicy result)."""

    targets: list[tuple[SelectorSpec, frozenset[str]]] = field(default_factory=list)
    selectors: list[SelectorSpec] = field(default_factory=list)
    ipblocks: list[IpBlockSpec] = field(default_factory=list)
    rules: list[tuple[str, Rule]] = field(default_factory=list)  # (chain, rule)


class Analyser:
    """Computes the desired dataplane for one node under one profile and set of faults."""

    def __init__(self, profile: Profile, node_name: str, faults: frozenset[str] = frozenset()) -> None:
        self.profile = profile
        self.node_name = node_name
        self.faults = faults

    # -- selectors --------------------------------------------------------------------------------
    def _selector(self, spec: Mapping[str, Any] | None) -> LabelSelector:
        ignore = "match-expressions-ignored" in self.faults
        try:
            return LabelSelector.parse(spec, ignore_expressions=ignore)
        except SelectorError as exc:
            raise PolicyRejected(str(exc)) from exc

    def _pod_selector(self, spec: Mapping[str, Any] | None, ns: str) -> SelectorSpec:
        sel = self._selector(spec)
        return SelectorSpec(str(sel), set_name(f"{ns}:{sel}"), "hash:ip", ns, sel, None)

    def _ns_selector(self, spec: Mapping[str, Any] | None) -> SelectorSpec:
        sel = self._selector(spec)
        return SelectorSpec(str(sel), set_name(f":{sel}"), "list:set", "", None, sel)

    def _ns_pod_selector(self, pod: Mapping[str, Any] | None, ns: Mapping[str, Any] | None) -> SelectorSpec:
        nsel, psel = self._selector(ns), self._selector(pod)
        key = f"{nsel}{psel}"  # weave concatenates the two strings with no separator
        return SelectorSpec(key, set_name(f":{key}"), "hash:ip", "", psel, nsel)

    def _ipblock(self, block: Mapping[str, Any], ns: str) -> IpBlockSpec:
        excepts = () if "ignore-except" in self.faults else tuple(sorted(block.get("except") or ()))
        key = " ".join(excepts)
        name = set_name(f"{ns}:ipblock-except:{key}") if excepts else None
        return IpBlockSpec(str(block.get("cidr", "")), excepts, name)

    # -- policies ---------------------------------------------------------------------------------
    def policy_types(self, policy: Mapping[str, Any]) -> frozenset[str]:
        spec = policy.get("spec") or {}
        if not self.profile.egress or self.profile.legacy:
            return frozenset({INGRESS})  # 2.0/2.1: every policy isolates ingress, egress is ignored
        types = spec.get("policyTypes")
        if types is None:  # what the API server defaults (weave never sees it missing on k8s >= 1.8)
            types = ["Ingress", "Egress"] if spec.get("egress") else ["Ingress"]
        return frozenset(t.lower() for t in types if t in ("Ingress", "Egress"))

    def is_egress_policy(self, policy: Mapping[str, Any]) -> bool:
        """weave's isEgressNetworkPolicy: decides the lazily added default egress DROP."""
        spec = policy.get("spec") or {}
        return EGRESS in self.policy_types(policy) or spec.get("egress") is not None

    def _peer_host(self, peer: Mapping[str, Any], ns: str, plan: PolicyPlan) -> Host:
        pod, nsel, block = peer.get("podSelector"), peer.get("namespaceSelector"), peer.get("ipBlock")
        if "ignore-namespace-selector" in self.faults and nsel is not None:
            pod, nsel = pod if pod is not None else {}, None
        if self.profile.legacy:
            # 2.0.x: podSelector then namespaceSelector, the last one wins
            if nsel is not None:
                spec = self._ns_selector(nsel)
            elif pod is not None:
                spec = self._pod_selector(pod, ns)
            else:
                return None
            plan.selectors.append(spec)
            return spec
        if pod is not None and nsel is not None and self.profile.and_peers:
            spec = self._ns_pod_selector(pod, nsel)
        elif pod is not None:
            spec = self._pod_selector(pod, ns)
        elif nsel is not None:
            spec = self._ns_selector(nsel)
        elif block is not None and self.profile.ipblock:
            ipb = self._ipblock(block, ns)
            plan.ipblocks.append(ipb)
            return ipb
        else:
            return None  # before ipBlock support the peer leaves the rule "from anywhere"
        plan.selectors.append(spec)
        return spec

    def _ports(self, ports: list[Mapping[str, Any]] | None, policy_name: str) -> list[tuple[str, str]]:
        result = []
        for port in ports or []:
            value = port.get("port")
            if isinstance(value, str) and not value.isdigit() and self.profile.named_port_rejected:
                raise PolicyRejected(
                    "named ports in network policies is not supported yet. Rejecting network policy: "
                    f"{policy_name} from further processing. named port {value} in network policy"
                )
            # endPort is ignored in every version (docs/weave-facts.md#endport-ignored)
            result.append((str(port.get("protocol") or "TCP"), "0:65535" if value is None else str(value)))
        return result

    def _rule(self, direction: str, proto_port: tuple[str, str] | None, src: Host, dst: Host) -> list[Rule]:
        args: list[str] = []
        if proto_port and "ports-ignored" not in self.faults:
            args += ["-p", proto_port[0]]
        comments = []
        for host, is_src in ((src, True), (dst, False)):
            if host is None:
                comments.append("anywhere")
                continue
            rule, comment = host.host(is_src)
            args += rule
            comments.append(comment)
        if proto_port and "ports-ignored" not in self.faults:
            args += ["--dport", proto_port[1]]
        comment = f"{comments[0]} -> {comments[1]}"
        if self.profile.egress:
            comment += f" ({direction})"
        args += ["-m", "comment", "--comment", comment]
        if direction == INGRESS:
            return [(*args, "-j", "ACCEPT")]
        return [(*args, "-j", dp.EGRESS_ACCEPT), (*args, "-j", "RETURN")]

    def _add_rules(
        self,
        plan: PolicyPlan,
        direction: str,
        ports: list[tuple[str, str]] | None,
        peer_hosts: list[Host],
        target: SelectorSpec,
    ) -> None:
        chain = dp.INGRESS if direction == INGRESS else dp.EGRESS_CUSTOM
        for peer in peer_hosts:
            src, dst = (peer, target) if direction == INGRESS else (target, peer)
            for proto_port in ports if ports else [None]:
                for rule in self._rule(direction, proto_port, src, dst):
                    plan.rules.append((chain, rule))

    def plan_policy(self, policy: Mapping[str, Any]) -> PolicyPlan:
        ns, name = obj_key(policy)
        spec = policy.get("spec") or {}
        plan = PolicyPlan()
        target = self._pod_selector(spec.get("podSelector") or {}, ns)
        plan.targets.append((target, self.policy_types(policy)))
        plan.selectors.append(target)
        directions = [(INGRESS, "from", spec.get("ingress"))]
        if self.profile.egress:
            directions.append((EGRESS, "to", spec.get("egress")))
        for direction, peers_field, rules in directions:
            for rule in rules or []:
                ports_spec, peers = rule.get("ports"), rule.get(peers_field)
                if self.profile.legacy and (
                    (ports_spec is not None and not ports_spec) or (peers is not None and not peers)
                ):
                    continue  # legacy: an empty list matches nothing
                ports = self._ports(ports_spec, name)
                hosts: list[Host] = [self._peer_host(p, ns, plan) for p in peers] if peers else [None]
                self._add_rules(plan, direction, ports, hosts, target)
        return plan

    # -- whole dataplane --------------------------------------------------------------------------
    def analyse(self, world: World, *, egress_drop: bool = False) -> Dataplane:
        """The desired dataplane; `egress_drop` is weave's sticky "an egress policy was seen" flag."""
        out = Dataplane()
        self._static_chains(out, egress_drop or self._any_egress_policy(world))
        namespaces = world.namespace_names()
        ns_labels = {name: labels_of(world.namespaces.get(name)) for name in namespaces}
        pods = [p for p in world.pods.values() if pod_ip(p) and self._pod_visible(p)]

        for ns in namespaces:
            all_pods = self._pod_selector({}, ns)
            out.sets[all_pods.set_name] = IpSet(all_pods.set_name, "hash:ip")
            for name in self._default_allow_sets(ns).values():
                out.sets[name] = IpSet(name, "hash:ip")

        plans: list[tuple[str, PolicyPlan]] = []
        for policy in world.policies.values():
            ns, name = obj_key(policy)
            try:
                plan = self.plan_policy(policy)
                late = self._claim_sets(out, plan)
            except PolicyRejected as exc:
                out.errors.append(f"add network policy: {exc}")
                continue
            if late is not None:  # its targets stay isolated, none of its allow rules is installed
                out.errors.append(f"add network policy: {late}")
            plans.append((ns, plan))

        self._fill_selector_sets(out, plans, pods, ns_labels, world)
        self._fill_default_allow(out, plans, pods, world)
        for ns in namespaces:
            if ns in world.namespaces:
                self._default_chain_rules(out, ns, world.namespaces[ns])
        for _, plan in plans:
            for chain, rule in plan.rules:
                out.add_rule(chain, rule)
        if not self.profile.physdev:
            local = out.sets.setdefault(dp.LOCAL_PODS_SET, IpSet(dp.LOCAL_PODS_SET, "hash:ip"))
            for pod in pods:
                if (pod.get("spec") or {}).get("nodeName") == self.node_name:
                    local.members[str(pod_ip(pod))] = pod_comment(pod)
        return out

    def _pod_visible(self, pod: Mapping[str, Any]) -> bool:
        if "remote-pods-ignored" not in self.faults:
            return True
        return (pod.get("spec") or {}).get("nodeName") == self.node_name

    def _any_egress_policy(self, world: World) -> bool:
        return self.profile.egress and any(self.is_egress_policy(p) for p in world.policies.values())

    def _default_allow_sets(self, ns: str) -> dict[str, str]:
        if self.profile.legacy:
            return {}
        if self.profile.egress:
            return {
                INGRESS: set_name(f"ingress-default-allow:{ns}"),
                EGRESS: set_name(f"egress-default-allow:{ns}"),
            }
        return {INGRESS: set_name(f"default-allow:{ns}")}

    def _claim_sets(self, out: Dataplane, plan: PolicyPlan) -> str | None:
        """Create its sets in weave-npc's order (namespace.go addNetworkPolicy): namespace-selector
        list:sets, then the namespaced pod-selector sets (the target among them, which isolates), then
        the pod+namespace sets, then the ipBlock except sets (docs/weave-facts.md#ipset-name-clash).

        A create that finds the name held with another type fails and stops the policy there; none of
        the failing stage's sets is created. Before the targets: raises PolicyRejected (the policy is
        not enforced). After them: returns the error; the caller keeps the isolation and drops the rules.
        """
        stages: list[list[tuple[str, str]]] = [
            [(s.set_name, s.set_type) for s in plan.selectors if s.set_type == "list:set"],
            [(s.set_name, s.set_type) for s in plan.selectors if s.set_type == "hash:ip" and s.ns_name],
            [(s.set_name, s.set_type) for s in plan.selectors if s.set_type == "hash:ip" and not s.ns_name],
            [(b.except_set, "hash:net") for b in plan.ipblocks if b.except_set],
        ]
        for number, wanted in enumerate(stages):
            for name, kind in wanted:
                existing = out.sets.get(name)
                if existing is not None and existing.type != kind:
                    error = _create_failed(name, kind)
                    if number <= TARGET_STAGE:
                        raise PolicyRejected(error)
                    created = {wanted_set for stage in stages[:number] for wanted_set in stage}
                    plan.selectors = [s for s in plan.selectors if (s.set_name, s.set_type) in created]
                    plan.ipblocks = []
                    plan.rules = []
                    return error
            for name, kind in wanted:
                out.sets.setdefault(name, IpSet(name, kind))
        for block in plan.ipblocks:
            if block.except_set:
                members = out.sets[block.except_set].members
                for cidr in block.excepts:
                    members.setdefault(cidr, f"excepted from {block.cidr}")
        return None

    def _fill_selector_sets(
        self,
        out: Dataplane,
        plans: list[tuple[str, PolicyPlan]],
        pods: list[dict[str, Any]],
        ns_labels: dict[str, dict[str, str]],
        world: World,
    ) -> None:
        specs = {s.set_name: s for _, plan in plans for s in plan.selectors}
        specs.update({s.set_name: s for s in (self._pod_selector({}, ns) for ns in ns_labels)})
        for spec in specs.values():
            members = out.sets[spec.set_name].members
            if spec.set_type == "list:set":
                for ns, labels in ns_labels.items():
                    if ns in world.namespaces and spec.namespace and spec.namespace.matches(labels):
                        members[set_name(f"{ns}:")] = f"namespace: {ns}"
                continue
            for pod in pods:
                pod_ns = obj_key(pod)[0]
                if spec.ns_name and pod_ns != spec.ns_name:
                    continue
                if spec.namespace is not None and not spec.namespace.matches(ns_labels.get(pod_ns, {})):
                    continue
                if spec.pod is not None and spec.pod.matches(labels_of(pod)):
                    members[str(pod_ip(pod))] = pod_comment(pod)

    def _fill_default_allow(
        self, out: Dataplane, plans: list[tuple[str, PolicyPlan]], pods: list[dict[str, Any]], world: World
    ) -> None:
        for pod in pods:
            ns = obj_key(pod)[0]
            for direction, name in self._default_allow_sets(ns).items():
                isolated = any(
                    direction in types and target.pod is not None and target.pod.matches(labels_of(pod))
                    for plan_ns, plan in plans
                    if plan_ns == ns
                    for target, types in plan.targets
                )
                if not isolated:
                    out.sets[name].members[str(pod_ip(pod))] = pod_comment(pod)

    def _default_chain_rules(self, out: Dataplane, ns: str, ns_obj: Mapping[str, Any]) -> None:
        """The namespace's default-allow rules, per version: 2.0.x all its pods unless the namespace is
        DefaultDeny; 2.1-2.3 the one default-allow set; 2.4+ the ingress default-allow set, and the egress
        default-allow set in WEAVE-NPC-EGRESS-DEFAULT (mark, then RETURN)."""
        sets = self._default_allow_sets(ns)
        if self.profile.legacy:
            if not _legacy_default_deny(ns_obj):
                out.add_rule(dp.DEFAULT, _default_allow(set_name(f"{ns}:"), "dst", "isolation", ns, "ACCEPT"))
            return
        if not self.profile.egress:
            out.add_rule(dp.DEFAULT, _default_allow(sets[INGRESS], "dst", "isolation", ns, "ACCEPT"))
            return
        out.add_rule(dp.DEFAULT, _default_allow(sets[INGRESS], "dst", "ingress isolation", ns, "ACCEPT"))
        for target in (dp.EGRESS_ACCEPT, "RETURN"):
            rule = _default_allow(sets[EGRESS], "src", "egress isolation", ns, target)
            out.add_rule(dp.EGRESS_DEFAULT, rule)

    def _static_chains(self, out: Dataplane, egress_drop: bool) -> None:
        stateless = "no-established-accept" in self.faults
        new = () if stateless else ("-m", "state", "--state", "NEW")
        established = [] if stateless else [("-m", "state", "--state", "RELATED,ESTABLISHED", "-j", "ACCEPT")]
        main: list[Rule] = [*established, ("-d", "224.0.0.0/4", "-j", "ACCEPT")]
        if self.profile.physdev:
            main.append(
                ("-m", "physdev", "--physdev-out", "vethwe-bridge", "--physdev-is-bridged", "-j", "ACCEPT")
            )
        main += [(*new, "-j", dp.DEFAULT), (*new, "-j", dp.INGRESS)]
        if not self.profile.physdev:
            main.append(("-m", "set", "!", "--match-set", dp.LOCAL_PODS_SET, "dst", "-j", "ACCEPT"))
        if "reject-instead-of-drop" in self.faults:
            main.append((*new, "-j", "REJECT", "--reject-with", "icmp-host-prohibited"))
        out.chains[dp.MAIN] = main
        out.chains[dp.DEFAULT] = []
        out.chains[dp.INGRESS] = []
        if not self.profile.egress:
            return
        not_marked = ("-m", "mark", "!", "--mark", dp.EGRESS_MARK)
        egress: list[Rule] = [
            *[("-m", "state", "--state", "RELATED,ESTABLISHED", "-j", "ACCEPT")][: len(established)],
            ("-m", "physdev", "--physdev-in", "vethwe-bridge", "--physdev-is-bridged", "-j", "RETURN"),
            ("-m", "addrtype", "--dst-type", "LOCAL", "-j", "RETURN"),
            ("-d", "224.0.0.0/4", "-j", "RETURN"),
            (*new, "-j", dp.EGRESS_DEFAULT),
            (*new, *not_marked, "-j", dp.EGRESS_CUSTOM),
        ]
        if egress_drop and "egress-not-enforced" not in self.faults:
            if "reject-instead-of-drop" in self.faults:
                egress.append((*not_marked, "-j", "REJECT", "--reject-with", "icmp-host-prohibited"))
            else:
                egress.append((*new, *not_marked, "-j", "NFLOG", "--nflog-group", dp.NFLOG_GROUP))
                egress.append((*not_marked, "-j", "DROP"))
        out.chains[dp.EGRESS] = egress
        out.chains[dp.EGRESS_DEFAULT] = []
        out.chains[dp.EGRESS_CUSTOM] = []
        out.chains[dp.EGRESS_ACCEPT] = [("-j", "MARK", "--set-xmark", dp.EGRESS_MARK)]


def _create_failed(name: str, kind: str) -> str:
    """weave-npc's error for an `ipset create` whose name exists with another type."""
    options = " size 1024 comment" if kind == "list:set" else " comment"
    return (
        f"ipset [create {name} {kind}{options}] failed: ipset v7.17: Set cannot be created: "
        "set with the same name already exists"
    )


def _legacy_default_deny(ns_obj: Mapping[str, Any]) -> bool:
    raw = ((ns_obj.get("metadata") or {}).get("annotations") or {}).get(LEGACY_ANNOTATION)
    if not raw:
        return False
    try:
        return json.loads(raw).get("ingress", {}).get("isolation") == "DefaultDeny"
    except (ValueError, AttributeError):
        return False


def _default_allow(ipset: str, direction: str, what: str, ns: str, target: str) -> Rule:
    """`-m set --match-set SET src|dst -m comment "DefaultAllow WHAT for namespace: NS" -j TARGET`."""
    comment = f"DefaultAllow {what} for namespace: {ns}"
    return ("-m", "set", "--match-set", ipset, direction, "-m", "comment", "--comment", comment, "-j", target)
