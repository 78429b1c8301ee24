"""The certification report as one self-contained HTML page: summary first (result, features,
deviations), then each failure with its truth tables and evidence, then convergence times as an inline
SVG plot. No script, no stylesheet or image from anywhere: it opens offline."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import Any

from netpolcheck.report.certification import (
    STATUSES,
    around,
    comparison_of,
    convergence_points,
    failures,
    observations_of,
    options_text,
    skipped,
)
from netpolcheck.report.truthtable import (
    LEGENDS,
    TruthTable,
    difference_tables,
    expected_tables,
    observed_tables,
)

STYLE = """
body { font-family: sans-serif; margin: 2em; max-width: 70em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1em; }
th, td { border: 1px solid #bbb; padding: 0.2em 0.5em; text-align: left; }
td.mark { text-align: center; font-family: monospace; }
.pass, .holds { color: #176117; font-weight: bold; }
.fail, .broken { color: #a31515; font-weight: bold; }
.m-X { background: #f6d3d3; } .m-d { background: #d3ecf6; } .m-R { background: #ecd3f6; }
.m-o { background: #f6f0d3; } .m-q { background: #fbe9b5; }
article.failure { border-left: 4px solid #a31515; padding-left: 1em; margin-bottom: 2em; }
pre { background: #f4f4f4; padding: 0.5em; white-space: pre-wrap; }
"""

PLOT_WIDTH, PLOT_HEIGHT, MARGIN = 720, 260, 50


def _e(value: Any) -> str:
    return escape(str(value), quote=True)


def _table(head: Sequence[str], rows: Iterable[Sequence[str]], raw: bool = False) -> str:
    """An HTML table; cells are escaped unless `raw` (already HTML)."""
    cell = (lambda v: v) if raw else _e
    out = ["<table><thead><tr>", *(f"<th>{_e(h)}</th>" for h in head), "</tr></thead><tbody>"]
    out += ["<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>" for row in rows]
    return "".join(out) + "</tbody></table>"


def _environment(env: Mapping[str, Any]) -> str:
    nodes = ", ".join(
        f"{n['name']}" + (f" (kernel {n['kernel']})" if n.get("kernel") else "") for n in env["nodes"]
    )
    cni = env["cni"]
    rows = [
        ("cluster", env["clusterKind"]),
        ("Kubernetes", env["kubernetesVersion"]),
        ("nodes", nodes or "-"),
        ("kernel", env["kernel"]),
        ("CNI", f"{cni['name']} {cni['version'] or '(no version)'}"),
        ("suite", env["suiteVersion"]),
        ("profile", env["profile"]),
        ("options", options_text(env["options"])),
    ]
    return _table(("", "value"), rows)


def _summary(report: Mapping[str, Any]) -> str:
    summary = report["summary"]
    counts = ", ".join(f"{summary['counts'][s]} {s}" for s in STATUSES)
    features = [
        (
            _e(f["feature"]),
            '<span class="holds">holds</span>' if f["holds"] else '<span class="broken">does not hold</span>',
            str(f["cases"]),
            *(str(f[s]) for s in STATUSES),
            _e(", ".join(f["failedCases"]) or "-"),
        )
        for f in summary["features"]
    ]
    deviations = summary["deviations"]
    observed = [(d["id"], d["reason"], ", ".join(d["cases"])) for d in deviations["observed"]]
    absent = [
        (d["id"], d["reason"], "predicted but not shown" if d["predictedButNotShown"] else "not exercised")
        for d in deviations["expectedAbsent"]
    ]
    return (
        f'<section id="summary"><h2>Summary</h2><p>Result: <span class="{_e(report["result"])}">'
        f"{_e(report['result'].upper())}</span>; {summary['cases']} case(s): {_e(counts)}.</p>"
        "<h3>Kubernetes semantics, per feature</h3>"
        + _table(("feature", "verdict", "cases", *STATUSES, "failed cases"), features, raw=True)
        + "<h3>Documented deviations observed</h3>"
        + (_table(("deviation", "what it does", "cases"), observed) if observed else "<p>none</p>")
        + "<h3>Documented deviations expected and not observed</h3>"
        + (_table(("deviation", "what it does", "why"), absent) if absent else "<p>none</p>")
        + "</section>"
    )


def _truth_table(table: TruthTable) -> str:
    head = "".join(f"<th>{_e(c)}</th>" for c in table.columns)
    rows = []
    for row in table.rows:
        marks = []
        for col in table.columns:
            mark = table.mark(row, col)
            css = "q" if mark == "?" else mark
            marks.append(f'<td class="mark m-{_e(css)}">{_e(mark)}</td>')
        rows.append(f"<tr><th>{_e(row)}</th>{''.join(marks)}</tr>")
    return (
        f'<table class="truth"><caption>{_e(table.title)} ({_e(LEGENDS[table.kind])})</caption>'
        f"<thead><tr><th>from \\ to</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _failure(case: Mapping[str, Any], check: Mapping[str, Any] | None) -> str:
    if check is None:
        error = _e(case["error"])
        return f'<article class="failure"><h3>{_e(case["id"])}: error</h3><pre>{error}</pre></article>'
    expected, observed, comparison = comparison_of(check)
    tables = [
        _truth_table(t)
        for group in zip(
            expected_tables(expected), observed_tables(observed), difference_tables(comparison), strict=False
        )
        for t in group
    ]
    wrong = [
        (
            f"{c.key.source} -> {c.key.destination} {c.key.protocol}/{c.key.port}",
            c.note,
            "-" if c.observed is None else f"{c.observed.verdict} ({c.observed.attempts} attempt(s))",
            "-" if c.observed is None else c.observed.evidence or "-",
            c.expected.reason or "-",
        )
        for c in comparison.wrong
    ]
    more = around(case)
    return (
        f'<article class="failure"><h3>{_e(case["id"])}: check {check["step"]} ({_e(check["name"])}): '
        f"{_e(check['status'])}</h3><p>{_e(check['note'])}</p>"
        + "".join(tables)
        + _table(("cell", "what differed", "observed", "evidence", "expected because"), wrong)
        + (f"<ul>{''.join(f'<li>{_e(line)}</li>' for line in more)}</ul>" if more else "")
        + "</article>"
    )


def convergence_svg(points: Sequence[tuple[str, float | None]]) -> str:
    """One bar per check (height: ms until the matrix matched); a red cross where it never did."""
    if not points:
        return "<p>no checks</p>"
    top = max([ms for _, ms in points if ms is not None] or [1.0]) * 1.1 or 1.0
    width = (PLOT_WIDTH - 2 * MARGIN) / len(points)
    inner = PLOT_HEIGHT - 2 * MARGIN
    parts = [
        f'<svg role="img" aria-label="convergence times" width="{PLOT_WIDTH}" height="{PLOT_HEIGHT}" '
        f'viewBox="0 0 {PLOT_WIDTH} {PLOT_HEIGHT}">',
        f'<line x1="{MARGIN}" y1="{PLOT_HEIGHT - MARGIN}" x2="{PLOT_WIDTH - MARGIN}" '
        f'y2="{PLOT_HEIGHT - MARGIN}" stroke="#444"/>',
        f'<line x1="{MARGIN}" y1="{MARGIN}" x2="{MARGIN}" y2="{PLOT_HEIGHT - MARGIN}" stroke="#444"/>',
        f'<text x="{MARGIN - 4}" y="{MARGIN + 4}" text-anchor="end" font-size="10">{top:.0f}</text>',
        f'<text x="{MARGIN - 4}" y="{PLOT_HEIGHT - MARGIN}" text-anchor="end" font-size="10">0</text>',
        f'<text x="{MARGIN}" y="{MARGIN - 10}" font-size="11">ms until the dataplane matched</text>',
        f'<text x="{PLOT_WIDTH / 2}" y="{PLOT_HEIGHT - 15}" text-anchor="middle" font-size="11">'
        "checks, in run order</text>",
    ]
    for i, (label, ms) in enumerate(points):
        x = MARGIN + i * width
        if ms is None:
            cy = MARGIN + 6
            parts.append(
                f'<g class="not-converged"><title>{_e(label)}: never converged</title>'
                f'<text x="{x + width / 2:.1f}" y="{cy}" text-anchor="middle" fill="#a31515" '
                'font-size="12">&#215;</text></g>'
            )
            continue
        height = inner * ms / top
        parts.append(
            f'<rect class="bar" x="{x + width * 0.1:.1f}" y="{PLOT_HEIGHT - MARGIN - height:.1f}" '
            f'width="{max(width * 0.8, 1):.1f}" height="{height:.1f}" fill="#3a6ea5">'
            f"<title>{_e(label)}: {ms:.1f} ms</title></rect>"
        )
    return "".join(parts) + "</svg>"


def _observations_part(report: Mapping[str, Any]) -> str:
    seen = observations_of(report)
    if not seen:
        return ""
    rows = "".join(
        f"<tr><td>{_e(case)}</td><td>{_e(status)}</td><td>{'<br>'.join(_e(o) for o in lines)}</td></tr>"
        for case, status, lines in seen
    )
    return (
        f'<section id="observations"><h2>Observations ({len(seen)})</h2>'
        f"<table><tr><th>case</th><th>status</th><th>what it saw</th></tr>{rows}</table></section>"
    )


def _skipped_part(report: Mapping[str, Any]) -> str:
    not_run = skipped(report)
    if not not_run:
        return ""
    rows = "".join(f"<tr><td>{_e(case)}</td><td>{_e(why)}</td></tr>" for case, why in not_run)
    return (
        f'<section id="skipped"><h2>Skipped ({len(not_run)})</h2>'
        f"<table><tr><th>case</th><th>why it did not run</th></tr>{rows}</table></section>"
    )


def render_html(report: Mapping[str, Any]) -> str:
    found = failures(report)
    failure_part = "".join(_failure(case, check) for case, check in found) or "<p>No failures.</p>"
    points = convergence_points(report)
    slowest = sorted(((ms, label) for label, ms in points if ms is not None), reverse=True)[:5]
    title = f"netpolcheck certification: {report['environment']['profile']} - {report['result'].upper()}"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(title)}</title><style>{STYLE}</style></head><body>"
        f"<h1>{_e(title)}</h1>"
        f"<p>Report format {_e(report['format'])} version {report['version']}, "
        f"generated {_e(report['generated'])}.</p>"
        + _summary(report)
        + '<section id="environment"><h2>Environment</h2>'
        + _environment(report["environment"])
        + "</section>"
        + f'<section id="failures"><h2>Failures ({len(found)})</h2>{failure_part}</section>'
        + _observations_part(report)
        + _skipped_part(report)
        + '<section id="convergence"><h2>Convergence times</h2>'
        + convergence_svg(points)
        + (
            _table(("slowest checks", "ms"), [(label, f"{ms:.1f}") for ms, label in slowest])
            if slowest
            else ""
        )
        + "</section></body></html>\n"
    )
