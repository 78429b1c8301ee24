"""The DaemonSet controller with a kubelet stand-in: placement, rolling updates node by node,
OnDelete, status for `kubectl rollout status`, and applying the workshop's Weave upgrade manifest."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import NotFoundError

from netpolcheck.hollow.api import resources as r
from netpolcheck.hollow.api.store import WatchEvent
from netpolcheck.hollow.controllers.daemonset import HASH_LABEL, DaemonSetController, pod_ready
from tests.hollow.api.apikit import KUBECTL, Cluster, ReadyMarker
from tests.hollow.kubetyped import as_body, meta_of, status_of

SEED = Path(__file__).resolve().parents[2] / "data" / "seed-workshop" / "weavenet-update.yaml"
NODES = ("node-1", "node-2", "node-3")


def wait_for(what: str, condition: Callable[[], Any], timeout: float = 10.0) -> Any:
    """Poll `condition` until truthy; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture
def nodes(cluster: Cluster) -> list[str]:
    for name in NODES:
        cluster.store.create(
            r.NODES, {"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}}}
        )
    return list(NODES)


@pytest.fixture
def marker(cluster: Cluster) -> Iterator[ReadyMarker]:
    m = ReadyMarker(cluster.store)
    yield m
    m.stop()


@pytest.fixture
def controller(cluster: Cluster, nodes: list[str], marker: ReadyMarker) -> Iterator[DaemonSetController]:
    c = DaemonSetController(cluster.store, resync_seconds=0.2)
    c.start()
    yield c
    c.stop()


def daemonset(
    name: str = "weave-net",
    image: str = "weaveworks/weave-npc:2.0.5",
    strategy: str = "RollingUpdate",
    node_selector: dict[str, str] | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "weave-npc", "image": image}]}
    if node_selector:
        spec["nodeSelector"] = node_selector
    return {
        "metadata": {"name": name, "namespace": "kube-system"},
        "spec": {
            "selector": {"matchLabels": {"name": name}},
            "updateStrategy": {"type": strategy},
            "template": {"metadata": {"labels": {"name": name}}, "spec": spec},
        },
    }


def ds_pods(cluster: Cluster, name: str = "weave-net") -> list[dict[str, Any]]:
    return cluster.store.list(r.PODS, "kube-system", label_selector=f"name={name}")[0]


def rolled_out(cluster: Cluster, name: str = "weave-net") -> bool:
    ds = cluster.store.get(r.DAEMONSETS, "kube-system", name)
    s = ds.get("status") or {}
    return (
        s.get("observedGeneration") == ds["metadata"]["generation"]
        and s.get("updatedNumberScheduled") == s.get("desiredNumberScheduled") == s.get("numberAvailable")
        and len(ds_pods(cluster, name)) == s.get("desiredNumberScheduled")
    )


def set_image(cluster: Cluster, image: str, name: str = "weave-net") -> None:
    cluster.store.merge_patch(
        r.DAEMONSETS,
        "kube-system",
        name,
        {"spec": {"template": {"spec": {"containers": [{"name": "weave-npc", "image": image}]}}}},
    )


def test_one_ready_pod_per_node_with_owner_labels_and_status(
    cluster: Cluster, controller: DaemonSetController
) -> None:
    apps = client.AppsV1Api(cluster.api_client)
    created = apps.create_namespaced_daemon_set("kube-system", as_body(client.V1DaemonSet, daemonset()))
    wait_for("3 ready weave-net pods", lambda: rolled_out(cluster))
    pods = ds_pods(cluster)
    assert sorted(p["spec"]["nodeName"] for p in pods) == sorted(NODES)
    for p in pods:
        meta = p["metadata"]
        assert meta["name"].startswith("weave-net-") and meta["labels"]["pod-template-generation"] == "1"
        assert meta["ownerReferences"][0]["uid"] == meta_of(created).uid
        assert meta["ownerReferences"][0]["controller"] is True and HASH_LABEL in meta["labels"]
    status = status_of(apps.read_namespaced_daemon_set_status("weave-net", "kube-system"))
    assert (
        status.desired_number_scheduled,
        status.current_number_scheduled,
        status.number_ready,
        status.updated_number_scheduled,
        status.number_available,
        status.number_unavailable,
        status.observed_generation,
    ) == (3, 3, 3, 3, 3, None, 1)
    apps.delete_namespaced_daemon_set("weave-net", "kube-system")
    wait_for("the DaemonSet's pods to be deleted with it", lambda: ds_pods(cluster) == [])


def test_rolling_update_replaces_one_node_at_a_time_and_waits_for_ready(
    cluster: Cluster, controller: DaemonSetController, marker: ReadyMarker
) -> None:
    cluster.store.create(r.DAEMONSETS, daemonset())
    wait_for("the first rollout", lambda: rolled_out(cluster))
    old_hash = ds_pods(cluster)[0]["metadata"]["labels"][HASH_LABEL]
    # Every pod starts ready; replay each later pod event against this picture.
    live: dict[str, tuple[str, bool]] = {
        p["metadata"]["name"]: (p["spec"]["nodeName"], True) for p in ds_pods(cluster)
    }
    timeline: list[tuple[int, str, str, bool, str]] = []  # (rv, type, node, ready, name)
    lock = threading.Lock()

    def record(event: WatchEvent) -> None:
        with lock:
            timeline.append(
                (
                    event.rv,
                    event.type,
                    event.object.get("spec", {}).get("nodeName", ""),
                    pod_ready(event.object),
                    event.object["metadata"]["name"],
                )
                if event.resource is r.PODS
                else (event.rv, "", "", False, "")
            )

    unsubscribe = cluster.store.subscribe(record)
    marker.hold.set()
    set_image(cluster, "weaveworks/weave-npc:2.1.3")
    wait_for(
        "one old pod replaced by an unready new one",
        lambda: sum(p["metadata"]["labels"][HASH_LABEL] != old_hash for p in ds_pods(cluster)) == 1,
    )
    # Observe for five controller resyncs (0.2 s each): no second old pod goes while the new one is unready.
    observed_until = time.monotonic() + 1.0
    while time.monotonic() < observed_until:
        assert sum(p["metadata"]["labels"][HASH_LABEL] == old_hash for p in ds_pods(cluster)) == 2
        time.sleep(0.1)
    marker.hold.clear()
    marker.release_pending()
    wait_for("the rollout to finish", lambda: rolled_out(cluster), timeout=15)
    final_rv = cluster.store.resource_version
    wait_for("the recorder to receive every event", lambda: timeline and timeline[-1][0] >= final_rv)
    unsubscribe()

    fewest_ready, deleted_nodes = len(NODES), []
    for _, kind, node, ready, name in timeline:
        if not name:
            continue
        if kind == "DELETED":
            live.pop(name, None)
            deleted_nodes.append(node)
        else:
            live[name] = (node, ready)
        fewest_ready = min(fewest_ready, len({n for n, rd in live.values() if rd}))
    assert fewest_ready == len(NODES) - 1, "maxUnavailable 1 was not respected (or nothing was replaced)"
    assert sorted(deleted_nodes) == sorted(NODES)
    assert {n for n, rd in live.values() if rd} == set(NODES) and len(live) == len(NODES)


def test_rollout_events_alternate_delete_then_create_per_node(
    cluster: Cluster, controller: DaemonSetController
) -> None:
    cluster.store.create(r.DAEMONSETS, daemonset())
    wait_for("the first rollout", lambda: rolled_out(cluster))
    before = cluster.store.resource_version
    set_image(cluster, "weaveworks/weave-npc:2.1.3")
    wait_for("the rollout to finish", lambda: rolled_out(cluster), timeout=15)
    events = [
        e
        for e in cluster.store.list(r.EVENTS, "kube-system")[0]
        if int(e["metadata"]["resourceVersion"]) > before
    ]
    events.sort(key=lambda e: int(e["metadata"]["resourceVersion"]))
    assert [e["reason"] for e in events] == ["SuccessfulDelete", "SuccessfulCreate"] * 3
    assert all(e["involvedObject"]["name"] == "weave-net" for e in events)


def test_on_delete_strategy_waits_for_manual_deletion(
    cluster: Cluster, controller: DaemonSetController
) -> None:
    cluster.store.create(r.DAEMONSETS, daemonset(strategy="OnDelete"))
    wait_for("the first rollout", lambda: rolled_out(cluster))
    names = sorted(p["metadata"]["name"] for p in ds_pods(cluster))
    set_image(cluster, "weaveworks/weave-npc:2.1.3")
    wait_for(
        "the new generation to be observed",
        lambda: (
            (cluster.store.get(r.DAEMONSETS, "kube-system", "weave-net").get("status") or {}).get(
                "observedGeneration"
            )
            == 2
        ),
    )
    time.sleep(0.6)  # three controller resyncs: OnDelete must leave the old pods alone meanwhile
    assert sorted(p["metadata"]["name"] for p in ds_pods(cluster)) == names
    cluster.store.delete(r.PODS, "kube-system", names[0])
    wait_for(
        "a replacement pod from the new template",
        lambda: any(p["spec"]["containers"][0]["image"].endswith(":2.1.3") for p in ds_pods(cluster)),
    )
    status = cluster.store.get(r.DAEMONSETS, "kube-system", "weave-net")["status"]
    wait_for(
        "status to count one updated pod",
        lambda: (
            cluster.store.get(r.DAEMONSETS, "kube-system", "weave-net")["status"].get(
                "updatedNumberScheduled"
            )
            == 1
        ),
    )
    assert status["desiredNumberScheduled"] == 3


def test_node_selector_is_respected(cluster: Cluster, controller: DaemonSetController) -> None:
    cluster.store.create(r.DAEMONSETS, daemonset(node_selector={"role": "edge"}))
    cluster.store.merge_patch(r.NODES, None, "node-2", {"metadata": {"labels": {"role": "edge"}}})
    wait_for("one pod on node-2", lambda: [p["spec"]["nodeName"] for p in ds_pods(cluster)] == ["node-2"])
    cluster.store.merge_patch(r.NODES, None, "node-2", {"metadata": {"labels": {"role": None}}})
    wait_for("the pod to leave node-2", lambda: ds_pods(cluster) == [])


def test_kubectl_rollout_status_and_get_follow_a_rolling_daemonset(
    cluster: Cluster, controller: DaemonSetController, marker: ReadyMarker
) -> None:
    cluster.store.create(r.DAEMONSETS, daemonset())
    wait_for("the first rollout", lambda: rolled_out(cluster))
    marker.hold.set()
    set_image(cluster, "weaveworks/weave-npc:2.1.3")
    proc = subprocess.Popen(
        [
            str(KUBECTL),
            "--kubeconfig",
            str(cluster.kubeconfig),
            "rollout",
            "status",
            "ds/weave-net",
            "-n",
            "kube-system",
            "--timeout=30s",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("Waiting for daemon set"), first
        marker.hold.clear()
        marker.release_pending()
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    assert proc.returncode == 0, err
    assert out.strip().endswith('daemon set "weave-net" successfully rolled out')
    listing = cluster.kubectl("get", "pods", "-n", "kube-system", "-o", "wide")
    assert listing.returncode == 0, listing.stderr
    lines = listing.stdout.splitlines()
    assert lines[0].split()[:5] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert sorted(line.split()[6] for line in lines[1:]) == sorted(NODES)
    assert all(line.split()[2] == "Running" for line in lines[1:])
    ds = cluster.kubectl("get", "ds", "weave-net", "-n", "kube-system")
    assert ds.stdout.split("\n")[1].split()[:6] == ["weave-net", "3", "3", "3", "3", "3"], ds.stdout


def test_kubectl_rollout_history_and_undo(cluster: Cluster, controller: DaemonSetController) -> None:
    cluster.store.create(r.DAEMONSETS, daemonset())
    wait_for("the first rollout", lambda: rolled_out(cluster))
    set_image(cluster, "weaveworks/weave-npc:2.1.3")
    wait_for("the upgrade", lambda: rolled_out(cluster))
    history = cluster.kubectl("rollout", "history", "ds/weave-net", "-n", "kube-system")
    assert history.returncode == 0, history.stderr
    assert [line.split()[0] for line in history.stdout.splitlines()[2:] if line.strip()] == ["1", "2"]
    undo = cluster.kubectl("rollout", "undo", "ds/weave-net", "-n", "kube-system")
    assert undo.returncode == 0, undo.stderr
    wait_for(
        "the rollback",
        lambda: (
            rolled_out(cluster)
            and {p["spec"]["containers"][0]["image"] for p in ds_pods(cluster)}
            == {"weaveworks/weave-npc:2.0.5"}
        ),
    )
    history = cluster.kubectl("rollout", "history", "ds/weave-net", "-n", "kube-system")
    assert [line.split()[0] for line in history.stdout.splitlines()[2:] if line.strip()] == ["2", "3"]
    cluster.store.delete(r.DAEMONSETS, "kube-system", "weave-net")
    assert cluster.store.list(r.CONTROLLERREVISIONS, "kube-system")[0] == []


def _flatten(docs: list[Any]) -> list[dict[str, Any]]:
    out = []
    for doc in docs:
        if doc and doc.get("kind", "").endswith("List") and "items" in doc:
            out += _flatten(doc["items"])
        elif doc:
            out.append(doc)
    return out


def test_apply_seed_upgrade_manifest_through_the_python_client(
    cluster: Cluster, controller: DaemonSetController
) -> None:
    dyn = DynamicClient(cluster.api_client)
    objects = _flatten(list(yaml.safe_load_all(SEED.read_text())))
    assert {o["apiVersion"] for o in objects} >= {"extensions/v1beta1", "rbac.authorization.k8s.io/v1beta1"}

    def create_or_replace(obj: dict[str, Any]) -> Any:
        res = dyn.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
        ns = obj["metadata"].get("namespace") if res.namespaced else None
        try:
            current = res.get(name=obj["metadata"]["name"], namespace=ns)
        except NotFoundError:
            return res.create(body=obj, namespace=ns)
        body = {**obj, "metadata": {**obj["metadata"], "resourceVersion": current.metadata.resourceVersion}}
        return res.replace(body=body, namespace=ns)

    for obj in objects:
        create_or_replace(obj)
    wait_for("weave-net to roll out on 3 nodes", lambda: rolled_out(cluster))
    ds = dyn.resources.get(api_version="extensions/v1beta1", kind="DaemonSet").get(
        name="weave-net", namespace="kube-system"
    )
    assert ds.apiVersion == "extensions/v1beta1" and ds.spec.updateStrategy.type == "RollingUpdate"
    images = {c["image"] for p in ds_pods(cluster) for c in p["spec"]["containers"]}
    assert images == {"weaveworks/weave-kube:2.1.3", "weaveworks/weave-npc:2.1.3"}
    generation = ds.metadata.generation
    for obj in objects:  # re-applying the same manifest changes nothing
        create_or_replace(obj)
    again = client.AppsV1Api(cluster.api_client).read_namespaced_daemon_set("weave-net", "kube-system")
    assert meta_of(again).generation == generation
    role = client.RbacAuthorizationV1Api(cluster.api_client).read_namespaced_role("weave-net", "kube-system")
    assert role.rules
    # Server-side apply (what docs/tooling.md#kubernetes-client recommends) goes through the same storage.
    daemon = next(o for o in objects if o["kind"] == "DaemonSet")
    res = dyn.resources.get(api_version=daemon["apiVersion"], kind="DaemonSet")
    applied = dyn.server_side_apply(
        res, body=daemon, namespace="kube-system", field_manager="netpolcheck", force_conflicts=True
    )
    assert applied.metadata.generation == generation


def test_node_eligibility_taints_and_max_unavailable_forms() -> None:
    from netpolcheck.hollow.controllers.daemonset import max_unavailable, node_eligible

    tainted = {
        "metadata": {"name": "m", "labels": {}},
        "spec": {"taints": [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]},
    }
    plain: dict[str, Any] = {"spec": {"containers": []}}
    assert not node_eligible(tainted, plain)
    assert node_eligible(tainted, {"tolerations": [{"operator": "Exists", "effect": "NoSchedule"}]})
    assert node_eligible(tainted, {"tolerations": [{"operator": "Exists"}]})  # Weave's manifest tolerates all
    assert not node_eligible(tainted, {"tolerations": [{"key": "other", "operator": "Exists"}]})
    assert node_eligible(
        {"metadata": {}, "spec": {"taints": [{"key": "k", "effect": "PreferNoSchedule"}]}}, plain
    )
    cordoned = {
        "metadata": {},
        "spec": {
            "unschedulable": True,
            "taints": [{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}],
        },
    }
    assert node_eligible(cordoned, plain)  # daemon pods run on cordoned nodes, as with the real controller

    def ds(value: object) -> dict[str, Any]:
        return {
            "spec": {"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": value}}}
        }

    assert [max_unavailable(ds(v), 10) for v in (1, 3, "25%", "0%")] == [1, 3, 3, 1]
    assert max_unavailable({"spec": {}}, 10) == 1


def test_kubectl_apply_of_the_weave_manifests_as_upgrades(
    cluster: Cluster, controller: DaemonSetController
) -> None:
    """2.0.5 -> 2.1.3 (the workshop's path) applies in place. 2.1.3 -> 2.8.1 does not, as on a real
    server: the old extensions/v1beta1 DaemonSet got its selector defaulted from the template labels
    (name + role.kubernetes.io/networking), apply keeps that immutable selector while dropping the role
    label from the template, and validation refuses it. Deleting the DaemonSet first works."""
    weave = Path(__file__).resolve().parents[3] / "manifests" / "weave"

    def apply_and_roll(version: str) -> None:
        result = cluster.kubectl("apply", "-f", str(weave / f"weave-{version}.yaml"))
        assert result.returncode == 0, f"{version}: {result.stderr}"
        wait_for(
            f"weave-net {version} rolled out",
            lambda: (
                rolled_out(cluster)
                and all(
                    c["image"].endswith(f":{version}")
                    for p in ds_pods(cluster)
                    for c in p["spec"]["containers"]
                )
            ),
        )

    apply_and_roll("2.0.5")
    apply_and_roll("2.1.3")
    refused = cluster.kubectl("apply", "-f", str(weave / "weave-2.8.1.yaml"))
    assert refused.returncode == 1
    assert "spec.template.metadata.labels" in refused.stderr and "does not match" in refused.stderr
    deleted = cluster.kubectl("delete", "ds", "weave-net", "-n", "kube-system")
    assert deleted.returncode == 0, deleted.stderr
    wait_for("the old weave-net pods to go with their DaemonSet", lambda: ds_pods(cluster) == [])
    apply_and_roll("2.8.1")
    apply_and_roll("2.9.0")
    assert len(ds_pods(cluster)) == len(NODES)
