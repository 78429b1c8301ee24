"""`serve`: READY, journal, readiness check, SCTP where the kernel lacks it, clean failure on a busy port."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
from pathlib import Path

import pytest

from netpolcheck.probe.errors import BadInput
from netpolcheck.probe.journal import private_directory
from tests.probe.netlab import AGENT, Lab, wait_for_line, wait_until

pytestmark = pytest.mark.netns


def records(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_serve_without_sctp_in_the_kernel_says_so_and_serves_the_rest(lab: Lab, tmp_path: Path) -> None:
    server = lab.add_pod("server")
    journal = tmp_path / "journal.jsonl"
    process = lab.spawn(
        server, *AGENT, "serve", "--tcp", "80", "--udp", "80", "--sctp", "80,81", "--journal", str(journal)
    )
    wait_for_line(process, "READY", 15.0, "serve to print READY")
    assert lab.run(server, *AGENT, "ready", "--journal", str(journal), check=False).returncode == 0

    (listening,) = [r for r in records(journal) if r["event"] == "listening"]
    assert listening["listening"] == {"tcp": [80], "udp": [80]}
    if os.path.exists("/proc/net/sctp"):
        pytest.skip("this kernel has SCTP; the 'unavailable' path cannot be shown here")
    assert "SCTP is not available in this kernel" in str(listening["sctp_unavailable"])
    assert "not listening on SCTP 80,81" in str(listening["sctp_unavailable"])

    process.send_signal(signal.SIGTERM)
    assert process.wait(10) == 0
    assert process.stderr is not None
    stderr = process.stderr.read()
    assert "netpolcheck.probe serve: SCTP is not available in this kernel" in stderr, stderr
    assert records(journal)[-1]["event"] == "stopped"
    assert lab.run(server, *AGENT, "ready", "--journal", str(journal), check=False).returncode == 1
    assert not Path(f"{journal}.ready").exists()


def test_journal_records_who_reached_the_pod(lab: Lab, tmp_path: Path) -> None:
    client, server = lab.add_pod("client"), lab.add_pod("server")
    journal = tmp_path / "journal.jsonl"
    lab.serve(server, journal, tcp="80", udp="80")
    targets = [{"id": p, "ip": server.ip, "port": 80, "protocol": p} for p in ("TCP", "UDP")]
    assert {r["verdict"] for r in json.loads(lab.probe(client, json.dumps(targets)).stdout)} == {"allowed"}

    def shown() -> str:
        return lab.run(server, *AGENT, "journal", "--journal", str(journal), "--peer", client.ip).stdout

    def events() -> set[tuple[str, str, int]]:
        return {(r["event"], r["proto"], r["port"]) for r in map(json.loads, shown().splitlines())}

    wanted = {("syn", "tcp", 80), ("datagram", "udp", 80)}
    wait_until("the SYN and the datagram in the journal", lambda: events() == wanted, within=5.0)
    for line in shown().splitlines():
        record = json.loads(line)
        assert record["peer"].startswith(f"{client.ip}:") and isinstance(record["time"], float), record


def test_serve_on_a_busy_port_fails_cleanly(lab: Lab, tmp_path: Path) -> None:
    server = lab.add_pod("server")
    lab.serve(server, tmp_path / "first.jsonl", tcp="80", udp="80")
    second = tmp_path / "second.jsonl"
    result = lab.run(server, *AGENT, "serve", "--tcp", "81,80", "--journal", str(second), check=False)
    assert result.returncode == 2, result
    assert (
        result.stderr.strip()
        == "netpolcheck.probe: error: cannot listen on TCP port 80: Address already in use"
    )
    assert not second.exists(), "a failed start must leave no journal behind"


def assert_one_line_error(result: subprocess.CompletedProcess[str], fragment: str) -> None:
    assert result.returncode == 2, result
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("netpolcheck.probe: error: "), result.stderr
    assert fragment in lines[0], lines[0]


def root_only_file(path: Path) -> Path:
    path.write_text("root's secret\n")
    path.chmod(0o600)
    return path


def test_serve_refuses_a_journal_that_is_a_link(lab: Lab, tmp_path: Path) -> None:
    """A link planted at the journal path (e.g. in a shared /tmp) must not make root append to its target."""
    server = lab.add_pod("server")
    victim = root_only_file(tmp_path / "victim")
    journal = tmp_path / "journal.jsonl"
    journal.symlink_to(victim)
    result = lab.run(server, *AGENT, "serve", "--tcp", "80", "--journal", str(journal), check=False)
    assert_one_line_error(result, "is a symbolic link; refusing to write through it")
    assert victim.read_text() == "root's secret\n" and stat.S_IMODE(victim.stat().st_mode) == 0o600
    assert not Path(f"{journal}.ready").exists()


def test_serve_never_writes_through_links_at_its_ready_files(lab: Lab, tmp_path: Path) -> None:
    """Links planted at `<journal>.ready.<pid>.tmp` (the temporary name serve once used, knowing its pid) and
    at `<journal>.ready` itself: serve writes its ready file without following either."""
    server = lab.add_pod("server")
    journal = tmp_path / "journal.jsonl"
    temporary_victim = root_only_file(tmp_path / "victim-tmp")
    ready_victim = root_only_file(tmp_path / "victim-ready")
    # sh waits for a line, then execs serve: serve gets this pid, known before it starts
    wait_then_serve = ("sh", "-c", 'read go && exec "$@"', "sh")
    process = subprocess.Popen(
        [
            "ip",
            "netns",
            "exec",
            server.netns,
            *wait_then_serve,
            *AGENT,
            "serve",
            "--tcp",
            "80",
            "--journal",
            str(journal),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lab.processes.append(process)
    planted_temporary = Path(f"{journal}.ready.{process.pid}.tmp")
    planted_temporary.symlink_to(temporary_victim)
    Path(f"{journal}.ready").symlink_to(ready_victim)
    assert process.stdin is not None
    process.stdin.write("go\n")
    process.stdin.close()
    wait_for_line(process, "READY", 15.0, "serve to print READY")

    for victim in (temporary_victim, ready_victim):
        assert victim.read_text() == "root's secret\n", victim
        assert stat.S_IMODE(victim.stat().st_mode) == 0o600
    assert os.readlink(planted_temporary) == str(temporary_victim)  # untouched, unused
    ready = Path(f"{journal}.ready")
    assert not ready.is_symlink() and json.loads(ready.read_text())["pid"] == process.pid
    for written in (ready, journal):
        assert stat.S_IMODE(written.stat().st_mode) == 0o600, written
    assert lab.run(server, *AGENT, "ready", "--journal", str(journal), check=False).returncode == 0


def test_the_default_journal_directory_must_be_private(tmp_path: Path) -> None:
    """Someone else may create the default directory first in a shared /tmp: then serve refuses it."""
    link = tmp_path / "link"
    link.symlink_to(tmp_path)
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)
    for path in (link, shared):
        with pytest.raises(BadInput, match="not a private directory"):
            private_directory(str(path))
    fresh = tmp_path / "fresh"
    private_directory(str(fresh))
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o700
