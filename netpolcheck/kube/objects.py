"""Kubernetes objects as plain dicts: loading YAML, flattening lists, naming and locating objects.

The verbs live in creating / patching / deleting / fetching; this module only knows what an object is
and where it lives. Every namespaced object is sent to the namespace in its own metadata (the client's
YAML helper sends all of them to `default`, see docs/kube.md), or to the caller's default namespace
when it has none.
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from netpolcheck.errors import UsageError
from netpolcheck.kube.connection import KubeApi

Obj = dict[str, Any]


@dataclass(frozen=True)
class ObjectRef:
    """Which object: API version, kind, name and namespace (None for cluster-scoped kinds)."""

    api_version: str
    kind: str
    name: str
    namespace: str | None = None

    @classmethod
    def of(cls, obj: Mapping[str, Any], namespace: str | None = None) -> ObjectRef:
        meta = obj.get("metadata") or {}
        if not obj.get("apiVersion") or not obj.get("kind") or not meta.get("name"):
            raise UsageError(f"object without apiVersion, kind or metadata.name: {dict(obj)!r:.200}")
        return cls(
            str(obj["apiVersion"]), str(obj["kind"]), str(meta["name"]), meta.get("namespace") or namespace
        )

    def __str__(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {where}{self.name}"


def flatten(docs: Iterable[Any]) -> list[Obj]:
    """Objects out of YAML documents: None skipped, `kind: List` (and `*List`) expanded."""
    out: list[Obj] = []
    for doc in docs:
        if doc is None:
            continue
        if not isinstance(doc, dict):
            raise UsageError(f"a manifest document is not an object: {doc!r:.100}")
        if str(doc.get("kind", "")).endswith("List") and "items" in doc:
            out.extend(flatten(doc.get("items") or []))
        else:
            out.append(doc)
    return out


def load_yaml(text: str, variables: Mapping[str, str] | None = None) -> list[Obj]:
    """Objects in YAML `text`; `${NAME}` placeholders replaced from `variables` first (all required)."""
    if variables is not None:
        try:
            text = string.Template(text).substitute(variables)
        except (KeyError, ValueError) as exc:
            raise UsageError(f"manifest placeholder without a value: {exc}") from None
    try:
        return flatten(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        raise UsageError(f"manifest is not valid YAML: {exc}") from None


def load_file(path: str | Path, variables: Mapping[str, str] | None = None) -> list[Obj]:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise UsageError(f"cannot read manifest {path}: {exc.strerror}") from None
    return load_yaml(text, variables)


def as_objects(source: str | Path | Mapping[str, Any] | Iterable[Mapping[str, Any]]) -> list[Obj]:
    """Objects from a YAML text, a manifest path, one dict, or an iterable of dicts."""
    if isinstance(source, Path):
        return load_file(source)
    if isinstance(source, str):
        return load_yaml(source)
    if isinstance(source, Mapping):
        return flatten([dict(source)])
    return flatten(dict(o) for o in source)


def path_of(api: KubeApi, ref: ObjectRef, collection: bool = False) -> str:
    """REST path of the object (or of its collection), from discovery."""
    base, namespaced = api.resource(ref.api_version, ref.kind)
    if namespaced:
        if not ref.namespace:
            raise UsageError(f"{ref} is namespaced but has no namespace")
        prefix, _, plural = base.rpartition("/")
        base = f"{prefix}/namespaces/{ref.namespace}/{plural}"
    return base if collection else f"{base}/{ref.name}"


def collection_path(api: KubeApi, api_version: str, kind: str, namespace: str | None) -> str:
    """REST path listing every object of a kind (in one namespace, or in all when None)."""
    base, namespaced = api.resource(api_version, kind)
    if namespaced and namespace:
        prefix, _, plural = base.rpartition("/")
        return f"{prefix}/namespaces/{namespace}/{plural}"
    return base


def with_namespace(obj: Mapping[str, Any], namespace: str) -> Obj:
    """A copy of `obj` in `namespace` (metadata.namespace set)."""
    out = dict(obj)
    out["metadata"] = {**(obj.get("metadata") or {}), "namespace": namespace}
    return out
