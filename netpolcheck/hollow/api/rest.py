"""Routing and REST semantics: discovery, CRUD, list/watch, patch, and the pod subresources."""

from __future__ import annotations

import base64
import binascii
import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from netpolcheck.hollow.api import decoding, discovery, openapi, protobuf, tables
from netpolcheck.hollow.api import resources as r
from netpolcheck.hollow.api.errors import (
    ApiError,
    BadRequest,
    Conflict,
    Gone,
    MethodNotAllowed,
    NotFound,
    UnsupportedMediaType,
)
from netpolcheck.hollow.api.patching import json_patch, strategic_merge
from netpolcheck.hollow.api.resources import Resource
from netpolcheck.hollow.api.selectors import parse_field_selector

if TYPE_CHECKING:
    from netpolcheck.hollow.api.server import ApiServer, RequestHandler

STREAM_POLL_SECONDS = 0.25
DEFAULT_WATCH_TIMEOUT_SECONDS = 1800
BOOKMARK_INTERVAL_SECONDS = 5.0
PATCH_RETRIES = 5

# Field selectors each resource supports (like the real server; others get 400).
_COMMON_FIELDS = {"metadata.name", "metadata.namespace"}
FIELD_LABELS: dict[tuple[str, str], set[str]] = {
    r.PODS.key: _COMMON_FIELDS
    | {
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "spec.hostNetwork",
        "status.phase",
        "status.podIP",
        "status.nominatedNodeName",
    },
    r.NAMESPACES.key: _COMMON_FIELDS | {"status.phase"},
    r.NODES.key: _COMMON_FIELDS | {"spec.unschedulable"},
    r.EVENTS.key: _COMMON_FIELDS
    | {
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
    },
    r.SECRETS.key: _COMMON_FIELDS | {"type"},
}


def _not_served() -> NotFound:
    return NotFound("the server could not find the requested resource", {})


@dataclass(frozen=True)
class Target:
    group_version: str
    res: Resource
    namespace: str | None
    name: str | None
    sub: str | None


def parse_target(path: str) -> Target:
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 3 and parts[0] == "api":
        group_version, rest = parts[1], parts[2:]
    elif len(parts) >= 4 and parts[0] == "apis":
        group_version, rest = f"{parts[1]}/{parts[2]}", parts[3:]
    else:
        raise _not_served()
    if group_version not in r.SERVED:
        raise _not_served()
    namespace = None
    if rest[0] == "namespaces" and len(rest) >= 3 and rest[2] not in ("status", "finalize"):
        namespace, rest = rest[1], rest[2:]
    if len(rest) > 3:
        raise _not_served()
    res = r.served(group_version, rest[0])
    if res is None or (namespace is not None and not res.namespaced):
        raise _not_served()
    name = rest[1] if len(rest) > 1 else None
    sub = rest[2] if len(rest) > 2 else None
    if sub is not None:
        allowed = set(r.SUBRESOURCES.get(res.key, ())) | ({"status"} if res.has_status else set())
        if res is r.NAMESPACES:
            allowed.add("finalize")
        if sub not in allowed:
            raise _not_served()
    return Target(group_version, res, namespace, name, sub)


def out(obj: dict[str, Any], target: Target) -> dict[str, Any]:
    """The object as served under the request's group version."""
    if target.group_version != target.res.api_version:
        obj["apiVersion"] = target.group_version
    return obj


def dispatch(api: ApiServer, h: RequestHandler) -> None:
    path = h.req_path
    if path in ("/healthz", "/readyz", "/livez"):
        h.send_bytes(200, b"ok", "text/plain; charset=utf-8")
        return
    if path == "/version":
        h.send_json(200, discovery.VERSION_INFO)
        return
    if path == "/api":
        h.send_json(200, discovery.api_versions(h.server_address_text()))
        return
    if path == "/apis":
        h.send_json(200, discovery.api_group_list())
        return
    if path == "/openapi/v3":
        h.send_json(200, openapi.root())
        return
    if path.startswith("/openapi/v3/"):
        document = openapi.group_version_document(path.removeprefix("/openapi/v3/"))
        if document is None:
            raise _not_served()
        h.send_json(200, document)
        return
    parts = [p for p in path.split("/") if p]
    if parts[:1] == ["apis"] and len(parts) == 2:
        group = discovery.api_group(parts[1])
        if group is None:
            raise _not_served()
        h.send_json(200, group)
        return
    if (parts[:1] == ["api"] and len(parts) == 2) or (parts[:1] == ["apis"] and len(parts) == 3):
        listing = discovery.resource_list("/".join(parts[1:]))
        if listing is None:
            raise _not_served()
        h.send_json(200, listing)
        return
    target = parse_target(path)
    _dispatch_resource(api, h, target)


def _dispatch_resource(api: ApiServer, h: RequestHandler, t: Target) -> None:
    method = h.command
    if t.sub == "exec":
        from netpolcheck.hollow.api import execstream

        if method not in ("GET", "POST"):
            raise MethodNotAllowed("the server does not allow this method on the requested resource")
        execstream.handle(api, h, t)
        return
    if t.sub == "ephemeralcontainers":
        from netpolcheck.hollow.api import ephemeral

        ephemeral.handle(api, h, t)
        return
    if t.sub == "log":
        from netpolcheck.hollow.api import podlogs

        if method != "GET":
            raise MethodNotAllowed("the server does not allow this method on the requested resource")
        podlogs.handle(api, h, t)
        return
    if method in ("GET", "HEAD"):
        if t.name is None:
            if h.flag("watch"):
                watch(api, h, t)
            else:
                list_objects(api, h, t)
        else:
            send_object(h, t, api.store.get(t.res, t.namespace, t.name))
    elif method == "POST" and t.name is None:
        create(api, h, t)
    elif method == "PUT" and t.name is not None:
        replace(api, h, t)
    elif method == "PATCH" and t.name is not None:
        patch(api, h, t)
    elif method == "DELETE":
        if t.name is None:
            delete_collection(api, h, t)
        else:
            delete(api, h, t)
    else:
        raise MethodNotAllowed("the server does not allow this method on the requested resource")


def send_object(h: RequestHandler, t: Target, obj: dict[str, Any], code: int = 200) -> None:
    obj = out(obj, t)
    table = tables.wanted(h.headers.get("Accept", ""))
    if table:
        h.send_json(code, tables.table(t.res, [obj], h.param("includeObject"), obj["metadata"]))
    else:
        h.send_json(code, obj)


# ---- list ------------------------------------------------------------------------------------


def _checked_field_selector(t: Target, text: str | None) -> str | None:
    supported = FIELD_LABELS.get(t.res.key, _COMMON_FIELDS)
    for req in parse_field_selector(text):
        if req.key not in supported:
            raise BadRequest(f"field label not supported: {req.key}")
    return text


def _encode_continue(rv: int, last: tuple[str, str]) -> str:
    raw = json.dumps({"v": "hollow/1", "rv": rv, "start": list(last)}).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _decode_continue(token: str) -> tuple[int, tuple[str, str]]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        return int(data["rv"]), (str(data["start"][0]), str(data["start"][1]))
    except (ValueError, KeyError, IndexError, TypeError, binascii.Error) as exc:
        raise BadRequest(f"continue key is not valid: {exc}") from exc


def list_objects(api: ApiServer, h: RequestHandler, t: Target) -> None:
    field_selector = _checked_field_selector(t, h.param("fieldSelector"))
    items, rv = api.store.list(t.res, t.namespace, h.param("labelSelector"), field_selector)
    token = h.param("continue")
    if token:
        token_rv, after = _decode_continue(token)
        if token_rv < api.store.history_floor:
            raise Gone(
                "The provided continue parameter is too old to display a consistent list result. "
                "You can start a new list without the continue parameter."
            )
        items = [i for i in items if _key(i) > after]
        rv = token_rv  # a watch from the first page's version misses nothing
    meta: dict[str, Any] = {"resourceVersion": str(rv)}
    limit = h.int_param("limit", 0) or 0
    if limit > 0 and len(items) > limit:
        meta["continue"] = _encode_continue(rv, _key(items[limit - 1]))
        meta["remainingItemCount"] = len(items) - limit
        items = items[:limit]
    items = [out(i, t) for i in items]
    if tables.wanted(h.headers.get("Accept", "")):
        h.send_json(200, tables.table(t.res, items, h.param("includeObject"), meta))
        return
    h.send_json(
        200, {"kind": f"{t.res.kind}List", "apiVersion": t.group_version, "metadata": meta, "items": items}
    )


def _key(obj: dict[str, Any]) -> tuple[str, str]:
    meta = obj["metadata"]
    return (meta.get("namespace", ""), meta["name"])


# ---- watch -----------------------------------------------------------------------------------


def _bookmark(t: Target, rv: int, initial_end: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"resourceVersion": str(rv)}
    if initial_end:
        meta["annotations"] = {"k8s.io/initial-events-end": "true"}
    return {
        "type": "BOOKMARK",
        "object": {"kind": t.res.kind, "apiVersion": t.group_version, "metadata": meta},
    }


def watch(api: ApiServer, h: RequestHandler, t: Target) -> None:
    """Chunked stream of watch events; too old a resourceVersion is a 200 with one ERROR event (410),
    as kube-apiserver answers it."""
    field_selector = _checked_field_selector(t, h.param("fieldSelector"))
    rv_param = h.param("resourceVersion") or ""
    send_initial = h.flag("sendInitialEvents")
    since: int | None = None
    if rv_param not in ("", "0") and not send_initial:
        try:
            since = int(rv_param)
        except ValueError as exc:
            raise BadRequest(f"invalid resource version: {rv_param!r}") from exc
    timeout = float(
        h.int_param("timeoutSeconds", DEFAULT_WATCH_TIMEOUT_SECONDS) or DEFAULT_WATCH_TIMEOUT_SECONDS
    )
    bookmarks = h.flag("allowWatchBookmarks")
    table = tables.wanted(h.headers.get("Accept", ""))
    current = api.store.resource_version
    if since is not None and since > current:
        # A version this store never issued (e.g. a client that outlived an earlier cluster): the real
        # server answers with this error (after a short wait), and client-go then lists again.
        h.start_stream(200, "application/json")
        h.write_chunk(
            _event_line(
                {
                    "type": "ERROR",
                    "object": {
                        "kind": "Status",
                        "apiVersion": "v1",
                        "metadata": {},
                        "status": "Failure",
                        "message": f"Too large resource version: {since}, current: {current}",
                        "reason": "Timeout",
                        "details": {
                            "causes": [
                                {"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}
                            ],
                            "retryAfterSeconds": 1,
                        },
                        "code": 504,
                    },
                }
            )
        )
        h.end_stream()
        return
    try:
        w = api.store.watch(
            t.res, t.namespace, since, h.param("labelSelector"), field_selector, initial=since is None
        )
    except Gone as exc:
        h.start_stream(200, "application/json")
        h.write_chunk(_event_line({"type": "ERROR", "object": exc.status()}))
        h.end_stream()
        return
    h.start_stream(200, "application/json")
    deadline = time.monotonic() + timeout
    last_rv, initial_left, last_bookmark = w.start_rv, w.initial_count, time.monotonic()
    try:
        if send_initial and initial_left == 0:
            h.write_chunk(_event_line(_bookmark(t, last_rv, initial_end=True)))
        while not api.stopping.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            event = w.next(timeout=min(STREAM_POLL_SECONDS, remaining))
            if event is None:
                if w.closed:
                    break  # the store closed: end the stream cleanly
                if h.client_gone():
                    h.close_connection = True
                    return  # the client left: nobody to send the final chunk to
                if bookmarks and time.monotonic() - last_bookmark >= BOOKMARK_INTERVAL_SECONDS:
                    h.write_chunk(_event_line(_bookmark(t, last_rv)))
                    last_bookmark = time.monotonic()
                continue
            obj = out(event.object, t)
            if table:
                obj = tables.table(t.res, [obj], h.param("includeObject"), obj["metadata"], for_watch=True)
            h.write_chunk(_event_line({"type": event.type, "object": obj}))
            last_rv = max(last_rv, event.rv)
            if initial_left > 0:
                initial_left -= 1
                if initial_left == 0 and send_initial:
                    h.write_chunk(_event_line(_bookmark(t, last_rv, initial_end=True)))
        h.end_stream()
    finally:
        w.close()


def _event_line(event: dict[str, Any]) -> bytes:
    return json.dumps(event, separators=(",", ":")).encode() + b"\n"


# ---- writes ----------------------------------------------------------------------------------


_BODY_MEDIA_TYPES = ("application/json", "application/yaml", protobuf.MEDIA_TYPE)


def _decoded_body(h: RequestHandler, t: Target) -> Any:
    """The body of a create/replace as JSON values, by its Content-Type like the real server:
    JSON, YAML, or protobuf (for the kinds kubectl sends as protobuf); anything else is 415."""
    media_type = (h.headers.get("Content-Type") or "application/json").split(";")[0].strip().lower()
    if media_type in ("application/json", "*/*", ""):
        return h.json_body()
    if media_type == "application/yaml":
        return decoding.loads_yaml(h.body())
    if media_type == protobuf.MEDIA_TYPE and t.res.kind in protobuf.KINDS:
        return protobuf.decode(h.body())
    h.body()  # read it, so the connection stays usable
    accepted = _BODY_MEDIA_TYPES if t.res.kind in protobuf.KINDS else _BODY_MEDIA_TYPES[:2]
    raise UnsupportedMediaType(
        f"the body of the request was in an unknown format - accepted media types include: "
        f"{', '.join(accepted)}"
    )


def _body_object(h: RequestHandler, t: Target) -> dict[str, Any]:
    obj = _decoded_body(h, t)
    if not isinstance(obj, dict):
        raise BadRequest(
            "the body of the request was in an unknown format - accepted media types include: "
            "application/json, application/yaml"
        )
    decoding.conform(t.res.kind, t.group_version.rpartition("/")[2], obj)
    _check_identity(obj, t)
    return obj


def _check_identity(obj: dict[str, Any], t: Target) -> None:
    kind = obj.get("kind")
    if kind and kind != t.res.kind:
        raise BadRequest(
            f"the object provided is unrecognized (must be of type {t.res.kind}): kind {kind!r} in the body"
        )
    meta = obj.setdefault("metadata", {})
    if not isinstance(meta, dict):
        raise BadRequest("metadata must be an object")
    if t.res.namespaced:
        if t.namespace is None:
            raise MethodNotAllowed("the server does not allow this method on the requested resource")
        if meta.get("namespace") and meta["namespace"] != t.namespace:
            raise BadRequest(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        meta["namespace"] = t.namespace
    if t.name is not None and meta.get("name") and meta["name"] != t.name and t.sub is None:
        raise BadRequest(
            f"the name of the object ({meta['name']}) does not match the name on the URL ({t.name})"
        )
    if t.name is not None:
        meta.setdefault("name", t.name)
    _legacy_defaults(obj, t)


def _legacy_defaults(obj: dict[str, Any], t: Target) -> None:
    """extensions/v1beta1 DaemonSets defaulted to OnDelete (apps/v1 defaults to RollingUpdate)."""
    if t.group_version == "extensions/v1beta1" and t.res is r.DAEMONSETS:
        obj.setdefault("spec", {}).setdefault("updateStrategy", {"type": "OnDelete"})


def create(api: ApiServer, h: RequestHandler, t: Target) -> None:
    obj = _body_object(h, t)
    if h.params("dryRun"):
        raise BadRequest("dryRun is not supported by the hollow API server")
    send_object(h, t, api.store.create(t.res, obj), 201)


def replace(api: ApiServer, h: RequestHandler, t: Target) -> None:
    obj = _body_object(h, t)
    assert t.name is not None
    obj["metadata"]["name"] = t.name
    if t.sub == "status":
        send_object(h, t, api.store.replace_status(t.res, obj))
    elif t.sub is None:
        send_object(h, t, api.store.replace(t.res, obj))
    else:
        raise MethodNotAllowed("the server does not allow this method on the requested resource")


def patch(api: ApiServer, h: RequestHandler, t: Target) -> None:
    assert t.name is not None
    content_type = (h.headers.get("Content-Type") or "").split(";")[0].strip()
    status = t.sub == "status"
    if t.sub not in (None, "status"):
        raise MethodNotAllowed("the server does not allow this method on the requested resource")
    if content_type == "application/merge-patch+json":
        body = h.json_body()
        if not isinstance(body, dict):
            raise BadRequest("a merge patch must be a JSON object")
        send_object(h, t, api.store.merge_patch(t.res, t.namespace, t.name, body, status=status))
        return
    if content_type == "application/strategic-merge-patch+json":
        body = h.json_body()
        if not isinstance(body, dict):
            raise BadRequest("a strategic merge patch must be a JSON object")
        send_object(h, t, _patch_with(api, t, lambda cur: strategic_merge(cur, body), status))
        return
    if content_type == "application/json-patch+json":
        ops = h.json_body()
        send_object(h, t, _patch_with(api, t, lambda cur: json_patch(cur, ops), status))
        return
    if content_type == "application/apply-patch+yaml":
        apply(api, h, t)
        return
    raise UnsupportedMediaType(
        f"the body of the request was in an unknown format - accepted media types "
        f"include: application/json-patch+json, application/merge-patch+json, "
        f"application/apply-patch+yaml (got {content_type!r})"
    )


def _patch_with(api: ApiServer, t: Target, change: Any, status: bool) -> dict[str, Any]:
    """Read, change, write; retried on a concurrent write unless the patch itself pins a version."""
    assert t.name is not None
    for attempt in range(PATCH_RETRIES):
        current = api.store.get(t.res, t.namespace, t.name)
        patched = change(current)
        if not isinstance(patched, dict):
            raise BadRequest("the patch did not produce an object")
        pinned = (patched.get("metadata") or {}).get("resourceVersion") != current["metadata"][
            "resourceVersion"
        ]
        patched.setdefault("metadata", {})
        patched["metadata"]["name"], patched["metadata"]["namespace"] = (
            t.name,
            current["metadata"].get("namespace"),
        )
        if not t.res.namespaced:
            patched["metadata"].pop("namespace", None)
        try:
            if status:
                return api.store.replace_status(t.res, patched)
            return api.store.replace(t.res, patched)
        except Conflict:
            if pinned or attempt == PATCH_RETRIES - 1:
                raise
    raise AssertionError("unreachable")


def apply(api: ApiServer, h: RequestHandler, t: Target) -> None:
    """Server-side apply, approximated: create if absent, else strategic-merge the applied fields
    (no field ownership: fields dropped from the applied object are not removed)."""
    assert t.name is not None
    body = decoding.loads_yaml(h.body() or b"{}")
    if not isinstance(body, dict):
        raise BadRequest("an applied configuration must be an object")
    _check_identity(body, t)
    try:
        api.store.get(t.res, t.namespace, t.name)
    except NotFound:
        send_object(h, t, api.store.create(t.res, body), 201)
        return
    body.get("metadata", {}).pop("resourceVersion", None)
    send_object(h, t, _patch_with(api, t, lambda cur: strategic_merge(cur, body), t.sub == "status"))


def _check_preconditions(api: ApiServer, h: RequestHandler, t: Target) -> None:
    """DeleteOptions preconditions, from a JSON or (typed clients) protobuf body."""
    media_type = (h.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if not h.body():
        return
    body = protobuf.decode(h.body(), protobuf.OPTIONS) if media_type == protobuf.MEDIA_TYPE else h.json_body()
    if not isinstance(body, dict):
        return
    pre = body.get("preconditions") or {}
    if not pre:
        return
    assert t.name is not None
    current = api.store.get(t.res, t.namespace, t.name)["metadata"]
    for field in ("uid", "resourceVersion"):
        if pre.get(field) and pre[field] != current.get(field):
            raise Conflict(
                f"Precondition failed: {field}: {pre[field]}, {field} in object meta: {current.get(field)}",
                {"name": t.name, "kind": t.res.plural},
            )


def delete(api: ApiServer, h: RequestHandler, t: Target) -> None:
    assert t.name is not None
    if t.sub is not None:
        raise MethodNotAllowed("the server does not allow this method on the requested resource")
    _check_preconditions(api, h, t)
    send_object(h, t, api.store.delete(t.res, t.namespace, t.name))


def delete_collection(api: ApiServer, h: RequestHandler, t: Target) -> None:
    field_selector = _checked_field_selector(t, h.param("fieldSelector"))
    items, _ = api.store.list(t.res, t.namespace, h.param("labelSelector"), field_selector)
    deleted = []
    for item in items:
        meta = item["metadata"]
        try:
            deleted.append(out(api.store.delete(t.res, meta.get("namespace"), meta["name"]), t))
        except NotFound:
            continue  # deleted meanwhile (e.g. by garbage collection of an owner in this collection)
    h.send_json(
        200,
        {
            "kind": f"{t.res.kind}List",
            "apiVersion": t.group_version,
            "metadata": {"resourceVersion": str(api.store.resource_version)},
            "items": deleted,
        },
    )


__all__ = ["ApiError", "dispatch"]
