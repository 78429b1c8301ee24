"""`pods/{name}/ephemeralcontainers`: GET the pod; PATCH (strategic merge, JSON merge, JSON patch) or
PUT it to add ephemeral containers, as `kubectl debug` and the Kubernetes clients do.

Only `spec.ephemeralContainers` is taken from the changed pod (the rest of it is ignored, as the real
server ignores it on this subresource). What the real server validates (the messages and field paths
of kube-apiserver's `validateEphemeralContainers`): a name (a DNS label, unique among all the pod's
containers) and an image; no ports, probes, lifecycle or resources; a `targetContainerName` that names
an app container; and existing ephemeral containers may be neither changed nor removed. Through the
pod itself `spec.ephemeralContainers` cannot change at all (admission.py).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from netpolcheck.hollow.api import resources as r
from netpolcheck.hollow.api.admission import default_container, validate_container_identity
from netpolcheck.hollow.api.errors import (
    BadRequest,
    Conflict,
    MethodNotAllowed,
    UnsupportedMediaType,
    invalid,
)
from netpolcheck.hollow.api.patching import json_patch, strategic_merge
from netpolcheck.hollow.api.store import merge_patch
from netpolcheck.model import apivalidation as v

if TYPE_CHECKING:
    from netpolcheck.hollow.api.rest import Target
    from netpolcheck.hollow.api.server import ApiServer, RequestHandler

SUBRESOURCE = "ephemeralcontainers"
FIELD = "ephemeralContainers"
RETRIES = 5
# fields an ephemeral container may not set (kube-apiserver: "cannot be set for an Ephemeral Container")
FORBIDDEN_FIELDS = ("ports", "livenessProbe", "readinessProbe", "startupProbe", "lifecycle", "resources")


def validate(pod: dict[str, Any], old: list[dict[str, Any]], new: Any) -> v.Causes:
    """Causes for the ephemeral containers `new` replacing `old` on `pod`."""
    causes: v.Causes = []
    path = f"spec.{FIELD}"
    if not isinstance(new, list) or not all(isinstance(c, dict) for c in new):
        v.wrong_type(causes, path, new, "list of containers")
        return causes
    by_name = {str(c.get("name")): c for c in new}
    for before in old:
        name = str(before.get("name"))
        if name not in by_name:
            v.forbidden(causes, path, f'existing ephemeral containers "{name}" may not be removed')
        elif by_name[name] != before:
            v.forbidden(causes, path, f'existing ephemeral containers "{name}" may not be changed')
    spec = pod.get("spec") or {}
    app = {str(c.get("name")) for c in spec.get("containers") or []}
    taken = app | {str(c.get("name")) for c in spec.get("initContainers") or []}
    known = {str(c.get("name")) for c in old}
    for i, container in enumerate(new):
        cpath = f"{path}[{i}]"
        name = container.get("name")
        if name in known:
            known.discard(name)  # seen once: a second entry of that name is a duplicate
            taken.add(str(name))
            continue
        validate_container_identity(causes, cpath, container, taken)
        for field in FORBIDDEN_FIELDS:
            if container.get(field):
                v.forbidden(causes, f"{cpath}.{field}", "cannot be set for an Ephemeral Container")
        target = container.get("targetContainerName")
        if target and target not in app:
            v.invalid(causes, f"{cpath}.targetContainerName", target, "must be the name of a container")
    return causes


def _changed(api: ApiServer, t: Target, change: Callable[[dict[str, Any]], Any]) -> dict[str, Any]:
    """Read the pod, apply `change` to it, validate and store its new ephemeral containers."""
    assert t.name is not None
    for attempt in range(RETRIES):
        current = api.store.get(r.PODS, t.namespace, t.name)
        patched = change(copy.deepcopy(current))
        if not isinstance(patched, dict):
            raise BadRequest("the patch did not produce an object")
        wanted = (patched.get("spec") or {}).get(FIELD) or []
        before = (current.get("spec") or {}).get(FIELD) or []
        if isinstance(wanted, list):
            for container in wanted[len(before) :]:
                if isinstance(container, dict):
                    default_container(container)
        causes = validate(current, before, wanted)
        if causes:
            raise invalid("Pod", t.name, "", causes)
        updated = copy.deepcopy(current)
        updated.setdefault("spec", {})[FIELD] = wanted
        if not wanted:
            updated["spec"].pop(FIELD, None)
        try:
            return api.store.replace_ephemeral(updated)
        except Conflict:
            if attempt == RETRIES - 1:
                raise
    raise AssertionError("unreachable")


def handle(api: ApiServer, h: RequestHandler, t: Target) -> None:
    from netpolcheck.hollow.api.rest import _body_object, send_object

    assert t.name is not None
    method = h.command
    if method in ("GET", "HEAD"):
        send_object(h, t, api.store.get(r.PODS, t.namespace, t.name))
        return
    if method == "PUT":
        body = _body_object(h, t)
        pinned = (body.get("metadata") or {}).get("resourceVersion")

        def replace(cur: dict[str, Any]) -> Any:
            if pinned and pinned != cur["metadata"]["resourceVersion"]:
                raise Conflict(
                    f'Operation cannot be fulfilled on pods "{t.name}": the object has been modified; '
                    "please apply your changes to the latest version and try again",
                    {"name": t.name, "kind": "pods"},
                )
            return body

        send_object(h, t, _changed(api, t, replace))
        return
    if method != "PATCH":
        raise MethodNotAllowed("the server does not allow this method on the requested resource")
    content_type = (h.headers.get("Content-Type") or "").split(";")[0].strip()
    body = h.json_body()
    if content_type == "application/json-patch+json":
        send_object(h, t, _changed(api, t, lambda cur: json_patch(cur, body)))
        return
    if content_type not in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
        raise UnsupportedMediaType(
            "the body of the request was in an unknown format - accepted media types include: "
            "application/json-patch+json, application/merge-patch+json, "
            f"application/strategic-merge-patch+json (got {content_type!r})"
        )
    if not isinstance(body, dict):
        raise BadRequest("a merge patch must be a JSON object")
    if content_type == "application/merge-patch+json":
        send_object(h, t, _changed(api, t, lambda cur: merge_patch(cur, body)))
    else:
        send_object(h, t, _changed(api, t, lambda cur: strategic_merge(cur, body)))
