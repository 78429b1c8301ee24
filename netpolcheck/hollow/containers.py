"""Start and stop container processes (each in its own process group, mount namespace and log file)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from netpolcheck.hollow.waits import wait_until

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
            }
        )
    )
    spec.log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(spec.log_path, "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "netpolcheck.hollow.container_init", str(spec.spec_path)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=spec.env,
            start_new_session=True,
            close_fds=True,
        )


def stop(proc: subprocess.Popen[bytes], grace: float = 2.0) -> None:
    """SIGTERM the container's process group, SIGKILL it after `grace` s; reap the main process."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        wait_until(
            lambda: proc.poll() is not None,
            grace,
            f"container pid {proc.pid} to exit on SIGTERM",
            raise_on_timeout=False,
        )
    # children of the group may outlive the main process: kill the whole group
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)
