"""Applies watch events to the World, including the event-level fault switches."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

from netpolcheck.npc.kubewatch import Event
from netpolcheck.npc.world import World, obj_key

Logger = Callable[[str], None]


class WorldStore:
    def __init__(self, faults: frozenset[str], log: Logger) -> None:
        self.world = World()
        self.faults = faults
        self.log = log

    def _table(self, kind: str) -> dict[Any, dict[str, Any]]:
        if kind == "Namespace":
            return self.world.namespaces  # keyed by name
        return self.world.pods if kind == "Pod" else self.world.policies

    def _key(self, kind: str, obj: dict[str, Any]) -> Any:
        ns, name = obj_key(obj)
        return name if kind == "Namespace" else (ns, name)

    def apply(self, event: Event) -> bool:
        """Update the world; True if anything changed."""
        if event.type == "SYNC":
            return self._resync(event.kind, event.objects)
        obj = event.objects[0]
        if event.type == "DELETED":
            return self._delete(event.kind, obj)
        return self._put(event.kind, obj)

    def _resync(self, kind: str, objects: tuple[dict[str, Any], ...]) -> bool:
        table = self._table(kind)
        fresh = {self._key(kind, o): o for o in objects}
        changed = False
        for key in [k for k in table if k not in fresh]:
            changed |= self._delete(kind, table[key])
        for obj in objects:
            changed |= self._put(kind, obj)
        return changed

    def _put(self, kind: str, obj: dict[str, Any]) -> bool:
        table = self._table(kind)
        key = self._key(kind, obj)
        old = table.get(key)
        if old is not None and _same(old, obj):
            return False
        new = copy.deepcopy(obj)
        if old is not None:
            ignore_labels = (kind == "Pod" and "label-update-ignored" in self.faults) or (
                kind == "Namespace" and "namespace-label-update-ignored" in self.faults
            )
            if ignore_labels:
                new.setdefault("metadata", {})["labels"] = (old.get("metadata") or {}).get("labels")
        table[key] = new
        verb = "Update" if old is not None else "Add"
        self.log(f"EVENT {verb}{kind} {_brief(new)}")
        return True

    def _delete(self, kind: str, obj: dict[str, Any]) -> bool:
        table = self._table(kind)
        key = self._key(kind, obj)
        if key not in table:
            return False
        self.log(f"EVENT Delete{kind} {_brief(obj)}")
        if (kind == "Pod" and "stale-pod-ip" in self.faults) or (
            kind == "NetworkPolicy" and "policy-delete-ignored" in self.faults
        ):
            return False
        del table[key]
        return True


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    def strip(o: dict[str, Any]) -> dict[str, Any]:
        meta = {
            k: v
            for k, v in (o.get("metadata") or {}).items()
            if k not in ("resourceVersion", "managedFields", "generation")
        }
        return {**o, "metadata": meta}

    return strip(a) == strip(b)


def _brief(obj: dict[str, Any]) -> str:
    return json.dumps(
        {k: obj.get(k) for k in ("metadata", "spec") if k in obj}, separators=(",", ":"), sort_keys=True
    )
