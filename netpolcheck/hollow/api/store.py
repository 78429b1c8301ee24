"""The in-memory object store behind the hollow API server (see docs/hollow-internals.md).

One global resourceVersion counter; every write gets the next value. A bounded history of
events lets a watch resume from any version still kept; older versions raise `Gone`.
Objects are deep-copied in and out, so callers never share state with the store.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import queue
import secrets
import threading
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from netpolcheck.hollow.api import admission, decoding
from netpolcheck.hollow.api.errors import AlreadyExists, BadRequest, Conflict, Gone, NotFound, not_found
from netpolcheck.hollow.api.resources import NAMESPACES, PODS, SERVICEACCOUNTS, STORED, Resource
from netpolcheck.hollow.api.selectors import compile_selectors

__all__ = [
    "Admission",
    "AlreadyExists",
    "Conflict",
    "Gone",
    "NotFound",
    "Resource",
    "Store",
    "Watch",
    "WatchEvent",
    "deep_copy",
    "merge_patch",
]

# Called before every write with (resource, new object, previous object or None); fills defaults
# in place and raises errors.Invalid for objects a real API server would reject.
Admission = Callable[[Resource, dict[str, Any], "dict[str, Any] | None"], None]

BOOTSTRAP_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
# The watch history is bounded by event count and by bytes (the JSON size of the states it holds),
# so large objects written repeatedly cannot grow it without limit. Evicted versions get Gone (410).
DEFAULT_HISTORY_LIMIT = 20000
DEFAULT_HISTORY_BYTES = 64 * 1024 * 1024
_SPEC_EXEMPT = {"metadata", "status", "apiVersion", "kind"}


def deep_copy(value: Any) -> Any:
    """Copy of a JSON-shaped value (faster than copy.deepcopy for dicts of lists of scalars)."""
    if isinstance(value, dict):
        return {k: deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [deep_copy(v) for v in value]
    return value


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: returns the patched copy of `target`."""
    if not isinstance(patch, dict):
        return deep_copy(patch)
    result = deep_copy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# Given an object being deleted, its grace period in seconds, or None to delete it at once.
DeletionGate = Callable[[Resource, dict[str, Any]], int | None]


def terminating(obj: Mapping[str, Any]) -> bool:
    """Marked for graceful deletion and not yet removed."""
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class WatchEvent:
    """One change. `object` is the state after it (the last state for DELETED); `old` the state before."""

    type: str  # ADDED | MODIFIED | DELETED
    resource: Resource
    object: dict[str, Any]
    old: dict[str, Any] | None
    rv: int
    size: int = 0  # bytes this event holds in the history (JSON size of object and old)


_CLOSED = object()


class Watch:
    """A stream of WatchEvents for one resource (optionally one namespace and selectors).

    `next(timeout)` returns the next event, or None on timeout or once the watch is closed
    (`closed` tells which). Events arrive in resourceVersion order with no gaps.
    """

    def __init__(
        self,
        store: Store,
        res: Resource,
        namespace: str | None,
        predicate: Callable[[Mapping[str, Any]], bool],
    ) -> None:
        self._store = store
        self.resource = res
        self._namespace = namespace
        self._predicate = predicate
        self._queue: queue.Queue[Any] = queue.Queue()
        self.closed = False
        self.initial_count = 0  # events queued before live ones (replayed or synthetic ADDED)
        self.start_rv = 0  # every event after this version is (or will be) delivered

    def _offer(self, event: WatchEvent) -> None:
        """Called by the store under its lock; translates selector transitions like the real server."""
        if event.resource.key != self.resource.key:
            return
        meta = event.object.get("metadata", {})
        if self._namespace is not None and meta.get("namespace") != self._namespace:
            return
        new_match = self._predicate(event.object)
        old_match = event.old is not None and self._predicate(event.old)
        kind = event.type
        if kind == "MODIFIED":
            if new_match and not old_match:
                kind = "ADDED"
            elif old_match and not new_match:
                kind = "DELETED"
            elif not new_match:
                return
        elif not new_match:
            return
        self._queue.put(WatchEvent(kind, event.resource, event.object, event.old, event.rv))

    def _end(self) -> None:
        self._queue.put(_CLOSED)

    def next(self, timeout: float | None = None) -> WatchEvent | None:
        if self.closed:
            return None
        try:
            item = self._queue.get(timeout=timeout)
        except queue.Empty:
            return None
        if item is _CLOSED:
            self.closed = True
            return None
        return WatchEvent(item.type, item.resource, deep_copy(item.object), deep_copy(item.old), item.rv)

    def close(self) -> None:
        self._store._unregister(self)
        self.closed = True
        self._queue.put(_CLOSED)

    def __enter__(self) -> Watch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Store:
    """Thread-safe object store; see docs/hollow-internals.md for the contract."""

    def __init__(
        self,
        history_limit: int = DEFAULT_HISTORY_LIMIT,
        admit: Admission | None = admission.admit,
        bootstrap: bool = True,
        history_bytes: int = DEFAULT_HISTORY_BYTES,
    ) -> None:
        self._lock = threading.RLock()
        self._objects: dict[tuple[str, str], dict[tuple[str, str], dict[str, Any]]] = {
            res.key: {} for res in STORED
        }
        self._rv = 0
        self._history: deque[WatchEvent] = deque()
        self._history_limit = history_limit
        self._history_bytes_limit = history_bytes
        self._history_bytes = 0
        self._sizes: dict[tuple[tuple[str, str], tuple[str, str]], int] = {}  # JSON size per stored object
        self._floor = 0  # events with rv <= floor are no longer in history
        self._watches: list[Watch] = []
        self._subscribers: dict[int, Callable[[WatchEvent], None]] = {}
        self._dispatch_queue: queue.Queue[Any] = queue.Queue()
        self._dispatcher: threading.Thread | None = None
        self._admit = admit
        self._closed = False
        # Graceful deletion, as a kubelet asks of a real API server: when the gate returns a grace
        # period for an object, `delete` only marks it (deletionTimestamp, a MODIFIED event: kubectl
        # shows Terminating) and it stays until its owner calls `finish_deletion`. None: delete now.
        self.deletion_gate: DeletionGate | None = None
        if bootstrap:
            for name in BOOTSTRAP_NAMESPACES:
                self.create(NAMESPACES, {"metadata": {"name": name}})

    # ---- reads -------------------------------------------------------------------------------

    @property
    def active_watches(self) -> int:
        """How many watches are open (the server closes a watch when its client leaves)."""
        with self._lock:
            return len(self._watches)

    @property
    def history_floor(self) -> int:
        """Watches and continue tokens from a version below this get Gone."""
        with self._lock:
            return self._floor

    @property
    def history_bytes(self) -> int:
        """Bytes the watch history holds now (never above the `history_bytes` budget)."""
        with self._lock:
            return self._history_bytes

    @property
    def history_length(self) -> int:
        with self._lock:
            return len(self._history)

    @property
    def resource_version(self) -> int:
        with self._lock:
            return self._rv

    def get(self, res: Resource, namespace: str | None, name: str) -> dict[str, Any]:
        with self._lock:
            obj = self._objects[res.key].get((self._ns(res, namespace), name))
            if obj is None:
                raise not_found(res.group, res.plural, name)
            return deep_copy(obj)

    def list(
        self,
        res: Resource,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> tuple[list[dict[str, Any]], int]:
        predicate = compile_selectors(label_selector, field_selector)
        with self._lock:
            items = [
                deep_copy(obj)
                for (ns, _), obj in sorted(self._objects[res.key].items())
                if (namespace is None or not res.namespaced or ns == namespace) and predicate(obj)
            ]
            return items, self._rv

    # ---- writes ------------------------------------------------------------------------------

    def create(self, res: Resource, obj: dict[str, Any]) -> dict[str, Any]:
        obj = deep_copy(obj)
        _conform(res, obj)
        meta = obj.setdefault("metadata", {})
        with self._lock:
            if not meta.get("name") and meta.get("generateName"):
                meta["name"] = meta["generateName"] + secrets.token_hex(3)[:5]
            name = meta.get("name") or ""
            if not name:
                raise BadRequest("name or generateName is required", {"kind": res.plural})
            if res.namespaced:
                namespace = meta.get("namespace") or "default"
                meta["namespace"] = namespace
                if ("", namespace) not in self._objects[NAMESPACES.key]:
                    raise not_found("", "namespaces", namespace)
            else:
                meta.pop("namespace", None)
            key = (meta.get("namespace", ""), name)
            if key in self._objects[res.key]:
                raise AlreadyExists(
                    f'{res.plural}{"." + res.group if res.group else ""} "{name}" already exists',
                    {"name": name, "group": res.group, "kind": res.plural},
                )
            obj["apiVersion"] = res.api_version
            obj["kind"] = res.kind
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = _now()
            meta["generation"] = 1
            meta.pop("deletionTimestamp", None)
            if self._admit is not None:
                self._admit(res, obj, None)
            self._commit(res, key, "ADDED", obj, None)
            created = deep_copy(obj)
        if res is NAMESPACES:
            self._ensure_default_serviceaccount(name)
        return created

    def replace(self, res: Resource, obj: dict[str, Any]) -> dict[str, Any]:
        return self._update(res, deep_copy(obj), status_only=False)

    def replace_status(self, res: Resource, obj: dict[str, Any]) -> dict[str, Any]:
        return self._update(res, deep_copy(obj), status_only=True)

    def replace_ephemeral(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Write a pod whose only change is `spec.ephemeralContainers`, validated by the caller (the
        `ephemeralcontainers` subresource: admission forbids that change through the pod itself)."""
        return self._update(PODS, deep_copy(obj), status_only=False, admit=False)

    def merge_patch(
        self, res: Resource, namespace: str | None, name: str, patch: dict[str, Any], status: bool = False
    ) -> dict[str, Any]:
        """Apply a JSON merge patch; with status=True it changes only `.status` (status subresource)."""
        with self._lock:
            current = self.get(res, namespace, name)
            patched = merge_patch(current, patch)
            patch_rv = (patch.get("metadata") or {}).get("resourceVersion")
            if not patch_rv:
                patched.setdefault("metadata", {})["resourceVersion"] = current["metadata"]["resourceVersion"]
            return self._update(res, patched, status_only=status)

    def delete(self, res: Resource, namespace: str | None, name: str) -> dict[str, Any]:
        """Delete now, or mark for graceful deletion (see `deletion_gate`); deleting a namespace also
        deletes its objects, and deleting an object its owned objects."""
        with self._lock:
            key = (self._ns(res, namespace), name)
            obj = self._objects[res.key].get(key)
            if obj is None:
                raise not_found(res.group, res.plural, name)
            grace = self.deletion_gate(res, obj) if self.deletion_gate is not None else None
            if grace is not None:
                return self._mark_terminating(res, key, obj, grace)
            return self._remove(res, key)

    def finish_deletion(self, res: Resource, namespace: str | None, name: str, uid: str) -> bool:
        """The owner of a gracefully deleted object is done with it: remove it now. False when it is
        already gone or the name now belongs to another object."""
        with self._lock:
            key = (self._ns(res, namespace), name)
            obj = self._objects[res.key].get(key)
            if obj is None or obj["metadata"].get("uid") != uid:
                return False
            self._remove(res, key)
            return True

    def _mark_terminating(
        self, res: Resource, key: tuple[str, str], obj: dict[str, Any], grace: int
    ) -> dict[str, Any]:
        if terminating(obj):
            return deep_copy(obj)  # already on its way out: deleting again changes nothing
        marked = deep_copy(obj)
        marked["metadata"]["deletionTimestamp"] = _now()
        marked["metadata"]["deletionGracePeriodSeconds"] = grace
        self._commit(res, key, "MODIFIED", marked, obj)
        return deep_copy(marked)

    def _remove(self, res: Resource, key: tuple[str, str]) -> dict[str, Any]:
        name = key[1]
        if res is NAMESPACES:
            for other in STORED:
                if other.namespaced:
                    for ns, child in sorted(self._objects[other.key]):
                        # an earlier deletion may already have collected this one (ownerReferences)
                        if ns == name and (ns, child) in self._objects[other.key]:
                            self.delete(other, ns, child)
        obj = self._objects[res.key][key]
        final = deep_copy(obj)
        final["metadata"].setdefault("deletionTimestamp", _now())
        if res is NAMESPACES:
            final.setdefault("status", {})["phase"] = "Terminating"
        self._commit(res, key, "DELETED", final, obj)
        self._collect_garbage(final["metadata"]["uid"])
        return deep_copy(final)

    # ---- watch -------------------------------------------------------------------------------

    def watch(
        self,
        res: Resource,
        namespace: str | None = None,
        since: int | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        initial: bool = False,
    ) -> Watch:
        """Events after `since` (None: from now). `initial=True` (only with since=None) first sends a
        synthetic ADDED for every matching object, as the real server does for resourceVersion 0 or unset.
        Raises Gone when `since` is older than the kept history."""
        predicate = compile_selectors(label_selector, field_selector)
        w = Watch(self, res, namespace, predicate)
        with self._lock:
            before = w._queue.qsize()
            if self._closed:
                w._end()
                return w
            if since is not None:
                if since < self._floor:
                    raise Gone(f"too old resource version: {since} ({self._floor + 1})")
                for event in self._history:
                    if event.rv > since:
                        w._offer(event)
            elif initial:
                for (ns, _), obj in sorted(self._objects[res.key].items()):
                    if namespace is None or ns == namespace:
                        rv = int(obj["metadata"]["resourceVersion"])
                        w._offer(WatchEvent("ADDED", res, obj, None, rv))
            w.initial_count = w._queue.qsize() - before
            w.start_rv = since if since is not None else self._rv
            self._watches.append(w)
        return w

    def subscribe(self, callback: Callable[[WatchEvent], None]) -> Callable[[], None]:
        """Call `callback` for every change, in order, on one dispatcher thread (not under the store
        lock, so callbacks may write to the store). Returns the unsubscribe function."""
        with self._lock:
            token = id(callback) ^ secrets.randbits(32)
            self._subscribers[token] = callback
            if self._dispatcher is None:
                self._dispatcher = threading.Thread(target=self._dispatch, name="store-dispatch", daemon=True)
                self._dispatcher.start()

        def unsubscribe() -> None:
            with self._lock:
                self._subscribers.pop(token, None)

        return unsubscribe

    def compact(self) -> int:
        """Forget all history (as etcd compaction does); returns the new floor. Watches from an older
        resourceVersion then get Gone."""
        with self._lock:
            self._history.clear()
            self._history_bytes = 0
            self._floor = self._rv
            return self._floor

    def close(self) -> None:
        """End every watch cleanly and stop the dispatcher."""
        with self._lock:
            self._closed = True
            watches, self._watches = self._watches, []
        for w in watches:
            w._end()
        self._dispatch_queue.put(_CLOSED)
        if self._dispatcher is not None and self._dispatcher is not threading.current_thread():
            self._dispatcher.join(timeout=5)

    # ---- internals ---------------------------------------------------------------------------

    @staticmethod
    def _ns(res: Resource, namespace: str | None) -> str:
        return (namespace or "default") if res.namespaced else ""

    def _update(
        self, res: Resource, obj: dict[str, Any], status_only: bool, admit: bool = True
    ) -> dict[str, Any]:
        _conform(res, obj)
        meta = obj.get("metadata") or {}
        name = meta.get("name") or ""
        with self._lock:
            key = (self._ns(res, meta.get("namespace")), name)
            old = self._objects[res.key].get(key)
            if old is None:
                raise not_found(res.group, res.plural, name)
            wanted_rv = meta.get("resourceVersion")
            if wanted_rv and str(wanted_rv) != old["metadata"]["resourceVersion"]:
                raise Conflict(
                    f"Operation cannot be fulfilled on {res.plural}{'.' + res.group if res.group else ''} "
                    f'"{name}": the object has been modified; please apply your changes to the latest '
                    "version and try again",
                    {"name": name, "group": res.group, "kind": res.plural},
                )
            if status_only:
                new = deep_copy(old)
                new["status"] = obj.get("status", {})
            else:
                new = obj
                new["apiVersion"] = res.api_version
                new["kind"] = res.kind
                new_meta = new.setdefault("metadata", {})
                for fixed in ("uid", "creationTimestamp", "namespace", "generation", "deletionTimestamp"):
                    if fixed in old["metadata"]:
                        new_meta[fixed] = old["metadata"][fixed]
                    else:
                        new_meta.pop(fixed, None)
                if res.has_status:
                    if "status" in old:
                        new["status"] = deep_copy(old["status"])
                    else:
                        new.pop("status", None)
                if self._admit is not None and admit:
                    self._admit(res, new, deep_copy(old))
                if _spec_of(new) != _spec_of(old):
                    new_meta["generation"] = old["metadata"].get("generation", 1) + 1
            new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
            if new == old:
                return deep_copy(old)  # a no-op write keeps the version, as the real server does
            self._commit(res, key, "MODIFIED", new, old)
            return deep_copy(new)

    def _commit(
        self, res: Resource, key: tuple[str, str], kind: str, obj: dict[str, Any], old: dict[str, Any] | None
    ) -> None:
        """Store (or remove) `obj` under a new resourceVersion and publish the event. Lock held."""
        self._rv += 1
        obj["metadata"]["resourceVersion"] = str(self._rv)
        size_key = (res.key, key)
        old_size = self._sizes.get(size_key, 0) if old is not None else 0
        size = len(json.dumps(obj, separators=(",", ":")))
        if kind == "DELETED":
            del self._objects[res.key][key]
            self._sizes.pop(size_key, None)
        else:
            self._objects[res.key][key] = obj
            self._sizes[size_key] = size
        # Stored objects are never changed in place (every write stores a new dict), so the event
        # shares them instead of holding copies; readers get copies from Watch.next and subscribers.
        event = WatchEvent(kind, res, obj, old, self._rv, size + old_size)
        self._history.append(event)
        self._history_bytes += event.size
        while self._history and (
            len(self._history) > self._history_limit or self._history_bytes > self._history_bytes_limit
        ):
            evicted = self._history.popleft()
            self._history_bytes -= evicted.size
            self._floor = evicted.rv
        for w in self._watches:
            w._offer(event)
        if self._subscribers:
            self._dispatch_queue.put(event)

    def _unregister(self, w: Watch) -> None:
        with self._lock:
            if w in self._watches:
                self._watches.remove(w)

    def _collect_garbage(self, owner_uid: str) -> None:
        for res in STORED:
            for key, obj in list(self._objects[res.key].items()):
                refs = obj["metadata"].get("ownerReferences") or []
                if any(ref.get("uid") == owner_uid for ref in refs) and key in self._objects[res.key]:
                    self.delete(res, key[0] or None, key[1])

    def _ensure_default_serviceaccount(self, namespace: str) -> None:
        with contextlib.suppress(AlreadyExists, NotFound):
            self.create(SERVICEACCOUNTS, {"metadata": {"name": "default", "namespace": namespace}})

    def _dispatch(self) -> None:
        while True:
            event = self._dispatch_queue.get()
            if event is _CLOSED:
                return
            with self._lock:
                callbacks = list(self._subscribers.values())
            for callback in callbacks:
                copy = WatchEvent(
                    event.type, event.resource, deep_copy(event.object), deep_copy(event.old), event.rv
                )
                try:
                    callback(copy)
                except Exception:  # a failing subscriber must not stop the others
                    import logging

                    logging.getLogger(__name__).exception("store subscriber failed on %s", event.type)


def _conform(res: Resource, obj: dict[str, Any]) -> None:
    """Decode-time type checks (400), before defaulting and validation (422)."""
    decoding.conform(res.kind, res.api_version.rpartition("/")[2], obj)


def _spec_of(obj: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in _SPEC_EXEMPT}
