"""`netpolcheck expect` run as a real command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.model.builders import netpol, sel, world

SEED = Path(__file__).resolve().parents[1] / "data" / "seed"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "netpolcheck.cli", "expect", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _write(tmp_path: Path, doc: Any, name: str = "state.json") -> str:
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return str(path)


def test_json_output_shape_and_content() -> None:
    proc = _run(str(SEED / "3-allow-labelled.json"), "--profile", "weave-2.1.3")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["profile"] == "weave-2.1.3"
    assert len(doc["results"]) == 2
    keys = {"from", "to", "port", "protocol", "allowed", "ingress", "egress", "reason"}
    for row in doc["results"]:
        assert keys <= set(row)
    cell = next(r for r in doc["results"] if r["from"] == "ns-1/busybox")
    assert cell == {
        "from": "ns-1/busybox",
        "to": "ns-1/http-echo",
        "port": 80,
        "protocol": "TCP",
        "allowed": True,
        "ingress": True,
        "egress": True,
        "reason": "egress not isolated; ingress allowed by ns-1/allow ingress[0]",
    }


def test_profile_difference_is_named_in_the_output() -> None:
    proc = _run(str(SEED / "1-deny-all.json"), "--profile", "weave-2.0.5")
    assert proc.returncode == 0, proc.stderr
    cell = next(r for r in json.loads(proc.stdout)["results"] if r["from"] == "ns-1/busybox")
    assert cell["allowed"] is True and cell["spec"] is False and cell["deviations"] == ["legacy-isolation"]
    denied = _run(str(SEED / "1-deny-all.json"))
    cell = next(r for r in json.loads(denied.stdout)["results"] if r["from"] == "ns-1/busybox")
    assert cell["allowed"] is False and "spec" not in cell
    assert "isolated by ns-1/deny-all-by-default" in cell["reason"]


def test_table_format() -> None:
    proc = _run(str(SEED / "2-allow-unlabelled.json"), "--format", "table")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "expected TCP 80:"
    row = next(line for line in lines if line.startswith("ns-1/busybox"))
    assert row.split()[1:] == ["-", "X"]


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        ({"namespaces": [], "pods": [], "bogus": 1}, [], "STATE: bogus: unknown field"),
        ("{not json", [], "malformed JSON at line 1"),
        (world(), ["--profile", "weave-9.9.9"], "--profile: weave-9.9.9: unknown profile"),
        (world(), ["--format", "yaml"], '--format: unknown format "yaml"'),
        (
            world(
                [
                    netpol(
                        "x/p",
                        {"podSelector": sel(pod="a"), "ingress": [{"from": [{"ipBlock": {"cidr": "nope"}}]}]},
                    )
                ]
            ),
            [],
            'policy x/p: spec.ingress[0].from[0].ipBlock.cidr: Invalid value: "nope": must be a valid CIDR',
        ),
        (
            {"namespaces": [], "pods": [{"namespace": "ghost", "name": "a", "ip": "10.0.0.1"}]},
            [],
            'pod ghost/a: namespace: namespace "ghost" is not in namespaces',
        ),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path: Path, content: Any, args: list[str], message: str) -> None:
    proc = _run(_write(tmp_path, content), *args)
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert message in lines[0]


def test_missing_file(tmp_path: Path) -> None:
    proc = _run(str(tmp_path / "absent.json"))
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"netpolcheck: error: {tmp_path / 'absent.json'}: no such file"


def test_json_is_one_result_per_line_and_carries_cautions(tmp_path: Path) -> None:
    named = world([netpol("x/p1", {"podSelector": {}, "ingress": [{"ports": [{"port": "http"}]}]})])
    proc = _run(_write(tmp_path, named), "--profile", "weave-2.1.3")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert len(doc["results"]) == 72
    assert len(proc.stdout.splitlines()) == 72 + 2
    assert doc["cautions"][0].startswith("named-port-unpredictable (policies x/p1)")
    empty = _run(_write(tmp_path, {"namespaces": []}, "empty.json"))
    assert json.loads(empty.stdout) == {"profile": "spec", "results": []}


def test_streamed_json_equals_the_in_memory_document(tmp_path: Path) -> None:
    """The command streams its JSON; it must parse to exactly `expected_results`, extensions included."""
    from netpolcheck.model.profiles import PROFILES
    from netpolcheck.model.results import expected_results
    from netpolcheck.model.state import parse_state

    doc = world(
        [
            netpol(
                "x/p", {"podSelector": sel(pod="a"), "ingress": [{"from": [{"podSelector": sel(pod="b")}]}]}
            ),
            netpol(
                "y/e",
                {
                    "podSelector": {},
                    "egress": [{"ports": [{"port": "http"}]}],
                    "policyTypes": ["Egress"],
                },
            ),
        ],
        probes=[{"port": 80}, {"port": "http"}, {"port": 81, "protocol": "UDP"}],
    )
    path = _write(tmp_path, doc)
    for profile in ("spec", "weave-2.0.5", "weave-2.1.3", "weave-2.8.1"):
        proc = _run(path, "--profile", profile)
        assert proc.returncode == 0, proc.stderr
        streamed = json.loads(proc.stdout)
        assert streamed == expected_results(parse_state(doc), PROFILES[profile])
        assert streamed["results"], profile
    differing = [
        r for r in json.loads(_run(path, "--profile", "weave-2.1.3").stdout)["results"] if "spec" in r
    ]
    assert differing and all(r["deviations"] for r in differing)


def test_explain_prints_the_story_of_one_cell() -> None:
    proc = _run(
        str(SEED / "1-deny-all.json"),
        "--profile",
        "weave-2.0.5",
        "--explain",
        "ns-1/busybox",
        "ns-1/http-echo",
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "ns-1/busybox -> ns-1/http-echo TCP/80 under weave-2.0.5: allowed (not isolated)"
    assert "  - ns-1/deny-all-by-default is ignored for ingress under weave-2.0.5 (legacy-isolation)" in lines
    assert any(line.startswith("spec says: denied (") for line in lines)
    assert "deviation legacy-isolation (<2.1.0; docs/weave-facts.md#legacy-isolation)" in proc.stdout
    spec = _run(
        str(SEED / "2-allow-unlabelled.json"), "--explain", "ns-1/busybox", "ns-1/http-echo", "--port", "80"
    )
    assert spec.returncode == 0, spec.stderr
    assert spec.stdout.splitlines()[0].startswith("ns-1/busybox -> ns-1/http-echo TCP/80 under spec: denied")
    assert spec.stdout.splitlines()[1:] == [
        "egress: allowed",
        "  no policy isolates ns-1/busybox for egress: not isolated",
        "ingress: DENIED",
        "  isolated by: ns-1/allow",
        "  - ns-1/allow ingress[0] does not match: peer ns-1/busybox: labels: no label app",
    ]
    assert "spec says" not in spec.stdout  # spec has no deviations to compare with


def test_explain_named_port_and_protocol(tmp_path: Path) -> None:
    doc = world([netpol("x/p", {"podSelector": sel(pod="a"), "ingress": [{"ports": [{"port": "http"}]}]})])
    path = _write(tmp_path, doc)
    named = _run(path, "--profile", "weave-2.8.1", "--explain", "x/b", "x/a", "--port", "http")
    assert named.returncode == 0, named.stderr
    assert named.stdout.startswith("x/b -> x/a TCP/80 under weave-2.8.1: allowed")
    assert (
        "  - x/p selects this pod but is ignored under weave-2.8.1 (named-port-policy-skipped)"
        in named.stdout
    )
    udp = _run(path, "--explain", "x/b", "x/a", "--port", "80", "--protocol", "UDP")
    assert udp.returncode == 0, udp.stderr
    assert udp.stdout.startswith("x/b -> x/a UDP/80 under spec: denied")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "netpolcheck: error: expect: the following arguments are required: STATE.json"),
        (["{state}", "--bogus"], "netpolcheck: error: expect: unrecognized arguments: --bogus"),
        (["{state}", "extra.json"], "netpolcheck: error: expect: unrecognized arguments: extra.json"),
        (
            ["{state}", "--explain", "x/a"],
            "netpolcheck: error: expect: argument --explain: expected 2 arguments",
        ),
        (["{state}", "--explain", "x/a", "x/zz"], "netpolcheck: error: --explain: x/zz: no such pod"),
        (["{state}", "--explain", "x/a", "x/a"], "a cell needs two different endpoints"),
        (["{state}", "--explain", "x/b", "x/a", "--port", "70000"], "--port: 70000: port out of range"),
        (["{state}", "--explain", "x/b", "x/a", "--protocol", "ICMP"], '--protocol: unknown protocol "ICMP"'),
        (["{state}", "--port", "80"], "give --explain too"),
        (["{state}", "--explain", "world", "x/a", "--port", "nope"], "x/a has no port for this probe"),
    ],
)
def test_usage_errors_are_one_line_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    path = _write(tmp_path, world(externals=[{"name": "world", "ip": "203.0.113.7"}]))
    proc = _run(*(path if a == "{state}" else a for a in args))
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert message in lines[0]


def test_a_reader_that_stops_early_gets_no_traceback(tmp_path: Path) -> None:
    """`netpolcheck expect BIG | head`: exit 1 quietly once the pipe closes, no traceback."""
    doc = {
        "namespaces": [{"name": "x"}],
        "pods": [{"namespace": "x", "name": f"p{i}", "ip": f"10.0.0.{i + 1}"} for i in range(60)],
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "netpolcheck.cli", "expect", _write(tmp_path, doc)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline().startswith('{"profile": "spec", "results": [')
    proc.stdout.close()
    try:
        assert proc.wait(timeout=60) == 1
    finally:
        proc.kill()
    assert proc.stderr.read() == ""
