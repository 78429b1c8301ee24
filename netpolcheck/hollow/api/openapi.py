"""A minimal /openapi/v3: per group version, the PATCH/POST/PUT operations with their
`x-kubernetes-group-version-kind` and the `fieldValidation` query parameter.

That is what kubectl (>= 1.27) reads to decide it may leave field validation to the server
(`kubectl apply`/`create` otherwise refuse to run without an OpenAPI document). No schemas are
published, so clients fall back to their compiled-in types or JSON merge patch.
"""

from __future__ import annotations

import hashlib
from typing import Any

from netpolcheck.hollow.api import resources as r

_QUERY_PARAMS = ("fieldValidation", "fieldManager", "dryRun")


def _gv_path(group_version: str) -> str:
    return f"api/{group_version}" if group_version == "v1" else f"apis/{group_version}"


def _hash(group_version: str) -> str:
    return hashlib.sha256(group_version.encode()).hexdigest()[:16].upper()


def root() -> dict[str, Any]:
    return {
        "paths": {
            _gv_path(gv): {"serverRelativeURL": f"/openapi/v3/{_gv_path(gv)}?hash={_hash(gv)}"}
            for gv in r.SERVED
        }
    }


def _operation(gvk: dict[str, str], action: str) -> dict[str, Any]:
    return {
        "x-kubernetes-group-version-kind": gvk,
        "x-kubernetes-action": action,
        "parameters": [
            {"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": True}}
            for name in _QUERY_PARAMS
        ],
        "responses": {"200": {"description": "OK"}},
    }


def group_version_document(path: str) -> dict[str, Any] | None:
    """The document for `api/v1` or `apis/<group>/<version>`; None if not served."""
    group_version = path.removeprefix("api/").removeprefix("apis/")
    served = r.SERVED.get(group_version)
    if served is None:
        return None
    group, _, version = group_version.rpartition("/")
    prefix = "/" + _gv_path(group_version)
    paths: dict[str, Any] = {}
    for res in served:
        gvk = {"group": group, "version": version, "kind": res.kind}
        base = (
            f"{prefix}/namespaces/{{namespace}}/{res.plural}" if res.namespaced else f"{prefix}/{res.plural}"
        )
        paths[base] = {"post": _operation(gvk, "post")}
        paths[f"{base}/{{name}}"] = {"put": _operation(gvk, "put"), "patch": _operation(gvk, "patch")}
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes (hollow)", "version": "v1.37.0"},
        "paths": paths,
        "components": {"schemas": {}},
    }
