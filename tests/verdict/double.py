"""A driver double for the engine's pure logic: an in-memory cluster whose dataplane the test scripts.

It is NOT a NetworkPolicy implementation: each test states, per cell, what the "dataplane" answers and
from when (on a fake clock), so the engine's comparison, convergence bookkeeping, reports and status
logic can be checked exactly. The real proof is the suites on the embedded cluster.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from netpolcheck.verdict.convergence import Clock
from netpolcheck.verdict.driver import ClusterInfo, PodSpec, ProbeResult, ProbeTarget

# (source pod key, destination ip, port, protocol) -> verdict
Cell = tuple[str, str, int, str]
Dataplane = Callable[["FakeDriver", Cell, float], str]


@dataclass
class FakeClock:
    t: float = 1000.0

    def now(self) -> float:
        return self.t

    def wait(self, seconds: float) -> None:
        self.t += seconds

    def clock(self) -> Clock:
        return Clock(self.now, self.wait)


EVIDENCE = {
    "allowed": "SYN-ACK from {ip}:{port}",
    "unsupported": "this pod's kernel has no SCTP (the double's dataplane says so)",
}


def allow_everything(driver: FakeDriver, cell: Cell, now: float) -> str:
    return "allowed"


@dataclass
class FakeDriver:
    clock: FakeClock
    dataplane: Dataplane = allow_everything
    weave_version: str | None = "2.8.1"
    rtt: float = 0.0005
    namespaces: dict[str, dict[str, str]] = field(default_factory=dict)
    pods: dict[str, dict[str, Any]] = field(default_factory=dict)
    policies: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    journals: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    blocked: list[str] = field(default_factory=list)
    probe_timeouts: list[float] = field(default_factory=list)
    holds: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> what hold_start got
    hold_gaps: list[dict[str, Any]] = field(default_factory=list)  # the TCP gaps every hold reports
    _next_ip: int = 10

    def info(self) -> ClusterInfo:
        return ClusterInfo("fake", "1.30.0", self.weave_version, ("node1", "node2", "node3"))

    def create_namespace(self, name: str, labels: Mapping[str, str]) -> None:
        self.calls.append(f"create namespace {name}")
        self.namespaces[name] = {"kubernetes.io/metadata.name": name, **labels}

    def delete_namespace(self, name: str) -> None:
        self.calls.append(f"delete namespace {name}")
        del self.namespaces[name]
        self.pods = {k: p for k, p in self.pods.items() if p["namespace"] != name}
        self.policies = {k: p for k, p in self.policies.items() if k[0] != name}

    def label_namespace(self, name: str, labels: Mapping[str, str | None]) -> None:
        self.calls.append(f"label namespace {name}")
        _relabel(self.namespaces[name], labels)

    def create_pods(self, pods: Sequence[PodSpec]) -> None:
        for pod in pods:
            self.calls.append(f"create pod {pod.namespace}/{pod.name} on {pod.node}")
            self._next_ip += 1
            node_ip = f"10.32.1.{1 + self.info().nodes.index(pod.node)}" if pod.node else "10.32.1.1"
            self.pods[f"{pod.namespace}/{pod.name}"] = {
                "namespace": pod.namespace,
                "name": pod.name,
                "labels": dict(pod.labels),
                "ip": node_ip if pod.host_network else f"10.32.0.{self._next_ip}",
                "node": pod.node,
                "hostNetwork": pod.host_network,
                "ports": [
                    {"name": f"serve-{n}-{p.lower()}", "containerPort": n, "protocol": p}
                    for n, p in pod.ports
                ],
            }

    def delete_pod(self, namespace: str, name: str) -> None:
        self.calls.append(f"delete pod {namespace}/{name}")
        del self.pods[f"{namespace}/{name}"]

    def label_pod(self, namespace: str, name: str, labels: Mapping[str, str | None]) -> None:
        self.calls.append(f"label pod {namespace}/{name}")
        _relabel(self.pods[f"{namespace}/{name}"]["labels"], labels)

    def apply_policy(self, namespace: str, manifest: Mapping[str, Any]) -> None:
        name = manifest["metadata"]["name"]
        self.calls.append(f"apply policy {namespace}/{name}")
        self.policies[(namespace, name)] = copy.deepcopy(dict(manifest))

    def delete_policy(self, namespace: str, name: str) -> None:
        self.calls.append(f"delete policy {namespace}/{name}")
        del self.policies[(namespace, name)]

    def restart_policy_controller(self) -> None:
        self.calls.append("restart controller")

    def upgrade_weave(self, version: str) -> None:
        self.calls.append(f"upgrade weave {version}")
        self.weave_version = version

    def snapshot(self, namespaces: Sequence[str]) -> dict[str, Any]:
        wanted = set(namespaces)
        return {
            "namespaces": [
                {"name": n, "labels": dict(lb)} for n, lb in self.namespaces.items() if n in wanted
            ],
            "pods": [copy.deepcopy(p) for p in self.pods.values() if p["namespace"] in wanted],
            "policies": [copy.deepcopy(p) for k, p in self.policies.items() if k[0] in wanted],
        }

    def probe(
        self, namespace: str, pod: str, targets: Sequence[ProbeTarget], timeout: float
    ) -> list[ProbeResult]:
        """Answers from `dataplane` at the current fake time; a round costs rtt, or `timeout` if any drop."""
        self.probe_timeouts.append(timeout)
        out = self.answers(f"{namespace}/{pod}", targets, self.clock.now())
        self.clock.wait(self.probe_cost(out, timeout))
        return out

    def answers(self, source: str, targets: Sequence[ProbeTarget], now: float) -> list[ProbeResult]:
        """What a probe round from `source` shows at fake time `now`."""
        out = []
        for t in targets:
            verdict = self.dataplane(self, (source, t["ip"], t["port"], t["protocol"]), now)
            evidence = EVIDENCE.get(verdict, "no answer").format(**t)
            out.append(
                {"id": t["id"], "verdict": verdict, "attempts": 1, "rtt_ms": 0.4, "evidence": evidence}
            )
        return out

    def probe_cost(self, results: Sequence[ProbeResult], timeout: float) -> float:
        """A round costs rtt, or its whole window if anything was dropped."""
        return timeout if any(r["verdict"] == "dropped" for r in results) else self.rtt

    def hold_start(
        self, namespace: str, pod: str, ip: str, port: int, udp_port: int | None, name: str
    ) -> None:
        self.calls.append(f"hold {name} from {namespace}/{pod} to {ip}:{port}")
        self.holds[name] = {"pod": f"{namespace}/{pod}", "ip": ip, "port": port, "udp_port": udp_port}

    def hold_stop(self, namespace: str, pod: str, name: str) -> dict[str, Any]:
        self.calls.append(f"release {name}")
        del self.holds[name]
        flows = {"tcp": {"gaps": list(self.hold_gaps)}, "udp": {"gaps": []}}
        return {"state": "ended", "flows": flows, "ended": {"at": 0, "how": "stopped"}}

    def journal(self, namespace: str, pod: str, since: float) -> list[dict[str, Any]]:
        return self.journals.get(f"{namespace}/{pod}", [])

    def blocked_lines(self, since: float) -> list[str]:
        return list(self.blocked)

    def ip(self, key: str) -> str:
        return str(self.pods[key]["ip"])


def _relabel(target: dict[str, str], labels: Mapping[str, str | None]) -> None:
    for key, value in labels.items():
        if value is None:
            target.pop(key, None)
        else:
            target[key] = value
