"""`reason` strings from the engine's bitsets, a few bit tests per cell.

They must read exactly as the per-cell evaluator's `CellVerdict.reason` (a property test holds the two
together); the evaluator stays the source of full explanations.
"""

from __future__ import annotations

from netpolcheck.model import profiles as dev
from netpolcheck.model.cell import MULTICAST
from netpolcheck.model.effective import legacy_default_deny
from netpolcheck.model.engine import ExpectedMatrix, ProbeMatrix, RuleMask, bits
from netpolcheck.model.objects import Endpoint, Pod

OUTSIDE = "not policed ({} outside the pod network)"
HOST_NETWORK = "not policed (hostNetwork pods are never selected)"


class ReasonWriter:
    def __init__(self, matrix: ExpectedMatrix) -> None:
        self.matrix = matrix
        self.endpoints = matrix.state.endpoints
        self.profile = matrix.profile
        self.selecting: list[list[int]] = [[] for _ in self.endpoints]  # positions in matrix.targets
        for position, (_, targets) in enumerate(matrix.targets):
            for i in bits(targets):
                self.selecting[i].append(position)

    def _first_match(
        self, positions: list[int], rules: tuple[tuple[RuleMask, ...], ...], s: int, d: int
    ) -> str:
        for position in positions:
            for label, sources, dests in rules[position]:
                if sources >> s & 1 and dests >> d & 1:
                    return f"{self.matrix.targets[position][0].key} {label}"
        return ""

    def _direction(self, name: str, isolated: tuple[str, ...], match: str, note: str) -> str:
        if not isolated:
            return f"{name} {note or 'not isolated'}"
        if match:
            return f"{name} allowed by {match}"
        return f"{name} denied: isolated by {', '.join(isolated)} and no rule allows it"

    def _ingress(self, pm: ProbeMatrix, s: int, d: int) -> tuple[bool, str]:
        dst = self.endpoints[d]
        if not isinstance(dst, Pod):
            return False, self._direction("ingress", (), "", OUTSIDE.format("destination"))
        if dst.host_network:
            return False, self._direction("ingress", (), "", HOST_NETWORK)
        positions = self.selecting[d]
        if self.matrix.evaluator.legacy:
            ns = self.matrix.state.namespaces[dst.namespace]
            isolated: tuple[str, ...] = (
                (f"namespace {ns.name} annotation DefaultDeny",)
                if legacy_default_deny(ns.annotations)
                else ()
            )
        else:
            isolated = tuple(
                self.matrix.targets[p][0].key for p in positions if self.matrix.targets[p][0].isolates_ingress
            )
        match = self._first_match(positions, pm.ingress_rules, s, d) if isolated else ""
        return bool(isolated), self._direction("ingress", isolated, match, "")

    def _egress(self, pm: ProbeMatrix, s: int, d: int) -> tuple[bool, str]:
        src, dst = self.endpoints[s], self.endpoints[d]
        if not isinstance(src, Pod):
            return False, self._direction("egress", (), "", OUTSIDE.format("source"))
        if src.host_network:
            return False, self._direction("egress", (), "", HOST_NETWORK)
        if _own_node(self.profile.has(dev.EGRESS_TO_OWN_NODE), src, dst):
            return False, self._direction("egress", (), "", f"not policed ({dev.EGRESS_TO_OWN_NODE})")
        positions = self.selecting[s]
        isolated = tuple(
            self.matrix.targets[p][0].key for p in positions if self.matrix.targets[p][0].isolates_egress
        )
        match = self._first_match(positions, pm.egress_rules, s, d) if isolated else ""
        return bool(isolated), self._direction("egress", isolated, match, "")

    def _override(self, src: Endpoint, dst: Endpoint) -> str | None:
        if self.profile.has(dev.MULTICAST_ALLOWED) and dst.ip in MULTICAST:
            return dev.MULTICAST_ALLOWED
        if (
            self.profile.has(dev.HOST_TO_LOCAL_POD)
            and isinstance(src, Pod)
            and src.host_network
            and isinstance(dst, Pod)
            and not dst.host_network
            and src.node is not None
            and src.node == dst.node
        ):
            return dev.HOST_TO_LOCAL_POD
        return None

    def reason(self, s: int, d: int, p: int) -> str:
        override = self._override(self.endpoints[s], self.endpoints[d])
        if override is not None:
            return f"allowed: {override} (implementation deviation)"
        pm = self.matrix.probes[p]
        egress_isolated, egress = self._egress(pm, s, d)
        ingress_isolated, ingress = self._ingress(pm, s, d)
        if not egress_isolated and not ingress_isolated:
            return "not isolated"
        return f"{egress}; {ingress}"


def _own_node(enabled: bool, src: Pod, dst: Endpoint) -> bool:
    return (
        enabled
        and isinstance(dst, Pod)
        and dst.host_network
        and dst.node is not None
        and dst.node == src.node
    )
