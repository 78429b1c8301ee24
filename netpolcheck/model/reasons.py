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
HALF_ID_STRIDE = 1 << 32  # key of an (egress, ingress) decision pair: egress * stride + ingress


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


class RowReasons:
    """Every reason of a matrix, row by row, without per-cell rule scans.

    The egress half of a reason depends only on (source, the first egress rule matching the
    destination) and the ingress half only on (destination, the first ingress rule matching the
    source); each half is computed once per endpoint by walking its selecting rules with bitsets,
    and each distinct (egress, ingress) pair is turned into a string once. The strings equal
    `ReasonWriter.reason` and the evaluator's `CellVerdict.reason` (tests hold all three together).
    """

    def __init__(self, matrix: ExpectedMatrix) -> None:
        self.matrix = matrix
        self._writer = ReasonWriter(matrix)
        self._halves: list[tuple[bool, str]] = []  # decision id -> (isolated, text)
        self._half_ids: dict[tuple[bool, str], int] = {}
        self._joined: dict[int, str] = {}
        # [source][destination] ingress decision ids of the probe last asked for (n^2 ids: one probe kept)
        self._ingress_rows: dict[int, list[list[int]]] = {}

    def _half(self, isolated: bool, text: str) -> int:
        key = (isolated, text)
        found = self._half_ids.get(key)
        if found is None:
            found = self._half_ids[key] = len(self._halves)
            self._halves.append(key)
        return found

    def _join(self, egress: int, ingress: int) -> str:
        e_isolated, e_text = self._halves[egress]
        i_isolated, i_text = self._halves[ingress]
        return f"{e_text}; {i_text}" if e_isolated or i_isolated else "not isolated"

    def _ingress_default(self, d: int) -> tuple[int, bool]:
        """The decision for sources no rule admits, and whether the destination is isolated."""
        writer, dst = self._writer, self.matrix.state.endpoints[d]
        if not isinstance(dst, Pod):
            return self._half(
                False, writer._direction("ingress", (), "", OUTSIDE.format("destination"))
            ), False
        if dst.host_network:
            return self._half(False, writer._direction("ingress", (), "", HOST_NETWORK)), False
        if self.matrix.evaluator.legacy:
            ns = self.matrix.state.namespaces[dst.namespace]
            isolated: tuple[str, ...] = (
                (f"namespace {ns.name} annotation DefaultDeny",)
                if legacy_default_deny(ns.annotations)
                else ()
            )
        else:
            targets = self.matrix.targets
            isolated = tuple(targets[q][0].key for q in writer.selecting[d] if targets[q][0].isolates_ingress)
        return self._half(bool(isolated), writer._direction("ingress", isolated, "", "")), bool(isolated)

    def _ingress(self, p: int) -> list[list[int]]:
        """Ingress decision ids as rows[source][destination], built destination by destination."""
        rows = self._ingress_rows.get(p)
        if rows is not None:
            return rows
        n, pm, targets = len(self.matrix.keys), self.matrix.probes[p], self.matrix.targets
        defaults = [self._ingress_default(d) for d in range(n)]
        first = [decision for decision, _ in defaults]
        rows = [list(first) for _ in range(n)]
        everyone = (1 << n) - 1
        for d, (_, isolated) in enumerate(defaults):
            if not isolated:
                continue
            remaining = everyone
            for position in self._writer.selecting[d]:
                for label, sources, dests in pm.ingress_rules[position]:
                    hit = sources & remaining if dests >> d & 1 else 0
                    if hit:
                        decision = self._half(True, f"ingress allowed by {targets[position][0].key} {label}")
                        for s in bits(hit):
                            rows[s][d] = decision
                        remaining ^= hit
        self._ingress_rows = {p: rows}
        return rows

    def _egress(self, s: int, p: int) -> list[int]:
        """Egress decision ids of source s, indexed by destination."""
        writer, n = self._writer, len(self.matrix.keys)
        src = self.matrix.state.endpoints[s]
        if not isinstance(src, Pod):
            return [self._half(False, writer._direction("egress", (), "", OUTSIDE.format("source")))] * n
        if src.host_network:
            return [self._half(False, writer._direction("egress", (), "", HOST_NETWORK))] * n
        targets = self.matrix.targets
        isolated = tuple(targets[q][0].key for q in writer.selecting[s] if targets[q][0].isolates_egress)
        row = [self._half(bool(isolated), writer._direction("egress", isolated, "", ""))] * n
        own_node = 0
        if self.matrix.profile.has(dev.EGRESS_TO_OWN_NODE) and src.node is not None:
            own_node = self.matrix.index.host_by_node.get(src.node, 0)
            decision = self._half(
                False, writer._direction("egress", (), "", f"not policed ({dev.EGRESS_TO_OWN_NODE})")
            )
            for d in bits(own_node):
                row[d] = decision
        if isolated:
            remaining = ((1 << n) - 1) & ~own_node
            for position in writer.selecting[s]:
                for label, sources, dests in self.matrix.probes[p].egress_rules[position]:
                    hit = dests & remaining if sources >> s & 1 else 0
                    if hit:
                        decision = self._half(True, f"egress allowed by {targets[position][0].key} {label}")
                        for d in bits(hit):
                            row[d] = decision
                        remaining ^= hit
        return row

    def _overrides(self, s: int) -> list[tuple[int, str]]:
        """(destinations, reason) of the implementation deviations that decide a cell outright, first wins."""
        index, profile, src = self.matrix.index, self.matrix.profile, self.matrix.state.endpoints[s]
        found: list[tuple[int, str]] = []
        if profile.has(dev.MULTICAST_ALLOWED) and index.multicast:
            found.append((index.multicast, f"allowed: {dev.MULTICAST_ALLOWED} (implementation deviation)"))
        if (
            profile.has(dev.HOST_TO_LOCAL_POD)
            and isinstance(src, Pod)
            and src.host_network
            and src.node is not None
        ):
            local = index.by_node.get(src.node, 0) & index.selectable
            found.append((local, f"allowed: {dev.HOST_TO_LOCAL_POD} (implementation deviation)"))
        return found

    def row(self, s: int, p: int) -> list[str]:
        """The reason of every cell s -> d on probe p, indexed by d (self and unprobed cells included)."""
        ingress_row = self._ingress(p)[s]
        joined, stride = self._joined, HALF_ID_STRIDE
        reasons: list[str] = []
        append = reasons.append
        for e, i in zip(self._egress(s, p), ingress_row, strict=True):
            key = e * stride + i
            text = joined.get(key)
            if text is None:
                text = joined[key] = self._join(e, i)
            append(text)
        decided = 0
        for dests, text in self._overrides(s):
            for d in bits(dests & ~decided):
                reasons[d] = text
            decided |= dests
        return reasons
