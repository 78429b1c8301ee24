"""The run record of a pod and of each of its containers: what the kubelet knows, status derives from.

Every field is read and written under the pod's `PodRun.lock` (the monitor, the pod workers and the
readiness probes all take it), except `stopping`, which is also set under the kubelet's own lock.
"""

from __future__ import annotations

import ipaddress
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netpolcheck.hollow import images


@dataclass
class ContainerRun:
    spec: dict[str, Any]
    program: images.Program
    env: dict[str, str]
    log_dir: Path
    init: bool = False
    ephemeral: bool = False
    proc: subprocess.Popen[bytes] | None = None
    container_id: str = ""  # hollow://PID of the current (or last) process; "" before the first start
    restart_count: int = 0
    started_at: str | None = None
    ready: bool = False
    terminated: dict[str, Any] | None = None  # state.terminated of the current/last run
    last_terminated: dict[str, Any] | None = None
    restart_at: float | None = None  # monotonic time of the next start (back-off)
    ready_scan_offset: int = 0
    setup_done: bool = False
    pull_backoff: bool = False  # an image it cannot run: ErrImagePull first, then ImagePullBackOff
    pull_retry_at: float | None = None  # monotonic time ErrImagePull turns into ImagePullBackOff
    execs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    mounts: list[tuple[str, str]] = field(default_factory=list)  # (directory here, mountPath inside)
    readiness_exec: list[str] | None = None  # readinessProbe.exec.command
    probe_period: float = 10.0
    probe_timeout: float = 1.0
    probe_due: float = 0.0  # monotonic time of the next readiness probe
    probe_running: bool = False
    probe_changed: bool = False  # a probe result flipped `ready` since the monitor last looked

    @property
    def name(self) -> str:
        return str(self.spec["name"])

    @property
    def image_error(self) -> str:
        """Why this container's image cannot run here ("" when it can)."""
        return self.program.error

    def log_path(self, restart: int | None = None) -> Path:
        return self.log_dir / f"{self.restart_count if restart is None else restart}.log"

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


@dataclass
class PodRun:
    namespace: str
    name: str
    uid: str
    node_index: int
    node_name: str
    host_network: bool
    restart_policy: str
    host_pid: bool = False
    netns: str = ""
    ip: ipaddress.IPv4Address | None = None
    own_ip: bool = False
    start_time: str = ""
    containers: list[ContainerRun] = field(default_factory=list)
    init_containers: list[ContainerRun] = field(default_factory=list)
    ephemeral_specs: list[dict[str, Any]] = field(default_factory=list)  # the spec's, latest seen
    ephemeral_containers: list[ContainerRun] = field(default_factory=list)  # started ones
    started: bool = False  # app containers launched (init containers done)
    failed: str | None = None  # setup failure message
    stopping: bool = False
    close_listener: Callable[[], None] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    last_status: dict[str, Any] | None = None  # last computed status, without transition times
    last_written: dict[str, Any] | None = None  # last status written, with them
    pod_dir: Path | None = None
    mount_service_account: bool = True
    service_account_name: str = "default"

    @property
    def hostname(self) -> str:
        """The container's hostname (UTS namespace): the pod's name, the node's for hostNetwork pods."""
        return self.node_name if self.host_network else self.name

    def involved(self) -> dict[str, Any]:
        """The pod as an event's involvedObject."""
        return {
            "kind": "Pod",
            "namespace": self.namespace,
            "name": self.name,
            "uid": self.uid,
            "apiVersion": "v1",
        }
