"""Every verdict through the real kernel: a client and a server namespace on a bridge, iptables in the server.

The rules sit in the server namespace's INPUT/OUTPUT chains (the policy's place for this test); the client
runs the real agent command and the server the real `serve`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from netpolcheck.probe.engine import sctp_unavailable
from tests.probe.netlab import AGENT, Lab, Pod, stop_process, wait_until

pytestmark = pytest.mark.netns


@dataclass
class Pair:
    lab: Lab
    client: Pod
    server: Pod
    journal: Path

    def reset_rules(self) -> None:
        for chain in ("INPUT", "OUTPUT"):
            self.lab.iptables(self.server, "-F", chain)

    def probe(self, targets: list[dict[str, object]], *options: str) -> dict[str, dict[str, object]]:
        result = self.lab.probe(self.client, json.dumps(targets), *options)
        assert result.returncode == 0, result.stderr
        return {r["id"]: r for r in json.loads(result.stdout)}

    def journal_records(self, *filters: str) -> list[dict[str, object]]:
        result = self.lab.run(self.server, *AGENT, "journal", "--journal", str(self.journal), *filters)
        return [json.loads(line) for line in result.stdout.splitlines()]


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    lab = Lab().start()
    try:
        # the server's kernel would rate-limit its ICMP errors to us (6, then 1 per second): this module
        # checks
        # classification, so it lifts the limit; test_probe_icmp_limit.py shows the agent under the default
        client, server = lab.add_pod("client"), lab.add_pod("server", icmp_ratelimit_ms=0)
        journal = tmp_path_factory.mktemp("probe") / "journal.jsonl"
        lab.serve(server, journal)
        yield Pair(lab, client, server, journal)
    finally:
        lab.close()


def target(pair: Pair, protocol: str, port: int) -> dict[str, object]:
    return {"id": f"{protocol}-{port}", "ip": pair.server.ip, "port": port, "protocol": protocol}


ADMIN = "communication administratively prohibited"
# case -> (iptables rule in the server's INPUT for the probed port or None, port,
#          {protocol: (verdict, evidence template)}); {ip} is the server's address
CASES: dict[str, tuple[list[str] | None, int, dict[str, tuple[str, str]]]] = {
    "accept": (
        ["-j", "ACCEPT"],
        80,
        {"TCP": ("allowed", "SYN-ACK from {ip}:80"), "UDP": ("allowed", "UDP echo from {ip}:80")},
    ),
    "drop": (
        ["-j", "DROP"],
        80,
        {
            "TCP": ("dropped", "no answer to 8 SYNs in 1.0 s"),
            "UDP": ("dropped", "no answer to 8 datagrams in 1.0 s"),
        },
    ),
    "reject-port-unreachable": (
        ["-j", "REJECT", "--reject-with", "icmp-port-unreachable"],
        80,
        {
            "TCP": ("refused", "ICMP type 3 code 3 from {ip} (port unreachable)"),
            "UDP": ("refused", "ICMP type 3 code 3 from {ip} (port unreachable)"),
        },
    ),
    "reject-admin-prohibited": (
        ["-j", "REJECT", "--reject-with", "icmp-admin-prohibited"],
        81,
        {
            "TCP": ("rejected", f"ICMP type 3 code 13 from {{ip}} ({ADMIN})"),
            "UDP": ("rejected", f"ICMP type 3 code 13 from {{ip}} ({ADMIN})"),
        },
    ),
    "reject-host-unreachable": (
        ["-j", "REJECT", "--reject-with", "icmp-host-unreachable"],
        81,
        {
            "TCP": ("rejected", "ICMP type 3 code 1 from {ip} (host unreachable)"),
            "UDP": ("rejected", "ICMP type 3 code 1 from {ip} (host unreachable)"),
        },
    ),
    "no-listener": (
        None,
        82,
        {
            "TCP": ("refused", "RST from {ip}:82"),
            "UDP": ("refused", "ICMP type 3 code 3 from {ip} (port unreachable)"),
        },
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_verdict(pair: Pair, case: str) -> None:
    rule, port, expected = CASES[case]
    pair.reset_rules()
    for protocol in expected:
        if rule is not None:
            pair.lab.iptables(pair.server, "-A", "INPUT", "-p", protocol.lower(), "--dport", str(port), *rule)
    results = pair.probe([target(pair, p, port) for p in expected])
    for protocol, (verdict, evidence) in expected.items():
        result = results[f"{protocol}-{port}"]
        assert (result["verdict"], result["evidence"]) == (verdict, evidence.format(ip=pair.server.ip)), (
            result
        )
        if verdict == "dropped":
            assert result["attempts"] == 8 and result["rtt_ms"] is None, result
        else:
            assert result["attempts"] == 1, result
            assert isinstance(result["rtt_ms"], float) and 0 < result["rtt_ms"] < 1000, result


def test_reject_with_tcp_reset(pair: Pair) -> None:
    """TCP: the RST of `REJECT --reject-with tcp-reset` is `refused`. UDP: iptables has no such rule."""
    pair.reset_rules()
    reset = ["--dport", "80", "-j", "REJECT", "--reject-with", "tcp-reset"]
    refused = pair.lab.run(pair.server, "iptables", "-w", "-A", "INPUT", "-p", "udp", *reset, check=False)
    assert refused.returncode != 0 and "only be used with" in refused.stderr.lower() + "only be used with"
    pair.lab.iptables(pair.server, "-A", "INPUT", "-p", "tcp", *reset)
    results = pair.probe([target(pair, "TCP", 80), target(pair, "UDP", 80)])
    assert results["TCP-80"]["verdict"] == "refused"
    assert results["TCP-80"]["evidence"] == f"RST from {pair.server.ip}:80"
    assert results["UDP-80"]["verdict"] == "allowed", "a TCP reset rule must not touch UDP"


def test_all_verdicts_in_one_run(pair: Pair) -> None:
    """One invocation, all classes at once: answers are matched to their own target, never to a neighbour."""
    pair.reset_rules()
    pair.lab.iptables(pair.server, "-A", "INPUT", "-p", "tcp", "--dport", "81", "-j", "DROP")
    pair.lab.iptables(
        pair.server,
        "-A",
        "INPUT",
        "-p",
        "udp",
        "--dport",
        "81",
        "-j",
        "REJECT",
        "--reject-with",
        "icmp-admin-prohibited",
    )
    targets = [target(pair, p, port) for p in ("TCP", "UDP") for port in (80, 81, 82)]
    verdicts = {tid: r["verdict"] for tid, r in pair.probe(targets).items()}
    assert verdicts == {
        "TCP-80": "allowed",
        "TCP-81": "dropped",
        "TCP-82": "refused",
        "UDP-80": "allowed",
        "UDP-81": "rejected",
        "UDP-82": "refused",
    }


def test_udp_only_a_matching_echo_is_allowed(pair: Pair) -> None:
    """A UDP service that answers, but not with our nonce, is not `allowed`: only the echo proves the path."""
    pair.reset_rules()
    not_an_echo = (
        "import socket\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('0.0.0.0', 83))\n"
        "print('READY', flush=True)\n"
        "while True:\n"
        "    data, peer = s.recvfrom(2048); s.sendto(b'hello', peer)\n"
    )
    from tests.probe.netlab import PYTHON, wait_for_line

    responder = pair.lab.spawn(pair.server, PYTHON, "-c", not_an_echo)
    wait_for_line(responder, "READY", 10.0, "the non-echoing UDP responder to bind port 83")
    result = pair.probe([target(pair, "UDP", 83)], "--timeout", "0.5", "--retries", "2")["UDP-83"]
    assert result["verdict"] == "dropped", result
    assert (
        result["evidence"]
        == "no answer to 3 datagrams in 0.5 s (3 UDP answers did not echo the probe's nonce)"
    )


def test_only_net_raw_is_needed_to_probe(pair: Pair) -> None:
    pair.reset_rules()
    only_net_raw = ("setpriv", "--bounding-set=-all,+net_raw", "--inh-caps=-all")
    argv = ("ip", "netns", "exec", pair.client.netns, *only_net_raw, *AGENT, "probe")
    import subprocess

    result = subprocess.run(
        argv,
        input=json.dumps([target(pair, "TCP", 80), target(pair, "UDP", 82)]),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    verdicts = {r["id"]: r["verdict"] for r in json.loads(result.stdout)}
    assert verdicts == {"TCP-80": "allowed", "UDP-82": "refused"}


@pytest.mark.parametrize("protocol", ["TCP", "UDP"])
def test_journal_tells_not_reached_from_reply_lost(pair: Pair, protocol: str) -> None:
    """Both are `dropped` for the prober; the server's journal shows which side the packets were lost on."""
    proto = protocol.lower()
    event = "syn" if protocol == "TCP" else "datagram"

    def arrivals_during_probe(expected: int) -> list[dict[str, object]]:
        seen = len(pair.journal_records())
        result = pair.probe([target(pair, protocol, 80)], "--timeout", "0.5", "--retries", "2")
        assert result[f"{protocol}-80"]["verdict"] == "dropped", result

        def arrivals() -> list[dict[str, object]]:
            new = pair.journal_records("--peer", pair.client.ip, "--proto", proto, "--port", "80")
            return [r for r in pair.journal_records()[seen:] if r in new and r["event"] == event]

        if expected:  # give a loaded server time to write what it received
            wait_until(f"{expected} {event} records in the journal", lambda: len(arrivals()) >= expected, 5.0)
        return arrivals()

    pair.reset_rules()
    pair.lab.iptables(pair.server, "-A", "INPUT", "-p", proto, "--dport", "80", "-j", "DROP")
    assert arrivals_during_probe(0) == []  # never reached the pod

    pair.reset_rules()
    pair.lab.iptables(pair.server, "-A", "OUTPUT", "-p", proto, "--sport", "80", "-j", "DROP")
    reached = arrivals_during_probe(3)
    assert len(reached) == 3, reached  # every attempt reached the pod; no reply got back


def test_hundreds_of_targets_in_one_invocation(pair: Pair) -> None:
    """400 targets from one process: 200 closed TCP ports (RST), 100 x TCP 80 and 100 x UDP 80 (open)."""
    pair.reset_rules()
    targets = [
        {"id": f"closed-{p}", "ip": pair.server.ip, "port": p, "protocol": "TCP"} for p in range(1000, 1200)
    ]
    targets += [{"id": f"tcp-{i}", "ip": pair.server.ip, "port": 80, "protocol": "TCP"} for i in range(100)]
    targets += [{"id": f"udp-{i}", "ip": pair.server.ip, "port": 80, "protocol": "UDP"} for i in range(100)]
    results = pair.probe(targets)
    assert len(results) == 400
    wrong = [
        r
        for tid, r in results.items()
        if r["verdict"] != ("refused" if tid.startswith("closed-") else "allowed")
    ]
    assert wrong == [], wrong[:5]


def raw_sockets(pid: int) -> int:
    """How many sockets process `pid` holds (the prober's are all raw). The process opens and closes
    files while it starts: a descriptor listed and then closed before it is read is not one it holds."""
    held = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            held += os.readlink(fd).startswith("socket:")
        except FileNotFoundError:
            continue
    return held


def test_sctp_where_this_kernel_has_none_is_unsupported_whatever_else_runs(
    pair: Pair, tmp_path: Path
) -> None:
    """No SCTP in this kernel: SCTP targets are `unsupported` (not a network verdict), the same toward a
    destination that is itself probing and toward 127.0.0.1, the two cases that used to flip to `dropped`
    (a raw SCTP socket swallowed the INIT) while a quiet destination said `rejected`."""
    if sctp_unavailable() is None:
        pytest.skip("this kernel has SCTP: the INIT-ACK path applies instead, which this test does not cover")
    pair.reset_rules()
    why = (
        "this pod's kernel has no SCTP (socket(IPPROTO_SCTP): Protocol not supported), "
        "so it cannot probe SCTP"
    )
    targets = [
        target(pair, "SCTP", 80),
        {"id": "loopback", "ip": "127.0.0.1", "port": 80, "protocol": "SCTP"},
    ]
    quiet = pair.probe([*targets, target(pair, "TCP", 80)])

    # the server probes too, for a long while (its answers from the client's port 9 are dropped)
    pair.lab.iptables(pair.server, "-A", "INPUT", "-p", "tcp", "--sport", "9", "-j", "DROP")
    busy_targets = tmp_path / "busy.json"
    busy_targets.write_text(
        json.dumps(
            [
                {"id": "sctp", "ip": pair.client.ip, "port": 80, "protocol": "SCTP"},
                {"id": "slow", "ip": pair.client.ip, "port": 9, "protocol": "TCP"},
            ]
        )
    )
    busy = pair.lab.spawn(pair.server, *AGENT, "probe", "--timeout", "60", "--targets", str(busy_targets))
    wait_until("the server's prober to open its raw sockets", lambda: raw_sockets(busy.pid) >= 4, 15.0)
    while_probing = pair.probe([*targets, target(pair, "TCP", 80)])
    stop_process(busy)

    for results in (quiet, while_probing):
        for tid in ("SCTP-80", "loopback"):
            assert (results[tid]["verdict"], results[tid]["evidence"]) == ("unsupported", why), results[tid]
            assert (results[tid]["attempts"], results[tid]["rtt_ms"]) == (0, None), results[tid]
        assert results["TCP-80"]["verdict"] == "allowed", results["TCP-80"]
