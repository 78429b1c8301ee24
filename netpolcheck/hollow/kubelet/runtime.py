"""The API server's PodRuntime: exec into a container, find its log."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

from netpolcheck.hollow.api.runtime import ExecError
from netpolcheck.hollow.kubelet.readiness import nsenter_argv, set_up
from netpolcheck.hollow.kubelet.records import ContainerRun, PodRun


class ContainerRuntime:
    """`find(namespace, name)` returns the pod's run record, or None when it does not run here."""

    def __init__(self, find: Callable[[str, str], PodRun | None]) -> None:
        self._find = find

    def _container(self, namespace: str, pod: str, container: str) -> tuple[PodRun, ContainerRun]:
        run = self._find(namespace, pod)
        if run is None:
            raise ExecError(f'pod "{pod}" in namespace "{namespace}" is not running on a hollow node')
        for cr in run.containers + run.init_containers + run.ephemeral_containers:
            if cr.name == container or not container:
                return run, cr
        raise ExecError(f'container "{container}" not found in pod "{pod}"')

    def exec(
        self, namespace: str, pod: str, container: str, command: list[str], *, stdin: bool, tty: bool
    ) -> subprocess.Popen[bytes]:
        run, cr = self._container(namespace, pod, container)
        if not command:
            raise ExecError("no command given")
        with run.lock:
            if not cr.running() or cr.proc is None or not set_up(cr):
                raise ExecError(f'container "{cr.name}" in pod "{pod}" is not running')
            cr.execs = [p for p in cr.execs if p.poll() is None]
            proc = subprocess.Popen(
                nsenter_argv(cr.proc.pid, [str(a) for a in command]),
                stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT if tty else subprocess.PIPE,
                env=cr.env,
                start_new_session=True,
            )
            cr.execs.append(proc)  # stopped with the pod
        return proc

    def log_path(self, namespace: str, pod: str, container: str, previous: bool = False) -> Path | None:
        try:
            _, cr = self._container(namespace, pod, container)
        except ExecError:
            return None
        if previous:
            return cr.log_path(cr.restart_count - 1) if cr.restart_count > 0 else None
        path = cr.log_path()
        return path if path.exists() else None
