"""Restarts per restartPolicy with one exponential back-off, for init and app containers alike."""

from __future__ import annotations

from typing import Any

from netpolcheck.hollow.clock import now_iso
from netpolcheck.hollow.kubelet.records import ContainerRun, PodRun

BACKOFF_START = 0.5
BACKOFF_MAX = 10.0


def backoff(attempts: int) -> float:
    """Seconds to wait before the next try after `attempts` earlier restarts (0.5 s doubling, capped)."""
    return min(BACKOFF_MAX, BACKOFF_START * (2 ** min(attempts, 10)))


def will_restart(run: PodRun, cr: ContainerRun, code: int) -> bool:
    """restartPolicy says this exit is followed by a restart (init containers: only on failure)."""
    if cr.init:
        return code != 0 and run.restart_policy != "Never"
    return run.restart_policy == "Always" or (run.restart_policy == "OnFailure" and code != 0)


def terminated(cr: ContainerRun, code: int) -> dict[str, Any]:
    """state.terminated for an exit with `code` (a negative code is a signal: 128 + its number)."""
    return {
        "exitCode": code if code >= 0 else 128 - code,
        "reason": "Completed" if code == 0 else "Error",
        "startedAt": cr.started_at,
        "finishedAt": now_iso(),
        "containerID": cr.container_id,
    }


def after_exit(run: PodRun, cr: ContainerRun, code: int, now: float) -> bool:
    """Record the exit of `cr`; True when its back-off has passed and it should be started again."""
    if cr.terminated is None:
        cr.terminated = terminated(cr, code)
        cr.ready = False
    if not will_restart(run, cr, code):
        return False
    if cr.restart_at is None:
        cr.restart_at = now + backoff(cr.restart_count)
    if now < cr.restart_at:
        return False
    cr.last_terminated = cr.terminated
    cr.restart_count += 1
    return True
