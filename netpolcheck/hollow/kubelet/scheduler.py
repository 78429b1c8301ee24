"""Scheduling: bind each unscheduled pod to the node with the fewest pods, one binding at a time."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable

from netpolcheck.hollow.api.errors import ApiError
from netpolcheck.hollow.api.resources import PODS
from netpolcheck.hollow.api.store import Store


class Scheduler:
    """`running(node_index)` counts the pods the kubelet runs there; bindings not yet seen as pods by
    the kubelet are counted here, so a burst of pods spreads evenly."""

    def __init__(self, store: Store, node_names: list[str], running: Callable[[int], int]) -> None:
        self.store = store
        self.node_names = node_names
        self._running = running
        self._seen: set[str] = set()  # uids already handed to a worker
        self._pending: dict[str, str] = {}  # pod uid -> node it was just bound to
        self._lock = threading.Lock()  # guards _seen and _pending
        self._bind_lock = threading.Lock()  # one binding at a time

    def wants(self, uid: str) -> bool:
        """First sight of an unscheduled pod: True once, so it is scheduled once."""
        with self._lock:
            if uid in self._seen:
                return False
            self._seen.add(uid)
            return True

    def forget(self, uid: str) -> None:
        """The pod reached its node (or went away): stop counting it as pending."""
        with self._lock:
            self._pending.pop(uid, None)

    def pod_count(self, node_index: int) -> int:
        """Pods on the node, counting those just bound there whose start has not begun."""
        name = self.node_names[node_index - 1]
        with self._lock:
            pending = sum(1 for n in self._pending.values() if n == name)
        return self._running(node_index) + pending

    def schedule(self, namespace: str, name: str, uid: str) -> None:
        with self._bind_lock:
            counts = [self.pod_count(k) for k in range(1, len(self.node_names) + 1)]
            node = self.node_names[counts.index(min(counts))]
            with self._lock:
                self._pending[uid] = node
            bound = False
            with contextlib.suppress(ApiError):  # deleted or replaced meanwhile: nothing to bind
                current = self.store.get(PODS, namespace, name)
                if current["metadata"]["uid"] == uid and not current["spec"].get("nodeName"):
                    self.store.merge_patch(PODS, namespace, name, {"spec": {"nodeName": node}})
                    bound = True
            if not bound:
                self.forget(uid)
