"""Remove everything one cluster created, found by its prefix: processes, netns (links go with them), route.

Used by the daemon's own teardown and by `hollow down` / `hollow up` after a crash or `kill -9`.
Processes are found by PID only: those whose environment carries HOLLOW_CLUSTER=<prefix> (every
process the cluster starts gets it) and those inside the cluster's namespaces.
"""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

from netpolcheck.hollow import netns
from netpolcheck.hollow.fabric import release_pod_range
from netpolcheck.hollow.waits import wait_until

CLUSTER_ENV = "HOLLOW_CLUSTER"


def cluster_processes(prefix: str) -> set[int]:
    """PIDs of processes tagged with this cluster's prefix or living in its namespaces."""
    marker = f"{CLUSTER_ENV}={prefix}".encode()
    pids: set[int] = set()
    me = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        with contextlib.suppress(OSError):
            if marker in (entry / "environ").read_bytes().split(b"\0"):
                pids.add(int(entry.name))
    for name in cluster_netns(prefix):
        pids.update(netns.netns_pids(name))
    pids.discard(me)
    return pids


def cluster_netns(prefix: str) -> list[str]:
    return [n for n in netns.list_netns() if n.startswith(prefix + "-")]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie is gone for our purposes
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    return False


def stop_pids(pids: set[int], grace: float = 3.0) -> None:
    """SIGTERM, wait up to `grace` seconds, then SIGKILL what is left; bounded."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    wait_until(
        lambda: not any(alive(p) for p in pids),
        grace,
        "cluster processes to exit after SIGTERM",
        raise_on_timeout=False,
    )
    for pid in pids:
        if alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    wait_until(
        lambda: not any(alive(p) for p in pids),
        5.0,
        "cluster processes to exit after SIGKILL",
        raise_on_timeout=False,
    )


def sweep(prefix: str, route: str | None, daemon_pid: int | None = None) -> list[str]:
    """Remove all of one cluster; idempotent. `route`: the pod range whose `unreachable` route the
    cluster may hold (removed only if its claim names `prefix`; None: none). Returns a list of what
    was removed (for messages)."""
    removed: list[str] = []
    if daemon_pid and alive(daemon_pid) and daemon_pid in cluster_processes(prefix):
        # orderly teardown first; the daemon removes its own things on SIGTERM
        with contextlib.suppress(ProcessLookupError):
            os.kill(daemon_pid, signal.SIGTERM)
        wait_until(
            lambda: not alive(daemon_pid),
            20.0,
            f"hollow daemon (pid {daemon_pid}) to tear down",
            raise_on_timeout=False,
        )
        if alive(daemon_pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(daemon_pid, signal.SIGKILL)
        removed.append(f"daemon pid {daemon_pid}")
    pids = cluster_processes(prefix)
    if pids:
        stop_pids(pids)
        removed.append(f"{len(pids)} process(es)")
    names = cluster_netns(prefix)
    for name in names:
        netns.ip("netns", "del", name, check=False)
    if names:
        removed.append(f"{len(names)} network namespace(s)")
    if route and release_pod_range(route, prefix):  # only while this cluster holds the range's claim
        removed.append(f"route unreachable {route}")
    return removed
