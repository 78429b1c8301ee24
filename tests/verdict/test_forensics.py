"""Per-cell forensics: the destination's journal, weave-npc's blocked lines, and their timestamps."""

from __future__ import annotations

from datetime import datetime

from netpolcheck.model import Probe
from netpolcheck.verdict.expected import Target
from netpolcheck.verdict.forensics import blocked_for, journal_verdict, lines_since, log_time

TARGET = Target("x/a", "y/b", "10.32.0.4", "10.32.0.5", 80, "UDP", Probe(80, "UDP"))


def test_journal_records_from_the_source_on_that_port_and_protocol_count() -> None:
    records = [
        {"event": "listening", "proto": "udp", "port": 80},
        {"event": "datagram", "proto": "udp", "port": 80, "peer": "10.32.0.4:5000"},
        {"event": "datagram", "proto": "udp", "port": 80, "peer": "10.32.0.4:5001"},
        {"event": "datagram", "proto": "udp", "port": 81, "peer": "10.32.0.4:5002"},  # another port
        {"event": "accept", "proto": "tcp", "port": 80, "peer": "10.32.0.4:5003"},  # another protocol
        {"event": "datagram", "proto": "udp", "port": 80, "peer": "10.32.0.9:5004"},  # another source
    ]
    assert journal_verdict(records, TARGET) == "reached the destination (2 journal record(s): datagram)"
    assert journal_verdict(records[3:], TARGET).startswith("never reached the destination")


def test_blocked_lines_match_protocol_source_and_destination_port() -> None:
    stamp, tail = "node1: WARN: 2026/11/30 10:00:00.000001", "blocked by Weave NPC."
    lines = [
        f"{stamp} UDP connection from 10.32.0.4:5000 to 10.32.0.5:80 {tail}",
        f"{stamp} TCP connection from 10.32.0.4:5000 to 10.32.0.5:80 {tail}",
        f"{stamp} UDP connection from 10.32.0.4:5000 to 10.32.0.5:81 {tail}",
        f"{stamp} UDP connection from 10.32.0.44:5000 to 10.32.0.5:80 {tail}",
    ]
    assert blocked_for(lines, TARGET) == (lines[0],)


def test_lines_are_kept_from_the_step_on() -> None:
    stamp = datetime(2026, 11, 30, 10, 0, 5).timestamp()
    old = "node2: WARN: 2026/11/30 10:00:00.000000 TCP connection ... blocked by Weave NPC."
    new = "node2: WARN: 2026/11/30 10:00:05.500000 TCP connection ... blocked by Weave NPC."
    assert log_time(new) == stamp + 0.5
    assert log_time("no stamp here") is None
    assert lines_since([old, new, "no stamp here"], stamp) == [new, "no stamp here"]
