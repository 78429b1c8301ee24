"""Drives a hollow cluster running the reference controller (`hollow up --npc reference`) for the npc tests.

Objects go through the cluster's API with the kubernetes client; probes run as the probe agent inside
probe pods (`kubectl exec ... python -m netpolcheck.probe probe`); dataplane dumps are read from the node
namespaces the cluster records in cluster.json.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from netpolcheck.npc.controller import SYNCED_MESSAGE
from tests.npc.expected import Dumps, current_dumps
from tests.npc.waits import wait_until

KUBECTL = str(Path(sys.executable).parent / "kubectl")
PROBE_IMAGE = "netpolcheck/netpolcheck-probe:dev"
IP_ANNOTATION = "hollow.netpolcheck.io/ip"
RANGE_WAIT_SECONDS = 180  # how long `up` waits for 10.32.0.0/12 if another cluster holds it


class Hollow:
    def __init__(
        self, state_dir: Path, nodes: int = 3, version: str = "2.8.1", pod_cidr: str | None = None
    ) -> None:
        self.state_dir, self.nodes, self.version = state_dir, nodes, version
        self.pod_cidr = pod_cidr  # None: the cluster's default range (10.32.0.0/12)
        self.record: dict[str, Any] = {}

    def up(self) -> Hollow:
        cmd = [
            sys.executable,
            "-m",
            "netpolcheck.cli",
            "hollow",
            "up",
            "--nodes",
            str(self.nodes),
            "--state-dir",
            str(self.state_dir),
            "--npc",
            "reference",
            "--weave-version",
            self.version,
            *(["--pod-cidr", self.pod_cidr] if self.pod_cidr else []),
        ]
        deadline = time.monotonic() + RANGE_WAIT_SECONDS
        while True:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
            if proc.returncode == 0:
                break
            # another cluster (a parallel engineer's) holds the pod range: wait for it, bounded
            if "overlaps existing route" not in proc.stderr or time.monotonic() > deadline:
                raise RuntimeError(f"hollow up failed ({proc.returncode}): {proc.stderr.strip()[-800:]}")
            time.sleep(2)  # poll period of the bounded wait for the pod range above
        self.record = json.loads((self.state_dir / "cluster.json").read_text())
        api = config.new_client_from_config(str(self.state_dir / "kubeconfig"))
        # typed as Any: the tests pass plain dicts, which the client serialises as they are
        self.core: Any = client.CoreV1Api(api)
        self.net: Any = client.NetworkingV1Api(api)
        self.wait_weave_ready()
        return self

    def down(self) -> None:
        subprocess.run(
            [sys.executable, "-m", "netpolcheck.cli", "hollow", "down", "--state-dir", str(self.state_dir)],
            capture_output=True,
            text=True,
            timeout=120,
        )

    def node_netns(self, node: str) -> str:
        return str(self.record["node_netns"][self.record["node_names"].index(node)])

    def dumps(self, node: str) -> Dumps:
        return current_dumps(self.node_netns(node))

    # -- weave-net ------------------------------------------------------------------------------------
    def weave_pods(self) -> list[Any]:
        return list(self.core.list_namespaced_pod("kube-system", label_selector="name=weave-net").items)

    def wait_weave_ready(self) -> None:
        def ready() -> bool:
            pods = self.weave_pods()
            return len(pods) == self.nodes and all(
                p.status.phase == "Running"
                and p.metadata.deletion_timestamp is None
                and all(c.ready for c in p.status.container_statuses or [])
                for p in pods
            )

        wait_until(ready, f"{self.nodes} weave-net pods Running and ready", timeout=60, interval=0.2)
        self.wait_controllers_synced()

    def wait_controllers_synced(self) -> None:
        """Wait until the controller of every current weave-net pod has programmed its first listing.

        A replacement pod is Ready before its controller has flushed the previous one's rules and
        programmed its own (the weave-npc container has no readiness probe), so checks made in between
        would see the old controller's dataplane."""
        nodes = [f"node{i}" for i in range(1, self.nodes + 1)]
        wait_until(
            lambda: all(SYNCED_MESSAGE in self.npc_log(node) for node in nodes),
            f"weave-npc on {', '.join(nodes)} to log {SYNCED_MESSAGE!r}",
            timeout=60,
            interval=0.2,
        )

    def restart_weave(self) -> None:
        """Delete every weave-net pod; the DaemonSet starts fresh controllers (flush + rebuild)."""
        old = {p.metadata.name for p in self.weave_pods()}
        for name in old:
            self.core.delete_namespaced_pod(name, "kube-system")
        wait_until(
            lambda: not old & {p.metadata.name for p in self.weave_pods()},
            "the old weave-net pods to be gone",
            timeout=30,
            interval=0.2,
        )
        self.wait_weave_ready()

    def pod_netns_match_pods(self) -> bool:
        """As many pod namespaces of this cluster as pods with their own network namespace."""
        names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10).stdout
        netns = [n for n in names.split() if n.startswith(f"{self.record['prefix']}-pod")]
        pods = [p for p in self.core.list_pod_for_all_namespaces().items if not p.spec.host_network]
        return len(netns) == len(pods)

    def set_npc_args(self, args: list[str]) -> None:
        """Give the DaemonSet's weave-npc container these args and wait until every node runs them.
        The rollout replaces every node's pod at once (maxUnavailable = node count): the fault tests
        switch controllers, they do not test rollouts (tests/hollow does)."""
        apps: Any = client.AppsV1Api(self.core.api_client)
        ds = apps.read_namespaced_daemon_set("weave-net", "kube-system")
        ds.spec.update_strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": self.nodes}}
        for container in ds.spec.template.spec.containers:
            if container.name == "weave-npc":
                if list(container.args or []) == args:
                    return
                container.args = args
        apps.replace_namespaced_daemon_set("weave-net", "kube-system", ds)

        def rolled_out() -> bool:
            pods = self.weave_pods()
            return len(pods) == self.nodes and all(
                p.metadata.deletion_timestamp is None
                and p.status.phase == "Running"
                and all(c.ready for c in p.status.container_statuses or [])
                and list(next(c for c in p.spec.containers if c.name == "weave-npc").args or []) == args
                for p in pods
            )

        wait_until(rolled_out, f"weave-net rolled out with weave-npc args {args}", timeout=90, interval=0.2)
        self.wait_controllers_synced()

    def npc_log(self, node: str) -> str:
        """weave-npc's log on `node`, read from the kubelet's log files (DIR/pods/<ns>_<pod>_<uid>/...)."""
        pod = next(p for p in self.weave_pods() if p.spec.node_name == node)
        files = sorted(self.state_dir.glob(f"pods/kube-system_{pod.metadata.name}_*/weave-npc/*.log"))
        return "".join(f.read_text(errors="replace") for f in files)

    # -- scenario objects -------------------------------------------------------------------------------
    def apply_state(self, state: dict[str, Any]) -> None:
        for ns in state["namespaces"]:
            meta = ns["metadata"]
            self.core.create_namespace(
                {"metadata": {"name": meta["name"], "labels": meta.get("labels") or {}}}
            )
        for pod in state["pods"]:
            meta, spec = pod["metadata"], pod["spec"]
            container = spec["containers"][0]
            self.core.create_namespaced_pod(
                meta["namespace"],
                {
                    "metadata": {
                        "name": meta["name"],
                        "labels": meta.get("labels") or {},
                        "annotations": {IP_ANNOTATION: pod["status"]["podIP"]},
                    },
                    "spec": {
                        "nodeName": spec["nodeName"],
                        "containers": [
                            {
                                "name": container.get("name", "c"),
                                "image": PROBE_IMAGE,
                                "args": ["serve", "--tcp", "80,81", "--udp", "80,81"],
                                "ports": container.get("ports") or [],
                            }
                        ],
                    },
                },
            )
        for pol in state["policies"]:
            body = {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": {"name": pol["metadata"]["name"]},
                "spec": pol["spec"],
            }
            self.net.create_namespaced_network_policy(pol["metadata"]["namespace"], body)
        names = [(p["metadata"]["namespace"], p["metadata"]["name"]) for p in state["pods"]]
        wait_until(
            lambda: all(self._ready(ns, name) for ns, name in names),
            f"{len(names)} probe pods Running and ready",
            timeout=60,
            interval=0.2,
        )

    def _ready(self, namespace: str, name: str) -> bool:
        pod = self.core.read_namespaced_pod(name, namespace)
        return bool(
            pod.status.phase == "Running"
            and pod.status.container_statuses
            and all(c.ready for c in pod.status.container_statuses)
        )

    def delete_state(self, state: dict[str, Any]) -> None:
        names = [ns["metadata"]["name"] for ns in state["namespaces"]]
        for name in names:
            self.core.delete_namespace(name)

        def gone() -> bool:
            for name in names:
                try:
                    self.core.read_namespace(name)
                    return False
                except ApiException as exc:
                    if exc.status != 404:
                        raise
            return not any(self.core.list_namespaced_pod(n).items for n in names)

        wait_until(gone, f"namespaces {', '.join(names)} deleted", timeout=60, interval=0.2)

    def probe(
        self,
        namespace: str,
        pod: str,
        targets: list[dict[str, Any]],
        timeout: float = 0.5,
        container: str | None = None,
    ) -> list[str]:
        """Verdicts from the probe agent inside the pod (or one of its containers)."""
        cmd = [
            KUBECTL,
            "exec",
            "-i",
            "-n",
            namespace,
            pod,
            *(["-c", container] if container else []),
            "--",
            "python",
            "-m",
            "netpolcheck.probe",
            "probe",
            "--timeout",
            str(timeout),
            "--retries",
            "1",
        ]
        env = {**os.environ, "KUBECONFIG": str(self.state_dir / "kubeconfig")}
        proc = subprocess.run(
            cmd, input=json.dumps(targets), capture_output=True, text=True, timeout=120, env=env
        )
        if proc.returncode != 0:
            raise RuntimeError(f"probe in {namespace}/{pod} failed: {proc.stderr.strip()[-500:]}")
        by_id = {r["id"]: r["verdict"] for r in json.loads(proc.stdout)}
        return [by_id[t["id"]] for t in targets]
