"""Truth tables from a real `expect` document and from probe observations."""

from __future__ import annotations

import io
import json
from pathlib import Path

from rich.console import Console

from netpolcheck.model.profiles import PROFILES
from netpolcheck.model.results import expected_results
from netpolcheck.model.state import parse_state
from netpolcheck.report.cells import (
    CellKey,
    ObservedCell,
    expected_from_document,
    observed_from_probe_results,
)
from netpolcheck.report.compare import compare
from netpolcheck.report.truthtable import (
    comparison_text,
    difference_tables,
    document_tables,
    observed_tables,
    render_plain,
    render_rich,
)

SEED = Path(__file__).resolve().parents[1] / "data" / "seed"


def _document(step: str, profile: str) -> dict:
    state = parse_state(json.loads((SEED / f"{step}.json").read_text()))
    return expected_results(state, PROFILES[profile])


def test_expected_table_plain_text() -> None:
    tables = document_tables(_document("1-deny-all", "spec"))
    assert len(tables) == 1
    assert render_plain(tables[0]).splitlines() == [
        "expected TCP 80:",
        "from \\ to         ns-1/busybox ns-1/http-echo",
        "ns-1/busybox                 -              X",
        "ns-1/http-echo               X              -",
        "(. allowed   X denied)",
    ]


def test_observed_and_difference_tables_mark_deviation_and_wrong_cells() -> None:
    expected = expected_from_document(_document("1-deny-all", "weave-2.0.5"))
    to_echo = CellKey("TCP", 80, "ns-1/busybox", "ns-1/http-echo")
    to_busybox = CellKey("TCP", 80, "ns-1/http-echo", "ns-1/busybox")
    assert expected[to_echo].deviations == ("legacy-isolation",)
    observed = {
        to_echo: ObservedCell("allowed", 1, "SYN-ACK"),
        to_busybox: ObservedCell("rejected", 2, "ICMP"),
    }
    obs_text = render_plain(observed_tables(observed)[0])
    assert "ns-1/http-echo               R              -" in obs_text
    comparison = compare(expected, observed, PROFILES["weave-2.0.5"].denied_verdicts)
    diff = render_plain(difference_tables(comparison)[0]).splitlines()
    assert diff[2].split() == ["ns-1/busybox", "-", "d"]  # documented deviation
    assert diff[3].split() == ["ns-1/http-echo", "X", "-"]  # expected allowed, observed rejected
    assert not comparison.passed
    assert [c.note for c in comparison.wrong] == ["expected allowed, observed rejected"]


def test_one_table_per_port_and_protocol_and_rich_rendering() -> None:
    cells = {
        CellKey(proto, port, "a", "b"): ObservedCell("dropped")
        for proto in ("TCP", "UDP")
        for port in (80, 81)
    }
    tables = observed_tables(cells)
    assert [t.group for t in tables] == ["TCP 80", "TCP 81", "UDP 80", "UDP 81"]
    console = Console(file=io.StringIO(), width=80, color_system=None)
    console.print(render_rich(tables[0]))
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "observed TCP 80" in text and "X" in text and "from \\ to" in text


def test_comparison_text_from_probe_agent_output() -> None:
    expected = expected_from_document(_document("2-allow-unlabelled", "weave-2.8.1"))
    to_echo = CellKey("TCP", 80, "ns-1/busybox", "ns-1/http-echo")
    to_busybox = CellKey("TCP", 80, "ns-1/http-echo", "ns-1/busybox")
    agent_output = [
        {
            "id": "c1",
            "verdict": "allowed",
            "attempts": 1,
            "rtt_ms": 0.4,
            "evidence": "SYN-ACK from 100.96.1.2:80",
        },
        {
            "id": "c2",
            "verdict": "allowed",
            "attempts": 1,
            "rtt_ms": 0.3,
            "evidence": "SYN-ACK from 100.96.2.3:80",
        },
    ]
    observed = observed_from_probe_results(agent_output, {"c1": to_echo, "c2": to_busybox})
    comparison = compare(expected, observed, PROFILES["weave-2.8.1"].denied_verdicts)
    text = comparison_text(expected, observed, comparison, explain=lambda key: "why: the allow policy")
    assert text.count("expected TCP 80:") == 1 and "observed TCP 80:" in text and "difference TCP 80:" in text
    assert "wrong: 1, missing: 0, result=FAIL" in text
    assert "ns-1/busybox -> ns-1/http-echo TCP/80: expected denied, observed allowed" in text
    assert "  evidence (1 attempt(s)): SYN-ACK from 100.96.1.2:80" in text
    assert "  | why: the allow policy" in text


def test_unsupported_and_error_cells_have_their_own_marks() -> None:
    """SCTP from a kernel without it (`unsupported`) and a failed probe (`error`) in the agent's output:
    `u` in the observed and difference tables (skipped, not `.`), `E` for the failed probe."""
    expected = expected_from_document(_document("1-deny-all", "weave-2.8.1"))
    to_echo = CellKey("TCP", 80, "ns-1/busybox", "ns-1/http-echo")
    to_busybox = CellKey("TCP", 80, "ns-1/http-echo", "ns-1/busybox")
    agent_output = [
        {"id": "c1", "verdict": "unsupported", "attempts": 0, "rtt_ms": None, "evidence": "no SCTP here"},
        {"id": "c2", "verdict": "error", "attempts": 1, "rtt_ms": None, "evidence": "agent stopped early"},
    ]
    observed = observed_from_probe_results(agent_output, {"c1": to_echo, "c2": to_busybox})
    obs = render_plain(observed_tables(observed)[0]).splitlines()
    assert obs[2].split() == ["ns-1/busybox", "-", "u"] and obs[3].split() == ["ns-1/http-echo", "E", "-"]
    assert "u unsupported (not sent)" in obs[4] and "E probe error" in obs[4]
    comparison = compare(expected, observed, PROFILES["weave-2.8.1"].denied_verdicts)
    diff = render_plain(difference_tables(comparison)[0]).splitlines()
    assert diff[2].split() == ["ns-1/busybox", "-", "u"] and diff[3].split() == ["ns-1/http-echo", "E", "-"]
    assert "u unsupported (skipped, not passed)" in diff[4]
    text = comparison_text(expected, observed, comparison)
    assert "ns-1/http-echo -> ns-1/busybox TCP/80: probe failed: agent stopped early" in text
    assert "probe errors: 1, unsupported (not probed, not passed): 1, result=FAIL" in text
