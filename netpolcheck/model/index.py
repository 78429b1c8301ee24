"""Endpoints as bitsets (bit i = state.endpoints[i]) by label, namespace, node, named port and IP block.

The engine, the per-cell evaluator and the endpoint rules all ask this one index.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator

from netpolcheck.model.effective import EffectivePeer, EffectiveRule
from netpolcheck.model.objects import Pod
from netpolcheck.model.policy import IPBlock
from netpolcheck.model.selectors import Requirement, Selector
from netpolcheck.model.state import State

MULTICAST = ipaddress.ip_network("224.0.0.0/4")


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
            return union(self.by_label.get((req.key, v), 0) for v in req.values)
        if req.operator == "NotIn":
            return self.selectable & ~union(self.by_label.get((req.key, v), 0) for v in req.values)
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
            mask = union(
                self.by_namespace.get(ns.name, 0)
                for ns in self.state.namespaces.values()
                if selector.matches(ns.labels)
            )
            self._ns_selector_cache[selector] = mask
        return mask

    def in_block(self, block: IPBlock) -> int:
        mask = self._ipblock_cache.get(block)
        if mask is None:
            mask = union(1 << i for i, ep in enumerate(self.endpoints) if block.contains(ep.ip))
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
        return self.all if rule.peers is None else union(self.peer(p) for p in rule.peers)


def union(masks: Iterable[int]) -> int:
    out = 0
    for mask in masks:
        out |= mask
    return out
