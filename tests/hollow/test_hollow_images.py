"""The tutorial's images on the embedded cluster: stand-ins that do the job, or an honest ErrImagePull;
each pod with its own hostname and processes; one Kubernetes version for nodes and server."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client

from netpolcheck.hollow.waits import wait_until
from tests.hollow.clusterkit import Cluster
from tests.hollow.kubetyped import as_body, ip_of, name_of, present, status_of
from tests.hollow.podtools import pod_exec, wait_running

pytestmark = [pytest.mark.netns, pytest.mark.hollow]


def pod(name: str, container: dict[str, Any], node: str | None = None, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"containers": [{"name": "c", **container}], **spec}
    if node:
        body["nodeName"] = node
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": body,
    }


def delete(cluster: Cluster, *names: str) -> None:
    for name in names:
        cluster.core.delete_namespaced_pod(name, "default")
    wait_until(
        lambda: not any(name_of(p) in names for p in cluster.core.list_namespaced_pod("default").items),
        30,
        f"pods {names} to be deleted",
    )


def test_http_echo_answers_and_a_busybox_client_fetches_it_with_wget_and_nc(shared_cluster: Cluster) -> None:
    core = shared_cluster.core
    echo = {"image": "hashicorp/http-echo:1.0", "args": ["-text=hello from echo", "-listen=:5678"]}
    busybox = {"image": "busybox:1.36", "command": ["sleep", "3600"]}
    core.create_namespaced_pod("default", as_body(client.V1Pod, pod("echo", echo, node="node1")))
    core.create_namespaced_pod("default", as_body(client.V1Pod, pod("bb", busybox, node="node2")))
    try:
        ip = ip_of(wait_running(core, "default", "echo"))
        wait_running(core, "default", "bb")
        box: list[tuple[int, str, str]] = []

        def fetched() -> bool:
            box[:] = [pod_exec(core, "default", "bb", ["wget", "-qO-", "-T", "3", f"http://{ip}:5678/"])]
            return box[0][0] == 0

        wait_until(fetched, 20, "wget from the busybox pod to the http-echo pod")
        assert box[0][1] == "hello from echo\n"
        code, out, _ = pod_exec(core, "default", "bb", ["sh", "-c", f"wget -q -O - {ip}:5678/health"])
        assert (code, json.loads(out)) == (0, {"status": "ok"})
        code, out, _ = pod_exec(
            core, "default", "bb", ["sh", "-c", f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {ip} 5678"]
        )
        assert code == 0 and out.startswith("HTTP/1.0 200") and out.endswith("hello from echo\n"), out
        code, _, err = pod_exec(core, "default", "bb", ["nc", "-z", "-w", "2", ip, "5679"])  # nobody listens
        assert code == 1 and "can't connect" in err
        code, _, err = pod_exec(
            core, "default", "bb", ["wget", "-q", "-T", "2", "-O", "-", f"http://{ip}:5679/"]
        )
        assert code == 1 and err.startswith("wget: can't connect"), err
    finally:
        delete(shared_cluster, "echo", "bb")


def test_an_image_it_cannot_run_waits_in_errimagepull_with_events_not_running(
    shared_cluster: Cluster,
) -> None:
    core = shared_cluster.core
    core.create_namespaced_pod("default", as_body(client.V1Pod, pod("nginx", {"image": "nginx:1.27"})))
    try:
        box: list[Any] = []

        def backing_off() -> bool:
            box[:] = [core.read_namespaced_pod("nginx", "default")]
            statuses = box[0].status.container_statuses or []
            return (
                bool(statuses)
                and statuses[0].state.waiting is not None
                and (statuses[0].state.waiting.reason == "ImagePullBackOff")
            )

        wait_until(backing_off, 20, "the nginx pod's container to wait in ImagePullBackOff")
        status = box[0].status
        assert status.phase == "Pending"
        assert {c.type: c.status for c in status.conditions}["Ready"] == "False"
        assert status.container_statuses[0].ready is False and not status.container_statuses[0].started
        assert 'cannot run image "nginx:1.27"' in status.container_statuses[0].state.waiting.message
        events = core.list_namespaced_event("default").items
        mine = [(e.reason, e.message) for e in events if e.involved_object.name == "nginx"]
        assert any(
            r == "Failed" and str(m).startswith('Failed to pull image "nginx:1.27"') for r, m in mine
        ), mine
        assert ("Failed", "Error: ErrImagePull") in mine and (
            "BackOff",
            'Back-off pulling image "nginx:1.27"',
        ) in mine
        table = shared_cluster.kubectl("get", "pod", "nginx", "--no-headers").stdout.split()
        assert table[1:3] == ["0/1", "ImagePullBackOff"], table
    finally:
        delete(shared_cluster, "nginx")


def test_a_pod_has_its_own_hostname_and_sees_only_its_own_processes(shared_cluster: Cluster) -> None:
    core = shared_cluster.core
    core.create_namespaced_pod(
        "default", as_body(client.V1Pod, pod("lonely", {"image": "busybox", "command": ["sleep", "3600"]}))
    )
    try:
        wait_running(core, "default", "lonely")
        assert pod_exec(core, "default", "lonely", ["hostname"])[1].strip() == "lonely"
        code, out, _ = pod_exec(core, "default", "lonely", ["sh", "-c", "ls /proc | grep -E '^[0-9]+$'"])
        pids = sorted(int(p) for p in out.split())
        # PID 1 is the container's sleep; then the exec's own shell and ls, nothing of the machine's
        assert code == 0 and pids[0] == 1 and len(pids) <= 4, pids
        assert pod_exec(core, "default", "lonely", ["cat", "/proc/1/cmdline"])[1].split("\0")[:2] == [
            "sleep",
            "3600",
        ]
    finally:
        delete(shared_cluster, "lonely")


def test_nodes_report_the_version_the_api_server_reports(shared_cluster: Cluster) -> None:
    server = json.loads(shared_cluster.kubectl("version", "-o", "json").stdout)["serverVersion"]["gitVersion"]
    for node in shared_cluster.core.list_node().items:
        assert present(status_of(node).node_info, "nodeInfo").kubelet_version == server
