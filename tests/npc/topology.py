"""A Weave-shaped fabric in network namespaces, built from a World, with echo servers and a prober.

Each node is a namespace with a bridge `weave` (10.32.0.k/12) and br_netfilter on; each pod is a
namespace whose eth0 is a veth on its node's bridge; nodes share one L2 segment through a port named
`vethwe-bridge` (Weave's router port name) on every node bridge. No namespace has a default route.
Everything is created under the `npcref-` prefix and removed on exit; processes are stopped by PID.
"""

from __future__ import annotations

import json
import subprocess
import sys
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from netpolcheck.kube.waiting import wait_for
from netpolcheck.npc.world import World, obj_key, pod_ip
from tests.npc.netns import install_router_hooks, netns, run

HELPERS = Path(__file__).parent / "podprocs.py"
PORTS = (80, 81)
PROTOCOLS = ("TCP", "UDP")


@dataclass
class Topology:
    world: World
    nodes: dict[str, str] = field(default_factory=dict)  # node name -> netns
    pods: dict[str, str] = field(default_factory=dict)  # "ns/name" -> netns
    ips: dict[str, str] = field(default_factory=dict)  # "ns/name" -> IP
    servers: list[subprocess.Popen[str]] = field(default_factory=list)
    _stack: ExitStack = field(default_factory=ExitStack)

    def __enter__(self) -> Topology:
        try:
            self._build()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        for proc in self.servers:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)
        self._stack.close()

    def _build(self) -> None:
        fabric = self._stack.enter_context(netns("fab"))
        run("ip", "link", "add", "fab", "type", "bridge", netns=fabric)
        run("ip", "link", "set", "fab", "up", netns=fabric)
        node_names = sorted(
            {(p.get("spec") or {}).get("nodeName", "node1") for p in self.world.pods.values()}
        )
        for index, node in enumerate(node_names, start=1):
            ns = self.nodes[node] = self._stack.enter_context(netns(f"n{index}"))
            run("ip", "link", "add", "weave", "type", "bridge", netns=ns)
            run("ip", "addr", "add", f"10.32.0.{index}/12", "dev", "weave", netns=ns)
            run("ip", "link", "set", "weave", "up", netns=ns)
            run("sysctl", "-qw", "net.bridge.bridge-nf-call-iptables=1", "net.ipv4.ip_forward=1", netns=ns)
            run(
                "ip",
                "link",
                "add",
                "vethwe-bridge",
                "type",
                "veth",
                "peer",
                "name",
                f"fab{index}",
                "netns",
                fabric,
                netns=ns,
            )
            run("ip", "link", "set", "vethwe-bridge", "master", "weave", "up", netns=ns)
            run("ip", "link", "set", f"fab{index}", "master", "fab", "up", netns=fabric)
            install_router_hooks(ns)
        for index, pod in enumerate(self.world.pods.values()):
            ip = pod_ip(pod)
            if not ip:
                continue
            key = "/".join(obj_key(pod))
            node_ns = self.nodes[(pod.get("spec") or {}).get("nodeName", "node1")]
            ns = self.pods[key] = self._stack.enter_context(netns(f"p{index}"))
            self.ips[key] = ip
            run(
                "ip",
                "link",
                "add",
                f"vp{index}",
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                ns,
                netns=node_ns,
            )
            run("ip", "link", "set", f"vp{index}", "master", "weave", "up", netns=node_ns)
            run("ip", "addr", "add", f"{ip}/12", "dev", "eth0", netns=ns)
            run("ip", "link", "set", "eth0", "up", netns=ns)
            self._start_server(ns)
        for proc in self.servers:
            line = proc.stdout.readline() if proc.stdout else ""
            if line.strip() != "READY":
                raise RuntimeError(f"echo server did not start: {line!r}")
        bridges = [fabric, *self.nodes.values()]
        wait_for(
            lambda: all(_ports_forwarding(ns) for ns in bridges),
            "every bridge port of the fabric and the nodes to be forwarding",
            timeout=10,
        )

    def _start_server(self, ns: str) -> None:
        ports = ",".join(str(p) for p in PORTS)
        proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, sys.executable, str(HELPERS), "serve", ports],
            stdout=subprocess.PIPE,
            text=True,
        )
        self.servers.append(proc)

    def probe(
        self, source: str, targets: list[tuple[str, int, str]], timeout: float = 0.5
    ) -> dict[tuple[str, int, str], bool]:
        """From pod `source`, try every (dest pod, port, protocol); True when answered."""
        verdicts = self.verdicts(self.pods[source], targets, timeout)
        return {t: v == "allowed" for t, v in verdicts.items()}

    def verdicts(
        self, source_netns: str, targets: list[tuple[str, int, str]], timeout: float = 0.5
    ) -> dict[tuple[str, int, str], str]:
        """From any namespace we made (pod or node), the verdict for each (dest pod, port, protocol)."""
        request = [{"ip": self.ips[d], "port": port, "protocol": proto} for d, port, proto in targets]
        out = run(
            "ip",
            "netns",
            "exec",
            source_netns,
            sys.executable,
            str(HELPERS),
            "probe",
            str(timeout),
            stdin=json.dumps(request),
        )
        return dict(zip(targets, json.loads(out), strict=True))

    def matrix(self, timeout: float = 0.5) -> dict[tuple[str, str, int, str], bool]:
        """Every ordered pod pair on TCP/UDP 80 and 81, as the observed runs probed them."""
        result: dict[tuple[str, str, int, str], bool] = {}
        procs = {}
        for src in self.pods:
            targets = [
                (d, port, proto) for d in self.pods if d != src for proto in PROTOCOLS for port in PORTS
            ]
            request = [{"ip": self.ips[d], "port": port, "protocol": proto} for d, port, proto in targets]
            proc = subprocess.Popen(
                ["ip", "netns", "exec", self.pods[src], sys.executable, str(HELPERS), "probe", str(timeout)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            assert proc.stdin is not None
            proc.stdin.write(json.dumps(request))
            proc.stdin.close()
            procs[src] = (proc, targets)
        for src, (proc, targets) in procs.items():
            assert proc.stdout is not None
            answers = json.loads(proc.stdout.read())
            proc.wait(timeout=30)
            for (dst, port, proto), answer in zip(targets, answers, strict=True):
                result[(src, dst, port, proto)] = answer == "allowed"
        return result


def _ports_forwarding(ns: str) -> bool:
    ports = [line for line in run("bridge", "link", netns=ns).splitlines() if "master" in line]
    return bool(ports) and all("state forwarding" in line and "NO-CARRIER" not in line for line in ports)
