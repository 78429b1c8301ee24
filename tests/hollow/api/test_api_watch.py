"""List + watch as client-go reflectors (and weave-npc 2.8.1) use them, over real HTTPS."""

from __future__ import annotations

import http.client
import json
import ssl
import threading
import time
import urllib.parse
from typing import Any

import pytest
from kubernetes import client, watch

from netpolcheck.hollow.api import rest
from tests.hollow.api.apikit import Cluster, pod_body
from tests.hollow.kubetyped import as_body, meta_of, present


class WatchStream:
    """One watch request; `events()` yields decoded events until the server ends the stream."""

    def __init__(self, cluster: Cluster, path: str, **params: Any) -> None:
        parsed = urllib.parse.urlsplit(cluster.url)
        ctx = ssl.create_default_context(cadata=cluster.ca_pem.decode())
        self.conn = http.client.HTTPSConnection(
            present(parsed.hostname, "hostname"), parsed.port, context=ctx, timeout=15
        )
        query = urllib.parse.urlencode({"watch": "true", **params})
        self.conn.request("GET", f"{path}?{query}", headers={"Authorization": f"Bearer {cluster.token}"})
        self.response = self.conn.getresponse()

    def events(self) -> Any:
        while True:
            line = self.response.readline()
            if not line:
                return
            yield json.loads(line)

    def close(self) -> None:
        self.conn.close()


def get_json(cluster: Cluster, path: str) -> Any:
    parsed = urllib.parse.urlsplit(cluster.url)
    ctx = ssl.create_default_context(cadata=cluster.ca_pem.decode())
    conn = http.client.HTTPSConnection(
        present(parsed.hostname, "hostname"), parsed.port, context=ctx, timeout=10
    )
    conn.request("GET", path, headers={"Authorization": f"Bearer {cluster.token}"})
    body = json.loads(conn.getresponse().read())
    conn.close()
    return body


def test_reflector_sees_every_change_in_order_and_resumes_after_dropped_watches(
    cluster: Cluster, core: client.CoreV1Api
) -> None:
    core.create_namespaced_pod("default", as_body(client.V1Pod, pod_body("seed")))
    listed = get_json(cluster, "/api/v1/pods?limit=500&resourceVersion=0")
    assert [p["metadata"]["name"] for p in listed["items"]] == ["seed"]
    last_rv = listed["metadata"]["resourceVersion"]

    expected: list[tuple[str, str, str]] = []
    producer_done = threading.Event()

    def produce() -> None:
        writer = client.CoreV1Api(cluster.new_api_client())
        for i in range(30):
            name = f"p{i}"
            made = writer.create_namespaced_pod("default", as_body(client.V1Pod, pod_body(name)))
            expected.append(("ADDED", name, present(meta_of(made).resource_version, "resourceVersion")))
            changed = writer.patch_namespaced_pod(name, "default", {"metadata": {"labels": {"i": str(i)}}})
            expected.append(("MODIFIED", name, present(meta_of(changed).resource_version, "resourceVersion")))
            if i % 3 == 0:
                gone = writer.delete_namespaced_pod(name, "default")
                expected.append(("DELETED", name, present(meta_of(gone).resource_version, "resourceVersion")))
            time.sleep(0.05)  # spread the writes over several watch connections (pacing, not a sync)
        producer_done.set()

    producer = threading.Thread(target=produce)
    producer.start()
    seen: list[tuple[str, str, str]] = []
    connections, dropped = 0, False
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (producer_done.is_set() and len(seen) >= len(expected)):
        stream = WatchStream(
            cluster, "/api/v1/pods", allowWatchBookmarks="true", resourceVersion=last_rv, timeoutSeconds="1"
        )
        connections += 1
        for event in stream.events():
            rv = event["object"]["metadata"]["resourceVersion"]
            if event["type"] != "BOOKMARK":
                seen.append((event["type"], event["object"]["metadata"]["name"], rv))
            last_rv = rv
            if not dropped and len(seen) == 10:
                dropped = True  # the client drops this watch mid-stream and resumes from last_rv
                break
        stream.close()
    producer.join(10)
    assert producer_done.is_set()
    assert dropped and connections >= 3, f"only {connections} watch connections"
    assert seen == expected


def test_watch_from_a_compacted_version_gets_one_410_error_event(
    cluster: Cluster, core: client.CoreV1Api
) -> None:
    old = cluster.store.resource_version
    core.create_namespaced_pod("default", as_body(client.V1Pod, pod_body("a")))
    cluster.store.compact()
    stream = WatchStream(cluster, "/api/v1/namespaces/default/pods", resourceVersion=str(old))
    assert stream.response.status == 200
    events = list(stream.events())
    stream.close()
    assert len(events) == 1 and events[0]["type"] == "ERROR"
    status = events[0]["object"]
    assert status["kind"] == "Status" and status["code"] == 410 and status["reason"] == "Expired"


def test_watch_from_a_version_the_store_never_issued_gets_a_504_error_event(cluster: Cluster) -> None:
    ahead = cluster.store.resource_version + 1000
    stream = WatchStream(cluster, "/api/v1/pods", resourceVersion=str(ahead))
    events = list(stream.events())
    stream.close()
    assert [e["type"] for e in events] == ["ERROR"]
    assert events[0]["object"]["code"] == 504
    assert events[0]["object"]["details"]["causes"][0]["reason"] == "ResourceVersionTooLarge"


def test_watch_without_version_starts_with_synthetic_added_and_honours_timeout(
    cluster: Cluster, core: client.CoreV1Api
) -> None:
    core.create_namespaced_pod("default", as_body(client.V1Pod, pod_body("a", {"app": "x"})))
    core.create_namespaced_pod("default", as_body(client.V1Pod, pod_body("b", {"app": "y"})))
    started = time.monotonic()
    stream = WatchStream(
        cluster,
        "/api/v1/namespaces/default/pods",
        resourceVersion="0",
        labelSelector="app=x",
        timeoutSeconds="1",
    )
    events = list(stream.events())
    elapsed = time.monotonic() - started
    stream.close()
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "a")]
    assert 0.9 <= elapsed < 3, f"a 1 s watch lasted {elapsed:.2f} s"


def test_bookmarks_when_allowed_and_initial_events_end_marker(
    cluster: Cluster, core: client.CoreV1Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rest, "BOOKMARK_INTERVAL_SECONDS", 0.3)
    made = core.create_namespaced_pod("default", as_body(client.V1Pod, pod_body("a")))
    stream = WatchStream(
        cluster,
        "/api/v1/namespaces/default/pods",
        resourceVersion=meta_of(made).resource_version,
        allowWatchBookmarks="true",
        timeoutSeconds="1",
    )
    kinds = [e["type"] for e in stream.events()]
    stream.close()
    assert kinds and set(kinds) == {"BOOKMARK"}
    stream = WatchStream(
        cluster,
        "/api/v1/namespaces/default/pods",
        sendInitialEvents="true",
        resourceVersionMatch="NotOlderThan",
        allowWatchBookmarks="true",
        timeoutSeconds="1",
    )
    events = list(stream.events())
    stream.close()
    assert events[0]["type"] == "ADDED" and events[1]["type"] == "BOOKMARK"
    assert events[1]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}


def test_server_stop_ends_open_watches_cleanly(cluster: Cluster) -> None:
    stream = WatchStream(cluster, "/api/v1/pods", resourceVersion=str(cluster.store.resource_version))
    result: dict[str, Any] = {}

    def read() -> None:
        try:
            result["events"] = list(stream.events())
        except Exception as exc:  # an unterminated chunked body would raise IncompleteRead here
            result["error"] = exc

    reader = threading.Thread(target=read)
    reader.start()
    started = time.monotonic()
    cluster.server.stop()
    reader.join(5)
    stream.close()
    assert not reader.is_alive() and result == {"events": []}
    assert time.monotonic() - started < 3


def test_python_client_watch_stream(cluster: Cluster, core: client.CoreV1Api) -> None:
    core.create_namespace(as_body(client.V1Namespace, {"metadata": {"name": "w"}}))
    w = watch.Watch()
    seen = []

    def create_later() -> None:
        writer = client.CoreV1Api(cluster.new_api_client())
        writer.create_namespaced_pod("w", as_body(client.V1Pod, pod_body("late")))

    creator = threading.Timer(0.3, create_later)
    creator.start()
    for event in w.stream(core.list_namespaced_pod, "w", timeout_seconds=3):
        seen.append((event["type"], event["object"].metadata.name))
        if len(seen) == 1:
            w.stop()
    creator.join()
    assert seen == [("ADDED", "late")]


def test_a_watch_ends_when_its_client_leaves(cluster: Cluster) -> None:
    stream = WatchStream(
        cluster, "/api/v1/pods", resourceVersion=str(cluster.store.resource_version), timeoutSeconds="600"
    )
    assert stream.response.status == 200 and cluster.store.active_watches == 1
    stream.close()
    deadline = time.monotonic() + 3
    while cluster.store.active_watches and time.monotonic() < deadline:
        time.sleep(0.05)  # polling the store's watch count, bounded by the deadline
    assert cluster.store.active_watches == 0, "the server kept an idle watch of a departed client"
