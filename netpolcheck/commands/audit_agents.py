"""The audit's probe agents: one ephemeral container per audited pod, in the pod's own namespaces.

An ephemeral container is added through `pods/{name}/ephemeralcontainers` (the only write the audit
makes) and can never be removed: it runs `sleep IDLE` in the probe image, so it ends by itself after
the idle timeout and stays listed, stopped, in the pod's spec and status. The audit execs the probe agent
(`python -m netpolcheck.probe probe`) in it. A container of an earlier audit that still runs the same
image, and will for a while yet (`margin`), is used again rather than adding another.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from netpolcheck.kube.connection import KubeApi
from netpolcheck.kube.waiting import WaitTimeout, wait_for

PREFIX = "netpolcheck-audit-"
SUBRESOURCE = "ephemeralcontainers"
STRATEGIC = "application/strategic-merge-patch+json"


def new_name() -> str:
    """This run's container name: unique, so it never collides with one the pod already lists."""
    return PREFIX + secrets.token_hex(4)


def container(name: str, image: str, idle_seconds: int) -> dict[str, Any]:
    """The ephemeral container: the probe image idling until `idle_seconds`, NET_RAW only."""
    return {
        "name": name,
        "image": image,
        "command": ["sleep", str(idle_seconds)],
        "stdin": False,
        "tty": False,
        "terminationMessagePolicy": "File",
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"], "add": ["NET_RAW"]},
        },
    }


def _status(pod: Mapping[str, Any], name: str) -> dict[str, Any] | None:
    for status in (pod.get("status") or {}).get("ephemeralContainerStatuses") or []:
        if status.get("name") == name:
            return dict(status)
    return None


def _seconds_left(spec: Mapping[str, Any], status: Mapping[str, Any] | None, now: datetime) -> float:
    """How long a running audit container has before its `sleep` ends (0 when not running or unknown)."""
    running = ((status or {}).get("state") or {}).get("running") or {}
    command = spec.get("command") or []
    if not running.get("startedAt") or len(command) != 2 or command[0] != "sleep":
        return 0.0
    try:
        started = datetime.fromisoformat(str(running["startedAt"]).replace("Z", "+00:00"))
        return started.timestamp() + float(command[1]) - now.timestamp()
    except ValueError:
        return 0.0


def reusable(pod: Mapping[str, Any], image: str, margin: float, now: datetime | None = None) -> str | None:
    """An earlier audit's container in `pod` that runs `image` for at least `margin` more seconds."""
    now = now or datetime.now(UTC)
    for spec in (pod.get("spec") or {}).get("ephemeralContainers") or []:
        name = str(spec.get("name") or "")
        if not name.startswith(PREFIX) or spec.get("image") != image:
            continue
        if _seconds_left(spec, _status(pod, name), now) >= margin:
            return name
    return None


def _pod_path(namespace: str, name: str) -> str:
    return f"/api/v1/namespaces/{namespace}/pods/{name}"


def add(api: KubeApi, namespace: str, pod: str, spec: Mapping[str, Any]) -> None:
    """Add ephemeral container `spec` to the pod (strategic merge, as `kubectl debug` sends it)."""
    body = {"spec": {"ephemeralContainers": [dict(spec)]}}
    api.request("PATCH", f"{_pod_path(namespace, pod)}/{SUBRESOURCE}", body, content_type=STRATEGIC)


def describe(state: Mapping[str, Any] | None) -> str:
    """`running`, `waiting (ErrImagePull: ...)`, `terminated (exit 1)`, or `not reported`."""
    if not state:
        return "not reported"
    if "running" in state:
        return "running"
    if "waiting" in state:
        waiting = state["waiting"] or {}
        reason = waiting.get("reason") or "waiting"
        return f"waiting ({reason}{': ' + waiting['message'] if waiting.get('message') else ''})"
    if "terminated" in state:
        return f"terminated (exit {(state['terminated'] or {}).get('exitCode')})"
    return "unknown"


@dataclass
class Agents:
    """Which container probes from each pod, and why a pod has none running."""

    container: dict[str, str]  # "namespace/pod" -> container name (running)
    failed: dict[str, str]  # "namespace/pod" -> what was seen instead


def wait_running(api: KubeApi, wanted: Mapping[str, str], timeout: float, interval: float = 0.5) -> Agents:
    """Wait (bounded) until each pod's container (`"ns/pod" -> name`) runs; the rest are `failed`."""
    seen: dict[str, str] = dict.fromkeys(wanted, "not reported")

    def look() -> bool:
        for key, name in wanted.items():
            if seen[key] == "running":
                continue
            namespace, _, pod = key.partition("/")
            status = _status(api.request("GET", _pod_path(namespace, pod)), name)
            seen[key] = describe((status or {}).get("state"))
        return all(s == "running" for s in seen.values())

    # the pods that never got there are reported (what was seen last), cell by cell
    with contextlib.suppress(WaitTimeout):
        wait_for(look, "the audit's ephemeral containers to run", timeout=timeout, interval=interval)
    running = {k: wanted[k] for k, v in seen.items() if v == "running"}
    failed = {k: f"ephemeral container {wanted[k]}: {v} after {timeout:g} s" for k, v in seen.items()}
    return Agents(running, {k: v for k, v in failed.items() if k not in running})


def pods_by_key(pods: Iterable[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    return {f"{p['metadata']['namespace']}/{p['metadata']['name']}": p for p in pods}
