"""Watching one object's changes as the API sends them, bounded by a deadline.

Polling can miss a state that lasts less than its interval (a DaemonSet's status with one of two pods
updated can be overwritten within 200 ms on a fast rollout); a watch from a known resourceVersion
delivers every write. `kubectl rollout status` watches for the same reason.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import urllib3
from kubernetes.client.exceptions import ApiException

from netpolcheck.kube import fetching
from netpolcheck.kube.connection import KubeApi
from netpolcheck.kube.objects import Obj, ObjectRef, path_of
from netpolcheck.kube.waiting import WaitTimeout

HTTP_GONE = 410
WATCH_CHUNK_SECONDS = 30  # one watch request at most this long (the server ends it; we reopen)


def _current(api: KubeApi, ref: ObjectRef) -> tuple[Obj | None, str]:
    """The object (or None) and the resourceVersion to watch from (the collection's, when absent)."""
    obj = fetching.get(api, ref)
    if obj is not None:
        return obj, str(obj["metadata"]["resourceVersion"])
    query = [("fieldSelector", f"metadata.name={ref.name}")]
    listing = api.request("GET", path_of(api, ref, collection=True), query=query)
    return None, str((listing.get("metadata") or {}).get("resourceVersion") or "")


def _lines(response: Any) -> Iterator[bytes]:
    """The response body split at newlines, as chunks arrive (a watch sends one JSON event a line)."""
    buffer = b""
    for chunk in response.stream(amt=None, decode_content=True):
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            if line.strip():
                yield line
    if buffer.strip():
        yield buffer


def _stream(api: KubeApi, ref: ObjectRef, since: str, seconds: int) -> Iterator[tuple[str, Obj]]:
    """One watch request on the object's collection, filtered to its name: (event type, object).

    Raises ApiException for an error answer or an ERROR event (410 Gone: `since` is too old)."""
    query = [
        ("watch", "true"),
        ("fieldSelector", f"metadata.name={ref.name}"),
        ("timeoutSeconds", str(seconds)),
    ]
    if since:
        query.append(("resourceVersion", since))
    method, url, headers, body, _ = api.api_client.param_serialize(
        method="GET",
        resource_path=path_of(api, ref, collection=True),
        query_params=query,
        header_params={"Accept": "application/json"},
        auth_settings=["BearerToken"],
    )
    response = api.api_client.call_api(
        method, url, header_params=headers, body=body, _request_timeout=seconds + 15
    )
    try:
        if not 200 <= response.status <= 299:
            text = response.read().decode("utf-8", errors="replace")
            raise ApiException.from_response(http_resp=response, body=text, data=None)
        for line in _lines(response.response):  # the urllib3 response, not yet read
            event = json.loads(line)
            kind, obj = str(event.get("type")), event.get("object") or {}
            if kind == "ERROR":
                raise ApiException(status=int(obj.get("code") or 500), reason=str(obj.get("message") or obj))
            yield kind, obj
    finally:
        response.response.release_conn()


def follow(
    api: KubeApi,
    ref: ObjectRef,
    until: Callable[[Obj | None], bool],
    what: str,
    *,
    timeout: float,
    since: str | None = None,
    describe_last: Callable[[], str] | None = None,
) -> Obj | None:
    """Call `until(obj)` with the object's current state and then with every state the API sends
    (None once deleted), until it returns True; return that state.

    With `since` (a resourceVersion, e.g. from the write that started the change) every write after it
    is seen, even those that happened before this call. Raises WaitTimeout naming `what` after `timeout`
    seconds; a watch the server expires (410 Gone) is reopened from a fresh read, so no state is skipped
    except those overwritten before that read."""
    deadline = time.monotonic() + timeout
    last: list[str] = ["nothing (no state read yet)"]

    def seen(obj: Obj | None) -> bool:
        last[0] = describe_last() if describe_last is not None else repr(obj)[:500]
        return until(obj)

    obj, rv = _current(api, ref)
    if since is None or since == rv:  # nothing written after `since`: the present state is the one to see
        if seen(obj):
            return obj
    else:
        rv = since
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise WaitTimeout(what, timeout, describe_last() if describe_last is not None else last[0])
        try:
            for kind, state in _stream(api, ref, rv, max(1, min(WATCH_CHUNK_SECONDS, int(left) + 1))):
                rv = str((state.get("metadata") or {}).get("resourceVersion") or rv)
                if kind in ("ADDED", "MODIFIED") and seen(state):
                    return state
                if kind == "DELETED" and seen(None):
                    return None
                if time.monotonic() >= deadline:
                    break
        except ApiException as exc:
            if exc.status != HTTP_GONE:
                raise
            obj, rv = _current(api, ref)  # history expired: carry on from the present state
            if seen(obj):
                return obj
        except (urllib3.exceptions.HTTPError, OSError):
            continue  # the stream broke (read timeout, reset): reopen from the last version seen
