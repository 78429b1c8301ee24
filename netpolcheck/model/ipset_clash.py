"""Weave's ipset name clash (docs/weave-facts.md#ipset-name-clash): which policies lose it, and how.

A namespace-only peer wants a list:set keyed `":" + namespaceSelector`; a pod+namespace peer (2.6.0+)
a hash:ip keyed `":" + namespaceSelector + podSelector`, the two strings joined with nothing between.
So `{namespaceSelector: S, podSelector: {}}` (and `{namespaceSelector: {}, podSelector: S}`) want the
name of `{namespaceSelector: S}` with the other type. weave-npc provisions a policy's sets in a fixed
order (namespace-selector sets, then its target and pod-selector sets, which isolate the targets, then
the pod+namespace sets) and the policies in the order it sees them (the STATE's order); the first
create that finds the name held by the other type stops that policy there.

The model compares selectors, not weave's selector strings: `matchLabels {k: v}` and `k In (v)` are
one selector here but two strings to weave (docs/model.md, limits).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from netpolcheck.model.policy import Policy
from netpolcheck.model.selectors import Selector

# How a policy loses: before its targets are isolated (not enforced at all: fail open), or after
# (its targets isolated, none of its allow rules installed: fail closed).
AT_NAMESPACE_SETS = "namespace-sets"
AT_POD_NAMESPACE_SETS = "pod-namespace-sets"

_LIST, _HASH = "list:set", "hash:ip"


def _set_keys(policy: Policy) -> tuple[set[Selector], set[Selector]]:
    """(list:set keys of its namespace-only peers, hash:ip keys of its pod+namespace peers that can
    share a name with one), each key the namespace selector whose list:set name it takes."""
    namespace_sets: set[Selector] = set()
    pod_namespace_sets: set[Selector] = set()
    for rule in policy.ingress + policy.egress:
        for peer in rule.peers:
            nsel, psel = peer.namespace_selector, peer.pod_selector
            if nsel is None or peer.ip_block is not None:
                continue
            if psel is None:
                namespace_sets.add(nsel)
            elif psel.is_empty:
                pod_namespace_sets.add(nsel)
            elif nsel.is_empty:
                pod_namespace_sets.add(psel)
    return namespace_sets, pod_namespace_sets


def clash_losers(policies: Iterable[Policy], not_provisioned: Callable[[Policy], bool]) -> dict[str, str]:
    """Policy key -> where it lost (AT_*), walking `policies` in the order weave-npc sees them.

    `not_provisioned(policy)`: the implementation rejects the policy before creating any set (a named
    port from 2.6.3), so it claims no name.
    """
    kinds: dict[Selector, str] = {}
    lost: dict[str, str] = {}
    for policy in policies:
        if not_provisioned(policy):
            continue
        namespace_sets, pod_namespace_sets = _set_keys(policy)
        if any(kinds.get(key) == _HASH for key in namespace_sets):
            lost[policy.key] = AT_NAMESPACE_SETS
            continue
        for key in namespace_sets:
            kinds.setdefault(key, _LIST)
        if any(kinds.get(key) == _LIST for key in pod_namespace_sets):
            lost[policy.key] = AT_POD_NAMESPACE_SETS
            continue
        for key in pod_namespace_sets:
            kinds.setdefault(key, _HASH)
    return lost
