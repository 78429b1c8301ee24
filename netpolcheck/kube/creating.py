"""Create, or replace what exists, from YAML, manifest files or dicts: each object in its own namespace."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from kubernetes.client.exceptions import ApiException

from netpolcheck.kube import fetching
from netpolcheck.kube.connection import KubeApi
from netpolcheck.kube.objects import Obj, ObjectRef, as_objects, path_of, with_namespace


def create(api: KubeApi, obj: Mapping[str, Any]) -> Obj:
    """POST one object to its namespace's collection; ApiException 409 if it exists."""
    ref = ObjectRef.of(obj)
    created: Obj = api.request("POST", path_of(api, ref, collection=True), body=dict(obj))
    return created


def create_or_replace(api: KubeApi, obj: Mapping[str, Any]) -> Obj:
    """Create the object, or PUT it over the existing one (keeping its resourceVersion).

    A replace the server refuses (422, e.g. an immutable field) raises ApiException: deciding to
    delete and recreate is the caller's choice (see weave.upgrade)."""
    ref = ObjectRef.of(obj)
    try:
        return create(api, obj)
    except ApiException as exc:
        if exc.status != 409:
            raise
    current = fetching.get(api, ref)
    body = dict(obj)
    meta = dict(body.get("metadata") or {})
    if current is not None:
        meta["resourceVersion"] = current["metadata"]["resourceVersion"]
    body["metadata"] = meta
    replaced: Obj = api.request("PUT", path_of(api, ref), body=body)
    return replaced


def apply_objects(
    api: KubeApi,
    source: str | Path | Mapping[str, Any] | Iterable[Mapping[str, Any]],
    namespace: str | None = None,
) -> list[Obj]:
    """create_or_replace every object of `source` (YAML text, a Path, a dict or dicts), in order.

    Each object goes to the namespace its metadata names; `namespace` is used only for namespaced
    objects that name none. Returns the objects as the server stored them."""
    out = []
    for obj in as_objects(source):
        has_ns = (obj.get("metadata") or {}).get("namespace")
        if namespace and not has_ns and api.resource(str(obj.get("apiVersion")), str(obj.get("kind")))[1]:
            obj = with_namespace(obj, namespace)
        out.append(create_or_replace(api, obj))
    return out
