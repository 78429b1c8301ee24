"""Graceful pod deletion, as a real API server and kubelet do it.

Deleting a pod that a hollow kubelet runs does not remove the object: it gets
`metadata.deletionTimestamp` (a MODIFIED event; kubectl shows it as Terminating) and stays visible
until the kubelet has stopped its processes and removed its network namespace; then the kubelet
calls `remove_terminated` and the object disappears (DELETED). So a client that waits for the
object to vanish can trust that nothing of the pod is left. Pods no kubelet runs (unscheduled, or
bound to a node that is not ours) are removed at once, as before.

This subclasses the API engineer's `Store` because the store has no finalizers or graceful deletion
of its own (docs/hollow-internals.md: "delete removes at once"); it uses the store's lock, object map
and commit step, which is the only place a deletionTimestamp can be set.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

from netpolcheck.hollow.api.errors import NotFound
from netpolcheck.hollow.api.resources import PODS, Resource
from netpolcheck.hollow.api.store import Store, deep_copy

# How long a pod may take to stop, as the object reports it (the kubelet's SIGTERM grace is 2 s).
GRACE_PERIOD_SECONDS = 2

# Does a kubelet run this pod (so it will call remove_terminated once the pod is stopped)?
RunsPod = Callable[[dict[str, Any]], bool]


def terminating(pod: dict[str, Any]) -> bool:
    return bool((pod.get("metadata") or {}).get("deletionTimestamp"))


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class GracefulPodStore(Store):
    """A Store whose pod deletion waits for the kubelet (see the module docstring)."""

    def __init__(self, runs_pod: RunsPod | None = None, **kwargs: Any) -> None:
        # set later by the daemon (the kubelet is built after the store); None: delete at once
        self.runs_pod = runs_pod
        super().__init__(**kwargs)

    def delete(self, res: Resource, namespace: str | None, name: str) -> dict[str, Any]:
        if res.key != PODS.key:
            return super().delete(res, namespace, name)
        with self._lock:
            key = (self._ns(res, namespace), name)
            current = self._objects[res.key].get(key)
            if current is None or self.runs_pod is None or not self.runs_pod(current):
                return super().delete(res, namespace, name)  # NotFound, or nobody to wait for
            if terminating(current):
                return deep_copy(current)  # already on its way out: deleting again changes nothing
            marked = deep_copy(current)
            marked["metadata"]["deletionTimestamp"] = _now()
            marked["metadata"]["deletionGracePeriodSeconds"] = GRACE_PERIOD_SECONDS
            self._commit(res, key, "MODIFIED", marked, current)
            return deep_copy(marked)

    def remove_terminated(self, namespace: str, name: str, uid: str) -> bool:
        """The kubelet has stopped pod `uid`: remove its object now. False if it is already gone or
        the name now belongs to another pod."""
        with self._lock:
            current = self._objects[PODS.key].get((namespace, name))
            if current is None or current["metadata"].get("uid") != uid:
                return False
            try:
                super().delete(PODS, namespace, name)
            except NotFound:
                return False
            return True
