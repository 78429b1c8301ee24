"""Fault switches: plausible implementation bugs the suite must catch (`--fault NAME`, repeatable)."""

from __future__ import annotations

from collections.abc import Iterable

from netpolcheck.errors import UsageError

FAULTS: dict[str, str] = {
    "ignore-namespace-selector": (
        "namespaceSelector is ignored: such peers select pods of the policy's own namespace"
    ),
    "ignore-except": "ipBlock.except is ignored: the whole CIDR is allowed",
    "reject-instead-of-drop": (
        "denied NEW packets are REJECTed (ICMP host-prohibited) instead of silently dropped"
    ),
    "no-established-accept": (
        "every packet, not only NEW ones, is evaluated: established connections die on a deny"
    ),
    "egress-not-enforced": "egress policies add allow rules but the default egress DROP is never installed",
    "ports-ignored": "rule ports and protocols are ignored: a rule with ports allows every port",
    "match-expressions-ignored": "matchExpressions in every selector are ignored (matchLabels only)",
    "stale-pod-ip": "deleted pods stay in every ipset",
    "policy-delete-ignored": "deleting a NetworkPolicy leaves its rules and sets in place",
    "label-update-ignored": "pod label changes after creation are ignored",
    "namespace-label-update-ignored": "namespace label changes after creation are ignored",
    "remote-pods-ignored": (
        "ipsets only hold pods of this node (the 1.9.6 regression): remote peers never match"
    ),
}


def parse_faults(names: Iterable[str]) -> frozenset[str]:
    chosen = frozenset(names)
    unknown = sorted(chosen - FAULTS.keys())
    if unknown:
        raise UsageError(f"unknown fault {', '.join(unknown)}; known: {', '.join(FAULTS)}")
    return chosen
