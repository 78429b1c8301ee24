"""`reason` strings from the engine's bitsets, a few bit tests per cell.

They must read exactly as the per-cell evaluator's `CellVerdict.reason` (a property test holds the two
together); both word them with `wording` and take endpoint rules from `endpoint_rules`, so they can
differ only in which policy rule they find first. The evaluator stays the source of full explanations.
"""

from __future__ import annotations

from netpolcheck.model import profiles as dev
from netpolcheck.model import wording
from netpolcheck.model.engine import ExpectedMatrix, ProbeMatrix, RuleMask
from netpolcheck.model.index import bits
from netpolcheck.model.objects import Pod

HALF_ID_STRIDE = 1 << 32  # key of an (egress, ingress) decision pair: egress * stride + ingress
OWN_NODE = wording.not_policed_by(dev.EGRESS_TO_OWN_NODE)


class _Selecting:
    """Which policies (positions in matrix.targets) select each endpoint, and what isolates it."""

    def __init__(self, matrix: ExpectedMatrix) -> None:
        self.matrix = matrix
        self.positions: list[list[int]] = [[] for _ in matrix.keys]
        for position, (_, targets) in enumerate(matrix.targets):
            for i in bits(targets):
                self.positions[i].append(position)

    def ingress_isolators(self, d: int) -> tuple[str, ...]:
        dst = self.matrix.state.endpoints[d]
        assert isinstance(dst, Pod)
        if self.matrix.rules.legacy:
            return self.matrix.rules.legacy_isolators(dst)
        targets = self.matrix.targets
        return tuple(targets[q][0].isolator for q in self.positions[d] if targets[q][0].isolates_ingress)

    def egress_isolators(self, s: int) -> tuple[str, ...]:
        targets = self.matrix.targets
        return tuple(targets[q][0].isolator for q in self.positions[s] if targets[q][0].isolates_egress)


class ReasonWriter:
    """The reason of one cell at a time."""

    def __init__(self, matrix: ExpectedMatrix) -> None:
        self.matrix = matrix
        self.endpoints = matrix.state.endpoints
        self.selecting = _Selecting(matrix)

    def _first_match(
        self, positions: list[int], rules: tuple[tuple[RuleMask, ...], ...], s: int, d: int
    ) -> str:
        for position in positions:
            for label, sources, dests in rules[position]:
                if sources >> s & 1 and dests >> d & 1:
                    return f"{self.matrix.targets[position][0].key} {label}"
        return ""

    def _ingress(self, pm: ProbeMatrix, s: int, d: int) -> tuple[bool, str]:
        note = self.matrix.rules.unpoliced("ingress", self.endpoints[d])
        if note:
            return False, wording.direction("ingress", (), "", note)
        isolated = self.selecting.ingress_isolators(d)
        match = self._first_match(self.selecting.positions[d], pm.ingress_rules, s, d) if isolated else ""
        return bool(isolated), wording.direction("ingress", isolated, match)

    def _egress(self, pm: ProbeMatrix, s: int, d: int) -> tuple[bool, str]:
        note = self.matrix.rules.unpoliced("egress", self.endpoints[s])
        if not note and self.matrix.rules.own_node(s) >> d & 1:
            note = OWN_NODE
        if note:
            return False, wording.direction("egress", (), "", note)
        isolated = self.selecting.egress_isolators(s)
        match = self._first_match(self.selecting.positions[s], pm.egress_rules, s, d) if isolated else ""
        return bool(isolated), wording.direction("egress", isolated, match)

    def reason(self, s: int, d: int, p: int) -> str:
        override = self.matrix.rules.decided_cell(s, d)
        if override is not None:
            return wording.decided_by(override)
        pm = self.matrix.probes[p]
        return wording.cell(*self._egress(pm, s, d), *self._ingress(pm, s, d))


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
        self.selecting = _Selecting(matrix)
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
        return wording.cell(*self._halves[egress], *self._halves[ingress])

    def _ingress_default(self, d: int) -> tuple[int, bool]:
        """The decision for sources no rule admits, and whether the destination is isolated."""
        note = self.matrix.rules.unpoliced("ingress", self.matrix.state.endpoints[d])
        if note:
            return self._half(False, wording.direction("ingress", (), "", note)), False
        isolated = self.selecting.ingress_isolators(d)
        return self._half(bool(isolated), wording.direction("ingress", isolated)), bool(isolated)

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
            for position in self.selecting.positions[d]:
                for label, sources, dests in pm.ingress_rules[position]:
                    hit = sources & remaining if dests >> d & 1 else 0
                    if hit:
                        decision = self._half(
                            True, wording.allowed_by("ingress", targets[position][0].key, label)
                        )
                        for s in bits(hit):
                            rows[s][d] = decision
                        remaining ^= hit
        self._ingress_rows = {p: rows}
        return rows

    def _egress(self, s: int, p: int) -> list[int]:
        """Egress decision ids of source s, indexed by destination."""
        n = len(self.matrix.keys)
        note = self.matrix.rules.unpoliced("egress", self.matrix.state.endpoints[s])
        if note:
            return [self._half(False, wording.direction("egress", (), "", note))] * n
        targets = self.matrix.targets
        isolated = self.selecting.egress_isolators(s)
        row = [self._half(bool(isolated), wording.direction("egress", isolated))] * n
        own_node = self.matrix.rules.own_node(s)
        if own_node:
            decision = self._half(False, wording.direction("egress", (), "", OWN_NODE))
            for d in bits(own_node):
                row[d] = decision
        if isolated:
            remaining = ((1 << n) - 1) & ~own_node
            for position in self.selecting.positions[s]:
                for label, sources, dests in self.matrix.probes[p].egress_rules[position]:
                    hit = dests & remaining if sources >> s & 1 else 0
                    if hit:
                        decision = self._half(
                            True, wording.allowed_by("egress", targets[position][0].key, label)
                        )
                        for d in bits(hit):
                            row[d] = decision
                        remaining ^= hit
        return row

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
        for dests, dev_id in self.matrix.rules.decided(s):
            text = wording.decided_by(dev_id)
            for d in bits(dests & ~decided):
                reasons[d] = text
            decided |= dests
        return reasons
