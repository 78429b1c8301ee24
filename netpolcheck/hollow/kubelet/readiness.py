"""Readiness: when a container counts as set up and ready, and exec readiness probes on their own pool.

A probe runs without the pod's lock (it may take timeoutSeconds) and hands its result back under it,
so the monitor, which reads and clears `probe_changed` under the same lock, never misses a flip.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from netpolcheck.hollow import containers
from netpolcheck.hollow.kubelet.records import ContainerRun, PodRun

READY_MARK = b"READY"
READY_LINE = re.compile(rb"(?:^|\n)READY\b")  # a line starting with READY, as the agents print it
SETUP_MODULE = b"netpolcheck.hollow.container_init"
# until the first success a probe runs this often: a pod becomes Ready soon after its program is
# (Kubernetes would wait periodSeconds; docs/hollow.md)
EAGER_PERIOD = 0.2


def nsenter_argv(pid: int, argv: list[str]) -> list[str]:
    """Run `argv` inside the container of `pid` (its network, mount, UTS and PID namespaces)."""
    if argv and argv[0] in ("python", "python3"):
        argv = [sys.executable, *argv[1:]]
    return ["nsenter", "--target", str(pid), "--net", "--mount", "--uts", "--pid", "--", *argv]


def set_up(cr: ContainerRun) -> bool:
    """The container's namespaces are ready: container_init has exec'd the program."""
    if cr.setup_done:
        return True
    if cr.proc is None:
        return False
    try:
        cmdline = Path(f"/proc/{cr.proc.pid}/cmdline").read_bytes()
    except OSError:
        return False
    # empty while an execve is still loading the image (Popen returns once exec has begun, before
    # container_init's own arguments are in place): not set up yet
    cr.setup_done = bool(cmdline) and SETUP_MODULE not in cmdline
    return cr.setup_done


def looks_ready(cr: ContainerRun) -> bool:
    """Up, and for the probe agent and the router stand-in: READY printed in its log."""
    waits_for_mark = cr.program.role == "weave-router" or (
        cr.program.role == "probe" and "serve" in cr.program.argv
    )
    if not waits_for_mark:
        return True
    start = max(0, cr.ready_scan_offset - len(READY_MARK))  # a mark split across two reads
    try:
        with open(cr.log_path(), "rb") as fh:
            fh.seek(start)
            data = fh.read()
    except OSError:
        return False
    cr.ready_scan_offset = start + len(data)
    return READY_LINE.search(data) is not None


class Prober:
    """Runs exec readiness probes on a small pool."""

    def __init__(self, workers: int = 4) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="kubelet-probe")

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True)

    def maybe_probe(self, run: PodRun, cr: ContainerRun, now: float) -> None:
        """Start a probe if one is due (caller holds `run.lock`)."""
        if cr.readiness_exec is None or cr.probe_running or now < cr.probe_due or cr.proc is None:
            return
        cr.probe_running = True
        self._pool.submit(self._probe, run, cr, cr.proc, list(cr.readiness_exec), dict(cr.env))

    def _probe(
        self,
        run: PodRun,
        cr: ContainerRun,
        proc: subprocess.Popen[bytes],
        argv: list[str],
        env: dict[str, str],
    ) -> None:
        ok = False
        try:
            ok = run_probe(proc.pid, argv, env, cr.probe_timeout)
        finally:
            with run.lock:
                record_probe(cr, proc, ok, time.monotonic())


def run_probe(pid: int, argv: list[str], env: dict[str, str], timeout: float) -> bool:
    """One exec probe in the container of `pid`: exit 0 within `timeout` seconds."""
    check = subprocess.Popen(
        nsenter_argv(pid, argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )
    try:
        return check.wait(timeout=timeout) == 0
    except subprocess.TimeoutExpired:
        containers.stop(check, grace=0, whole_group=True)
        return False


def record_probe(cr: ContainerRun, proc: subprocess.Popen[bytes], ok: bool, now: float) -> None:
    """Hand a probe result back (caller holds the pod's lock). A result for a process that has since
    exited or been replaced is dropped."""
    cr.probe_running = False
    if cr.proc is proc and proc.poll() is None and ok != cr.ready:
        cr.ready = ok
        cr.probe_changed = True
    cr.probe_due = now + (cr.probe_period if cr.ready else min(cr.probe_period, EAGER_PERIOD))
