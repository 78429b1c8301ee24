"""Reading objects as plain dicts (the API's JSON, camelCase)."""

from __future__ import annotations

from collections.abc import Mapping

from kubernetes.client.exceptions import ApiException

from netpolcheck.kube.connection import KubeApi
from netpolcheck.kube.objects import Obj, ObjectRef, collection_path, path_of


def get(api: KubeApi, ref: ObjectRef) -> Obj | None:
    """The object, or None when it does not exist."""
    try:
        obj: Obj = api.request("GET", path_of(api, ref))
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return obj


def server_version(api: KubeApi, timeout: float = 60.0) -> str | None:
    """The API server's Kubernetes version (`gitVersion` of /version), None when it gives none."""
    version = (api.request("GET", "/version", timeout=timeout) or {}).get("gitVersion")
    return None if version is None else str(version)


def selector(labels: Mapping[str, str | None]) -> str:
    """A label selector string: `k=v` for values, bare `k` (exists) for None."""
    return ",".join(k if v is None else f"{k}={v}" for k, v in labels.items())


def list_objects(
    api: KubeApi,
    api_version: str,
    kind: str,
    namespace: str | None = None,
    label_selector: str | None = None,
    field_selector: str | None = None,
) -> list[Obj]:
    """Every object of a kind (in `namespace`, or everywhere), optionally filtered by selectors."""
    query = [("labelSelector", label_selector)] if label_selector else []
    if field_selector:
        query.append(("fieldSelector", field_selector))
    doc = api.request("GET", collection_path(api, api_version, kind, namespace), query=query)
    items: list[Obj] = []
    for item in doc.get("items") or []:
        item.setdefault("apiVersion", api_version)
        item.setdefault("kind", kind)
        items.append(item)
    return items
