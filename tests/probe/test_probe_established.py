"""Established flows under rules in Weave's shape: ESTABLISHED,RELATED accepted first, only NEW evaluated.

The server namespace's INPUT plays the node's FORWARD: INPUT -> NPCPROBE-NPC (established accept, NEW ->
NPCPROBE-INGRESS) and then DROP, as Weave's FORWARD drops whatever WEAVE-NPC did not accept.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.probe.netlab import AGENT, Lab, Pod, wait_until

pytestmark = pytest.mark.netns
ESTABLISHED = ("-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT")


def install_weave_shaped_rules(lab: Lab, server: Pod) -> None:
    for chain in ("NPCPROBE-NPC", "NPCPROBE-INGRESS"):
        lab.iptables(server, "-N", chain)
    lab.iptables(server, "-A", "INPUT", "-i", "eth0", "-j", "NPCPROBE-NPC")
    lab.iptables(server, "-A", "INPUT", "-i", "eth0", "-j", "DROP")
    lab.iptables(server, "-A", "NPCPROBE-NPC", *ESTABLISHED)
    lab.iptables(
        server, "-A", "NPCPROBE-NPC", "-m", "conntrack", "--ctstate", "NEW", "-j", "NPCPROBE-INGRESS"
    )
    for proto in ("tcp", "udp"):
        lab.iptables(server, "-A", "NPCPROBE-INGRESS", "-p", proto, "--dport", "80", "-j", "ACCEPT")


class HeldConnection:
    def __init__(self, lab: Lab, client: Pod, server: Pod, status: Path) -> None:
        self.lab, self.client, self.status = lab, client, status
        started = lab.run(
            client,
            *AGENT,
            "hold",
            "--background",
            "--ip",
            server.ip,
            "--port",
            "80",
            "--udp-port",
            "80",
            "--interval",
            "0.05",
            "--status",
            str(status),
        )
        first = json.loads(started.stdout)
        assert first["state"] == "running", first
        self.pid = int(first["pid"])

    def read(self) -> dict[str, Any]:
        return json.loads(
            self.lab.run(self.client, *AGENT, "hold-status", "--status", str(self.status)).stdout
        )

    def flows(self) -> dict[str, dict[str, Any]]:
        flows: dict[str, dict[str, Any]] = self.read()["flows"]
        return flows

    def stop(self) -> dict[str, Any]:
        stopped = self.lab.run(self.client, *AGENT, "hold-stop", "--status", str(self.status))
        report: dict[str, Any] = json.loads(stopped.stdout)
        return report


@pytest.fixture
def held(lab: Lab, tmp_path: Path) -> Iterator[tuple[Lab, Pod, Pod, HeldConnection]]:
    client, server = lab.add_pod("client"), lab.add_pod("server")
    lab.serve(server, tmp_path / "journal.jsonl", tcp="80", udp="80")
    install_weave_shaped_rules(lab, server)
    connection = HeldConnection(lab, client, server, tmp_path / "hold.json")
    try:
        yield lab, client, server, connection
    finally:
        if connection.read()["state"] != "ended":
            connection.stop()  # SIGTERM to the hold we started, by the PID it recorded


def echoed_at_least(connection: HeldConnection, counts: dict[str, int]) -> dict[str, Any] | None:
    flows = connection.flows()
    return flows if all(flows[name]["echoed"] >= count for name, count in counts.items()) else None


def probe_new(lab: Lab, client: Pod, server: Pod) -> dict[str, str]:
    targets = [{"id": p, "ip": server.ip, "port": 80, "protocol": p} for p in ("TCP", "UDP")]
    result = lab.probe(client, json.dumps(targets), "--timeout", "0.5")
    return {r["id"]: r["verdict"] for r in json.loads(result.stdout)}


def test_held_connection_survives_a_deny_and_shows_the_gap_without_established_accept(
    held: tuple[Lab, Pod, Pod, HeldConnection],
) -> None:
    lab, client, server, connection = held
    flowing = wait_until(
        "both held flows to echo 10 ticks",
        lambda: echoed_at_least(connection, {"tcp": 10, "udp": 10}),
        within=10.0,
    )
    assert probe_new(lab, client, server) == {"TCP": "allowed", "UDP": "allowed"}

    # the policy now denies new connections: the rule that accepted them goes
    lab.iptables(server, "-F", "NPCPROBE-INGRESS")
    assert probe_new(lab, client, server) == {"TCP": "dropped", "UDP": "dropped"}
    base = {name: flowing[name]["echoed"] for name in ("tcp", "udp")}
    after_deny = wait_until(
        "20 more echoes on both held flows after the deny",
        lambda: echoed_at_least(connection, {n: c + 20 for n, c in base.items()}),
        within=10.0,
    )
    for name in ("tcp", "udp"):
        assert after_deny[name]["gaps"] == [], (name, after_deny[name])

    # without the established-accept rule the held packets fall through to DROP: a gap opens ...
    lab.iptables(server, "-D", "NPCPROBE-NPC", *ESTABLISHED)
    wait_until(
        "a gap of 5+ lost ticks on both held flows",
        lambda: all(f["in_gap"] and f["gaps"][-1]["lost"] >= 5 for f in connection.flows().values()),
        within=10.0,
    )
    # ... and closes when it comes back (TCP by retransmission, UDP with the next datagram)
    lab.iptables(server, "-I", "NPCPROBE-NPC", "1", *ESTABLISHED)
    wait_until(
        "both held flows to echo again after the established-accept rule is back",
        lambda: not any(f["in_gap"] for f in connection.flows().values()),
        within=20.0,
    )

    report = connection.stop()
    assert report["state"] == "ended" and report["ended"]["how"] == "stopped", report
    for name in ("tcp", "udp"):
        gaps = report["flows"][name]["gaps"]
        assert len(gaps) == 1, (name, gaps)
        (gap,) = gaps
        assert gap["lost"] >= 5 and gap["end"] > gap["start"], (name, gap)
        assert report["flows"][name]["echoed"] > base[name] + 20


def test_hold_reports_how_the_connection_ended(held: tuple[Lab, Pod, Pod, HeldConnection]) -> None:
    lab, _client, _server, connection = held
    wait_until(
        "the held TCP flow to echo 5 ticks", lambda: echoed_at_least(connection, {"tcp": 5}), within=10.0
    )
    # stop the server we started: its kernel closes the connection
    (serve,) = lab.processes
    serve.terminate()
    serve.wait(10)
    ended = wait_until(
        "the hold to notice the server went away",
        lambda: (s := connection.read())["state"] == "ended" and s,
        within=10.0,
    )
    # FIN, then RST for the next tick: which one the hold meets first depends on timing
    assert ended["ended"]["how"] in (
        "TCP connection closed by the peer",
        "TCP connection ended: Connection reset by peer",
        "TCP connection ended: Broken pipe",
    ), ended


def test_hold_that_cannot_connect_says_why(lab: Lab, tmp_path: Path) -> None:
    client, server = lab.add_pod("client"), lab.add_pod("server")  # nothing listens on the server
    status = tmp_path / "hold.json"
    result = lab.run(
        client,
        *AGENT,
        "hold",
        "--background",
        "--ip",
        server.ip,
        "--port",
        "80",
        "--status",
        str(status),
        check=False,
    )
    assert result.returncode == 1, result
    report = json.loads(result.stdout)
    assert report["state"] == "ended", report
    assert report["ended"]["how"] == f"TCP connect to {server.ip}:80 failed: Connection refused", report
