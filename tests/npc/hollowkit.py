"""A hollow cluster running the reference controller, for the npc tests, driven through netpolcheck.kube.

The cluster comes from the hollow provisioner: `hollow up --weave-version none`, then the weave-net
DaemonSet of manifests/weave/weave-VERSION.yaml through the API; its weave-npc containers run the
reference controller with that version's profile. Objects go through the API; probes run as the probe
agent inside probe pods (one API exec per source pod); dataplane dumps are read from the node
namespaces the cluster records in cluster.json.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from netpolcheck.kube import creating, deleting, execing, namespaces, probepods, weave
from netpolcheck.kube.connection import KubeApi
from netpolcheck.kube.objects import Obj
from netpolcheck.kube.provisioners import Cluster, ClusterOptions, provision
from netpolcheck.kube.waiting import wait_for
from netpolcheck.npc.controller import SYNCED_MESSAGE
from tests.npc.expected import Dumps, current_dumps

PROBE_IMAGE = "netpolcheck/netpolcheck-probe:dev"
IP_ANNOTATION = "hollow.netpolcheck.io/ip"


class Hollow:
    def __init__(
        self, state_dir: Path, nodes: int = 3, version: str = "2.8.1", pod_cidr: str | None = None
    ) -> None:
        self.work_dir, self.nodes, self.version = Path(state_dir), nodes, version
        self.state_dir = self.work_dir / "hollow"  # where the provisioner keeps kubeconfig, cluster.json
        self.pod_cidr = pod_cidr  # None: the cluster's default range (10.32.0.0/12)
        self.record: dict[str, Any] = {}
        self.cluster: Cluster | None = None

    def up(self) -> Hollow:
        options = ClusterOptions(
            kind="hollow",
            nodes=self.nodes,
            weave_version=self.version,
            work_dir=self.work_dir,
            pod_cidr=self.pod_cidr,
            timeout=120,
        )
        self.cluster = provision(options)
        self.record = json.loads((self.state_dir / "cluster.json").read_text())
        self.api = KubeApi.from_kubeconfig(self.cluster.kubeconfig)
        # typed as Any: the tests pass plain dicts, which the client serialises as they are
        self.core: Any = self.api.core
        self.net: Any = self.api.networking
        self.wait_controllers_synced()
        return self

    def down(self) -> None:
        if self.cluster is not None:
            self.api.close()
            self.cluster.cleanup()

    def node_netns(self, node: str) -> str:
        return str(self.record["node_netns"][self.record["node_names"].index(node)])

    def dumps(self, node: str) -> Dumps:
        return current_dumps(self.node_netns(node))

    # -- weave-net ------------------------------------------------------------------------------------
    def weave_pods(self) -> list[Any]:
        return list(self.core.list_namespaced_pod("kube-system", label_selector="name=weave-net").items)

    def restart_weave(self) -> None:
        """Delete every weave-net pod; the DaemonSet starts fresh controllers (flush + rebuild)."""
        old = [probepods.pod_ref(weave.NAMESPACE, p.pod) for p in weave.running(self.api).values()]
        deleting.delete_and_wait(self.api, old, timeout=30)
        weave.wait_healthy(self.api, self.version, timeout=60)
        self.wait_controllers_synced()

    def wait_controllers_synced(self) -> None:
        """Wait until the controller of every current weave-net pod has programmed its first listing.

        A replacement pod is Ready before its controller has flushed the previous one's rules and
        programmed its own (the weave-npc container has no readiness probe), so checks made in between
        would see the old controller's dataplane."""
        nodes = [f"node{i}" for i in range(1, self.nodes + 1)]
        wait_for(
            lambda: all(SYNCED_MESSAGE in self.npc_log(node) for node in nodes),
            f"weave-npc on {', '.join(nodes)} to log {SYNCED_MESSAGE!r}",
            timeout=60,
        )

    def pod_netns_match_pods(self) -> bool:
        """As many pod namespaces of this cluster as pods with their own network namespace."""
        names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10).stdout
        netns = [n for n in names.split() if n.startswith(f"{self.record['prefix']}-pod")]
        pods = [p for p in self.core.list_pod_for_all_namespaces().items if not p.spec.host_network]
        return len(netns) == len(pods)

    def set_npc_args(self, args: list[str]) -> None:
        """Give the DaemonSet's weave-npc container these args and wait until every node runs them.
        The rollout replaces every node's pod at once (maxUnavailable = node count): the fault tests
        switch controllers, they do not test rollouts (tests/kube does)."""
        ds = weave.daemonset(self.api)
        assert ds is not None, "no weave-net DaemonSet"
        ds["spec"]["updateStrategy"] = {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxUnavailable": self.nodes},
        }
        for container in ds["spec"]["template"]["spec"]["containers"]:
            if container["name"] == weave.NPC_CONTAINER:
                if list(container.get("args") or []) == args:
                    return
                container["args"] = args
        creating.create_or_replace(self.api, ds)

        def rolled_out() -> bool:
            pods = self.weave_pods()
            return len(pods) == self.nodes and all(
                p.metadata.deletion_timestamp is None
                and p.status.phase == "Running"
                and all(c.ready for c in p.status.container_statuses or [])
                and list(next(c for c in p.spec.containers if c.name == "weave-npc").args or []) == args
                for p in pods
            )

        wait_for(rolled_out, f"weave-net rolled out with weave-npc args {args}", timeout=90)
        self.wait_controllers_synced()

    def npc_log(self, node: str) -> str:
        """weave-npc's log on `node`, through the API."""
        return weave.npc_logs(self.api).get(node, "")

    # -- scenario objects -------------------------------------------------------------------------------
    def apply_state(self, state: dict[str, Any]) -> None:
        """Create the state's namespaces, pods (probe agents at the given node and IP) and policies."""
        for ns in state["namespaces"]:
            meta = ns["metadata"]
            namespace = {"name": meta["name"], "labels": meta.get("labels") or {}}
            creating.create(self.api, {"apiVersion": "v1", "kind": "Namespace", "metadata": namespace})
        for pod in state["pods"]:
            creating.create(self.api, self.pod_manifest(pod))
        for pol in state["policies"]:
            meta = {"name": pol["metadata"]["name"], "namespace": pol["metadata"]["namespace"]}
            body = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": meta}
            creating.create(self.api, {**body, "spec": pol["spec"]})
        names = [(p["metadata"]["namespace"], p["metadata"]["name"]) for p in state["pods"]]
        probepods.wait_ready(self.api, names, timeout=60)

    @staticmethod
    def pod_manifest(pod: dict[str, Any]) -> Obj:
        """The probe pod template for a state's pod: its labels exactly, its node, its IP, its ports."""
        meta, spec = pod["metadata"], pod["spec"]
        container = spec["containers"][0]
        manifest = probepods.probe_pod_manifest(
            probepods.PodSpec(meta["namespace"], meta["name"], spec["nodeName"]), PROBE_IMAGE
        )
        manifest["metadata"]["labels"] = dict(meta.get("labels") or {})
        manifest["metadata"]["annotations"] = {IP_ANNOTATION: pod["status"]["podIP"]}
        probe = manifest["spec"]["containers"][0]
        probe["name"] = container.get("name", "c")
        probe["ports"] = container.get("ports") or []
        # no readiness probe: an exec of a fresh interpreter every 2 s per pod would load the machine
        # the benchmark measures on (100 pods); these pods are ready once their agent runs
        del probe["readinessProbe"]
        return manifest

    def delete_state(self, state: dict[str, Any]) -> None:
        namespaces.delete_namespaces(self.api, [ns["metadata"]["name"] for ns in state["namespaces"]], 60)

    def probe(
        self,
        namespace: str,
        pod: str,
        targets: list[dict[str, Any]],
        timeout: float = 0.5,
        container: str | None = None,
    ) -> list[str]:
        """Verdicts from the probe agent inside the pod (or one of its containers)."""
        results = execing.probe(
            self.api, (namespace, pod), targets, timeout=timeout, retries=1, container=container
        )
        return [r["verdict"] for r in results]
