"""Pod status as a pure function of the pod's run record (no processes looked at, nothing written).

The monitor updates the record (exits, restarts, readiness) and writes what `pod_status` returns when
it differs from the last status written; `with_transition_times` keeps each condition's
lastTransitionTime until its status changes.
"""

from __future__ import annotations

import copy
from typing import Any

from netpolcheck.hollow.kubelet.records import ContainerRun, PodRun
from netpolcheck.hollow.kubelet.restarts import will_restart


def container_state(run: PodRun, cr: ContainerRun) -> dict[str, Any]:
    """state (and lastState) of one container, as `kubectl get pods` reads them."""
    if run.failed:
        return {"state": {"waiting": {"reason": "CreateContainerError", "message": run.failed}}}
    if cr.image_error:
        reason = "ImagePullBackOff" if cr.pull_backoff else "ErrImagePull"
        return {"state": {"waiting": {"reason": reason, "message": cr.image_error}}}
    if not cr.container_id:
        return {"state": {"waiting": {"reason": "ContainerCreating" if cr.init else "PodInitializing"}}}
    if cr.terminated is not None:
        if cr.restart_at is not None:  # exited, restart pending: back-off
            reason = "CrashLoopBackOff" if cr.terminated["exitCode"] else "Completed"
            return {"state": {"waiting": {"reason": reason}}, "lastState": {"terminated": cr.terminated}}
        return {"state": {"terminated": cr.terminated}}
    if not cr.setup_done:
        return {"state": {"waiting": {"reason": "ContainerCreating"}}}
    return {"state": {"running": {"startedAt": cr.started_at}}}


def container_status(run: PodRun, cr: ContainerRun) -> dict[str, Any]:
    status: dict[str, Any] = {
        "name": cr.name,
        "image": cr.spec.get("image", ""),
        "imageID": "",
        "restartCount": cr.restart_count,
        "ready": cr.ready,
    }
    if cr.container_id:
        status["containerID"] = cr.container_id
    status.update(container_state(run, cr))
    if "lastState" not in status and cr.last_terminated is not None:
        status["lastState"] = {"terminated": cr.last_terminated}
    status["started"] = bool(cr.container_id) and cr.terminated is None and cr.setup_done
    return status


def phase(run: PodRun) -> str:
    """Pending until every app container has started; Succeeded/Failed once all have ended for good."""
    if run.failed or not run.started or any(cr.image_error for cr in run.containers):
        return "Pending"
    ended = [
        cr.terminated is not None and not will_restart(run, cr, cr.terminated["exitCode"])
        for cr in run.containers
    ]
    if all(ended):
        ok = all(cr.terminated is not None and cr.terminated["exitCode"] == 0 for cr in run.containers)
        return "Succeeded" if ok else "Failed"
    return "Running"


def ready(run: PodRun) -> bool:
    return run.started and not run.failed and all(cr.ready for cr in run.containers)


def _condition(kind: str, ok: bool, reason: str = "") -> dict[str, Any]:
    c: dict[str, Any] = {"type": kind, "status": "True" if ok else "False", "lastProbeTime": None}
    if reason and not ok:
        c["reason"] = reason
    return c


def pod_status(run: PodRun, host_ip: str) -> dict[str, Any]:
    """The pod's status without transition times."""
    is_ready = ready(run)
    status: dict[str, Any] = {
        "phase": phase(run),
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}],
        "startTime": run.start_time,
        "conditions": [
            _condition("PodScheduled", True),
            _condition("Initialized", run.started, "ContainersNotInitialized"),
            _condition("ContainersReady", is_ready, "ContainersNotReady"),
            _condition("Ready", is_ready, "ContainersNotReady"),
        ],
        "containerStatuses": [container_status(run, cr) for cr in run.containers],
        "qosClass": "BestEffort",
    }
    if run.ephemeral_containers:
        status["ephemeralContainerStatuses"] = [container_status(run, cr) for cr in run.ephemeral_containers]
    if run.init_containers:
        status["initContainerStatuses"] = [container_status(run, cr) for cr in run.init_containers]
    if run.ip is not None:
        status["podIP"] = str(run.ip)
        status["podIPs"] = [{"ip": str(run.ip)}]
    if run.failed:
        status["message"] = run.failed
        status["reason"] = "HollowSetupError"
    return status


def with_transition_times(
    status: dict[str, Any], previous: dict[str, Any] | None, now: str
) -> dict[str, Any]:
    """A copy of `status` whose conditions carry lastTransitionTime: the previous one while the
    condition's status is unchanged, else `now`."""
    stamped = copy.deepcopy(status)
    before = {c["type"]: c for c in (previous or {}).get("conditions", [])}
    for c in stamped["conditions"]:
        old = before.get(c["type"])
        c["lastTransitionTime"] = old["lastTransitionTime"] if old and old["status"] == c["status"] else now
    return stamped
