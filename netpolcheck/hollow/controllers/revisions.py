"""ControllerRevisions for DaemonSets, as `kubectl rollout history` / `rollout undo` read them.

One revision per distinct pod template, named `<ds>-<template hash>`, owned by the DaemonSet, with
`data` = the strategic merge patch that restores that template and `revision` = its order of use.
"""

from __future__ import annotations

import contextlib
from typing import Any

from netpolcheck.hollow.api import resources as r
from netpolcheck.hollow.api.errors import AlreadyExists, NotFound
from netpolcheck.hollow.api.store import Store, deep_copy

HASH_LABEL = "controller-revision-hash"


def owner_reference(ds: dict[str, Any]) -> dict[str, Any]:
    """The controller reference a DaemonSet puts on what it creates (pods, ControllerRevisions)."""
    meta = ds["metadata"]
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _owned(store: Store, ds: dict[str, Any]) -> list[dict[str, Any]]:
    items, _ = store.list(r.CONTROLLERREVISIONS, ds["metadata"]["namespace"])
    uid = ds["metadata"]["uid"]
    return [
        c for c in items if any(ref.get("uid") == uid for ref in c["metadata"].get("ownerReferences") or [])
    ]


def ensure_revision(store: Store, ds: dict[str, Any], template_hash: str) -> int:
    """Make the current template the newest revision; returns its revision number."""
    meta = ds["metadata"]
    template = deep_copy((ds.get("spec") or {}).get("template") or {})
    revisions = _owned(store, ds)
    newest = max((int(c.get("revision") or 0) for c in revisions), default=0)
    name = f"{meta['name']}-{template_hash}"
    current = next((c for c in revisions if c["metadata"]["name"] == name), None)
    if current is not None:
        if int(current.get("revision") or 0) == newest:
            return newest
        current["revision"] = newest + 1  # an older template back in use becomes the newest revision
        store.replace(r.CONTROLLERREVISIONS, current)
        return newest + 1
    labels = dict((template.get("metadata") or {}).get("labels") or {})
    labels[HASH_LABEL] = template_hash
    template["$patch"] = "replace"
    # AlreadyExists only if another writer made it meanwhile: the next reconcile adopts its number.
    with contextlib.suppress(AlreadyExists):
        store.create(
            r.CONTROLLERREVISIONS,
            {
                "metadata": {
                    "name": name,
                    "namespace": meta["namespace"],
                    "labels": labels,
                    "ownerReferences": [owner_reference(ds)],
                },
                "data": {"spec": {"template": template}},
                "revision": newest + 1,
            },
        )
    return newest + 1


def prune_revisions(store: Store, ds: dict[str, Any], in_use: set[str]) -> None:
    """Keep `revisionHistoryLimit` (default 10) unused revisions besides those pods still use."""
    limit = int((ds.get("spec") or {}).get("revisionHistoryLimit", 10))
    unused = sorted(
        (c for c in _owned(store, ds) if c["metadata"]["labels"].get(HASH_LABEL) not in in_use),
        key=lambda c: int(c.get("revision") or 0),
    )
    for old in unused[: max(0, len(unused) - limit)]:
        with contextlib.suppress(NotFound):
            store.delete(r.CONTROLLERREVISIONS, old["metadata"]["namespace"], old["metadata"]["name"])
