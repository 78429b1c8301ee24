"""A real 3-node hollow cluster, driven with the kubernetes client and kubectl."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import urllib3
from kubernetes import client, watch

from netpolcheck.hollow.waits import wait_until
from tests.hollow.clusterkit import Cluster
from tests.hollow.kubetyped import (
    as_body,
    container_pid,
    containers_of,
    ip_of,
    meta_of,
    name_of,
    present,
    spec_of,
    state_of,
    status_of,
)
from tests.hollow.podtools import CONNECT, create_namespace, echo_pod, pod_exec, wait_running

pytestmark = [pytest.mark.netns, pytest.mark.hollow]


def test_three_ready_nodes_and_the_pod_range_unreachable_from_the_machine(shared_cluster: Cluster) -> None:
    nodes = shared_cluster.core.list_node().items
    assert sorted(name_of(n) for n in nodes) == ["node1", "node2", "node3"]
    assert all(
        {c.type: c.status for c in present(status_of(n).conditions, "conditions")}["Ready"] == "True"
        for n in nodes
    )
    routes = subprocess.run(
        ["ip", "-4", "route", "show", "type", "unreachable"], capture_output=True, text=True, check=True
    ).stdout
    assert f"unreachable {shared_cluster.pod_cidr}" in routes


def test_pods_spread_over_nodes_and_reach_each_other_across_nodes(shared_cluster: Cluster) -> None:
    core = shared_cluster.core
    create_namespace(core, "spread-a")
    create_namespace(core, "spread-b")
    names = [("spread-a", "one"), ("spread-a", "two"), ("spread-b", "three")]
    for ns, name in names:
        core.create_namespaced_pod(ns, as_body(client.V1Pod, echo_pod(name)))
    pods = [wait_running(core, ns, name) for ns, name in names]
    nodes = {spec_of(p).node_name for p in pods}
    assert nodes == {"node1", "node2", "node3"}, "the scheduler put two pods on one node"
    for pod in pods:
        k = int(present(spec_of(pod).node_name, "nodeName").removeprefix("node"))
        assert ipaddress.ip_address(ip_of(pod)) in ipaddress.ip_network(f"10.224.{k}.0/24")
        assert status_of(pod).host_ip == f"10.224.0.{k}"
    for src in pods:
        for dst in pods:
            if src is dst:
                continue
            code, out, err = pod_exec(
                core,
                present(meta_of(src).namespace, "namespace"),
                name_of(src),
                ["python3", "-c", CONNECT, ip_of(dst)],
            )
            assert (code, out.strip()) == (0, f"{ip_of(dst)} saw {ip_of(src)}"), err
    core.delete_namespace("spread-a")
    core.delete_namespace("spread-b")


def test_exec_returns_output_and_exit_codes_and_the_pod_has_no_default_route(shared_cluster: Cluster) -> None:
    core = shared_cluster.core
    core.create_namespaced_pod("default", as_body(client.V1Pod, echo_pod("exec-target", node="node2")))
    wait_running(core, "default", "exec-target")
    code, out, err = pod_exec(
        core, "default", "exec-target", ["sh", "-c", "echo out; echo err >&2; ip route; exit 3"]
    )
    assert code == 3
    assert out.splitlines()[0] == "out" and err.strip() == "err"
    assert "default" not in out and "10.224.0.0/12 dev eth0" in out
    code, out, _ = pod_exec(
        core, "default", "exec-target", ["cat", "/var/run/secrets/kubernetes.io/serviceaccount/namespace"]
    )
    assert (code, out) == (0, "default")
    core.delete_namespaced_pod("exec-target", "default")


def test_in_cluster_client_works_unchanged_in_a_host_network_pod_with_rbac(shared_cluster: Cluster) -> None:
    """What a policy controller does: hostNetwork, its own service account, RBAC granting the reads."""
    core = shared_cluster.core
    rbac = client.RbacAuthorizationV1Api(shared_cluster.api)
    core.create_namespaced_service_account(
        "default", as_body(client.V1ServiceAccount, {"metadata": {"name": "lister"}})
    )
    rbac.create_cluster_role(
        as_body(
            client.V1ClusterRole,
            {
                "metadata": {"name": "node-lister"},
                "rules": [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["list"]}],
            },
        )
    )
    rbac.create_cluster_role_binding(
        as_body(
            client.V1ClusterRoleBinding,
            {
                "metadata": {"name": "node-lister"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": "node-lister",
                },
                "subjects": [{"kind": "ServiceAccount", "name": "lister", "namespace": "default"}],
            },
        )
    )
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "incluster"},
        "spec": {
            "hostNetwork": True,
            "serviceAccountName": "lister",
            "containers": [{"name": "c", "image": "python:3.11", "command": ["sleep", "3600"]}],
        },
    }
    core.create_namespaced_pod("default", as_body(client.V1Pod, pod))
    try:
        wait_running(core, "default", "incluster")
        script = (
            "from kubernetes import client, config; config.load_incluster_config(); "
            "print(sorted(n.metadata.name for n in client.CoreV1Api().list_node().items))"
        )
        code, out, err = pod_exec(core, "default", "incluster", ["python3", "-c", script])
        assert code == 0, err
        assert out.strip() == "['node1', 'node2', 'node3']"
        # the same account may list nodes, nothing else
        script = (
            "from kubernetes import client, config; config.load_incluster_config(); "
            "client.CoreV1Api().list_pod_for_all_namespaces()"
        )
        code, out, err = pod_exec(core, "default", "incluster", ["python3", "-c", script])
        assert code != 0 and "(403)" in err
    finally:
        core.delete_namespaced_pod("incluster", "default")
        rbac.delete_cluster_role_binding("node-lister")
        rbac.delete_cluster_role("node-lister")
        core.delete_namespaced_service_account("lister", "default")


def test_requested_ip_annotation_and_deletion_removes_the_namespace(shared_cluster: Cluster) -> None:
    core = shared_cluster.core
    core.create_namespaced_pod(
        "default",
        as_body(
            client.V1Pod,
            echo_pod("fixed", node="node3", annotations={"hollow.netpolcheck.io/ip": "10.224.1.20"}),
        ),
    )
    pod = wait_running(core, "default", "fixed")
    assert ip_of(pod) == "10.224.1.20"
    pid = container_pid(containers_of(pod)[0])
    netns_before = subprocess.run(
        ["ip", "netns", "identify", str(pid)], capture_output=True, text=True
    ).stdout
    assert netns_before.startswith(shared_cluster.prefix)
    core.delete_namespaced_pod("fixed", "default")
    ns_name = netns_before.strip()
    wait_until(
        lambda: ns_name not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout,
        10,
        f"netns {ns_name} to go",
    )
    wait_until(lambda: not __import__("os").path.exists(f"/proc/{pid}"), 5, f"container pid {pid} to exit")


def test_restarts_follow_restart_policy_and_logs_keep_the_previous_run(shared_cluster: Cluster) -> None:
    core = shared_cluster.core
    crash = {
        "metadata": {"name": "crash"},
        "spec": {
            "restartPolicy": "Always",
            "containers": [{"name": "c", "image": "busybox", "command": ["sh", "-c", "echo run; exit 3"]}],
        },
    }
    once = {
        "metadata": {"name": "once"},
        "spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "c", "image": "busybox", "command": ["sh", "-c", "echo done"]}],
        },
    }
    core.create_namespaced_pod("default", as_body(client.V1Pod, crash))
    core.create_namespaced_pod("default", as_body(client.V1Pod, once))

    def restarted_twice() -> bool:
        st = containers_of(core.read_namespaced_pod("crash", "default"))
        return bool(st) and st[0].restart_count >= 2

    wait_until(restarted_twice, 15, "pod crash to restart twice")
    status = containers_of(core.read_namespaced_pod("crash", "default"))[0]
    assert present(state_of(status, last=True).terminated, "terminated").exit_code == 3
    assert core.read_namespaced_pod_log("crash", "default", previous=True).strip() == "run"
    wait_until(
        lambda: status_of(core.read_namespaced_pod("once", "default")).phase == "Succeeded",
        10,
        "pod once to succeed",
    )
    once_status = containers_of(core.read_namespaced_pod("once", "default"))[0]
    assert once_status.restart_count == 0
    assert present(state_of(once_status).terminated, "terminated").exit_code == 0
    core.delete_namespaced_pod("crash", "default")
    core.delete_namespaced_pod("once", "default")


def test_kubectl_get_logs_exec(shared_cluster: Cluster) -> None:
    core = shared_cluster.core
    core.create_namespaced_pod("default", as_body(client.V1Pod, echo_pod("kubectl-target", node="node1")))
    wait_running(core, "default", "kubectl-target")
    got = shared_cluster.kubectl("get", "pods", "-o", "wide")
    assert got.returncode == 0 and "kubectl-target" in got.stdout and "node1" in got.stdout, got.stderr
    logs = shared_cluster.kubectl("logs", "kubectl-target")
    assert (logs.returncode, logs.stdout) == (0, "READY\n")
    ex = shared_cluster.kubectl("exec", "kubectl-target", "--", "sh", "-c", "echo $HOSTNAME; exit 4")
    assert ex.returncode == 4 and ex.stdout == "kubectl-target\n"
    core.delete_namespaced_pod("kubectl-target", "default")


def _ds(image: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "roller", "namespace": "default"},
        "spec": {
            "selector": {"matchLabels": {"app": "roller"}},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
            "template": {
                "metadata": {"labels": {"app": "roller"}},
                "spec": {"containers": [{"name": "c", "image": image, "command": ["sleep", "infinity"]}]},
            },
        },
    }


def test_daemonset_image_change_rolls_out_one_node_at_a_time(shared_cluster: Cluster) -> None:
    core, apps = shared_cluster.core, shared_cluster.apps
    apps.create_namespaced_daemon_set("default", as_body(client.V1DaemonSet, _ds("busybox:1.36")))

    def rolled_out(image: str) -> bool:
        pods = core.list_namespaced_pod("default", label_selector="app=roller").items
        ready = [
            p
            for p in pods
            if spec_of(p).containers[0].image == image
            and status_of(p).phase == "Running"
            and {c.type: c.status for c in status_of(p).conditions or []}.get("Ready") == "True"
        ]
        return len(pods) == 3 and len(ready) == 3

    wait_until(lambda: rolled_out("busybox:1.36"), 20, "daemonset roller to run on 3 nodes")
    events: list[tuple[float, str, str, str, bool]] = []
    stop = threading.Event()
    w = watch.Watch()

    def record() -> None:
        with contextlib.suppress(urllib3.exceptions.ProtocolError):  # w.stop() may cut the stream
            for ev in w.stream(
                core.list_namespaced_pod, "default", label_selector="app=roller", timeout_seconds=30
            ):
                pod = ev["object"]
                ready = {c.type: c.status for c in pod.status.conditions or []}.get("Ready") == "True"
                events.append(
                    (time.monotonic(), ev["type"], pod.spec.node_name, pod.spec.containers[0].image, ready)
                )
                if stop.is_set():
                    return

    thread = threading.Thread(target=record, daemon=True)
    thread.start()
    wait_until(lambda: len(events) >= 3, 10, "the watch to list the 3 roller pods")
    apps.patch_namespaced_daemon_set(
        "roller",
        "default",
        {
            "spec": {
                "template": {
                    "spec": {
                        "containers": [
                            {"name": "c", "image": "busybox:1.37", "command": ["sleep", "infinity"]}
                        ]
                    }
                }
            }
        },
    )
    status = shared_cluster.kubectl("rollout", "status", "ds/roller", "--timeout=40s", timeout=60)
    assert status.returncode == 0 and "successfully rolled out" in status.stdout, (
        status.stdout + status.stderr
    )
    wait_until(lambda: rolled_out("busybox:1.37"), 40, "daemonset roller to roll out busybox:1.37")
    stop.set()
    w.stop()
    # Replay: at no moment may two nodes lack a Ready pod (maxUnavailable 1).
    ready_by_node: dict[str, bool] = {}
    pods_ready: dict[tuple[str, str], bool] = {}
    order: list[str] = []
    for _, kind, node, image, ready in events[:3]:  # the initial list: every node has a Ready old pod
        assert (kind, image, ready) == ("ADDED", "busybox:1.36", True)
        pods_ready[(node, image)] = ready
    for _, kind, node, image, ready in events[3:]:
        if kind == "DELETED":
            pods_ready.pop((node, image), None)
        else:
            pods_ready[(node, image)] = ready
        for n in ("node1", "node2", "node3"):
            ready_by_node[n] = any(r for (nn, _), r in pods_ready.items() if nn == n)
        assert sum(not r for r in ready_by_node.values()) <= 1, f"two nodes unavailable at once: {pods_ready}"
        if kind == "DELETED" and image == "busybox:1.36":
            order.append(node)
    assert sorted(order) == ["node1", "node2", "node3"], order
    apps.delete_namespaced_daemon_set("roller", "default")
    wait_until(
        lambda: not core.list_namespaced_pod("default", label_selector="app=roller").items,
        10,
        "the roller pods to be deleted with their DaemonSet",
    )
    assert json.loads(shared_cluster.kubectl("get", "ds", "-A", "-o", "json").stdout)["items"] == []


IN_POD_API_CHECK = """
import socket
try:
    socket.create_connection(('127.0.0.1', 6443), timeout=2)
    print('connected')
except OSError as exc:
    print('no API:', type(exc).__name__)
"""


def test_a_pod_has_no_api_on_127_0_0_1_6443(shared_cluster: Cluster) -> None:
    """Only hostNetwork pods reach the API (test_hollow_security.py has the controller's side)."""
    core = shared_cluster.core
    core.create_namespaced_pod("default", as_body(client.V1Pod, echo_pod("api-user", node="node3")))
    wait_running(core, "default", "api-user")
    code, out, err = pod_exec(core, "default", "api-user", ["python3", "-c", IN_POD_API_CHECK])
    assert code == 0, err
    assert out.strip() == "no API: ConnectionRefusedError"
    core.delete_namespaced_pod("api-user", "default")


def test_a_bad_ip_annotation_shows_in_the_pod_status(shared_cluster: Cluster) -> None:
    core = shared_cluster.core
    core.create_namespaced_pod(
        "default",
        as_body(client.V1Pod, echo_pod("bad-ip", annotations={"hollow.netpolcheck.io/ip": "192.0.2.9"})),
    )

    def reported() -> bool:
        st = containers_of(core.read_namespaced_pod("bad-ip", "default"))
        waiting = state_of(st[0]).waiting if st else None
        return waiting is not None and waiting.reason == "CreateContainerError"

    wait_until(reported, 10, "pod bad-ip to report CreateContainerError")
    pod = core.read_namespaced_pod("bad-ip", "default")
    assert status_of(pod).phase == "Pending" and "192.0.2.9" in present(status_of(pod).message, "message")
    core.delete_namespaced_pod("bad-ip", "default")


def test_deleting_a_pod_stops_processes_that_left_its_process_group(shared_cluster: Cluster) -> None:
    core = shared_cluster.core
    spec = {
        "metadata": {"name": "straggler"},
        "spec": {
            "containers": [
                {
                    "name": "c",
                    "image": "busybox",
                    "command": ["sh", "-c", "setsid sleep 1000 & exec sleep 2000"],
                }
            ]
        },
    }
    core.create_namespaced_pod("default", as_body(client.V1Pod, spec))
    pod = wait_running(core, "default", "straggler")
    main_pid = str(container_pid(containers_of(pod)[0]))
    netns = subprocess.run(
        ["ip", "netns", "identify", main_pid], capture_output=True, text=True
    ).stdout.strip()

    def pids() -> list[str]:
        return subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True).stdout.split()

    wait_until(lambda: len(pids()) == 2, 5, "the container and its setsid child in the pod netns")
    inside = pids()
    sessions = {Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[3] for p in inside}
    assert len(sessions) == 2, "the child should have left the container's session"
    core.delete_namespaced_pod("straggler", "default")
    wait_until(
        lambda: not any(Path(f"/proc/{p}").exists() for p in inside),
        10,
        "both processes of the deleted pod to be gone",
    )


def test_exec_readiness_probe_gates_ready_both_ways(shared_cluster: Cluster) -> None:
    core = shared_cluster.core
    spec = {
        "metadata": {"name": "gated"},
        "spec": {
            "volumes": [{"name": "flag", "emptyDir": {}}],
            "containers": [
                {
                    "name": "c",
                    "image": "busybox",
                    "command": ["sleep", "infinity"],
                    "volumeMounts": [{"name": "flag", "mountPath": "/var/run/flag"}],
                    "readinessProbe": {"exec": {"command": ["cat", "/var/run/flag/ok"]}, "periodSeconds": 1},
                }
            ],
        },
    }
    core.create_namespaced_pod("default", as_body(client.V1Pod, spec))

    def ready() -> bool:
        st = containers_of(core.read_namespaced_pod("gated", "default"))
        return bool(st) and bool(st[0].ready)

    def running() -> bool:
        st = containers_of(core.read_namespaced_pod("gated", "default"))
        return bool(st) and state_of(st[0]).running is not None

    wait_until(running, 10, "pod gated to run")
    assert wait_until(ready, 1.0, "pod gated Ready (it must not be)", raise_on_timeout=False) >= 1.0
    assert not ready()
    assert pod_exec(core, "default", "gated", ["touch", "/var/run/flag/ok"])[0] == 0
    wait_until(ready, 5, "pod gated to become Ready once the probe file exists")
    assert pod_exec(core, "default", "gated", ["rm", "/var/run/flag/ok"])[0] == 0
    wait_until(lambda: not ready(), 5, "pod gated to become unready once the probe file is gone")
    core.delete_namespaced_pod("gated", "default")


def test_a_burst_of_unscheduled_pods_spreads_evenly(shared_cluster: Cluster) -> None:
    core = shared_cluster.core
    create_namespace(core, "burst")
    for i in range(9):
        core.create_namespaced_pod(
            "burst",
            as_body(
                client.V1Pod,
                {
                    "metadata": {"name": f"b{i}"},
                    "spec": {
                        "containers": [{"name": "c", "image": "busybox", "command": ["sleep", "infinity"]}]
                    },
                },
            ),
        )

    def all_running() -> bool:
        pods = core.list_namespaced_pod("burst").items
        return len(pods) == 9 and all(status_of(p).phase == "Running" for p in pods)

    wait_until(all_running, 20, "9 burst pods Running")
    # balanced over every pod of the cluster (other tests' pods, if any left, count too)
    everywhere = [
        spec_of(p).node_name
        for p in core.list_pod_for_all_namespaces().items
        if status_of(p).phase == "Running"
    ]
    counts = [everywhere.count(n) for n in ("node1", "node2", "node3")]
    assert max(counts) - min(counts) <= 1, counts
    core.delete_namespace("burst")
