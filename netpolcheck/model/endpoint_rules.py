"""Rules decided by the endpoints of a cell, not by a policy rule, each written once.

The spec's "not policed" directions (an endpoint outside the pod network, a hostNetwork pod), the
profile's endpoint-level deviations (multicast and host-to-local-pod allowed outright, egress to the
own node not policed) and 2.0.x's legacy isolation by namespace annotation. Each is a bitset over
destinations per source (or a mask of isolated pods), built from the endpoint index: the engine and
`RowReasons` use whole rows, the per-cell evaluator and `ReasonWriter` test one bit of the same masks.
"""

from __future__ import annotations

from netpolcheck.model import profiles as dev
from netpolcheck.model import wording
from netpolcheck.model.effective import legacy_default_deny
from netpolcheck.model.index import EndpointIndex, union
from netpolcheck.model.objects import Endpoint, Pod
from netpolcheck.model.profiles import Profile
from netpolcheck.model.state import State


class EndpointRules:
    def __init__(self, state: State, profile: Profile, index: EndpointIndex) -> None:
        self.state = state
        self.profile = profile
        self.index = index
        self.legacy = profile.has(dev.LEGACY_ISOLATION)
        self._legacy_namespaces = {
            ns.name for ns in state.namespaces.values() if self.legacy and legacy_default_deny(ns.annotations)
        }
        # pods isolated for ingress by their namespace's annotation (legacy semantics only)
        self.legacy_isolated = union(index.by_namespace.get(name, 0) for name in self._legacy_namespaces)

    # -- spec ----------------------------------------------------------------------------------
    @staticmethod
    def unpoliced(direction: str, endpoint: Endpoint) -> str:
        """Why `endpoint` (the destination for ingress, the source for egress) is never policed, or ""."""
        if not isinstance(endpoint, Pod):
            return wording.OUTSIDE.format("destination" if direction == "ingress" else "source")
        if endpoint.host_network:
            return wording.HOST_NETWORK
        return ""

    # -- legacy isolation ----------------------------------------------------------------------
    def legacy_isolators(self, pod: Pod) -> tuple[str, ...]:
        """What isolates `pod` for ingress under legacy semantics (its namespace annotation), if anything."""
        return (wording.legacy_isolator(pod.namespace),) if pod.namespace in self._legacy_namespaces else ()

    # -- endpoint-level deviations -------------------------------------------------------------
    def decided(self, s: int) -> list[tuple[int, str]]:
        """(destinations, deviation id) of deviations allowing cells of source s outright; first wins."""
        index, profile = self.index, self.profile
        found: list[tuple[int, str]] = []
        if profile.has(dev.MULTICAST_ALLOWED) and index.multicast:
            found.append((index.multicast, dev.MULTICAST_ALLOWED))
        src = index.endpoints[s]
        if profile.has(dev.HOST_TO_LOCAL_POD) and isinstance(src, Pod) and src.host_network and src.node:
            found.append((index.by_node.get(src.node, 0) & index.selectable, dev.HOST_TO_LOCAL_POD))
        return found

    def decided_cell(self, s: int, d: int) -> str | None:
        """The deviation that allows s -> d outright, if one does."""
        return next((dev_id for mask, dev_id in self.decided(s) if mask >> d & 1), None)

    def own_node(self, s: int) -> int:
        """Destinations whose egress from s is not policed (egress-to-own-node: the node's host pods)."""
        src = self.index.endpoints[s]
        if (
            not self.profile.has(dev.EGRESS_TO_OWN_NODE)
            or not isinstance(src, Pod)
            or src.host_network
            or src.node is None
        ):
            return 0
        return self.index.host_by_node.get(src.node, 0)
