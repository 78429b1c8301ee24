"""Documented deviations the model cannot predict, and whether a state triggers them.

A cell that depends on one of these is not a clean expectation: the explanation says so, so a
suite can report it as a known hazard instead of a verdict.
"""

from __future__ import annotations

from netpolcheck.model import profiles as dev
from netpolcheck.model.policy import Policy
from netpolcheck.model.profiles import Deviation, Profile
from netpolcheck.model.state import State


def _named_port_policies(policies: tuple[Policy, ...]) -> list[str]:
    return [p.key for p in policies if p.named_ports]


def _clashing_peer_policies(policies: tuple[Policy, ...]) -> list[str]:
    """Policies with `{namespaceSelector: {}}` when another has `{namespaceSelector: {}, podSelector: {}}`."""
    ns_only, both = set(), set()
    for policy in policies:
        for rule in policy.ingress + policy.egress:
            for peer in rule.peers:
                if peer.namespace_selector is None or not peer.namespace_selector.is_empty:
                    continue
                if peer.pod_selector is None:
                    ns_only.add(policy.key)
                elif peer.pod_selector.is_empty:
                    both.add(policy.key)
    return sorted(ns_only | both) if ns_only and both else []


def unpredictable(state: State, profile: Profile) -> list[tuple[Deviation, str]]:
    """(deviation, which policies trigger it) for every unmodelled deviation this state triggers."""
    found = []
    for deviation in profile.deviations:
        if deviation.modelled:
            continue
        if deviation.id == dev.NAMED_PORT_UNMODELLED:
            keys = _named_port_policies(state.policies)
        elif deviation.id == dev.IPSET_NAME_CLASH:
            keys = _clashing_peer_policies(state.policies)
        else:
            keys = []
        if keys:
            found.append((deviation, "policies " + ", ".join(keys)))
    return found
