"""Record a core/v1 Event about an object, as the kubelet and the controllers report what they did."""

from __future__ import annotations

import logging
from typing import Any

from netpolcheck.hollow.api import resources as r
from netpolcheck.hollow.api.errors import ApiError
from netpolcheck.hollow.api.store import Store
from netpolcheck.hollow.clock import now_iso

log = logging.getLogger(__name__)


def record(
    store: Store,
    involved: dict[str, Any],
    reason: str,
    message: str,
    *,
    component: str,
    warning: bool = False,
    field_path: str = "",
) -> None:
    """`involved`: the involvedObject (kind, namespace, name, uid, apiVersion...). Failures are logged only:
    an event must never stop the work it reports on (its namespace may be going away)."""
    stamp = now_iso()
    ref = dict(involved)
    if field_path:
        ref["fieldPath"] = field_path
    try:
        store.create(
            r.EVENTS,
            {
                "metadata": {"generateName": f"{involved['name']}.", "namespace": involved["namespace"]},
                "involvedObject": ref,
                "reason": reason,
                "message": message,
                "type": "Warning" if warning else "Normal",
                "count": 1,
                "source": {"component": component},
                "reportingComponent": component,
                "firstTimestamp": stamp,
                "lastTimestamp": stamp,
            },
        )
    except ApiError as exc:
        log.debug("event not recorded: %s", exc.message)
