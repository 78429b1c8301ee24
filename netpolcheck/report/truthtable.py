"""Truth tables per port and protocol (rows = from, columns = to), as plain text and as rich tables.

Symbols follow upstream e2e and Cyclonus: `.` allowed / as expected, `X` blocked / different.
Observed cells distinguish how a connection was answered; difference cells mark documented deviations.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rich.table import Table

from netpolcheck.report.cells import CellKey, ExpectedCell, ObservedCell, Outcome, expected_from_document
from netpolcheck.report.compare import Comparison, wrong_cell_details

SELF = "-"
ABSENT = " "
OBSERVED_SYMBOLS = {
    "allowed": ".",
    "refused": "o",
    "rejected": "R",
    "dropped": "X",
    "unsupported": "u",
    "error": "E",
}
OUTCOME_SYMBOLS = {
    Outcome.OK: ".",
    Outcome.WRONG: "X",
    Outcome.DEVIATION: "d",
    Outcome.MISSING: "?",
    Outcome.UNSUPPORTED: "u",
    Outcome.ERROR: "E",
}
LEGENDS = {
    "expected": ". allowed   X denied",
    "observed": ". allowed   o refused (reached, port closed)   R rejected   X dropped   "
    "u unsupported (not sent)   E probe error   ? not probed",
    "difference": ". as expected   X wrong   d documented deviation   u unsupported (skipped, not passed)   "
    "E probe error   ? not probed",
}


@dataclass(frozen=True)
class TruthTable:
    kind: str  # expected | observed | difference
    group: str  # e.g. "TCP 80"
    rows: tuple[str, ...]
    columns: tuple[str, ...]
    marks: Mapping[tuple[str, str], str]

    @property
    def title(self) -> str:
        return f"{self.kind} {self.group}"

    def mark(self, row: str, column: str) -> str:
        if row == column:
            return SELF
        return self.marks.get((row, column), ABSENT)


def _groups(keys: list[CellKey]) -> dict[str, list[CellKey]]:
    out: dict[str, list[CellKey]] = {}
    for key in sorted(keys):
        out.setdefault(key.group, []).append(key)
    return out


def _endpoints(keys: list[CellKey]) -> tuple[str, ...]:
    return tuple(sorted({k.source for k in keys} | {k.destination for k in keys}))


def _tables(kind: str, marks: Mapping[CellKey, str]) -> list[TruthTable]:
    everything = _endpoints(list(marks))
    return [
        TruthTable(kind, group, everything, everything, {(k.source, k.destination): marks[k] for k in keys})
        for group, keys in _groups(list(marks)).items()
    ]


def expected_tables(cells: Mapping[CellKey, ExpectedCell]) -> list[TruthTable]:
    return _tables("expected", {k: "." if c.allowed else "X" for k, c in cells.items()})


def document_tables(document: dict[str, Any]) -> list[TruthTable]:
    """Expected tables of a `netpolcheck expect` JSON document."""
    return expected_tables(expected_from_document(document))


def observed_tables(cells: Mapping[CellKey, ObservedCell]) -> list[TruthTable]:
    return _tables("observed", {k: OBSERVED_SYMBOLS[c.verdict] for k, c in cells.items()})


def difference_tables(comparison: Comparison) -> list[TruthTable]:
    return _tables("difference", {c.key: OUTCOME_SYMBOLS[c.outcome] for c in comparison.cells})


def stream_plain(
    title: str, columns: Sequence[str], rows: Iterable[tuple[str, Sequence[str]]], legend: Iterable[str]
) -> Iterator[str]:
    """Fixed-width text, one line at a time (each ending in a newline): a table of any size is
    written without being held. Rows are the columns' endpoints (their names set the width);
    `legend` is read after the last row, so it may describe the rows."""
    corner = "from \\ to"
    col_width = max((len(c) for c in columns), default=1)
    width = max([len(corner), *(len(c) for c in columns)])
    yield f"{title}:\n"
    yield corner.ljust(width + 2) + " ".join(c.rjust(col_width) for c in columns) + "\n"
    pad = " " * (col_width - 1)
    for row, marks in rows:
        yield f"{row.ljust(width + 2)}{pad}{(' ' + pad).join(marks)}\n"
    for line in legend:
        yield line + "\n"


def render_plain(table: TruthTable) -> str:
    """Fixed-width text for logs and JUnit: one line per source."""
    rows = ((row, [table.mark(row, col) for col in table.columns]) for row in table.rows)
    return "".join(stream_plain(table.title, table.columns, rows, [f"({LEGENDS[table.kind]})"]))


def comparison_text(
    expected: Mapping[CellKey, ExpectedCell],
    observed: Mapping[CellKey, ObservedCell],
    comparison: Comparison,
    explain: Callable[[CellKey], str] | None = None,
) -> str:
    """Everything a log or a JUnit failure needs: the three tables per port, the summary, each wrong cell."""
    parts = []
    for tables in zip(
        expected_tables(expected), observed_tables(observed), difference_tables(comparison), strict=False
    ):
        parts += [render_plain(t) for t in tables]
    parts.append(comparison.summary() + "\n")
    details = wrong_cell_details(comparison, explain)
    if details:
        parts.append("\n".join(details) + "\n")
    return "\n".join(parts)


_STYLES = {
    ".": "green",
    "X": "bold red",
    "R": "magenta",
    "o": "yellow",
    "d": "cyan",
    "?": "bold yellow",
    "u": "dim",
    "E": "bold red",
}


def render_rich(table: TruthTable) -> Table:
    """A rich Table for a terminal; colours follow the symbols."""
    out = Table(title=table.title, caption=LEGENDS[table.kind], show_lines=False)
    out.add_column("from \\ to", style="bold")
    for col in table.columns:
        out.add_column(col, justify="center")
    for row in table.rows:
        cells = []
        for col in table.columns:
            mark = table.mark(row, col)
            style = _STYLES.get(mark)
            cells.append(f"[{style}]{mark}[/{style}]" if style else mark)
        out.add_row(row, *cells)
    return out
