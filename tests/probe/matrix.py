"""A 9 x 9 probe matrix, TCP and UDP ports 80 and 81 (324 probes), shared by the loss test and the benchmark.

Every pod serves TCP and UDP 80,81. Port 80 is open to everyone. Port 81 on destination d, for source s,
follows (s + d) % 4: 0 DROP, 1 REJECT icmp-admin-prohibited, 2 REJECT icmp-port-unreachable, 3 open, so
the matrix holds every verdict. `all_dropped` drops both ports for every pair instead (the worst case).
"""

from __future__ import annotations

import json
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tests.probe.netlab import AGENT, Lab, Pod

PORTS = (80, 81)
PROTOCOLS = ("TCP", "UDP")
PORT_81_RULES: dict[int, tuple[str, list[str]]] = {
    0: ("dropped", ["-j", "DROP"]),
    1: ("rejected", ["-j", "REJECT", "--reject-with", "icmp-admin-prohibited"]),
    2: ("refused", ["-j", "REJECT", "--reject-with", "icmp-port-unreachable"]),
    3: ("allowed", []),
}


@dataclass
class Matrix:
    lab: Lab
    pods: list[Pod]
    expected: dict[tuple[int, str], str]  # (source index, target id) -> verdict

    def targets_for(self, source: int) -> list[dict[str, object]]:
        return [
            {"id": f"{d}/{proto}/{port}", "ip": pod.ip, "port": port, "protocol": proto}
            for d, pod in enumerate(self.pods)
            for proto in PROTOCOLS
            for port in PORTS
        ]

    def run(self, *options: str) -> tuple[dict[tuple[int, str], dict[str, object]], float]:
        """One matrix: every source runs one agent process, all at once. Returns results and wall seconds."""
        started = time.monotonic()
        processes = [
            subprocess.Popen(
                ["ip", "netns", "exec", pod.netns, *AGENT, "probe", *options],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for pod in self.pods
        ]
        with ThreadPoolExecutor(len(processes)) as pool:  # feed and read them all at once, side by side
            outputs = list(
                pool.map(
                    lambda sp: sp[1].communicate(json.dumps(self.targets_for(sp[0])), timeout=120),
                    enumerate(processes),
                )
            )
        wall = time.monotonic() - started
        results: dict[tuple[int, str], dict[str, object]] = {}
        for source, (process, (stdout, stderr)) in enumerate(zip(processes, outputs, strict=True)):
            if process.returncode != 0:
                raise RuntimeError(f"probe from pod {source} failed ({process.returncode}): {stderr.strip()}")
            for result in json.loads(stdout):
                results[(source, str(result["id"]))] = result
        return results, wall

    def wrong(self, results: dict[tuple[int, str], dict[str, object]]) -> list[str]:
        return [
            f"{source} -> {tid}: expected {verdict}, got {results[(source, tid)]}"
            for (source, tid), verdict in self.expected.items()
            if results.get((source, tid), {}).get("verdict") != verdict
        ]


def build_matrix(lab: Lab, journal_dir: Path, all_dropped: bool = False, size: int = 9) -> Matrix:
    """`size` pods serving TCP/UDP 80,81 with the rules above (per-peer ICMP rate limit lifted, see docs)."""
    pods = [lab.add_pod(f"p{i}", icmp_ratelimit_ms=0) for i in range(size)]
    for i, pod in enumerate(pods):
        lab.serve(pod, journal_dir / f"journal-{i}.jsonl", ready_within=60.0)
    expected: dict[tuple[int, str], str] = {}
    for d, destination in enumerate(pods):
        for s, source in enumerate(pods):
            verdict81, rule = PORT_81_RULES[(s + d) % 4]
            for proto in PROTOCOLS:
                if all_dropped:
                    lab.iptables(
                        destination, "-A", "INPUT", "-s", source.ip, "-p", proto.lower(), "-j", "DROP"
                    )
                elif rule:
                    lab.iptables(
                        destination,
                        "-A",
                        "INPUT",
                        "-s",
                        source.ip,
                        "-p",
                        proto.lower(),
                        "--dport",
                        "81",
                        *rule,
                    )
                for port in PORTS:
                    verdict = "dropped" if all_dropped else ("allowed" if port == 80 else verdict81)
                    expected[(s, f"{d}/{proto}/{port}")] = verdict
    return Matrix(lab, pods, expected)
