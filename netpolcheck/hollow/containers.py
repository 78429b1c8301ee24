"""Start and stop container processes.

Each container gets its own process group, mount namespace, UTS namespace (hostname) and log file, and
unless the pod has hostPID its own PID namespace: the program is PID 1 there, sees a fresh /proc with
only its own processes, and everything it started dies with it, as in a Kubernetes container.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from netpolcheck.hollow import netns
from netpolcheck.hollow.waits import wait_until

CLONE_NEWPID = 0x20000000

CONTAINER_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def ulogd_plugin_dir() -> Path:
    for candidate in (
        Path("/usr/lib/x86_64-linux-gnu/ulogd"),
        Path("/usr/lib/aarch64-linux-gnu/ulogd"),
        Path("/usr/lib/ulogd"),
    ):
        if (candidate / "ulogd_output_PCAP.so").exists():
            return candidate
    return Path("/usr/lib/ulogd")


def weave_ulogd_conf() -> str:
    """/etc/ulogd.conf as Weave's weave-npc image has it: NFLOG group 86 -> pcap into the FIFO."""
    plugins = ulogd_plugin_dir()
    return "\n".join(
        [
            "[global]",
            'logfile="stdout"',
            "loglevel=3",
            f'plugin="{plugins}/ulogd_inppkt_NFLOG.so"',
            f'plugin="{plugins}/ulogd_raw2packet_BASE.so"',
            f'plugin="{plugins}/ulogd_output_PCAP.so"',
            "stack=log1:NFLOG,base1:BASE,pcap1:PCAP",
            "",
            "[log1]",
            "group=86",
            "",
            "[pcap1]",
            'file="/var/log/ulogd.pcap"',
            "sync=1",
            "",
        ]
    )


@dataclass(frozen=True)
class LaunchSpec:
    netns: str
    argv: list[str]
    env: dict[str, str]
    service_account: dict[str, str]  # file name -> content
    log_path: Path
    spec_path: Path
    ulogd_conf: Path | None = None
    mounts: list[tuple[str, str]] = field(default_factory=list)  # (directory here, path inside)
    hostname: str = ""  # the container's UTS namespace gets this name (the pod's, or the node's)
    own_pids: bool = True  # its own PID namespace (False for hostPID pods)


@contextlib.contextmanager
def pid_namespace_for_next_child() -> Iterator[None]:
    """The next process this thread starts is PID 1 of a new PID namespace.

    unshare(CLONE_NEWPID) changes only the calling thread's namespace for children; setns back to the
    thread's own namespace afterwards, so later children of this thread are ordinary again.
    """
    netns.unshare(CLONE_NEWPID)
    try:
        yield
    finally:
        fd = os.open("/proc/thread-self/ns/pid", os.O_RDONLY)
        try:
            netns.setns(fd, CLONE_NEWPID)
        finally:
            os.close(fd)


def launch(spec: LaunchSpec) -> subprocess.Popen[bytes]:
    """Start the container (setup via container_init, then exec); stdout+stderr go to its log file."""
    spec.spec_path.parent.mkdir(parents=True, exist_ok=True)
    spec.spec_path.write_text(
        json.dumps(
            {
                "netns": spec.netns,
                "argv": spec.argv,
                "env": spec.env,
                "service_account": spec.service_account,
                "ulogd_conf": str(spec.ulogd_conf) if spec.ulogd_conf else None,
                "mounts": spec.mounts,
                "hostname": spec.hostname,
                "own_pids": spec.own_pids,
            }
        )
    )
    spec.log_path.parent.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "netpolcheck.hollow.container_init", str(spec.spec_path)]
    with open(spec.log_path, "ab") as log:
        namespace = pid_namespace_for_next_child() if spec.own_pids else contextlib.nullcontext()
        with namespace:
            return subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=spec.env,
                start_new_session=True,
                close_fds=True,
            )


def stop(proc: subprocess.Popen[bytes], grace: float = 2.0, *, whole_group: bool = False) -> None:
    """SIGTERM the container's main process, SIGKILL its process group after it exits or `grace` s.

    As a Kubernetes runtime does, only the main process is asked to stop: its children (an `iptables`
    the program is running, say) finish undisturbed until it exits. With its own PID namespace the
    program is PID 1, whose exit kills everything else in the namespace; the group SIGKILL afterwards
    covers hostPID containers. `whole_group` signals the group at once (an exec session, which has no
    main process of its own to stop it).
    """
    stop_all([proc], grace, whole_group=whole_group)


def stop_all(procs: list[subprocess.Popen[bytes]], grace: float = 2.0, *, whole_group: bool = False) -> None:
    """`stop` for several containers at once: all are asked together and share one grace period."""
    for proc in procs:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                if whole_group:
                    os.killpg(proc.pid, signal.SIGTERM)
                else:
                    proc.send_signal(signal.SIGTERM)
    wait_until(
        lambda: all(proc.poll() is not None for proc in procs),
        grace,
        f"container pids {[proc.pid for proc in procs]} to exit on SIGTERM",
        raise_on_timeout=False,
    )
    for proc in procs:
        # children of the group may outlive the main process: kill the whole group
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
