"""`hollow up --npc PATH`: a weave-net DaemonSet runs a stand-in weave-npc with the router hooks of 2.8.1."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from netpolcheck.hollow.waits import wait_until
from tests.hollow.clusterkit import Cluster, start_cluster, stop_cluster
from tests.hollow.kubetyped import as_body, containers_of, ip_of, name_of, present, spec_of, status_of
from tests.hollow.podtools import CONNECT, echo_pod, pod_exec, wait_running

pytestmark = [pytest.mark.netns, pytest.mark.hollow]

NPC_CIDR = "10.242.0.0/16"
STANDIN = Path(__file__).with_name("standin_weave_npc.py")
# FORWARD hooks of Weave 2.8.1's router, as in the observed iptables-save (see test_hollow_weave_router.py)
ROUTER_281 = [
    "-A INPUT -i weave -j WEAVE-NPC-EGRESS",
    "-A FORWARD -i weave -j WEAVE-NPC-EGRESS",
    "-A FORWARD -o weave -j WEAVE-NPC",
    "-A FORWARD -o weave -m state --state NEW -j NFLOG --nflog-group 86",
    "-A FORWARD -o weave -j DROP",
    "-A FORWARD -i weave ! -o weave -j ACCEPT",
    "-A FORWARD -o weave -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
]


@pytest.fixture(scope="module")
def npc_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    tmp = tmp_path_factory.mktemp("hollow-npc")
    wrapper = tmp / "weave-npc"
    wrapper.write_text(f'#!/bin/sh\nexec {sys.executable} {STANDIN} "$@"\n')
    wrapper.chmod(0o755)
    cluster = start_cluster(tmp / "state", "--nodes", "3", "--npc", str(wrapper), cidr=NPC_CIDR)
    try:
        yield cluster
    finally:
        stop_cluster(cluster)


def weave_pods(cluster: Cluster) -> list[client.V1Pod]:
    def all_ready() -> bool:
        pods = cluster.core.list_namespaced_pod("kube-system", label_selector="name=weave-net").items
        return len(pods) == 3 and all(
            status_of(p).phase == "Running" and all(c.ready for c in containers_of(p)) for p in pods
        )

    wait_until(all_ready, 30, "weave-net pods Running and Ready on 3 nodes")
    return cluster.core.list_namespaced_pod("kube-system", label_selector="name=weave-net").items


def npc_log(cluster: Cluster, pod: str) -> str:
    return cluster.core.read_namespaced_pod_log(pod, "kube-system", container="weave-npc")


def in_node(cluster: Cluster, node: str, *argv: str) -> str:
    netns = f"{cluster.prefix}-{node}"
    return subprocess.run(
        ["ip", "netns", "exec", netns, *argv], capture_output=True, text=True, check=True
    ).stdout


def test_standin_lists_watches_and_programs_its_node(npc_cluster: Cluster) -> None:
    pods = weave_pods(npc_cluster)
    assert {spec_of(p).node_name for p in pods} == {"node1", "node2", "node3"}
    assert all(spec_of(p).host_network for p in pods)
    for pod in pods:
        name, node = name_of(pod), present(spec_of(pod).node_name, "nodeName")

        def started(name: str = name) -> bool:
            return "READY" in npc_log(npc_cluster, name)

        wait_until(started, 15, f"stand-in on {node} to start")
        log = npc_log(npc_cluster, name)
        assert f"START node {node}" in log and "weave-npc:2.8.1" in log
        for kind in ("namespaces", "pods", "networkpolicies"):
            assert f"LIST {kind} " in log, log
        saved = in_node(npc_cluster, node, "iptables-save", "-t", "filter").splitlines()
        assert [line for line in saved if line.startswith(("-A FORWARD", "-A INPUT"))] == ROUTER_281
        assert "-A WEAVE-NPC-INGRESS -m comment --comment standin -j RETURN" in saved
        assert "weave-standin-local-pods" in in_node(npc_cluster, node, "ipset", "list", "-n")
    # nothing of it in the machine's own namespace
    assert (
        "weave-standin" not in subprocess.run(["ipset", "list", "-n"], capture_output=True, text=True).stdout
    )
    assert "WEAVE-NPC" not in subprocess.run(["iptables-save"], capture_output=True, text=True).stdout


def test_standin_sees_watch_events(npc_cluster: Cluster) -> None:
    pods = weave_pods(npc_cluster)
    policy = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "deny-all", "namespace": "default"},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"]},
    }
    from kubernetes import client

    client.NetworkingV1Api(npc_cluster.api).create_namespaced_network_policy(
        "default", as_body(client.V1NetworkPolicy, policy)
    )
    for pod in pods:

        def saw_policy(name: str = name_of(pod)) -> bool:
            return "WATCH networkpolicies ADDED default/deny-all" in npc_log(npc_cluster, name)

        wait_until(saw_policy, 10, f"the stand-in on {spec_of(pod).node_name} to see the policy")


def test_ulogd_runs_in_the_npc_mount_namespace_and_gets_dropped_packets(npc_cluster: Cluster) -> None:
    pods = weave_pods(npc_cluster)
    node1 = name_of(next(p for p in pods if spec_of(p).node_name == "node1"))
    wait_until(
        lambda: "PCAP header ok" in npc_log(npc_cluster, node1),
        10,
        "ulogd to write the pcap header into the FIFO",
    )
    netns = f"{npc_cluster.prefix}-node1"
    pids = subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True).stdout.split()
    ulogd = [p for p in pids if Path(f"/proc/{p}/comm").read_text().strip() == "ulogd"]
    assert len(ulogd) == 1
    assert Path(f"/proc/{ulogd[0]}/ns/mnt").resolve() != Path("/proc/self/ns/mnt").resolve()
    # The router's hooks DROP (and NFLOG) every NEW connection into node1's pods: the stand-in
    # accepts nothing.
    core = npc_cluster.core
    core.create_namespaced_pod("default", as_body(client.V1Pod, echo_pod("target", node="node1")))
    core.create_namespaced_pod("default", as_body(client.V1Pod, echo_pod("source", node="node2")))
    target = wait_running(core, "default", "target")
    wait_running(core, "default", "source")
    code, _, err = pod_exec(core, "default", "source", ["python3", "-c", CONNECT, ip_of(target)])
    assert code != 0 and "timed out" in err
    wait_until(
        lambda: "PCAP packet" in npc_log(npc_cluster, node1),
        10,
        "the dropped SYN to reach the stand-in through NFLOG 86, ulogd and the FIFO",
    )
