"""The agent at scale: a fixed number of sockets whatever the target count, and no verdict lost when a run
is cut short."""

from __future__ import annotations

import json
import resource
import signal
import subprocess
from pathlib import Path

import pytest

from tests.probe.netlab import AGENT, Lab, wait_until

pytestmark = pytest.mark.netns

FD_LIMIT = 256


def limit_open_files() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (FD_LIMIT, FD_LIMIT))


def test_3000_dropped_targets_under_a_256_file_limit_all_get_a_verdict(lab: Lab) -> None:
    """One socket per attempt needed 24,000 descriptors here (and crashed, losing every verdict)."""
    client, server = lab.add_pod("client"), lab.add_pod("server")
    for proto in ("tcp", "udp"):
        lab.iptables(server, "-A", "INPUT", "-p", proto, "-j", "DROP")
    targets = [
        {"id": f"t{i}", "ip": server.ip, "port": 1000 + i // 2, "protocol": "TCP" if i % 2 else "UDP"}
        for i in range(3000)
    ]
    result = subprocess.run(
        ["ip", "netns", "exec", client.netns, *AGENT, "probe"],
        input=json.dumps(targets),
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=limit_open_files,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stderr == ""
    results = json.loads(result.stdout)
    assert [r["id"] for r in results] == [t["id"] for t in targets]
    wrong = [r for r in results if r["verdict"] != "dropped" or r["attempts"] != 8]
    assert wrong == [], wrong[:3]


def test_a_stopped_run_keeps_the_verdicts_it_has_and_names_the_missing(lab: Lab, tmp_path: Path) -> None:
    """SIGTERM part-way: stdout still lists every target, answered ones with their verdict, the others
    `error` with the reason; one line on stderr; exit 3."""
    client, server = lab.add_pod("client"), lab.add_pod("server")
    journal = tmp_path / "journal.jsonl"
    lab.serve(server, journal, tcp="80,81", udp="80")
    lab.iptables(server, "-A", "INPUT", "-p", "tcp", "--dport", "81", "-j", "DROP")
    targets = [
        {"id": "open", "ip": server.ip, "port": 80, "protocol": "TCP"},
        {"id": "slow", "ip": server.ip, "port": 81, "protocol": "TCP"},
    ]
    prober = lab.spawn(
        client, *AGENT, "probe", "--timeout", "120", "--targets", str(write(tmp_path, targets))
    )

    def syn_reached_port_80() -> bool:
        shown = lab.run(
            server, *AGENT, "journal", "--journal", str(journal), "--port", "80", "--proto", "tcp"
        )
        return any(json.loads(line)["event"] == "syn" for line in shown.stdout.splitlines())

    # the SYN-ACK is queued at the prober before serve has even journalled the SYN
    wait_until("the open target's SYN in the server's journal", syn_reached_port_80, 30.0)
    prober.send_signal(signal.SIGTERM)
    stdout, stderr = prober.communicate(timeout=30)
    assert prober.returncode == 3, (prober.returncode, stderr)
    results = {r["id"]: r for r in json.loads(stdout)}
    assert results["open"]["verdict"] == "allowed", results["open"]
    slow = results["slow"]
    assert (slow["verdict"], slow["rtt_ms"]) == ("error", None), slow
    assert slow["evidence"].startswith("no verdict: the run was stopped by SIGTERM after "), slow
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("netpolcheck.probe: error: the run was stopped by SIGTERM after "), lines[0]
    assert "1 of 2 targets have no verdict" in lines[0], lines[0]


def write(directory: Path, targets: list[dict[str, object]]) -> Path:
    path = directory / "targets.json"
    path.write_text(json.dumps(targets))
    return path
