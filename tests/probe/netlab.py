"""A throwaway lab for the probe tests and benchmark: pod namespaces on one bridge, processes in them.

Everything is named `npcprobe-<pid>-<n>-...`, lives in namespaces this lab created (the bridge sits in its
own hub namespace, no namespace gets a default route), and `close()` removes all of it: it stops the
processes it started (by PID) and deletes its namespaces, which takes their links, rules and qdiscs along.
"""

from __future__ import annotations

import itertools
import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import tenacity

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
AGENT = [PYTHON, "-m", "netpolcheck.probe"]
SUBNET = "10.251.0"
_counter = itertools.count()
T = TypeVar("T")


def sh(
    *argv: str, check: bool = True, input_text: str | None = None, timeout: float = 30.0
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, capture_output=True, text=True, input=input_text, timeout=timeout)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({result.returncode}): {result.stderr.strip()}")
    return result


@dataclass
class Pod:
    netns: str
    ip: str
    bridge_port: str  # the veth end on the hub's bridge


@dataclass
class Lab:
    prefix: str = field(default_factory=lambda: f"npcprobe-{os.getpid()}-{next(_counter)}")
    pods: dict[str, Pod] = field(default_factory=dict)
    processes: list[subprocess.Popen[str]] = field(default_factory=list)
    namespaces: list[str] = field(default_factory=list)

    @property
    def hub(self) -> str:
        return f"{self.prefix}-hub"

    def add_netns(self, name: str) -> None:
        sh("ip", "netns", "add", name)
        self.namespaces.append(name)
        sh("ip", "-n", name, "link", "set", "lo", "up")
        sh("ip", "netns", "exec", name, "sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1")
        sh("ip", "netns", "exec", name, "sysctl", "-q", "-w", "net.ipv6.conf.default.disable_ipv6=1")

    def start(self) -> Lab:
        self.add_netns(self.hub)
        sh("ip", "-n", self.hub, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", self.hub, "link", "set", "br0", "up")
        return self

    def add_pod(self, name: str, icmp_ratelimit_ms: int | None = None) -> Pod:
        """A pod namespace on the bridge; `icmp_ratelimit_ms` overrides its kernel's per-peer ICMP limit."""
        index = len(self.pods) + 2
        netns = f"{self.prefix}-{name}"
        self.add_netns(netns)
        if icmp_ratelimit_ms is not None:
            sh(
                "ip",
                "netns",
                "exec",
                netns,
                "sysctl",
                "-q",
                "-w",
                f"net.ipv4.icmp_ratelimit={icmp_ratelimit_ms}",
            )
        port = f"vp{index}"
        sh("ip", "-n", self.hub, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", netns)
        sh("ip", "-n", self.hub, "link", "set", port, "master", "br0", "up")
        ip = f"{SUBNET}.{index}"
        sh("ip", "-n", netns, "addr", "add", f"{ip}/24", "dev", "eth0")
        sh("ip", "-n", netns, "link", "set", "eth0", "up")
        pod = Pod(netns, ip, port)
        self.pods[name] = pod
        return pod

    def run(
        self, pod: Pod, *argv: str, input_text: str | None = None, check: bool = True, timeout: float = 60.0
    ) -> subprocess.CompletedProcess[str]:
        return sh(
            "ip", "netns", "exec", pod.netns, *argv, input_text=input_text, check=check, timeout=timeout
        )

    def iptables(self, pod: Pod, *rule: str) -> None:
        self.run(pod, "iptables", "-w", *rule)

    def spawn(self, pod: Pod, *argv: str) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            ["ip", "netns", "exec", pod.netns, *argv],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.processes.append(process)
        return process

    def serve(
        self,
        pod: Pod,
        journal: Path,
        tcp: str = "80,81",
        udp: str = "80,81",
        extra: tuple[str, ...] = (),
        ready_within: float = 15.0,
    ) -> subprocess.Popen[str]:
        process = self.spawn(
            pod, *AGENT, "serve", "--tcp", tcp, "--udp", udp, "--journal", str(journal), *extra
        )
        wait_for_line(process, "READY", ready_within, f"serve in {pod.netns} to print READY")
        return process

    def probe(self, pod: Pod, targets: str, *options: str) -> subprocess.CompletedProcess[str]:
        return self.run(pod, *AGENT, "probe", *options, input_text=targets)

    def close(self) -> None:
        for process in self.processes:
            stop_process(process)
        for netns in reversed(self.namespaces):
            sh("ip", "netns", "del", netns, check=False)
        self.namespaces.clear()


def stop_process(process: subprocess.Popen[str], grace: float = 5.0) -> None:
    """Stop a process we started, by its PID: SIGTERM, then SIGKILL after `grace` seconds."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(grace)
    for stream in (process.stdout, process.stderr):
        if stream is not None:
            stream.close()


def wait_for_line(process: subprocess.Popen[str], wanted: str, within: float, what: str) -> None:
    """Read `process` stdout until a line equal to `wanted`; fail with what was waited for, and how long."""
    assert process.stdout is not None
    started = time.monotonic()
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    try:
        while (elapsed := time.monotonic() - started) < within:
            if not selector.select(within - elapsed):
                continue
            line = process.stdout.readline()
            if line.strip() == wanted:
                return
            if line == "":
                stderr = process.stderr.read() if process.stderr else ""
                raise RuntimeError(
                    f"waited for {what}: the process exited ({process.wait()}): {stderr.strip()}"
                )
        raise TimeoutError(f"waited {within} s for {what}; it did not happen")
    finally:
        selector.close()


def wait_until(what: str, check: Callable[[], T | None], within: float, every: float = 0.05) -> T:
    """Poll `check` until it returns something truthy; fail saying what was awaited and for how long."""
    started = time.monotonic()
    last: list[T | None] = [None]

    def attempt() -> T | None:
        last[0] = check()
        return last[0]

    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_delay(within),
        wait=tenacity.wait_fixed(every),
        retry=tenacity.retry_if_result(lambda value: not value),
        reraise=True,
    )
    try:
        return retrying(attempt)  # type: ignore[return-value]
    except tenacity.RetryError:
        raise TimeoutError(
            f"waited {time.monotonic() - started:.1f} s (limit {within} s) for {what}; last seen: {last[0]!r}"
        ) from None
