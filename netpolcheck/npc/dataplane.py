"""The desired dataplane: ipsets with members and the rules of each WEAVE-NPC* chain."""

from __future__ import annotations

from dataclasses import dataclass, field

Rule = tuple[str, ...]  # iptables arguments after `-A CHAIN`, target included

MAIN = "WEAVE-NPC"
DEFAULT = "WEAVE-NPC-DEFAULT"
INGRESS = "WEAVE-NPC-INGRESS"
EGRESS = "WEAVE-NPC-EGRESS"
EGRESS_DEFAULT = "WEAVE-NPC-EGRESS-DEFAULT"
EGRESS_CUSTOM = "WEAVE-NPC-EGRESS-CUSTOM"
EGRESS_ACCEPT = "WEAVE-NPC-EGRESS-ACCEPT"
EGRESS_MARK = "0x40000/0x40000"
NFLOG_GROUP = "86"
LOCAL_PODS_SET = "weave-local-pods"


@dataclass
class IpSet:
    name: str
    type: str  # hash:ip | hash:net | list:set
    members: dict[str, str] = field(default_factory=dict)  # entry -> comment


@dataclass
class Dataplane:
    sets: dict[str, IpSet] = field(default_factory=dict)
    chains: dict[str, list[Rule]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)  # policies skipped, as weave-npc logs them

    def rules(self, chain: str) -> list[Rule]:
        return self.chains.setdefault(chain, [])

    def add_rule(self, chain: str, rule: Rule) -> None:
        rules = self.rules(chain)
        if rule not in rules:  # weave-npc shares identical rules between policies
            rules.append(rule)
