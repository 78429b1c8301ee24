"""The object store on its own: versions, conflicts, generation, cascades, watch history."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from netpolcheck.hollow.api import resources as r
from netpolcheck.hollow.api.errors import AlreadyExists, Conflict, Gone, Invalid, NotFound
from netpolcheck.hollow.api.store import Store, Watch, WatchEvent


def pod(
    name: str, ns: str = "default", labels: dict[str, str] | None = None, node: str = ""
) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "c", "image": "i:1"}]}
    if node:
        spec["nodeName"] = node
    return {"metadata": {"name": name, "namespace": ns, "labels": labels or {}}, "spec": spec}


def next_event(watch: Watch) -> WatchEvent:
    event = watch.next(1)
    assert event is not None, "no watch event within 1 s"
    return event


def test_create_fills_metadata_and_versions_increase() -> None:
    store = Store()
    a = store.create(r.PODS, pod("a"))
    b = store.create(r.PODS, pod("b"))
    assert a["metadata"]["uid"] != b["metadata"]["uid"]
    assert int(b["metadata"]["resourceVersion"]) == int(a["metadata"]["resourceVersion"]) + 1
    assert a["metadata"]["generation"] == 1 and a["metadata"]["creationTimestamp"].endswith("Z")
    assert a["apiVersion"] == "v1" and a["kind"] == "Pod" and a["status"]["phase"] == "Pending"
    with pytest.raises(AlreadyExists):
        store.create(r.PODS, pod("a"))
    with pytest.raises(NotFound):
        store.create(r.PODS, pod("x", ns="nope"))


def test_objects_are_copied_in_and_out() -> None:
    store = Store()
    body = pod("a")
    created = store.create(r.PODS, body)
    body["metadata"]["labels"]["x"] = "1"
    created["metadata"]["labels"]["y"] = "2"
    assert store.get(r.PODS, "default", "a")["metadata"]["labels"] == {}


def test_replace_with_stale_version_conflicts_and_spec_change_bumps_generation() -> None:
    store = Store()
    first = store.create(
        r.DAEMONSETS,
        {
            "metadata": {"name": "ds", "namespace": "default"},
            "spec": {
                "selector": {"matchLabels": {"a": "b"}},
                "template": {
                    "metadata": {"labels": {"a": "b"}},
                    "spec": {"containers": [{"name": "c", "image": "i:1"}]},
                },
            },
        },
    )
    relabel = store.merge_patch(r.DAEMONSETS, "default", "ds", {"metadata": {"labels": {"x": "y"}}})
    assert relabel["metadata"]["generation"] == 1
    changed = store.merge_patch(r.DAEMONSETS, "default", "ds", {"spec": {"minReadySeconds": 5}})
    assert changed["metadata"]["generation"] == 2
    with pytest.raises(Conflict):
        store.replace(r.DAEMONSETS, first)
    same = store.replace(r.DAEMONSETS, changed)  # nothing changed: same version, no event
    assert same["metadata"]["resourceVersion"] == changed["metadata"]["resourceVersion"]


def test_status_is_only_written_through_the_status_subresource() -> None:
    store = Store()
    store.create(r.PODS, pod("a"))
    store.merge_patch(r.PODS, "default", "a", {"status": {"phase": "Running"}})
    assert store.get(r.PODS, "default", "a")["status"]["phase"] == "Pending"
    store.merge_patch(r.PODS, "default", "a", {"status": {"phase": "Running"}}, status=True)
    assert store.get(r.PODS, "default", "a")["status"]["phase"] == "Running"
    obj = store.get(r.PODS, "default", "a")
    obj["status"]["phase"] = "Failed"
    obj["metadata"]["labels"] = {"ignored": "yes"}
    store.replace_status(r.PODS, obj)
    after = store.get(r.PODS, "default", "a")
    assert after["status"]["phase"] == "Failed" and after["metadata"]["labels"] == {}


def test_namespace_delete_removes_its_objects_and_owner_delete_collects_dependents() -> None:
    store = Store()
    store.create(r.NAMESPACES, {"metadata": {"name": "x"}})
    assert store.get(r.SERVICEACCOUNTS, "x", "default")
    owner = store.create(r.CONFIGMAPS, {"metadata": {"name": "owner", "namespace": "default"}})
    store.create(
        r.PODS,
        {
            **pod("dep"),
            "metadata": {
                "name": "dep",
                "namespace": "default",
                "ownerReferences": [
                    {
                        "apiVersion": "v1",
                        "kind": "ConfigMap",
                        "name": "owner",
                        "uid": owner["metadata"]["uid"],
                    }
                ],
            },
        },
    )
    store.create(r.PODS, pod("a", ns="x"))
    store.delete(r.NAMESPACES, None, "x")
    assert store.list(r.PODS, "x")[0] == [] and store.list(r.SERVICEACCOUNTS, "x")[0] == []
    store.delete(r.CONFIGMAPS, "default", "owner")
    with pytest.raises(NotFound):
        store.get(r.PODS, "default", "dep")


def test_watch_replays_history_in_order_and_compaction_gives_gone() -> None:
    store = Store()
    start = store.resource_version
    store.create(r.PODS, pod("a"))
    store.merge_patch(r.PODS, "default", "a", {"metadata": {"labels": {"k": "v"}}})
    store.delete(r.PODS, "default", "a")
    with store.watch(r.PODS, since=start) as w:
        events = [w.next(1) for _ in range(3)]
    assert [e.type for e in events if e] == ["ADDED", "MODIFIED", "DELETED"]
    assert [e.rv for e in events if e] == [start + 1, start + 2, start + 3]
    store.compact()
    with pytest.raises(Gone):
        store.watch(r.PODS, since=start)
    store.watch(r.PODS, since=store.resource_version).close()


def test_watch_translates_selector_transitions() -> None:
    store = Store()
    store.create(r.PODS, pod("a", labels={"app": "x"}))
    with store.watch(r.PODS, "default", label_selector="app=x", initial=True) as w:
        assert next_event(w).type == "ADDED"
        store.merge_patch(r.PODS, "default", "a", {"metadata": {"labels": {"app": "y"}}})
        assert next_event(w).type == "DELETED"
        store.merge_patch(r.PODS, "default", "a", {"metadata": {"labels": {"app": "x"}}})
        assert next_event(w).type == "ADDED"
        assert w.next(0.1) is None and not w.closed
    store.close()


def test_close_ends_watches() -> None:
    store = Store()
    w = store.watch(r.PODS)
    store.close()
    assert w.next(1) is None and w.closed


def test_subscribers_see_every_event_in_order_and_may_write() -> None:
    store = Store()
    seen: list[tuple[str, int]] = []
    done = threading.Event()

    def on_event(event: WatchEvent) -> None:
        seen.append((event.type, event.rv))
        if event.resource is r.PODS and event.type == "ADDED":
            store.create(
                r.CONFIGMAPS,
                {"metadata": {"name": f"cm-{event.object['metadata']['name']}", "namespace": "default"}},
            )
        if event.resource is r.CONFIGMAPS and event.object["metadata"]["name"] == "cm-c":
            done.set()

    unsubscribe = store.subscribe(on_event)
    for name in "abc":
        store.create(r.PODS, pod(name))
    assert done.wait(5), "subscriber never saw the config map it created for pod c"
    unsubscribe()
    rvs = [rv for _, rv in seen]
    assert rvs == sorted(rvs) and len(rvs) == 6
    store.close()


def test_admission_rejects_through_the_store() -> None:
    store = Store()
    with pytest.raises(Invalid) as err:
        store.create(
            r.PODS, {"metadata": {"name": "Bad_Name", "namespace": "default"}, "spec": {"containers": []}}
        )
    assert err.value.details is not None
    fields = [c["field"] for c in err.value.details["causes"]]
    assert fields == ["metadata.name", "spec.containers"]


def test_namespace_delete_copes_with_dependents_collected_on_the_way() -> None:
    store = Store()
    store.create(r.NAMESPACES, {"metadata": {"name": "x"}})
    owner = store.create(r.PODS, pod("a", ns="x"))
    dependent = pod("b", ns="x")
    dependent["metadata"]["ownerReferences"] = [
        {"apiVersion": "v1", "kind": "Pod", "name": "a", "uid": owner["metadata"]["uid"]}
    ]
    store.create(r.PODS, dependent)
    with store.watch(r.PODS, "x", since=store.resource_version) as w:
        store.delete(r.NAMESPACES, None, "x")
        assert sorted(next_event(w).object["metadata"]["name"] for _ in range(2)) == ["a", "b"]
    assert store.list(r.PODS, "x")[0] == []
