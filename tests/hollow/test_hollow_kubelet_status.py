"""Pod status as a pure function of the run record, and the restart rules: no process, no root."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from netpolcheck.hollow import images
from netpolcheck.hollow.kubelet import readiness, restarts, status
from netpolcheck.hollow.kubelet.records import ContainerRun, PodRun


def pod(policy: str = "Always", *containers: ContainerRun) -> PodRun:
    run = PodRun("ns", "web", "uid-1", 1, "node1", host_network=False, restart_policy=policy)
    run.containers = list(containers) or [container()]
    run.started = True
    run.start_time = "2026-11-30T00:00:00Z"
    return run


def container(
    name: str = "c", image: str = "python:3.11", role: str = "command", error: str = ""
) -> ContainerRun:
    return ContainerRun(
        {"name": name, "image": image}, images.Program([] if error else ["x"], role, error), {}, Path("/l")
    )


def running(cr: ContainerRun, ready: bool = True) -> ContainerRun:
    cr.container_id, cr.setup_done, cr.ready, cr.started_at = (
        "hollow://42",
        True,
        ready,
        "2026-11-30T00:00:01Z",
    )
    return cr


def exited(run: PodRun, cr: ContainerRun, code: int, now: float = 100.0) -> bool:
    running(cr)
    return restarts.after_exit(run, cr, code, now)


def cond(st: dict[str, Any], kind: str) -> str:
    return next(c["status"] for c in st["conditions"] if c["type"] == kind)


def test_a_running_ready_pod_is_running_and_ready() -> None:
    run = pod("Always", running(container()))
    st = status.pod_status(run, "10.32.0.1")
    assert st["phase"] == "Running"
    assert cond(st, "Ready") == cond(st, "ContainersReady") == "True"
    (cs,) = st["containerStatuses"]
    assert cs["state"] == {"running": {"startedAt": "2026-11-30T00:00:01Z"}}
    assert (cs["ready"], cs["started"], cs["restartCount"], cs["containerID"]) == (
        True,
        True,
        0,
        "hollow://42",
    )


def test_running_but_not_ready_until_its_probe_says_so() -> None:
    run = pod("Always", running(container(), ready=False))
    st = status.pod_status(run, "10.32.0.1")
    assert (st["phase"], cond(st, "Ready")) == ("Running", "False")
    assert next(c for c in st["conditions"] if c["type"] == "Ready")["reason"] == "ContainersNotReady"


def test_a_crash_under_always_waits_in_crashloopbackoff_then_restarts_with_growing_backoff() -> None:
    cr = container()
    run = pod("Always", cr)
    assert not exited(run, cr, 3, now=100.0)  # back-off first
    st = status.pod_status(run, "h")
    (cs,) = st["containerStatuses"]
    assert cs["state"] == {"waiting": {"reason": "CrashLoopBackOff"}}
    assert cs["lastState"]["terminated"]["exitCode"] == 3 and cs["ready"] is False
    assert st["phase"] == "Running" and cond(st, "Ready") == "False"
    assert not restarts.after_exit(run, cr, 3, 100.0 + restarts.backoff(0) / 2)
    assert restarts.after_exit(run, cr, 3, 100.0 + restarts.backoff(0))
    assert cr.restart_count == 1 and cr.last_terminated is not None
    assert restarts.backoff(1) == 2 * restarts.backoff(0)
    assert restarts.backoff(50) == restarts.BACKOFF_MAX


def test_restart_policy_decides_the_phase_once_containers_end() -> None:
    ok, bad = container("a"), container("b")
    never = pod("Never", ok, bad)
    exited(never, ok, 0)
    exited(never, bad, 1)
    assert status.phase(never) == "Failed"
    assert status.pod_status(never, "h")["containerStatuses"][1]["state"]["terminated"]["reason"] == "Error"
    done = container()
    on_failure = pod("OnFailure", done)
    assert not exited(on_failure, done, 0)
    assert status.phase(on_failure) == "Succeeded"
    crashed = container()
    on_failure2 = pod("OnFailure", crashed)
    exited(on_failure2, crashed, 1)
    assert status.phase(on_failure2) == "Running"  # it will be restarted
    killed = container()
    exited(pod("Never", killed), killed, -9)
    assert killed.terminated is not None and killed.terminated["exitCode"] == 137


def test_init_containers_restart_only_on_failure_and_hold_the_pod_pending() -> None:
    init = container("init")
    init.init = True
    run = pod("Always", container())
    run.init_containers, run.started = [init], False
    assert not exited(run, init, 0)  # a finished init container is not restarted under Always
    exited(run, init, 1)
    assert init.restart_at is not None
    st = status.pod_status(run, "h")
    assert (st["phase"], cond(st, "Initialized")) == ("Pending", "False")
    assert st["containerStatuses"][0]["state"] == {"waiting": {"reason": "PodInitializing"}}


def test_an_image_it_cannot_run_waits_in_errimagepull_then_imagepullbackoff() -> None:
    cr = container(
        image="nginx", role="unavailable", error='hollow cannot run image "nginx": no command given'
    )
    run = pod("Always", cr)
    st = status.pod_status(run, "h")
    (cs,) = st["containerStatuses"]
    assert cs["state"]["waiting"]["reason"] == "ErrImagePull"
    assert "nginx" in cs["state"]["waiting"]["message"]
    assert (st["phase"], cond(st, "Ready"), cs["ready"], cs["started"]) == ("Pending", "False", False, False)
    cr.pull_backoff = True
    assert status.container_state(run, cr)["state"]["waiting"]["reason"] == "ImagePullBackOff"


def test_a_setup_failure_says_why_on_every_container() -> None:
    run = pod("Always", container())
    run.failed = "address 10.99.0.1 is outside the pod range"
    st = status.pod_status(run, "h")
    assert (st["phase"], st["reason"], st["message"]) == ("Pending", "HollowSetupError", run.failed)
    assert st["containerStatuses"][0]["state"]["waiting"]["reason"] == "CreateContainerError"


def test_transition_times_change_only_with_the_condition() -> None:
    run = pod("Always", running(container(), ready=False))
    first = status.with_transition_times(status.pod_status(run, "h"), None, "T1")
    again = status.with_transition_times(status.pod_status(run, "h"), first, "T2")
    assert {c["lastTransitionTime"] for c in again["conditions"]} == {"T1"}
    run.containers[0].ready = True
    flipped = status.with_transition_times(status.pod_status(run, "h"), again, "T3")
    times = {c["type"]: c["lastTransitionTime"] for c in flipped["conditions"]}
    assert times == {"PodScheduled": "T1", "Initialized": "T1", "ContainersReady": "T3", "Ready": "T3"}
    assert (
        "lastTransitionTime" not in status.pod_status(run, "h")["conditions"][0]
    )  # the pure status has none


@pytest.fixture
def live() -> Any:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    yield proc
    proc.kill()
    proc.wait(timeout=5)


def test_a_probe_result_is_kept_only_for_the_process_it_probed(live: subprocess.Popen[bytes]) -> None:
    cr = running(container(), ready=False)
    cr.proc, cr.probe_running, cr.probe_period = live, True, 10.0
    readiness.record_probe(cr, live, True, now=5.0)
    assert (cr.ready, cr.probe_changed, cr.probe_running, cr.probe_due) == (True, True, False, 15.0)
    cr.probe_changed = False
    other = running(container(), ready=False)
    other.proc = None  # replaced (restarted) since the probe began: the old result is dropped
    readiness.record_probe(other, live, True, now=5.0)
    assert (other.ready, other.probe_changed) == (False, False)
    assert other.probe_due == 5.0 + readiness.EAGER_PERIOD  # still not ready: probe again soon
