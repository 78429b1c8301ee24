"""Changing objects in place: labels, annotations, merge patches."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from netpolcheck.kube.connection import KubeApi
from netpolcheck.kube.objects import Obj, ObjectRef, path_of

MERGE_PATCH = "application/merge-patch+json"


def merge_patch(api: KubeApi, ref: ObjectRef, patch: Mapping[str, Any]) -> Obj:
    """An RFC 7386 JSON merge patch (None values remove keys)."""
    patched: Obj = api.request("PATCH", path_of(api, ref), body=dict(patch), content_type=MERGE_PATCH)
    return patched


def label(api: KubeApi, ref: ObjectRef, labels: Mapping[str, str | None]) -> Obj:
    """Set labels; a None value removes that label (`kubectl label k-`)."""
    return merge_patch(api, ref, {"metadata": {"labels": dict(labels)}})


def unlabel(api: KubeApi, ref: ObjectRef, *keys: str) -> Obj:
    return label(api, ref, dict.fromkeys(keys))


def annotate(api: KubeApi, ref: ObjectRef, annotations: Mapping[str, str | None]) -> Obj:
    """Set annotations; a None value removes that annotation."""
    return merge_patch(api, ref, {"metadata": {"annotations": dict(annotations)}})
