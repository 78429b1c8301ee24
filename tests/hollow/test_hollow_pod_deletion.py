"""Pod deletion ordered like a real kubelet: the object stays Terminating until the pod is gone.

So a suite that waits for a deleted pod's object to vanish can trust that its processes and network
namespace are gone too.
"""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from netpolcheck.hollow.waits import wait_until
from tests.hollow.clusterkit import Cluster
from tests.hollow.kubetyped import as_body, container_pid, containers_of, meta_of, name_of
from tests.hollow.podtools import wait_running

pytestmark = [pytest.mark.netns, pytest.mark.hollow]

# Ignores SIGTERM, so the kubelet needs its whole grace period and a SIGKILL to stop it.
STUBBORN = (
    "import signal, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "print('READY', flush=True)\n"
    "time.sleep(3600)\n"
)


def stubborn_pod(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"test": "deletion-order"}},
        "spec": {
            "containers": [{"name": "main", "image": "python:3.11", "command": ["python3", "-c", STUBBORN]}]
        },
    }


def ignores_sigterm(pid: int) -> bool:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigIgn:"):
            return bool(int(line.split()[1], 16) & (1 << (15 - 1)))
    return False


def running_stubborn(core: Any, namespace: str, name: str) -> int:
    """Create-side wait: the pod is Running and its program already ignores SIGTERM; returns its PID."""
    pod = wait_running(core, namespace, name)
    pid = container_pid(containers_of(pod)[0])
    wait_until(lambda: ignores_sigterm(pid), 10, f"pod {namespace}/{name} (pid {pid}) to ignore SIGTERM")
    return pid


def pid_gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def netns_of(pid: int) -> str:
    out = subprocess.run(["ip", "netns", "identify", str(pid)], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def netns_exists(name: str) -> bool:
    return Path("/run/netns", name).exists()


def test_object_stays_terminating_until_processes_and_netns_are_gone(shared_cluster: Cluster) -> None:
    core = shared_cluster.core
    core.create_namespaced_pod("default", as_body(client.V1Pod, stubborn_pod("stubborn")))
    pid = running_stubborn(core, "default", "stubborn")
    netns = netns_of(pid)
    assert netns.startswith(shared_cluster.prefix + "-pod"), netns

    deleted_at = time.monotonic()
    core.delete_namespaced_pod("stubborn", "default")
    terminating = core.read_namespaced_pod("stubborn", "default")
    assert meta_of(terminating).deletion_timestamp is not None
    assert not pid_gone(pid) and netns_exists(netns)  # SIGTERM is ignored: still there, and visible
    listed = core.list_namespaced_pod("default", label_selector="test=deletion-order").items
    assert [name_of(p) for p in listed] == ["stubborn"]
    kubectl = shared_cluster.kubectl("get", "pod", "stubborn", "--no-headers")
    assert "Terminating" in kubectl.stdout, kubectl.stdout + kubectl.stderr

    def vanished() -> bool:
        try:
            core.read_namespaced_pod("stubborn", "default")
        except ApiException as exc:
            return exc.status == 404
        return False

    wait_until(vanished, 15, "the deleted pod's object to disappear", interval=0.02)
    # the moment the object is gone, nothing of the pod is left
    assert pid_gone(pid), f"container pid {pid} still runs after its pod object vanished"
    assert not netns_exists(netns), f"netns {netns} still exists after its pod object vanished"
    assert time.monotonic() - deleted_at >= 1.5  # it really waited for the grace period and SIGKILL


def test_a_watch_sees_terminating_then_deleted_and_nothing_is_left_at_deleted(
    shared_cluster: Cluster,
) -> None:
    core = shared_cluster.core
    core.create_namespaced_pod("default", as_body(client.V1Pod, stubborn_pod("watched")))
    pid = running_stubborn(core, "default", "watched")
    netns = netns_of(pid)
    start_rv = meta_of(core.read_namespaced_pod("watched", "default")).resource_version
    seen: list[tuple[str, bool, bool, bool]] = []  # (type, terminating, pid gone, netns gone)
    done = threading.Event()

    def follow() -> None:
        w = watch.Watch()
        for event in w.stream(
            core.list_namespaced_pod,
            "default",
            field_selector="metadata.name=watched",
            resource_version=start_rv,
            timeout_seconds=20,
        ):
            obj = event["object"]
            seen.append(
                (
                    event["type"],
                    obj.metadata.deletion_timestamp is not None,
                    pid_gone(pid),
                    not netns_exists(netns),
                )
            )
            if event["type"] == "DELETED":
                w.stop()
        done.set()

    follower = threading.Thread(target=follow, daemon=True)
    follower.start()
    core.delete_namespaced_pod("watched", "default")
    assert done.wait(20), f"no DELETED event within 20 s; saw {seen}"
    follower.join(5)
    types = [t for t, *_ in seen]
    assert types[-1] == "DELETED" and "MODIFIED" in types, seen
    first_terminating = next(s for s in seen if s[1])
    assert first_terminating[0] == "MODIFIED" and not first_terminating[2], seen  # still running then
    assert seen[-1][2:] == (True, True), seen  # at DELETED: process and netns gone


def test_deleting_a_namespace_removes_its_pods_after_they_stop(shared_cluster: Cluster) -> None:
    core = shared_cluster.core
    core.create_namespace(
        as_body(client.V1Namespace, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "going"}})
    )
    core.create_namespaced_pod("going", as_body(client.V1Pod, stubborn_pod("inside")))
    pid = running_stubborn(core, "going", "inside")
    netns = netns_of(pid)
    core.delete_namespace("going")

    def pod_vanished() -> bool:
        return not core.list_pod_for_all_namespaces(field_selector="metadata.name=inside").items

    wait_until(pod_vanished, 15, "the pod of the deleted namespace to disappear", interval=0.02)
    assert pid_gone(pid) and not netns_exists(netns)
