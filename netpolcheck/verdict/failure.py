"""The text of a failed check: truth tables (expected / observed / difference per port and protocol),
the summary, and per wrong cell its verdict, evidence, journal, blocked lines and the deciding rule."""

from __future__ import annotations

from collections.abc import Mapping

from netpolcheck.report.cells import CellKey
from netpolcheck.report.truthtable import comparison_text
from netpolcheck.verdict.forensics import CellForensics
from netpolcheck.verdict.results import CheckResult


def cell_story(
    key: CellKey, result: CheckResult, forensics: Mapping[CellKey, CellForensics], explain: bool = True
) -> str:
    """What the report shows under one wrong cell (after its note, evidence and expected reason)."""
    lines = []
    raw = result.raw.get(key, {})
    if raw:
        lines.append(
            f"probe: verdict {raw.get('verdict')}, attempts {raw.get('attempts')}, rtt_ms {raw.get('rtt_ms')}"
        )
    found = forensics.get(key)
    if found is None:
        lines.append("journal / blocked lines: not gathered (only the first wrong cells are)")
    else:
        lines.append(f"journal: {found.journal}")
        if found.blocked:
            lines += [f"blocked: {line}" for line in found.blocked[:3]]
            if len(found.blocked) > 3:
                lines.append(f"blocked: ... {len(found.blocked) - 3} more")
        else:
            lines.append("blocked: no matching 'blocked by Weave NPC' line")
    if explain:
        try:
            lines += ["model:", *("  " + line for line in result.expectation.explain(key).splitlines())]
        except Exception as exc:  # an explanation must never hide the failure itself
            lines.append(f"model: explanation unavailable ({exc})")
    return "\n".join(lines)


def failure_text(result: CheckResult, forensics: Mapping[CellKey, CellForensics]) -> str:
    conv = result.convergence
    head = [
        f"case {result.case_id}, step {result.step_index}: {result.step}",
        f"profile {result.expectation.profile}; status {result.status.value}"
        + (f" ({result.status_note})" if result.status_note else ""),
        f"not converged after {conv.waited_ms:.0f} ms ({conv.rounds} probe rounds, {conv.probes} probes)"
        if not conv.converged
        else f"converged within {conv.ms:.0f} ms",
    ]
    if result.expectation.cautions:
        head += [f"caution: {c}" for c in result.expectation.cautions]
    body = comparison_text(
        result.expectation.cells,
        result.observed,
        result.comparison,
        lambda key: cell_story(key, result, forensics),
    )
    return "\n".join(head) + "\n\n" + body
