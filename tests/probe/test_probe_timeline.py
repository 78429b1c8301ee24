"""The agent's `timeline`: a watch's attempts, target by target, as runs of one verdict (real sockets,
real processes, a real DROP rule put in and taken out while the watch runs). It is how the engine sees
what a Weave rollout does to each cell, to the watch's interval."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.probe.netlab import AGENT, Lab, Pod, wait_until
from tests.probe.test_probe_agent import ask, served_pair

pytestmark = pytest.mark.netns

COUNTED = ("-p", "tcp", "--dport", "80")  # the watched target's packets at the server


def packets(lab: Lab, server: Pod, target: str) -> int:
    """Packets the server's INPUT rules with `target` (DROP, or "" for the counting rule) have matched."""
    listing = lab.run(server, "iptables", "-w", "-L", "INPUT", "-v", "-x", "-n").stdout.splitlines()
    rows = [line.split() for line in listing[2:]]
    return sum(int(row[0]) for row in rows if (row[2] == "DROP") == (target == "DROP") and "dpt:80" in row)


def test_a_timeline_shows_each_change_of_a_target_between_two_attempts(lab: Lab, tmp_path: Path) -> None:
    client, server, journal = served_pair(lab, tmp_path)
    lab.iptables(server, "-A", "INPUT", *COUNTED)  # counts what reaches the server (no verdict)
    targets = [
        {"id": "web", "ip": server.ip, "port": 80, "protocol": "TCP", "interval": 0.02},
        {"id": "closed", "ip": server.ip, "port": 82, "protocol": "TCP"},
    ]
    options = ("--op", "watch", "--timeout", "0.05", "--interval", "0.05", "--limit", "60")
    watch = ask(lab, client, journal, targets, *options)["watch"]

    def more_than(count: int, target: str) -> bool:
        return packets(lab, server, target) >= count

    wait_until("5 attempts reaching the server", lambda: more_than(5, ""), 30)
    lab.iptables(server, "-I", "INPUT", "1", *COUNTED, "-j", "DROP")
    rule_in = time.time()  # the agent runs on this machine's clock
    wait_until("5 attempts dropped", lambda: more_than(5, "DROP"), 30)
    lab.iptables(server, "-D", "INPUT", *COUNTED, "-j", "DROP")
    rule_out = time.time()
    reached = packets(lab, server, "")
    wait_until("5 more attempts reaching the server", lambda: more_than(reached + 5, ""), 30)

    answer = ask(lab, client, journal, [], "--op", "timeline", "--watch", watch)
    assert answer["failure"] is None and answer["started_at"] <= rule_in <= rule_out <= answer["ended_at"]
    web, closed = answer["targets"]
    assert (web["id"], closed["id"]) == ("web", "closed")
    verdicts = [run[0] for run in web["runs"]]
    assert verdicts == ["allowed", "dropped", "allowed"], web["runs"]
    before, dropped, after = web["runs"]
    # each run: [verdict, first sent, last sent, attempts, evidence]; the change falls between two runs
    assert before[1] <= before[2] <= rule_in and dropped[3] >= 5 and dropped[2] <= rule_out
    assert rule_in <= after[1] and "SYN-ACK" in after[4] and "no answer" in dropped[4]
    assert before[2] < dropped[1] <= dropped[2] < after[1]
    # the other target kept its own cadence and never changed
    assert [run[0] for run in closed["runs"]] == ["refused"] and closed["runs"][0][3] >= 2

    # the timeline stopped the watch: asking again is refused in one line
    again = lab.run(
        client, *AGENT, "ask", "--journal", str(journal), "--op", "timeline", "--watch", watch, check=False
    )
    assert again.returncode == 2 and again.stderr.count("\n") == 1 and "no watch" in again.stderr
    missing = lab.run(client, *AGENT, "ask", "--journal", str(journal), "--op", "timeline", check=False)
    assert missing.returncode == 2 and "timeline needs the id" in missing.stderr
    still = ask(lab, client, journal, targets[:1], "--timeout", "0.3")  # and the agent serves on
    assert still["agent"] == "resident" and still["results"][0]["verdict"] == "allowed"
