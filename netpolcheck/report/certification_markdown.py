"""The certification report as Markdown: the same order as the HTML page (summary, environment,
failures with plain-text truth tables, convergence times as a table of the slowest checks and a
histogram line per time bucket)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
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
from netpolcheck.report.truthtable import comparison_text

BUCKETS_MS = (10.0, 100.0, 1000.0, 10000.0)


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _table(head: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return [*lines, ""]


def _histogram(points: Sequence[tuple[str, float | None]]) -> list[str]:
    counts: dict[str, int] = {}
    for _, ms in points:
        if ms is None:
            bucket = "never converged"
        else:
            bound = next((b for b in BUCKETS_MS if ms <= b), None)
            bucket = f"<= {bound:g} ms" if bound is not None else f"> {BUCKETS_MS[-1]:g} ms"
        counts[bucket] = counts.get(bucket, 0) + 1
    order = [f"<= {b:g} ms" for b in BUCKETS_MS] + [f"> {BUCKETS_MS[-1]:g} ms", "never converged"]
    return ["```"] + [f"{b:>16} {'#' * counts[b]} {counts[b]}" for b in order if b in counts] + ["```", ""]


def render_markdown(report: Mapping[str, Any]) -> str:
    summary, env = report["summary"], report["environment"]
    out = [
        f"# netpolcheck certification: {env['profile']} - {report['result'].upper()}",
        "",
        f"Report format {report['format']} version {report['version']}, generated {report['generated']}.",
        "",
        "## Summary",
        "",
        f"Result: **{report['result'].upper()}**; {summary['cases']} case(s): "
        + ", ".join(f"{summary['counts'][s]} {s}" for s in STATUSES)
        + ".",
        "",
        "### Kubernetes semantics, per feature",
        "",
    ]
    out += _table(
        ("feature", "verdict", "cases", *STATUSES, "failed cases"),
        (
            (
                f["feature"],
                "holds" if f["holds"] else "**does not hold**",
                f["cases"],
                *(f[s] for s in STATUSES),
                ", ".join(f["failedCases"]) or "-",
            )
            for f in summary["features"]
        ),
    )
    deviations = summary["deviations"]
    out += ["### Documented deviations observed", ""]
    out += (
        _table(
            ("deviation", "what it does", "cases"),
            ((d["id"], d["reason"], ", ".join(d["cases"])) for d in deviations["observed"]),
        )
        if deviations["observed"]
        else ["none", ""]
    )
    out += ["### Documented deviations expected and not observed", ""]
    out += (
        _table(
            ("deviation", "what it does", "why"),
            (
                (
                    d["id"],
                    d["reason"],
                    "predicted but not shown" if d["predictedButNotShown"] else "not exercised",
                )
                for d in deviations["expectedAbsent"]
            ),
        )
        if deviations["expectedAbsent"]
        else ["none", ""]
    )
    cni = env["cni"]
    out += ["## Environment", ""]
    out += _table(
        ("", ""),
        (
            ("cluster", env["clusterKind"]),
            ("Kubernetes", env["kubernetesVersion"]),
            ("nodes", ", ".join(n["name"] for n in env["nodes"]) or "-"),
            ("kernel", env["kernel"]),
            ("CNI", f"{cni['name']} {cni['version'] or '(no version)'}"),
            ("suite", env["suiteVersion"]),
            ("profile", env["profile"]),
            ("options", options_text(env["options"])),
        ),
    )
    found = failures(report)
    out += [f"## Failures ({len(found)})", ""]
    for case, check in found:
        if check is None:
            out += [f"### {case['id']}: error", "", "```", case["error"], "```", ""]
            continue
        expected, observed, comparison = comparison_of(check)
        out += [
            f"### {case['id']}: check {check['step']} ({check['name']}): {check['status']}",
            "",
            check["note"],
            "",
            "```",
            comparison_text(expected, observed, comparison).rstrip("\n"),
            "```",
            "",
            *(f"- {line}" for line in around(case)),
            "",
        ]
    if not found:
        out += ["No failures.", ""]
    seen = observations_of(report)
    if seen:
        out += [f"## Observations ({len(seen)})", ""]
        out += _table(("case", "status", "what it saw"), ((i, st, "; ".join(o)) for i, st, o in seen))
    not_run = skipped(report)
    if not_run:
        out += [f"## Skipped ({len(not_run)})", ""]
        out += _table(("case", "why it did not run"), not_run)
    points = convergence_points(report)
    out += ["## Convergence times", "", *_histogram(points)]
    slowest = sorted(((ms, label) for label, ms in points if ms is not None), reverse=True)[:5]
    if slowest:
        out += _table(("slowest checks", "ms"), ((label, f"{ms:.1f}") for ms, label in slowest))
    return "\n".join(out)
