"""Bad input to the real agent command: one clear line on stderr, exit 2, nothing on stdout."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from .netlab import AGENT, Lab

GOOD = {"id": "a", "ip": "10.251.0.9", "port": 80, "protocol": "TCP"}


def isolated() -> tuple[str, ...]:
    """As root, run in a fresh, anonymous, empty network namespace: even if validation regressed and the
    agent sent something, it could not leave (the namespace has only a down loopback and dies with it)."""
    return ("unshare", "--net") if os.geteuid() == 0 and shutil.which("unshare") else ()


def agent(
    *argv: str, stdin: str = "", prefix: tuple[str, ...] | None = None
) -> subprocess.CompletedProcess[str]:
    command = [*(isolated() if prefix is None else prefix), *AGENT, *argv]
    return subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=60)


def assert_usage_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("netpolcheck.probe: error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.mark.parametrize(
    ("stdin", "fragments"),
    [
        ('[{"id": "a", "ip": "10.0.0.1", "port": 80, "protocol": "TCP"', ("not valid JSON", "line 1")),
        ('{"id": "a"}', ("must be a JSON list",)),
        (
            json.dumps([{**GOOD, "ip": "10.0.0.300"}]),
            ("target 0 (id 'a')", "'10.0.0.300' is not an IP address"),
        ),
        (json.dumps([{**GOOD, "ip": "fe80::1"}]), ("only IPv4",)),
        (
            json.dumps([GOOD, {**GOOD, "id": "b", "port": 70000}]),
            ("target 1 (id 'b')", "port 70000 out of range"),
        ),
        (json.dumps([{**GOOD, "port": 0}]), ("port 0 out of range",)),
        (json.dumps([{**GOOD, "port": "80"}]), ("port must be an integer",)),
        (json.dumps([{**GOOD, "protocol": "ICMP"}]), ("unknown protocol 'ICMP'",)),
        (json.dumps([{"id": "a", "ip": "10.0.0.1"}]), ("missing port, protocol",)),
        (json.dumps([GOOD, GOOD]), ("duplicate target id 'a'",)),
    ],
    ids=[
        "malformed-json",
        "not-a-list",
        "bad-ip",
        "ipv6",
        "port-too-big",
        "port-zero",
        "port-string",
        "unknown-protocol",
        "missing-fields",
        "duplicate-id",
    ],
)
def test_probe_rejects_bad_targets(stdin: str, fragments: tuple[str, ...]) -> None:
    assert_usage_error(agent("probe", stdin=stdin), *fragments)


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (("probe", "--timeout", "0"), "out of range"),
        (("probe", "--retries", "-1"), "retry count"),
        (("serve", "--tcp", "80,99999"), "'99999' is not a port"),
        (("serve",), "at least one of --tcp, --udp, --sctp"),
        (("hold", "--ip", "10.0.0.1.5", "--port", "80", "--status", "/tmp/x"), "is not an IP address"),
        (("hold-status", "--status", "/nonexistent/npcprobe-status.json"), "no hold status"),
        (("journal", "--journal", "/nonexistent/npcprobe-journal.jsonl"), "no journal at"),
        (("frobnicate",), "invalid choice"),
    ],
    ids=[
        "zero-timeout",
        "negative-retries",
        "serve-bad-port",
        "serve-nothing",
        "hold-bad-ip",
        "hold-status-missing",
        "journal-missing",
        "unknown-command",
    ],
)
def test_bad_options(argv: tuple[str, ...], fragment: str) -> None:
    assert_usage_error(agent(*argv), fragment)


@pytest.mark.netns
def test_probe_without_net_raw_says_so(lab: Lab) -> None:
    """Root with NET_RAW removed from its bounding set (inside a lab namespace, so nothing could leak)."""
    pod = lab.add_pod("nocaps")
    drop = ("ip", "netns", "exec", pod.netns, "setpriv", "--bounding-set=-net_raw", "--inh-caps=-net_raw")
    assert_usage_error(agent("probe", stdin=json.dumps([GOOD]), prefix=drop), "NET_RAW")


@pytest.mark.netns
def test_serve_on_a_privileged_port_without_the_capability_says_so(lab: Lab, tmp_path: Path) -> None:
    pod = lab.add_pod("nobind")
    drop = (
        "ip",
        "netns",
        "exec",
        pod.netns,
        "setpriv",
        "--bounding-set=-net_bind_service",
        "--inh-caps=-net_bind_service",
    )
    result = agent("serve", "--tcp", "80", "--journal", str(tmp_path / "journal.jsonl"), prefix=drop)
    assert_usage_error(result, "NET_BIND_SERVICE")
