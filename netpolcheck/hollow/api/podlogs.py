"""`pods/{name}/log`: the container's log file from PodRuntime.log_path, optionally followed."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from netpolcheck.hollow.api.errors import BadRequest
from netpolcheck.hollow.api.execstream import _container_name

if TYPE_CHECKING:
    from netpolcheck.hollow.api.rest import Target
    from netpolcheck.hollow.api.server import ApiServer, RequestHandler

FOLLOW_POLL_SECONDS = 0.2


def _tail(data: bytes, lines: int) -> bytes:
    if lines <= 0:
        return b""
    parts = data.splitlines(keepends=True)
    return b"".join(parts[-lines:])


def handle(api: ApiServer, h: RequestHandler, t: Target) -> None:
    assert t.name is not None and t.namespace is not None
    container = _container_name(api, t, h.param("container"))
    if api.runtime is None:
        raise BadRequest("this cluster has no pod runtime to read logs from")
    previous = h.flag("previous")
    path = api.runtime.log_path(t.namespace, t.name, container, previous=previous)
    if path is None or not path.exists():
        which = "previous terminated container" if previous else "container"
        raise BadRequest(f'{which} "{container}" in pod "{t.name}" is waiting to start or has no logs')
    tail = h.int_param("tailLines")
    limit = h.int_param("limitBytes")
    with open(path, "rb") as fh:
        data = fh.read()
        if tail is not None:
            data = _tail(data, tail)
        if limit is not None:
            data = data[:limit]
        if not h.flag("follow"):
            h.send_bytes(200, data, "text/plain")
            return
        h.start_stream(200, "text/plain")
        h.write_chunk(data)
        # Follow until the pod is gone, the client leaves or the server stops.
        while not api.stopping.is_set():
            chunk = fh.read(65536)
            if chunk:
                h.write_chunk(chunk)
                continue
            if not _pod_exists(api, t):
                break
            if h.client_gone():
                h.close_connection = True
                return
            time.sleep(FOLLOW_POLL_SECONDS)  # polling a growing file: nothing to wait on but time
        h.end_stream()


def _pod_exists(api: ApiServer, t: Target) -> bool:
    from netpolcheck.hollow.api import resources as r
    from netpolcheck.hollow.api.errors import NotFound

    try:
        api.store.get(r.PODS, t.namespace, t.name or "")
    except NotFound:
        return False
    return True
