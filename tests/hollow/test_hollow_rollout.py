"""A weave-net rollout on the embedded cluster lets no denied connection through (issue: false leaks).

The client fires a new connection attempt at a server every ~10 ms while the DaemonSet's pods are
replaced node by node several times; a deny-all ingress policy is in force throughout, so any
attempt that connects is a leak. The router stand-in and the kubelet's stop must cause none: only
the container's main process gets SIGTERM, and the router repairs its rules one at a time.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kubernetes import client

from netpolcheck.hollow.waits import wait_until
from tests.hollow.clusterkit import Cluster, start_cluster, stop_cluster
from tests.hollow.kubetyped import as_body, ip_of, meta_of, present, spec_of, status_of
from tests.hollow.podtools import CONNECT, create_namespace, echo_pod, pod_exec, wait_running

pytestmark = [pytest.mark.netns, pytest.mark.hollow, pytest.mark.slow]

ROLLOUT_CIDR = "10.248.0.0/16"
ROLLOUTS = 5  # each replaces the weave-net pod of both nodes: 10 replacements
DENY_ALL_INGRESS = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "NetworkPolicy",
    "metadata": {"name": "deny-all"},
    "spec": {"podSelector": {"matchLabels": {"app": "echo"}}, "policyTypes": ["Ingress"]},
}
# Opens a new non-blocking connection every 10 ms, gives each 0.5 s (no SYN retransmit), prints LEAK for
# each that connects and ATTEMPTS n every 200 attempts.
PROBER = """
import selectors, socket, sys, time
ip = sys.argv[1]
sel, opened, n = selectors.DefaultSelector(), {}, 0
print('READY', flush=True)
while True:
    now = time.monotonic()
    s = socket.socket()
    s.setblocking(False)
    try:
        s.connect((ip, 8080))
    except BlockingIOError:
        pass
    sel.register(s, selectors.EVENT_WRITE)
    opened[s] = now
    n += 1
    for key, _ in sel.select(0.01):
        sock = key.fileobj
        sel.unregister(sock)
        if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
            print('LEAK', n, flush=True)
        opened.pop(sock)
        sock.close()
    for sock, since in list(opened.items()):
        if now - since > 0.5:
            sel.unregister(sock)
            opened.pop(sock)
            sock.close()
    if n % 200 == 0:
        print('ATTEMPTS', n, flush=True)
"""


@pytest.fixture(scope="module")
def rollout_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    state = tmp_path_factory.mktemp("hollow-rollout") / "state"
    cluster = start_cluster(state, "--nodes", "2", "--npc", "reference", cidr=ROLLOUT_CIDR)
    try:
        yield cluster
    finally:
        stop_cluster(cluster)


def weave_uids(cluster: Cluster) -> dict[str, str]:
    """node -> uid of its Ready weave-net pod (nodes without one are left out)."""
    pods = cluster.core.list_namespaced_pod("kube-system", label_selector="name=weave-net").items
    return {
        present(spec_of(p).node_name, "nodeName"): present(meta_of(p).uid, "uid")
        for p in pods
        if not meta_of(p).deletion_timestamp
        and {c.type: c.status for c in status_of(p).conditions or []}.get("Ready") == "True"
    }


def prober_log(cluster: Cluster) -> list[str]:
    return cluster.core.read_namespaced_pod_log("prober", "leak").splitlines()


def attempts(lines: list[str]) -> int:
    return max([int(line.split()[1]) for line in lines if line.startswith("ATTEMPTS")], default=0)


def test_no_denied_connection_gets_through_while_weave_net_rolls_out(rollout_cluster: Cluster) -> None:
    core, apps = rollout_cluster.core, rollout_cluster.apps
    wait_until(lambda: len(weave_uids(rollout_cluster)) == 2, 60, "2 weave-net pods Ready")
    create_namespace(core, "leak")
    try:
        core.create_namespaced_pod("leak", as_body(client.V1Pod, echo_pod("server", node="node1")))
        core.create_namespaced_pod("leak", as_body(client.V1Pod, echo_pod("client", node="node2")))
        server_ip = ip_of(wait_running(core, "leak", "server"))
        wait_running(core, "leak", "client")
        client.NetworkingV1Api(rollout_cluster.api).create_namespaced_network_policy(
            "leak", as_body(client.V1NetworkPolicy, DENY_ALL_INGRESS)
        )
        wait_until(
            lambda: pod_exec(core, "leak", "client", ["python3", "-c", CONNECT, server_ip])[0] != 0,
            30,
            "the deny-all policy to stop new connections to server",
        )
        prober = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "prober"},
            "spec": {
                "nodeName": "node2",
                "containers": [
                    {"name": "p", "image": "python:3.11", "command": ["python3", "-c", PROBER, server_ip]}
                ],
            },
        }
        core.create_namespaced_pod("leak", as_body(client.V1Pod, prober))
        wait_running(core, "leak", "prober", timeout=30)
        wait_until(
            lambda: attempts(prober_log(rollout_cluster)) >= 200, 30, "the prober's first 200 attempts"
        )
        before = prober_log(rollout_cluster)
        assert [line for line in before if line.startswith("LEAK")] == [], "leaks before any rollout"

        seen = {uid for uid in weave_uids(rollout_cluster).values()}
        for round_ in range(1, ROLLOUTS + 1):
            apps.patch_namespaced_daemon_set(
                "weave-net",
                "kube-system",
                {
                    "spec": {
                        "template": {"metadata": {"annotations": {"netpolcheck.io/rollout": str(round_)}}}
                    }
                },
            )
            status = rollout_cluster.kubectl(
                "rollout", "status", "ds/weave-net", "-n", "kube-system", "--timeout=120s", timeout=150
            )
            assert status.returncode == 0, status.stdout + status.stderr
            wait_until(
                lambda: len(weave_uids(rollout_cluster)) == 2,
                60,
                f"2 weave-net pods Ready after round {round_}",
            )
            seen |= set(weave_uids(rollout_cluster).values())
        assert len(seen) == 2 * (ROLLOUTS + 1), (
            f"every rollout replaced both nodes' pods: {len(seen)} pods seen"
        )

        after = prober_log(rollout_cluster)
        probed = attempts(after) - attempts(before)
        assert probed >= 1000, f"the prober kept probing through the rollouts ({probed} attempts)"
        assert [line for line in after if line.startswith("LEAK")] == [], "a denied connection got through"

        # the prober does see a connection that gets through: lift the policy and watch it connect
        client.NetworkingV1Api(rollout_cluster.api).delete_namespaced_network_policy("deny-all", "leak")
        wait_until(
            lambda: any(line.startswith("LEAK") for line in prober_log(rollout_cluster)),
            30,
            "the prober to connect once the policy is gone",
        )
    finally:
        core.delete_namespace("leak")
        wait_until(
            lambda: not core.list_namespaced_pod("leak").items, 60, "the leak namespace's pods to be deleted"
        )
