"""The certification report: its summary, its schema (shipped in the package), and its renderings
(HTML parsed with html.parser, Markdown)."""

from __future__ import annotations

import copy
from html.parser import HTMLParser
from typing import Any

import pytest

from netpolcheck.errors import UsageError
from netpolcheck.report.cells import CellKey, ExpectedCell, ObservedCell
from netpolcheck.report.certification import build_report, case_entry, check_entry
from netpolcheck.report.certification_html import render_html
from netpolcheck.report.certification_markdown import render_markdown
from netpolcheck.report.certification_schema import load_schema, schema_errors, validate_report
from netpolcheck.report.compare import compare
from tests.report.certification_data import sample_report


def test_summary_per_feature_and_deviations() -> None:
    report = sample_report()
    assert report["result"] == "fail"
    assert report["summary"]["counts"] == {
        "pass": 1,
        "fail": 1,
        "expected failure": 1,
        "unexpected pass": 0,
        "skipped": 0,
    }
    features = {f["feature"]: f for f in report["summary"]["features"]}
    assert (features["ingress"]["holds"], features["ingress"]["failedCases"]) == (False, ["ingress-deny-b"])
    assert features["ports"]["holds"] and features["ports"]["expected failure"] == 1
    deviations = report["summary"]["deviations"]
    assert [(d["id"], d["cases"]) for d in deviations["observed"]] == [("endport-ignored", ["endport-range"])]
    assert [d["id"] for d in deviations["expectedAbsent"]] == ["multicast-always-allowed"]
    wrong = [c for c in report["cases"][1]["checks"][1]["cells"] if c["outcome"] == "wrong"]
    assert [(c["from"], c["to"], c["observed"]) for c in wrong] == [("x/a", "x/b", "allowed")]


def test_the_schema_ships_in_the_package_and_accepts_a_report() -> None:
    schema = load_schema()
    assert schema["properties"]["version"] == {"const": 1}
    assert schema_errors(sample_report()) == []
    validate_report(sample_report())


@pytest.mark.parametrize(
    ("breakage", "where"),
    [
        (lambda r: r.pop("environment"), "at (top): 'environment' is a required property"),
        (lambda r: r["cases"][0].__setitem__("status", "fine"), "at cases/0/status"),
        (lambda r: r.__setitem__("version", 2), "at version"),
        (
            lambda r: r["cases"][1]["checks"][1]["cells"][0].__setitem__("observed", "maybe"),
            "at cases/1/checks/1",
        ),
        (lambda r: r["environment"]["cni"].pop("version"), "at environment/cni"),
        (lambda r: r.__setitem__("generated", "yesterday"), "at generated"),
    ],
)
def test_the_schema_rejects_what_is_not_a_report(breakage: Any, where: str) -> None:
    report = copy.deepcopy(sample_report())
    breakage(report)
    with pytest.raises(UsageError) as caught:
        validate_report(report, "r.json")
    assert str(caught.value).startswith("r.json: not a certification report version 1: " + where)
    assert "\n" not in str(caught.value)


VOID = {"meta", "br", "hr", "img", "input", "link", "col", "area", "base", "wbr", "source", "track"}
SVG_LEAVES = {"line", "rect"}  # written with `/>` (self-closing) or closed explicitly


class Page(HTMLParser):
    """Sections, headings, text per section, failure articles, and anything that would fetch."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: list[str] = []
        self.text: dict[str, list[str]] = {}
        self.articles: list[list[str]] = []
        self.fetches: list[str] = []
        self.tags: list[str] = []
        self._article_depth = 0
        self.open: list[str] = []
        self.unbalanced: list[str] = []

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag not in VOID:
            self.open.append(tag)
        values = dict(attrs)
        if tag == "section":
            self.sections.append(values.get("id") or "")
        if tag == "article" and values.get("class") == "failure":
            self.articles.append([])
            self._article_depth += 1
        if tag in ("script", "link", "img", "iframe", "object", "embed") or any(
            k in ("src", "href") for k in values
        ):
            self.fetches.append(tag)
        if "url(" in " ".join(v or "" for v in values.values()):
            self.fetches.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open[-1] != tag:
            self.unbalanced.append(f"</{tag}> while open: {self.open[-3:]}")
        else:
            self.open.pop()
        if tag == "article" and self._article_depth:
            self._article_depth -= 1

    def handle_data(self, data: str) -> None:
        if self.sections:
            self.text.setdefault(self.sections[-1], []).append(data)
        if self._article_depth:
            self.articles[-1].append(data)


def test_html_renders_summary_first_then_failures_then_the_plot() -> None:
    page = Page()
    html = render_html(sample_report())
    page.feed(html)
    page.close()
    assert page.unbalanced == [] and page.open == []  # every element closed, in order
    assert page.sections == ["summary", "environment", "failures", "convergence"]
    summary = " ".join(page.text["summary"])
    assert "FAIL" in summary and "does not hold" in summary and "holds" in summary
    assert "endport-ignored" in summary and "multicast-always-allowed" in summary
    [article] = page.articles
    failure = " ".join(article)
    assert "ingress-deny-b: check 1 (apply x/deny-b): fail" in failure
    assert "x/a -> x/b TCP/80" in failure and "expected denied, observed allowed" in failure
    assert "SYN-ACK" in failure and "isolated by x/deny-b and no rule allows it" in failure
    assert "held connection a-to-c: broken (hold a-to-c: tcp: 1 gap(s)" in failure
    assert "step 1 while the cluster changed: no restart seen" in failure
    assert "expected TCP 80" in failure and "difference TCP 80" in failure  # its truth tables
    assert "svg" in page.tags and page.tags.count("rect") == 3  # three converged checks
    assert "never converged" in " ".join(page.text["convergence"])  # the failing check's marker
    assert page.fetches == [] and "http://" not in html and "https://" not in html


def test_html_escapes_what_the_run_recorded() -> None:
    report = sample_report(case_prefix="<script>alert(1)</script>")
    page = Page()
    page.feed(render_html(report))
    assert "script" not in page.tags
    assert any("<script>alert(1)</script>ingress-deny-b" in " ".join(a) for a in page.articles)


def test_markdown_has_the_same_parts() -> None:
    text = render_markdown(sample_report())
    order = [
        text.index(h) for h in ("## Summary", "## Environment", "## Failures (1)", "## Convergence times")
    ]
    assert order == sorted(order)
    assert "| ingress | **does not hold** |" in text
    assert "### ingress-deny-b: check 1 (apply x/deny-b): fail" in text
    assert "x/a -> x/b TCP/80: expected denied, observed allowed" in text
    assert "evidence (1 attempt(s)): SYN-ACK" in text  # what the probe saw on the wrong cell
    assert "- held connection a-to-c: broken" in text
    assert "never converged" in text.split("## Convergence times")[1]


def test_schema_messages_are_one_printable_line() -> None:
    report = copy.deepcopy(sample_report())
    report["cases"][0]["status"] = "\x1b[31mred\nline"
    with pytest.raises(UsageError) as caught:
        validate_report(report, "r\x1b.json")
    message = str(caught.value)
    assert message.isascii() and message.isprintable(), message
    assert message.startswith("r\\x1b.json: not a certification report version 1: at cases/0/status")


def test_a_predicted_deviation_that_did_not_show_is_expected_and_absent() -> None:
    key = CellKey("UDP", 80, "x/a", "mcast")
    expected = {key: ExpectedCell(False, "egress denied: isolated by x/deny-out and no rule allows it")}
    observed = {key: ObservedCell("dropped", 8, "silence")}  # spec's verdict: the deviation did not show
    check = check_entry(
        1,
        "apply x/deny-out",
        "unexpected pass",
        compare(expected, observed, frozenset({"dropped"})),
        {"converged": True, "ms": 2.0},
        deviations_predicted=["multicast-always-allowed"],
    )
    case = case_entry("multicast-egress", "unexpected pass", [check], features=["egress"])
    environment = copy.deepcopy(sample_report()["environment"])
    report = build_report(
        environment,
        [case],
        {"multicast-always-allowed": "always accepted", "endport-ignored": "ignored"},
        "2026-11-30T22:00:00+00:00",
    )
    validate_report(report)
    assert report["result"] == "fail"
    absent = {d["id"]: d["predictedButNotShown"] for d in report["summary"]["deviations"]["expectedAbsent"]}
    assert absent == {"multicast-always-allowed": True, "endport-ignored": False}
    assert report["summary"]["features"][0]["holds"] is False


def test_a_run_where_nothing_ran_is_inconclusive_and_says_why_each_case_was_skipped() -> None:
    """An all-skipped run must not read as a pass; each skip keeps its reason, in the document and in
    both renderings."""
    reason = "this pod's kernel has no SCTP (socket(IPPROTO_SCTP): Protocol not supported)"
    base = sample_report()
    cases = [case_entry("sctp-deny-all", "skipped", [], features=["sctp"], skip_reason=reason)]
    report = build_report(base["environment"], cases, {}, base["generated"])
    assert report["result"] == "inconclusive"
    assert report["cases"][0]["skipReason"] == reason
    assert not report["summary"]["features"][0]["holds"]
    validate_report(report)
    assert f"| sctp-deny-all | {reason} |" in render_markdown(report)
    page = Page()
    page.feed(render_html(report))
    page.close()
    assert page.sections == ["summary", "environment", "failures", "skipped", "convergence"]
    assert (
        reason in " ".join(page.text["skipped"]) and "INCONCLUSIVE" in " ".join(page.text["summary"]).upper()
    )
    ran = [*cases, case_entry("ingress-deny-b", "pass", [], features=["ingress"])]
    assert build_report(base["environment"], ran, {}, base["generated"])["result"] == "pass"
    assert build_report(base["environment"], [], {}, base["generated"])["result"] == "inconclusive"
