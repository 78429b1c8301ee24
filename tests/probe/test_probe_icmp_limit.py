"""Under the kernel's default ICMP rate limit a burst of closed UDP ports partly goes silent.

Linux sends a peer 6 ICMP errors at once, then 1 per second (net.ipv4.icmp_ratelimit=1000). The agent cannot
tell a suppressed error from a drop; it reports `dropped` and says in the evidence that the host was rate-
limiting, so nobody reads that silence as a policy drop without being warned.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.probe.netlab import Lab

pytestmark = pytest.mark.netns


def test_rate_limited_icmp_is_flagged_not_hidden(lab: Lab, tmp_path: Path) -> None:
    client, server = lab.add_pod("client"), lab.add_pod("server")  # kernel default ICMP rate limit
    lab.serve(server, tmp_path / "journal.jsonl", tcp="80", udp="80")
    closed_ports = range(90, 102)
    targets = [{"id": str(p), "ip": server.ip, "port": p, "protocol": "UDP"} for p in closed_ports]
    result = lab.probe(client, json.dumps(targets))
    results = json.loads(result.stdout)
    refused = [r for r in results if r["verdict"] == "refused"]
    silent = [r for r in results if r["verdict"] != "refused"]
    assert 6 <= len(refused) < len(targets), results  # the burst got through, the rest was limited
    for r in refused:
        assert r["evidence"] == f"ICMP type 3 code 3 from {server.ip} (port unreachable)", r
    for r in silent:
        assert r["verdict"] == "dropped", r
        assert "rate-limits them, so this silence may be a suppressed error" in r["evidence"], r
