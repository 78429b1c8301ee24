"""Bad input to the real agent command: one clear line on stderr, exit 2, nothing on stdout."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.probe.netlab import AGENT, Lab

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


def assert_clean_line(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    """The usage error, and nothing from the input that could break a terminal or a log line."""
    assert_usage_error(result, *fragments)
    line = result.stderr.rstrip("\n")
    assert line.isprintable(), repr(line)
    assert len(line) < 400, len(line)
    assert "Traceback" not in result.stderr


HOSTILE_TARGETS = {
    "deep-nesting": ("[" * 100_000 + "]" * 100_000, ("targets: nested too deeply",)),
    "4300-digit-number": (
        '[{"id": "a", "ip": "10.0.0.1", "port": 1' + "0" * 5000 + ', "protocol": "TCP"}]',
        ("targets: a number too long to convert",),
    ),
    "4000-digit-port": (
        '[{"id": "a", "ip": "10.0.0.1", "port": 1' + "0" * 4000 + ', "protocol": "TCP"}]',
        ("port an integer of", "bits out of range 1-65535"),
    ),
    "broadcast": (
        json.dumps([{**GOOD, "ip": "255.255.255.255"}]),
        ("255.255.255.255 is the broadcast address",),
    ),
    "unspecified": (json.dumps([{**GOOD, "ip": "0.0.0.0"}]), ('0.0.0.0 is in 0.0.0.0/8 ("this network")',)),
    "this-network": (json.dumps([{**GOOD, "ip": "0.1.2.3"}]), ("0.1.2.3 is in 0.0.0.0/8",)),
    "multicast": (json.dumps([{**GOOD, "ip": "224.0.0.1"}]), ("224.0.0.1 is a multicast address",)),
    "port-negative": (json.dumps([{**GOOD, "port": -1}]), ("port -1 out of range",)),
    "port-float": (json.dumps([{**GOOD, "port": 80.5}]), ("port must be an integer, got 80.5",)),
    "port-nan": ('[{"id": "a", "ip": "10.0.0.1", "port": NaN, "protocol": "TCP"}]', ("got nan",)),
    "protocol-number": (json.dumps([{**GOOD, "protocol": 6}]), ("unknown protocol 6",)),
    "control-characters-in-id": (
        json.dumps([{**GOOD, "id": "a\nb\x1b[31m\u2028"}, {**GOOD, "id": "a\nb\x1b[31m\u2028"}]),
        ("duplicate target id", "\\n", "\\x1b"),
    ),
    "control-characters-in-ip": (json.dumps([{**GOOD, "ip": "10.0.0.1\n\r"}]), ("is not an IP address",)),
    "huge-id": (json.dumps([{**GOOD, "id": "x" * 100_000}, {**GOOD, "id": "x" * 100_000}]), ("...",)),
}


@pytest.mark.parametrize("case", list(HOSTILE_TARGETS))
def test_hostile_targets_get_one_clean_line(case: str) -> None:
    stdin, fragments = HOSTILE_TARGETS[case]
    assert_clean_line(agent("probe", stdin=stdin), *fragments)


def test_targets_from_a_binary_file(tmp_path: Path) -> None:
    binary = tmp_path / "binary"
    binary.write_bytes(bytes(range(256)) * 4)
    assert_clean_line(agent("probe", "--targets", str(binary)), "is not UTF-8 text (byte 128 is 0x80)")
    assert_clean_line(agent("probe", stdin=""), "not valid JSON")
    assert_clean_line(agent("probe", "--targets", str(tmp_path)), "cannot read targets", "Is a directory")
    assert_clean_line(agent("probe", "--targets", "/dev/zero"), "is larger than 64 MiB")
    assert_clean_line(agent("probe", "--targets", str(tmp_path / "no\nsuch\x1b")), "No such file", "\\n")


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (("probe", "--timeout", "nan"), "out of range"),
        (("probe", "--timeout", "inf"), "out of range"),
        (("probe", "--retries", "9" * 5000), "is not a retry count"),
        (("probe", "--retries", "\u00b2"), "is not a retry count"),
        (("serve", "--tcp", "0"), "'0' is not a port"),
        (("serve", "--udp", "8" * 5000), "is not a port"),
        (("serve", "--tcp", "80\n\x1b[2J"), "is not a port"),
        (("probe", "--bogus\n\x1b[2J"), "unrecognized arguments"),
        (("hold", "--ip", "255.255.255.255", "--port", "80", "--status", "/tmp/x"), "broadcast"),
    ],
    ids=[
        "timeout-nan",
        "timeout-inf",
        "retries-5000-digits",
        "retries-superscript",
        "port-zero",
        "port-5000-digits",
        "port-control-characters",
        "unknown-option-control-characters",
        "hold-broadcast",
    ],
)
def test_hostile_options_get_one_clean_line(argv: tuple[str, ...], fragment: str) -> None:
    assert_clean_line(agent(*argv), fragment)


MALFORMED_STATUS: dict[str, bytes] = {
    "not-json": b"{pid: 1",
    "a-list": b"[1, 2]",
    "deep-nesting": b"[" * 100_000 + b"]" * 100_000,
    "4300-digit-pid": b'{"pid": 1' + b"0" * 5000 + b', "state": "running"}',
    "pid-a-string": b'{"pid": "1", "state": "running"}',
    "pid-minus-one": b'{"pid": -1, "state": "running"}',
    "pid-true": b'{"pid": true, "state": "running"}',
    "no-state": b'{"pid": 12345}',
    "binary": bytes(range(256)),
}


@pytest.mark.parametrize("case", list(MALFORMED_STATUS))
@pytest.mark.parametrize("command", ["hold-stop", "hold-status"])
def test_malformed_hold_status_files(command: str, case: str, tmp_path: Path) -> None:
    status = tmp_path / "status.json"
    status.write_bytes(MALFORMED_STATUS[case])
    assert_clean_line(agent(command, "--status", str(status)), str(status))


def test_background_hold_status_that_is_a_directory(tmp_path: Path) -> None:
    argv = ("hold", "--background", "--ip", "10.0.0.1", "--port", "80", "--status", str(tmp_path))
    assert_clean_line(agent(*argv), "cannot replace the status file", "Is a directory")


def test_a_damaged_journal(tmp_path: Path) -> None:
    journal = tmp_path / "journal.jsonl"
    journal.write_bytes(b'{"time": 1.0, "event": "listening"}\n[[[[[\n')
    assert_clean_line(agent("journal", "--journal", str(journal)), "line 2: not valid JSON")


@pytest.mark.netns
def test_a_subnet_broadcast_target_is_refused_before_anything_is_sent(lab: Lab) -> None:
    """10.251.0.255 is the pod subnet's broadcast address: only the pod's routes know it."""
    pod = lab.add_pod("client")
    targets = json.dumps([{**GOOD, "ip": "10.251.0.255"}])
    result = lab.run(pod, *AGENT, "probe", input_text=targets, check=False)
    assert_clean_line(result, "10.251.0.255 is a broadcast address for this pod")
