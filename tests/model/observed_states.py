"""Convert the states weave-npc 2.8.1 was observed with (Kubernetes object shapes) into STATE documents."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

# The observations of weave-npc 2.8.1 (docs/weave-facts.md#observed).
OBSERVED = Path(__file__).resolve().parents[1] / "data" / "observed-2.8.1"


def load(path: Path) -> Any:
    if path.suffix == ".gz":
        return json.loads(gzip.decompress(path.read_bytes()))
    return json.loads(path.read_text(encoding="utf-8"))


def _pod(obj: dict[str, Any]) -> dict[str, Any] | None:
    meta, spec, status = obj["metadata"], obj.get("spec", {}), obj.get("status", {})
    if not status.get("podIP") or status.get("phase") in ("Succeeded", "Failed"):
        return None  # weave-npc only uses pods that have an IP
    ports = [
        {k: p[k] for k in ("name", "containerPort", "protocol") if k in p}
        for c in spec.get("containers", [])
        for p in c.get("ports", [])
    ]
    return {
        "namespace": meta["namespace"],
        "name": meta["name"],
        "labels": meta.get("labels", {}),
        "ip": status["podIP"],
        "node": spec.get("nodeName"),
        "hostNetwork": spec.get("hostNetwork", False),
        "ports": ports,
    }


def to_state(observed: dict[str, Any], cells: list[dict[str, Any]]) -> dict[str, Any]:
    """A STATE for `observed` (the objects served to weave-npc), probing what `cells` probed."""
    namespaces = [
        {
            "name": n["metadata"]["name"],
            "labels": n["metadata"].get("labels", {}),
            "annotations": n["metadata"].get("annotations", {}),
        }
        for n in observed["namespaces"]
    ]
    pods = [p for p in (_pod(o) for o in observed["pods"]) if p is not None]
    policies = [
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", **p} for p in observed["policies"]
    ]
    probes = sorted({(c["protocol"], c["port"]) for c in cells})
    return {
        "namespaces": namespaces,
        "pods": pods,
        "policies": policies,
        "probes": [{"port": port, "protocol": proto} for proto, port in probes],
    }


def scenarios() -> list[str]:
    return sorted(p.name for p in OBSERVED.iterdir() if (p / "state.json").exists())
