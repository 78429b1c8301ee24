"""The expected truth tables of `netpolcheck expect --format table`, one row at a time.

Marks come straight from the engine's bitsets, so a table of any size is written row by row in
memory proportional to one row (plus the matrices), never as a document of every cell. Cells where
the profile's verdict differs from the Kubernetes spec get their own marks, and the legend says which
deviations explain them; blank cells say why they are blank.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

from netpolcheck.model.deviations import DeviationFinder
from netpolcheck.model.index import bits
from netpolcheck.model.objects import Pod, Probe
from netpolcheck.model.profiles import Profile
from netpolcheck.model.state import State

ALLOWED, DENIED, SELF, BLANK = ".", "X", "-", " "
ALLOWED_NOT_SPEC, DENIED_NOT_SPEC = "+", "!"
_FROM_BITS = str.maketrans("01", DENIED + ALLOWED)


@dataclass
class ExpectedTable:
    """One probe's table: `rows()` yields (row name, marks in column order) once; `legend()` after it."""

    title: str
    columns: tuple[str, ...]
    _owner: TableBuilder
    _p: int
    _counts: Counter[str] = field(default_factory=Counter)  # deviation id -> differing cells
    _marks: Counter[str] = field(default_factory=Counter)  # + or ! -> cells

    def rows(self) -> Iterator[tuple[str, list[str]]]:
        for s in self._owner.order:
            marks = self._owner.row_marks(s, self._p, self._counts, self._marks)
            yield self._owner.keys[s], [marks[i] for i in self._owner.order]

    def legend(self) -> list[str]:
        return self._owner.legend(self._p, self._marks, self._counts)


class TableBuilder:
    """The tables of a state under a profile: one per probe, rows and columns in name order."""

    def __init__(self, state: State, profile: Profile) -> None:
        self.state = state
        self.profile = profile
        self.finder = DeviationFinder(state, profile)
        self.matrix = self.finder.matrix
        endpoints = state.endpoints
        self.keys = [ep.key for ep in endpoints]
        self.order = sorted(range(len(endpoints)), key=self.keys.__getitem__)
        self.externals = sum(1 << i for i, ep in enumerate(endpoints) if not isinstance(ep, Pod))
        self.everyone = (1 << len(endpoints)) - 1

    def tables(self) -> Iterator[ExpectedTable]:
        columns = tuple(self.keys[i] for i in self.order)
        for p, pm in enumerate(self.matrix.probes):
            yield ExpectedTable(f"expected {_title(pm.probe)}", columns, self, p)

    def row_marks(self, s: int, p: int, counts: Counter[str], differing: Counter[str]) -> list[str]:
        """Marks of row s indexed like state.endpoints; counts differing cells by mark and deviation."""
        n = len(self.keys)
        pm = self.matrix.probes[p]
        allowed = pm.allowed[s]
        marks = list(format(allowed, f"0{n}b")[::-1].translate(_FROM_BITS)) if n else []
        blank = self.everyone & ~pm.probed
        if self.externals >> s & 1:
            blank |= self.externals
        if self.profile.deviations:
            explained = self.finder.explain_row(s, p)
            for d in bits(self.finder.differing(s, p) & pm.probed & ~blank & ~(1 << s)):
                marks[d] = mark = ALLOWED_NOT_SPEC if allowed >> d & 1 else DENIED_NOT_SPEC
                differing[mark] += 1
                counts.update(explained.get(d, ()))
        for d in bits(blank):
            marks[d] = BLANK
        marks[s] = SELF
        return marks

    def legend(self, p: int, marks: Counter[str], counts: Counter[str]) -> list[str]:
        lines = [f"({ALLOWED} allowed   {DENIED} denied   {SELF} self)"]
        if marks[ALLOWED_NOT_SPEC] or marks[DENIED_NOT_SPEC]:
            lines.append(
                f"({ALLOWED_NOT_SPEC} allowed under {self.profile.name} where the Kubernetes spec denies "
                f"({marks[ALLOWED_NOT_SPEC]} cells)   {DENIED_NOT_SPEC} denied where the spec allows "
                f"({marks[DENIED_NOT_SPEC]} cells); explained by:)"
            )
            for dev_id, count in counts.most_common():
                lines.append(f"  {dev_id} ({count} cells): {self.profile.deviation(dev_id).reason}")
        pm = self.matrix.probes[p]
        unprobed = len(self.keys) - pm.probed.bit_count()
        if unprobed and isinstance(pm.probe.port, str):
            lines.append(
                f"(blank column: not probed, the destination has no {pm.probe.protocol} port named "
                f"{pm.probe.port!r} ({unprobed} destinations))"
            )
        if self.externals.bit_count() > 1:
            lines.append(
                "(blank between two externals: traffic outside the cluster, which policies never see)"
            )
        return lines


def _title(probe: Probe) -> str:
    return f"{probe.protocol} {probe.port}"
