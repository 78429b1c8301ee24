"""DaemonSet controller over the Store: one pod per eligible node, rolling updates node by node.

RollingUpdate (maxUnavailable, default 1; maxSurge treated as 0): when the pod template changes,
old pods are deleted only while the number of eligible nodes without a Ready pod stays within
maxUnavailable, so with maxUnavailable 1 the new pod on one node must be Ready (status written by
the kubelet) before the next node's old pod goes. OnDelete: old pods stay until someone deletes them.
Status carries the fields `kubectl rollout status` reads. Pods are owned by the DaemonSet, so the
store's garbage collection deletes them with it.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
import math
import queue
import threading
from collections import defaultdict
from typing import Any

from netpolcheck.hollow import clock, events
from netpolcheck.hollow.api import resources as r
from netpolcheck.hollow.api.errors import ApiError, Conflict, NotFound
from netpolcheck.hollow.api.store import Store, WatchEvent, deep_copy
from netpolcheck.hollow.controllers.revisions import ensure_revision, owner_reference, prune_revisions

log = logging.getLogger(__name__)

HASH_LABEL = "controller-revision-hash"
GENERATION_LABEL = "pod-template-generation"
RESYNC_SECONDS = 1.0
# Taints every daemon pod tolerates (the real controller adds these tolerations to its pods).
AUTO_TOLERATED = frozenset(
    {
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable",
        "node.kubernetes.io/disk-pressure",
        "node.kubernetes.io/memory-pressure",
        "node.kubernetes.io/pid-pressure",
        "node.kubernetes.io/unschedulable",
    }
)
_STOP = ("", "")


def template_hash(template: dict[str, Any]) -> str:
    """A stable short hash of the pod template (what `controller-revision-hash` carries)."""
    digest = hashlib.sha256(json.dumps(template, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    return digest[:10]


def pod_ready(pod: dict[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _ready_since(pod: dict[str, Any]) -> datetime.datetime | None:
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready" and c.get("status") == "True":
            stamp = c.get("lastTransitionTime")
            if not stamp:
                return datetime.datetime.min.replace(tzinfo=datetime.UTC)
            return clock.parse(stamp)
    return None


def pod_available(pod: dict[str, Any], min_ready_seconds: int, now: datetime.datetime) -> bool:
    since = _ready_since(pod)
    if since is None:
        return False
    return min_ready_seconds <= 0 or (now - since).total_seconds() >= min_ready_seconds


def _tolerates(tolerations: list[dict[str, Any]], taint: dict[str, Any]) -> bool:
    for t in tolerations:
        if t.get("effect") and t.get("effect") != taint.get("effect"):
            continue
        if t.get("operator") == "Exists" and (not t.get("key") or t.get("key") == taint.get("key")):
            return True
        if t.get("key") == taint.get("key") and t.get("value", "") == taint.get("value", ""):
            return True
    return False


def node_eligible(node: dict[str, Any], pod_spec: dict[str, Any]) -> bool:
    """nodeSelector must match; NoSchedule/NoExecute taints must be tolerated (loosely, as documented)."""
    labels = (node.get("metadata") or {}).get("labels") or {}
    for key, value in (pod_spec.get("nodeSelector") or {}).items():
        if labels.get(key) != value:
            return False
    # No check of spec.unschedulable: the real controller tolerates it for daemon pods (they run on
    # cordoned nodes), as it does the not-ready/unreachable/pressure taints it adds itself.
    tolerations = pod_spec.get("tolerations") or []
    for taint in (node.get("spec") or {}).get("taints") or []:
        if taint.get("key") in AUTO_TOLERATED:
            continue
        if taint.get("effect") in ("NoSchedule", "NoExecute") and not _tolerates(tolerations, taint):
            return False
    return True


def max_unavailable(ds: dict[str, Any], desired: int) -> int:
    rolling = ((ds.get("spec") or {}).get("updateStrategy") or {}).get("rollingUpdate") or {}
    value = rolling.get("maxUnavailable", 1)
    if isinstance(value, str) and value.endswith("%"):
        return max(1, math.ceil(desired * int(value[:-1]) / 100)) if desired else 1
    return max(1, int(value))


class DaemonSetController:
    """Reconciles every DaemonSet on store events and once per RESYNC_SECONDS."""

    def __init__(self, store: Store, resync_seconds: float = RESYNC_SECONDS) -> None:
        self.store = store
        self.resync_seconds = resync_seconds
        self._queue: queue.Queue[tuple[str, str]] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._unsubscribe: Any = None
        self._stopping = threading.Event()

    def start(self) -> None:
        self._unsubscribe = self.store.subscribe(self._on_event)
        self._thread = threading.Thread(target=self._run, name="daemonset-controller", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        if self._unsubscribe is not None:
            self._unsubscribe()
        self._queue.put(_STOP)
        if self._thread is not None:
            self._thread.join(timeout)

    # ---- event intake ------------------------------------------------------------------------

    def _on_event(self, event: WatchEvent) -> None:
        res, meta = event.resource, event.object.get("metadata") or {}
        if res is r.DAEMONSETS:
            self._queue.put((meta.get("namespace", ""), meta.get("name", "")))
        elif res is r.PODS:
            for ref in meta.get("ownerReferences") or []:
                if ref.get("kind") == "DaemonSet" and ref.get("controller"):
                    self._queue.put((meta.get("namespace", ""), ref.get("name", "")))
        elif res is r.NODES:
            self._queue.put(("*", "*"))

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                first = self._queue.get(timeout=self.resync_seconds)
            except queue.Empty:
                first = ("*", "*")
            keys = {first}
            while True:  # coalesce a burst of events into one pass
                try:
                    keys.add(self._queue.get_nowait())
                except queue.Empty:
                    break
            if _STOP in keys or self._stopping.is_set():
                return
            if ("*", "*") in keys:
                items, _ = self.store.list(r.DAEMONSETS)
                keys = {(d["metadata"]["namespace"], d["metadata"]["name"]) for d in items}
            for namespace, name in sorted(keys):
                try:
                    self.reconcile(namespace, name)
                except Conflict:
                    self._queue.put((namespace, name))  # raced with another writer: go again
                except ApiError as exc:
                    log.warning("daemonset %s/%s: %s", namespace, name, exc.message)
                except Exception:
                    log.exception("daemonset %s/%s: reconcile failed", namespace, name)

    # ---- reconcile ---------------------------------------------------------------------------

    def reconcile(self, namespace: str, name: str) -> None:
        try:
            ds = self.store.get(r.DAEMONSETS, namespace, name)
        except NotFound:
            return  # its pods go with it (ownerReferences garbage collection in the store)
        spec = ds.get("spec") or {}
        template = spec.get("template") or {}
        current_hash = template_hash(template)
        uid = ds["metadata"]["uid"]
        nodes, _ = self.store.list(r.NODES)
        eligible = sorted(
            n["metadata"]["name"] for n in nodes if node_eligible(n, template.get("spec") or {})
        )
        pods, _ = self.store.list(r.PODS, namespace)
        owned = [
            p
            for p in pods
            if any(ref.get("uid") == uid for ref in p["metadata"].get("ownerReferences") or [])
        ]
        by_node: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for pod in owned:
            by_node[(pod.get("spec") or {}).get("nodeName", "")].append(pod)

        for node, node_pods in sorted(by_node.items()):
            if node not in eligible:
                for pod in node_pods:
                    self._delete_pod(ds, pod, "not eligible for this node any more")
                continue
            node_pods.sort(
                key=lambda p: (
                    p["metadata"].get("labels", {}).get(HASH_LABEL) != current_hash,
                    p["metadata"]["creationTimestamp"],
                )
            )
            for pod in node_pods[1:]:
                self._delete_pod(ds, pod, "more than one daemon pod on the node")
            if (node_pods[0].get("status") or {}).get("phase") == "Failed":
                self._delete_pod(ds, node_pods[0], "failed")
                node_pods[:] = []
            else:
                node_pods[:] = node_pods[:1]

        for node in eligible:
            if not by_node.get(node):
                by_node[node] = [self._create_pod(ds, node, current_hash)]

        ensure_revision(self.store, ds, current_hash)
        strategy = (spec.get("updateStrategy") or {}).get("type", "RollingUpdate")
        if strategy == "RollingUpdate":
            self._roll(ds, eligible, by_node, current_hash)
        in_use = {p["metadata"].get("labels", {}).get(HASH_LABEL, "") for ps in by_node.values() for p in ps}
        prune_revisions(self.store, ds, in_use | {current_hash})
        self._write_status(ds, eligible, by_node, current_hash)

    def _roll(
        self,
        ds: dict[str, Any],
        eligible: list[str],
        by_node: dict[str, list[dict[str, Any]]],
        current_hash: str,
    ) -> None:
        min_ready = int((ds.get("spec") or {}).get("minReadySeconds") or 0)
        now = clock.now()
        unavailable = [n for n in eligible if not any(pod_available(p, min_ready, now) for p in by_node[n])]
        budget = max_unavailable(ds, len(eligible)) - len(unavailable)
        old = [
            (n, p)
            for n in eligible
            for p in by_node[n]
            if p["metadata"].get("labels", {}).get(HASH_LABEL) != current_hash
        ]
        for node, pod in old:  # an old pod that is unavailable anyway costs nothing to replace
            if node in unavailable:
                self._delete_pod(ds, pod, "rolling update (old pod not available)")
                by_node[node] = []
        for node, pod in old:
            if node in unavailable:
                continue
            if budget <= 0:
                break
            self._delete_pod(ds, pod, "rolling update")
            by_node[node] = []
            budget -= 1

    def _create_pod(self, ds: dict[str, Any], node: str, current_hash: str) -> dict[str, Any]:
        meta = ds["metadata"]
        template = deep_copy((ds.get("spec") or {}).get("template") or {})
        pod_meta = template.get("metadata") or {}
        labels = dict(pod_meta.get("labels") or {})
        labels[HASH_LABEL] = current_hash
        labels[GENERATION_LABEL] = str(meta.get("generation", 1))
        pod_spec = template.get("spec") or {}
        pod_spec["nodeName"] = node
        pod = {
            "metadata": {
                "generateName": f"{meta['name']}-",
                "namespace": meta["namespace"],
                "labels": labels,
                "annotations": dict(pod_meta.get("annotations") or {}),
                "ownerReferences": [owner_reference(ds)],
            },
            "spec": pod_spec,
        }
        created = self.store.create(r.PODS, pod)
        self._event(ds, "SuccessfulCreate", f"Created pod: {created['metadata']['name']}")
        return created

    def _delete_pod(self, ds: dict[str, Any], pod: dict[str, Any], why: str) -> None:
        name = pod["metadata"]["name"]
        try:
            self.store.delete(r.PODS, pod["metadata"]["namespace"], name)
        except NotFound:
            return
        log.info("daemonset %s: deleted pod %s (%s)", ds["metadata"]["name"], name, why)
        self._event(ds, "SuccessfulDelete", f"Deleted pod: {name}")

    def _event(self, ds: dict[str, Any], reason: str, message: str) -> None:
        meta = ds["metadata"]
        involved = {
            "kind": "DaemonSet",
            "namespace": meta["namespace"],
            "name": meta["name"],
            "uid": meta["uid"],
            "apiVersion": "apps/v1",
            "resourceVersion": meta.get("resourceVersion"),
        }
        events.record(self.store, involved, reason, message, component="daemonset-controller")

    def _write_status(
        self,
        ds: dict[str, Any],
        eligible: list[str],
        by_node: dict[str, list[dict[str, Any]]],
        current_hash: str,
    ) -> None:
        min_ready = int((ds.get("spec") or {}).get("minReadySeconds") or 0)
        now = clock.now()
        pods = [p for n in eligible for p in by_node.get(n, [])]
        desired = len(eligible)
        available = sum(1 for p in pods if pod_available(p, min_ready, now))
        status = {
            "currentNumberScheduled": sum(1 for n in eligible if by_node.get(n)),
            "desiredNumberScheduled": desired,
            "numberMisscheduled": 0,
            "numberReady": sum(1 for p in pods if pod_ready(p)),
            "updatedNumberScheduled": sum(
                1 for p in pods if p["metadata"].get("labels", {}).get(HASH_LABEL) == current_hash
            ),
            "numberAvailable": available,
            "observedGeneration": ds["metadata"].get("generation", 1),
        }
        if desired - available > 0:
            status["numberUnavailable"] = desired - available
        if (ds.get("status") or {}) != status:
            ds["status"] = status
            self.store.replace_status(r.DAEMONSETS, ds)
