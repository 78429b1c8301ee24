"""Set up one container's namespaces, then exec its program.

`python -m netpolcheck.hollow.container_init SPEC.json` (started by the kubelet, one process per
container start): enters the pod's (or node's) network namespace, makes its own mount namespace
(mounts private, so nothing leaks to the machine), mounts a fresh sysfs (so /sys/class/net shows the
pod's links, as `ip netns exec` does), a tmpfs on /run holding the service-account files at
/var/run/secrets/kubernetes.io/serviceaccount/, and for weave-npc containers a tmpfs on /var/log with the
FIFO /var/log/ulogd.pcap and Weave's /etc/ulogd.conf bound over the machine's. Then execs argv with env.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path

from netpolcheck.hollow import netns

MS_RDONLY = 1
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MNT_DETACH = 2
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
CLONE_NEWUTS = 0x04000000
SERVICE_ACCOUNT_DIR = "/run/secrets/kubernetes.io/serviceaccount"
ULOGD_FIFO = "/var/log/ulogd.pcap"
ULOGD_CONF = "/etc/ulogd.conf"


def enter(spec: dict[str, object]) -> None:
    fd = os.open(f"/run/netns/{spec['netns']}", os.O_RDONLY)
    try:
        netns.setns(fd, netns.CLONE_NEWNET)
    finally:
        os.close(fd)
    netns.unshare(netns.CLONE_NEWNS | CLONE_NEWUTS)
    if spec.get("hostname"):
        socket.sethostname(str(spec["hostname"]))
    netns.mount("none", "/", None, MS_REC | MS_PRIVATE)
    if spec.get("own_pids"):
        # only this PID namespace's processes, and the pod's network namespace under /proc/net
        netns.mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    netns.umount2("/sys", MNT_DETACH)
    netns.mount("sysfs", "/sys", "sysfs", 0)
    netns.mount("tmpfs", "/run", "tmpfs", 0, "mode=0755,size=16m")
    service_account = dict(spec["service_account"])  # type: ignore[call-overload]
    if service_account:
        sa_dir = Path(SERVICE_ACCOUNT_DIR)
        sa_dir.mkdir(parents=True)
        for name, content in service_account.items():
            (sa_dir / name).write_text(content)
    if spec.get("ulogd_conf"):
        netns.mount("tmpfs", "/var/log", "tmpfs", 0, "mode=0755,size=16m")
        os.mkfifo(ULOGD_FIFO, 0o600)
        netns.mount(str(spec["ulogd_conf"]), ULOGD_CONF, None, MS_BIND)
    mounts = [(str(source), str(target)) for source, target in spec.get("mounts") or []]  # type: ignore[attr-defined]
    if mounts:
        search_path = str(dict(spec["env"]).get("PATH", ""))  # type: ignore[call-overload]
        argv = [str(a) for a in spec["argv"]]  # type: ignore[attr-defined]
        mount_volumes(mounts, runtime_paths(argv, search_path))
    os.chdir("/")


# The machine's file system as it was before any volume was mounted, on this container's own /run.
HOST_VIEW = "/run/hollow-host"


def runtime_paths(argv: list[str], search_path: str = "") -> list[str]:
    """What the container's program needs from the machine: the interpreter and its environment, the
    project's package, the program's directory, the directories of its PATH (the busybox stand-ins live
    in the state dir). A volume mounted over a parent of one of them (the pod's own /tmp, or an emptyDir
    there, while the checkout, its venv or the state dir lives under /tmp) must not hide it."""
    import netpolcheck

    paths = {sys.prefix, sys.base_prefix, str(Path(netpolcheck.__file__).resolve().parents[1])}
    if os.path.isabs(argv[0]):
        paths.add(os.path.dirname(argv[0]))
    paths.update(p for p in search_path.split(":") if os.path.isabs(p) and os.path.isdir(p))
    return sorted({os.path.realpath(p) for p in paths})


def mount_volumes(mounts: list[tuple[str, str]], keep: list[str]) -> None:
    """Bind each emptyDir, then bind back any path of `keep` that a volume now hides."""
    os.makedirs(HOST_VIEW)
    netns.mount("/", HOST_VIEW, None, MS_BIND | MS_REC)
    targets = [Path(os.path.realpath(target)) for _, target in mounts]
    for source, target in mounts:
        # from the saved view: an earlier volume may hide the source's own path
        mount_volume(HOST_VIEW + os.path.realpath(source), target)
    for path in keep:
        if any(t == Path(path) or t in Path(path).parents for t in targets):
            os.makedirs(path, exist_ok=True)  # inside the volume: this pod's own directory
            netns.mount(HOST_VIEW + path, path, None, MS_BIND | MS_REC)


def mount_volume(source: str, target: str) -> None:
    """Bind an emptyDir over `target`. A missing mount point is made only on this container's own tmpfs
    (/run, /var/run); elsewhere it would be made on the machine's file system, so it is refused."""
    path = Path(target)
    if not path.exists():
        real = Path(os.path.realpath(path.parent))
        if real != Path("/run") and Path("/run") not in real.parents:
            raise OSError(f"volume mount point {target} does not exist (only paths under /run are created)")
        path.mkdir(parents=True)
    netns.mount(source, target, None, MS_BIND | MS_REC)


def main(argv: list[str]) -> int:
    spec = json.loads(Path(argv[1]).read_text())
    try:
        enter(spec)
    except OSError as exc:
        print(f"hollow container setup failed: {exc}", file=sys.stderr, flush=True)
        return 126
    command = [str(a) for a in spec["argv"]]
    env = {str(k): str(v) for k, v in dict(spec["env"]).items()}
    try:
        os.execvpe(command[0], command, env)
    except OSError as exc:
        print(f"hollow: cannot run {command[0]!r}: {exc}", file=sys.stderr, flush=True)
        return 127
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv))
