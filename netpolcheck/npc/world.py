"""What the controller knows of the cluster: namespaces, pods and policies as Kubernetes dicts.

Insertion order is kept: weave-npc appends per-namespace rules in the order it first saw namespaces.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Obj = dict[str, Any]
Key = tuple[str, str]  # (namespace, name)


def obj_key(obj: Mapping[str, Any]) -> Key:
    meta = obj.get("metadata") or {}
    return (str(meta.get("namespace") or ""), str(meta.get("name") or ""))


def labels_of(obj: Mapping[str, Any] | None) -> dict[str, str]:
    return dict(((obj or {}).get("metadata") or {}).get("labels") or {})


def pod_ip(pod: Mapping[str, Any]) -> str | None:
    """The pod's IP if weave-npc would use it (weave's `hasIP`): running-ish, has an IP, not hostNetwork."""
    status = pod.get("status") or {}
    if status.get("phase") in ("Succeeded", "Failed"):
        return None
    if (pod.get("spec") or {}).get("hostNetwork"):
        return None
    return status.get("podIP") or None


def pod_comment(pod: Mapping[str, Any]) -> str:
    ns, name = obj_key(pod)
    return f"namespace: {ns}, pod: {name}"


@dataclass
class World:
    namespaces: dict[str, Obj] = field(default_factory=dict)
    pods: dict[Key, Obj] = field(default_factory=dict)
    policies: dict[Key, Obj] = field(default_factory=dict)

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> World:
        """From an observed `state.json` (lists of namespace, pod and policy objects)."""
        world = cls()
        for ns in state.get("namespaces", []):
            world.namespaces[obj_key(ns)[1]] = ns
        for pod in state.get("pods", []):
            world.pods[obj_key(pod)] = pod
        for pol in state.get("policies", []):
            world.policies[obj_key(pol)] = pol
        return world

    @classmethod
    def load(cls, path: Path) -> World:
        return cls.from_state(json.loads(path.read_text()))

    def namespace_names(self) -> list[str]:
        """Every namespace weave-npc keeps state for: seen as an object, or owning a pod or policy."""
        names = dict.fromkeys(self.namespaces)
        for ns, _ in list(self.pods) + list(self.policies):
            names.setdefault(ns, None)
        return list(names)
