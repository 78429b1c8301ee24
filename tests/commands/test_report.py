"""`netpolcheck report RESULTS.json --html OUT.html --markdown OUT.md` as a real command."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from tests.commands.runcli import netpolcheck
from tests.report.certification_data import sample_report


def _results(tmp_path: Path, document: object, name: str = "results.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(document))
    return str(path)


def test_renders_both_files_private_and_exits_1_for_a_failed_run(tmp_path: Path) -> None:
    html, md = tmp_path / "out.html", tmp_path / "out.md"
    proc = netpolcheck(
        "report", _results(tmp_path, sample_report()), "--html", str(html), "--markdown", str(md)
    )
    assert proc.returncode == 1, proc.stderr
    assert html.read_text().startswith("<!DOCTYPE html>") and "ingress-deny-b" in html.read_text()
    assert "## Failures (1)" in md.read_text()
    for path in (html, md):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.html", "out.md", "results.json"]


def test_a_passing_run_exits_0(tmp_path: Path) -> None:
    report = sample_report()
    report["result"] = "pass"
    proc = netpolcheck("report", _results(tmp_path, report), "--markdown", str(tmp_path / "o.md"))
    assert proc.returncode == 0, proc.stderr
    assert "PASS" in (tmp_path / "o.md").read_text()


def test_bad_input_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    broken = sample_report()
    del broken["summary"]
    out = tmp_path / "out.html"
    cases = [
        (_results(tmp_path, broken, "broken.json"), "--html", str(out)),
        (str(tmp_path / "missing.json"), "--html", str(out)),
        (_results(tmp_path, sample_report()),),  # no output asked for
        (_results(tmp_path, sample_report()), "--html", str(tmp_path)),  # a directory
    ]
    for args in cases:
        proc = netpolcheck("report", *args)
        assert proc.returncode == 2, (args, proc.stderr)
        assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.json", "results.json"]
