"""Patch formats other than JSON merge patch: RFC 6902 JSON patch and an approximate strategic merge.

Strategic merge is approximated: JSON merge patch, except that lists of objects with a known merge
key (containers, env, volumes, ... by name; ports by containerPort) are merged element by element and
honour `$patch: delete`. That covers what kubectl set image / label / annotate and the suite send.
"""

from __future__ import annotations

from typing import Any

from netpolcheck.hollow.api.errors import BadRequest, Invalid
from netpolcheck.hollow.api.store import deep_copy

MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "volumes": "name",
    "env": "name",
    "imagePullSecrets": "name",
    "volumeMounts": "mountPath",
    "ports": "containerPort",
    "conditions": "type",
    "ownerReferences": "uid",
    "hostAliases": "ip",
}


def strategic_merge(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return deep_copy(patch)
    if patch.get("$patch") == "replace":  # the whole map is replaced (what `rollout undo` sends)
        return {k: deep_copy(v) for k, v in patch.items() if not k.startswith("$")}
    result = deep_copy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if isinstance(value, dict) and value.get("$patch") == "delete":
            result.pop(key, None)
            continue
        if key.startswith("$"):
            continue  # directives ($retainKeys, $setElementOrder/...) are not needed for what we serve
        if value is None:
            result.pop(key, None)
        elif (
            isinstance(value, list)
            and key in MERGE_KEYS
            and isinstance(result.get(key), list)
            and all(isinstance(v, dict) and MERGE_KEYS[key] in v for v in value)
        ):
            result[key] = _merge_list(result[key], value, MERGE_KEYS[key])
        else:
            result[key] = strategic_merge(result.get(key), value)
    return result


def _merge_list(current: list[Any], patch: list[dict[str, Any]], merge_key: str) -> list[Any]:
    merged = deep_copy(current)
    for item in patch:
        position = next(
            (i for i, c in enumerate(merged) if isinstance(c, dict) and c.get(merge_key) == item[merge_key]),
            None,
        )
        if item.get("$patch") == "delete":
            if position is not None:
                del merged[position]
        elif position is None:
            merged.append({k: v for k, v in item.items() if not k.startswith("$")})
        else:
            merged[position] = strategic_merge(merged[position], item)
    return merged


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise BadRequest(f"JSON pointer must start with '/': {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _parent(doc: Any, parts: list[str]) -> Any:
    node = doc
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def json_patch(doc: Any, ops: Any) -> Any:
    """Apply RFC 6902 operations to a copy of `doc`."""
    if not isinstance(ops, list):
        raise BadRequest(
            "the body of the request was in an unknown format - accepted media types include: "
            "application/json-patch+json, application/merge-patch+json, "
            "application/apply-patch+yaml (a JSON patch must be a list of operations)"
        )
    doc = deep_copy(doc)
    for op in ops:
        try:
            kind, parts = op["op"], _pointer(op["path"])
            if kind in ("add", "replace", "test"):
                value = deep_copy(op["value"])
            if kind in ("move", "copy"):
                from_parts = _pointer(op["from"])
                source = _parent(doc, from_parts)
                last = from_parts[-1]
                value = deep_copy(source[int(last)] if isinstance(source, list) else source[last])
                if kind == "move":
                    del source[int(last) if isinstance(source, list) else last]
                kind = "add"
            if not parts:
                if kind == "test" and doc != value:
                    raise Invalid("the server rejected our request due to an error in our request")
                doc = value if kind in ("add", "replace") else doc
                continue
            parent, last = _parent(doc, parts), parts[-1]
            if kind == "add":
                if isinstance(parent, list):
                    parent.insert(len(parent) if last == "-" else int(last), value)
                else:
                    parent[last] = value
            elif kind == "replace":
                if isinstance(parent, list):
                    parent[int(last)] = value
                else:
                    if last not in parent:
                        raise KeyError(last)
                    parent[last] = value
            elif kind == "remove":
                del parent[int(last) if isinstance(parent, list) else last]
            elif kind == "test":
                current = parent[int(last)] if isinstance(parent, list) else parent[last]
                if current != value:
                    raise Invalid(f"testing value {op['path']} failed")
            else:
                raise BadRequest(f"unknown JSON patch operation {kind!r}")
        except (KeyError, IndexError, ValueError, TypeError) as exc:
            raise Invalid(
                f"the server rejected our request due to an error in our request: "
                f"json patch {op!r} failed: {exc!r}"
            ) from exc
    return doc
