"""Server-side printing (meta.k8s.io/v1 Table), which kubectl asks for on `get` and `get -w`."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

from netpolcheck.hollow.api import resources as r
from netpolcheck.hollow.api.resources import Resource

Row = Callable[[dict[str, Any]], list[Any]]


def wanted(accept: str) -> bool:
    return "as=Table" in accept


def age(timestamp: str | None) -> str:
    if not timestamp:
        return "<unknown>"
    created = datetime.datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)
    seconds = max(0, int((datetime.datetime.now(datetime.UTC) - created).total_seconds()))
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        return f"{minutes}m{seconds % 60}s" if seconds % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    return f"{hours // 24}d"


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    return obj.get("metadata") or {}


def _pod_row(obj: dict[str, Any]) -> list[Any]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    containers = spec.get("containers") or []
    statuses = status.get("containerStatuses") or []
    ready = sum(1 for s in statuses if s.get("ready"))
    restarts = sum(int(s.get("restartCount") or 0) for s in statuses)
    reason = status.get("reason") or status.get("phase") or "Unknown"
    for s in statuses:
        waiting = (s.get("state") or {}).get("waiting")
        if waiting and waiting.get("reason"):
            reason = waiting["reason"]
    if _meta(obj).get("deletionTimestamp"):
        reason = "Terminating"
    return [
        _meta(obj).get("name"),
        f"{ready}/{len(containers)}",
        reason,
        restarts,
        age(_meta(obj).get("creationTimestamp")),
        status.get("podIP") or "<none>",
        spec.get("nodeName") or "<none>",
        "<none>",
        "<none>",
    ]


def _ds_row(obj: dict[str, Any]) -> list[Any]:
    status = obj.get("status") or {}
    selector = ((obj.get("spec") or {}).get("template") or {}).get("spec", {}).get("nodeSelector") or {}
    return [
        _meta(obj).get("name"),
        status.get("desiredNumberScheduled", 0),
        status.get("currentNumberScheduled", 0),
        status.get("numberReady", 0),
        status.get("updatedNumberScheduled", 0),
        status.get("numberAvailable", 0),
        ",".join(f"{k}={v}" for k, v in selector.items()) or "<none>",
        age(_meta(obj).get("creationTimestamp")),
    ]


def _ns_row(obj: dict[str, Any]) -> list[Any]:
    return [
        _meta(obj).get("name"),
        (obj.get("status") or {}).get("phase", "Active"),
        age(_meta(obj).get("creationTimestamp")),
    ]


def _node_row(obj: dict[str, Any]) -> list[Any]:
    conditions = (obj.get("status") or {}).get("conditions") or []
    ready = next((c for c in conditions if c.get("type") == "Ready"), None)
    state = "Ready" if ready and ready.get("status") == "True" else "NotReady"
    version = ((obj.get("status") or {}).get("nodeInfo") or {}).get("kubeletVersion", "")
    return [_meta(obj).get("name"), state, "<none>", age(_meta(obj).get("creationTimestamp")), version]


def _netpol_row(obj: dict[str, Any]) -> list[Any]:
    selector = (obj.get("spec") or {}).get("podSelector") or {}
    labels = ",".join(f"{k}={v}" for k, v in (selector.get("matchLabels") or {}).items())
    if selector.get("matchExpressions"):
        labels = (labels + "," if labels else "") + "<expressions>"
    return [_meta(obj).get("name"), labels or "<none>", age(_meta(obj).get("creationTimestamp"))]


def _default_row(obj: dict[str, Any]) -> list[Any]:
    return [_meta(obj).get("name"), age(_meta(obj).get("creationTimestamp"))]


def _col(name: str, kind: str = "string", priority: int = 0, fmt: str = "") -> dict[str, Any]:
    return {"name": name, "type": kind, "format": fmt, "description": name, "priority": priority}


_NAME = _col("Name", fmt="name")
_AGE = _col("Age")
PRINTERS: dict[tuple[str, str], tuple[list[dict[str, Any]], Row]] = {
    r.PODS.key: (
        [
            _NAME,
            _col("Ready"),
            _col("Status"),
            _col("Restarts", "string"),
            _AGE,
            _col("IP", priority=1),
            _col("Node", priority=1),
            _col("Nominated Node", priority=1),
            _col("Readiness Gates", priority=1),
        ],
        _pod_row,
    ),
    r.DAEMONSETS.key: (
        [
            _NAME,
            _col("Desired", "integer"),
            _col("Current", "integer"),
            _col("Ready", "integer"),
            _col("Up-to-date", "integer"),
            _col("Available", "integer"),
            _col("Node Selector"),
            _AGE,
        ],
        _ds_row,
    ),
    r.NAMESPACES.key: ([_NAME, _col("Status"), _AGE], _ns_row),
    r.NODES.key: ([_NAME, _col("Status"), _col("Roles"), _AGE, _col("Version")], _node_row),
    r.NETWORKPOLICIES.key: ([_NAME, _col("Pod-Selector"), _AGE], _netpol_row),
}


def _partial(obj: dict[str, Any]) -> dict[str, Any]:
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata", {}),
    }


def table(
    res: Resource,
    items: list[dict[str, Any]],
    include_object: str | None,
    meta: dict[str, Any],
    for_watch: bool = False,
) -> dict[str, Any]:
    columns, row = PRINTERS.get(res.key, ([_NAME, _AGE], _default_row))
    include = include_object or "Metadata"
    rows = []
    for obj in items:
        entry: dict[str, Any] = {"cells": row(obj)}
        if include == "Object":
            entry["object"] = obj
        elif include == "Metadata":
            entry["object"] = _partial(obj)
        rows.append(entry)
    list_meta = {k: v for k, v in meta.items() if k in ("resourceVersion", "continue", "remainingItemCount")}
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "columnDefinitions": columns,
        "rows": rows,
    }
