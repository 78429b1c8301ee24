"""`netpolcheck hollow up|down|status`: start, stop and inspect the embedded cluster."""

from __future__ import annotations

import argparse
import base64
import contextlib
import ipaddress
import json
import os
import shutil
import signal
import ssl
import stat
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import yaml

from netpolcheck.errors import UsageError
from netpolcheck.hollow import cleanup, orphans, privilege
from netpolcheck.hollow.fabric import RouteConflict, check_range_free, claim_pod_range, new_prefix
from netpolcheck.hollow.images import NPC_NONE, NPC_REFERENCE, WEAVE_NONE, parse_npc_binary
from netpolcheck.hollow.ipam import DEFAULT_POD_CIDR, MAX_NODES, AddressError, parse_pod_cidr
from netpolcheck.hollow.state import KUBECONFIG_FILE, PRIVATE_UMASK, ClusterRecord, remove_record
from netpolcheck.hollow.waits import WaitTimeout, wait_until
from netpolcheck.hollow.weave_router import parse_version

DEFAULT_STATE_DIR = ".hollow"
REQUIRED_TOOLS = ("ip", "iptables", "ipset", "nsenter")
ULOGD = "/usr/sbin/ulogd"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "hollow",
        help="the embedded cluster (netns kubelet, HTTPS API server)",
        description="The embedded cluster: nodes and pods are network namespaces, containers are processes, "
        "a real HTTPS API server serves kubectl and the Kubernetes client. Needs root, no Docker.",
    )
    sub = parser.add_subparsers(dest="hollow_command", metavar="ACTION")
    sub.required = True
    up = sub.add_parser(
        "up",
        help="start a cluster; returns when its API answers",
        description="Start a cluster in the background and return when its API answers; "
        "then `export KUBECONFIG=STATE_DIR/kubeconfig`.",
    )
    up.add_argument("--nodes", type=int, default=3, help=f"number of nodes, 1..{MAX_NODES} (default 3)")
    up.add_argument(
        "--state-dir",
        default=DEFAULT_STATE_DIR,
        help="where kubeconfig, logs and cluster.json (what was created, for cleanup) go",
    )
    up.add_argument(
        "--npc",
        default=NPC_REFERENCE,
        help="policy controller run as the weave-npc container of the weave-net DaemonSet: reference "
        "(python -m netpolcheck.npc, the default), none (no weave-net DaemonSet), or the PATH of an "
        "executable such as a real weave-npc",
    )
    up.add_argument(
        "--weave-version",
        default="2.8.1",
        help="image tag of the built-in weave-net DaemonSet (the router hooks and the reference controller "
        "follow it), or none: no DaemonSet (install one from manifests/weave/ through the API)",
    )
    up.add_argument(
        "--pod-cidr",
        default=DEFAULT_POD_CIDR,
        help="pod range (default %(default)s, Weave's IPALLOC_RANGE); refused if it overlaps a route "
        "of this machine",
    )
    up.add_argument(
        "--weave-npc-binary",
        action="append",
        default=[],
        metavar="VERSION=PATH",
        help="run PATH for weave-npc containers of image tag VERSION (repeatable; other tags: --npc)",
    )
    up.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the API (default 60)")
    up.set_defaults(func=cmd_up)
    down = sub.add_parser(
        "down",
        help="remove everything the cluster created (idempotent)",
        description="Remove everything the cluster recorded in the state dir created; "
        "also after a crash or kill -9.",
    )
    down.add_argument(
        "--state-dir", default=DEFAULT_STATE_DIR, help="the state dir `hollow up` was given"
    )
    down.add_argument(
        "--orphans",
        action="store_true",
        help="instead: remove every hollow cluster whose state dir or cluster.json is lost and whose "
        "daemon is dead or lost it (found by the hw+6-hex prefix; live clusters are left alone)",
    )
    down.set_defaults(func=cmd_down)
    status = sub.add_parser(
        "status",
        help="show the cluster recorded in the state dir",
        description="Show the cluster recorded in the state dir; exits 1 unless its API answers.",
    )
    status.add_argument(
        "--state-dir", default=DEFAULT_STATE_DIR, help="the state dir `hollow up` was given"
    )
    status.set_defaults(func=cmd_status)


def daemon_alive(record: ClusterRecord) -> bool:
    pid = record.daemon_pid
    return pid is not None and cleanup.alive(pid) and pid in cleanup.cluster_processes(record.prefix)


def check_environment() -> None:
    if missing := privilege.missing_capabilities():
        raise UsageError(
            "hollow up needs root (it creates network namespaces; "
            f"missing {', '.join(missing)}); run it as root"
        )
    for tool in REQUIRED_TOOLS:
        if shutil.which(tool) is None:
            raise UsageError(
                f"hollow up needs `{tool}` on PATH (Debian: iproute2, iptables, ipset, util-linux)"
            )
    if not os.access(ULOGD, os.X_OK):
        raise UsageError(f"hollow up needs {ULOGD} (Debian packages ulogd2 and ulogd2-pcap)")


def check_options(args: argparse.Namespace) -> None:
    if not 1 <= args.nodes <= MAX_NODES:
        raise UsageError(f"--nodes {args.nodes} is not in 1..{MAX_NODES}")
    if args.npc not in (NPC_NONE, NPC_REFERENCE):
        path = Path(args.npc)
        if not path.is_file() or not os.access(path, os.X_OK):
            raise UsageError(f"--npc {args.npc!r} is neither none, reference nor an executable file")
        args.npc = str(path.resolve())
    try:
        if args.weave_version != WEAVE_NONE:
            parse_version(args.weave_version)
    except ValueError as exc:
        raise UsageError(f"--weave-version: {exc}") from None
    binaries = []
    for value in args.weave_npc_binary:
        try:
            tag, program = parse_npc_binary(value)
        except ValueError as exc:
            raise UsageError(f"--weave-npc-binary: {exc}") from None
        if not Path(program).is_file() or not os.access(program, os.X_OK):
            raise UsageError(f"--weave-npc-binary {value!r}: {program} is not an executable file")
        binaries.append(f"{tag}={Path(program).resolve()}")
    args.weave_npc_binary = binaries
    try:
        parse_pod_cidr(args.pod_cidr)
    except AddressError as exc:
        raise UsageError(str(exc)) from None
    if args.timeout <= 0:
        raise UsageError("--timeout must be positive")


def check_pod_range_free(pod_cidr: str) -> None:
    try:
        check_range_free(parse_pod_cidr(pod_cidr))
    except RouteConflict as exc:
        raise UsageError(str(exc)) from None


def claim_range(record: ClusterRecord, state_dir: Path, created_dir: bool) -> None:
    """Claim the pod range for this cluster; losing a race to another `up` is the one-line overlap
    error, with nothing left behind (this run created no route, so it removes none)."""
    try:
        claim_pod_range(parse_pod_cidr(record.pod_cidr), record.prefix, state_dir)
    except RouteConflict as exc:
        remove_record(state_dir)
        if created_dir:
            with contextlib.suppress(OSError):
                state_dir.rmdir()
        raise UsageError(str(exc)) from None


def clean_leftovers(state_dir: Path) -> None:
    """A cluster.json without a live daemon: a crash or kill -9; remove what it left."""
    record = ClusterRecord.read(state_dir)
    if record is None:
        return
    if daemon_alive(record):
        raise UsageError(
            f"state dir {state_dir} is busy: hollow cluster {record.prefix} is running "
            f"(daemon pid {record.daemon_pid}); run `netpolcheck hollow down --state-dir {state_dir}`"
        )
    removed = cleanup.sweep(record.prefix, record.route)
    remove_record(state_dir)
    if removed:
        print(f"cleaned leftovers of crashed cluster {record.prefix}: {', '.join(removed)}", file=sys.stderr)


def reclaim_range_from_dead_clusters(pod_cidr: str) -> list[orphans.Orphan]:
    """Remove every orphan whose daemon is dead and whose route overlaps the range asked for; returns
    the orphans left (for `warn_about_orphans`).

    Nobody can stop such a cluster any more (a `kill -9` of the run, a CI job killed with its process
    group); leaving it would make every later run on the range wait and fail. Live clusters and
    clusters still being started are not orphans and are never touched here.
    """
    wanted = parse_pod_cidr(pod_cidr)
    left = []
    for orphan in orphans.find_orphans():
        dead = orphan.daemon_pid is None and orphan.route
        if not dead or not ipaddress.IPv4Network(str(orphan.route)).overlaps(wanted):
            left.append(orphan)
            continue
        removed = orphans.remove(orphan)
        print(
            f"netpolcheck: removed dead hollow cluster {orphan.prefix}, which held {orphan.route}: "
            f"{', '.join(removed) or 'nothing left'}",
            file=sys.stderr,
        )
    return left


def stop_on_termination() -> list[str]:
    """Record SIGTERM and SIGHUP (by name, in the returned list) instead of dying of them, so `up` can
    remove the half-made cluster: its daemon is detached and would outlive a killed `up`."""
    received: list[str] = []

    def note(signum: int, _frame: object) -> None:
        received.append(signal.Signals(signum).name)

    for signum in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(signum) is signal.SIG_DFL:
            signal.signal(signum, note)
    return received


def warn_about_orphans(found: list[orphans.Orphan]) -> None:
    if found:
        print(
            f"netpolcheck: warning: {len(found)} orphaned hollow cluster(s) on this machine: "
            f"{'; '.join(o.describe() for o in found)}; remove them with `netpolcheck hollow down --orphans`",
            file=sys.stderr,
        )


def api_answers(kubeconfig: Path) -> bool:
    """GET /version with the kubeconfig's CA and token answers 200."""
    try:
        config = yaml.safe_load(kubeconfig.read_text())
        cluster = config["clusters"][0]["cluster"]
        token = config["users"][0]["user"]["token"]
        ctx = ssl.create_default_context(
            cadata=base64.b64decode(cluster["certificate-authority-data"]).decode()
        )
        request = urllib.request.Request(
            cluster["server"] + "/version", headers={"Authorization": f"Bearer {token}"}
        )
        with urllib.request.urlopen(request, context=ctx, timeout=2) as response:
            return response.status == 200 and "gitVersion" in json.loads(response.read())
    except (OSError, ValueError, KeyError, TypeError, yaml.YAMLError):
        return False


def check_state_dir_private(state_dir: Path) -> None:
    """An existing state dir must be root's alone: it will hold bearer tokens."""
    if not state_dir.exists():
        return
    if not state_dir.is_dir():
        raise UsageError(f"--state-dir {state_dir} exists and is not a directory")
    info = state_dir.stat()
    if info.st_uid != os.geteuid() or info.st_mode & 0o077:
        raise UsageError(
            f"--state-dir {state_dir} is not private (owner uid {info.st_uid}, mode "
            f"{stat.S_IMODE(info.st_mode):04o}); it will hold API tokens: remove it or choose a new directory"
        )


def cmd_up(args: argparse.Namespace) -> int:
    check_environment()
    os.umask(PRIVATE_UMASK)  # everything up and the daemon create is private to root from the start
    state_dir = Path(args.state_dir).resolve()
    check_state_dir_private(state_dir)
    check_options(args)
    clean_leftovers(state_dir)
    left = reclaim_range_from_dead_clusters(args.pod_cidr)
    check_pod_range_free(args.pod_cidr)  # the common case, before anything is created
    started = time.monotonic()
    created_dir = not state_dir.exists()
    record = ClusterRecord(
        prefix=new_prefix(),
        pod_cidr=args.pod_cidr,
        nodes=args.nodes,
        npc=args.npc,
        weave_version=args.weave_version,
        up_pid=os.getpid(),
        route=args.pod_cidr,  # recorded first; only ever removed while our claim names it
    )
    record.write(state_dir)
    claim_range(record, state_dir, created_dir)
    stopped = stop_on_termination()  # from here on a SIGTERM or SIGHUP removes what was made
    warn_about_orphans(left)  # after every refusal: bad input is one line, even with orphans around
    env = dict(os.environ, **{cleanup.CLUSTER_ENV: record.prefix})
    with open(state_dir / "daemon.log", "ab") as log:
        daemon = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "netpolcheck.hollow.daemon",
                "--state-dir",
                str(state_dir),
                "--prefix",
                record.prefix,
                "--nodes",
                str(args.nodes),
                "--npc",
                args.npc,
                "--weave-version",
                args.weave_version,
                "--pod-cidr",
                args.pod_cidr,
                "--range-claimed",
                *(f"--weave-npc-binary={b}" for b in args.weave_npc_binary),
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    kubeconfig = state_dir / KUBECONFIG_FILE

    def ready() -> bool:
        if daemon.poll() is not None or stopped:
            return True
        current = ClusterRecord.read(state_dir)
        return current is not None and current.status == "running" and api_answers(kubeconfig)

    try:
        wait_until(
            ready,
            args.timeout,
            f"the hollow daemon (pid {daemon.pid}) to write {kubeconfig} and its API to answer GET /version",
            interval=0.05,
        )
        failed = daemon.poll() is not None or bool(stopped)
        reason = f"the hollow daemon exited with {daemon.returncode}" if failed else ""
        if stopped:
            reason = f"stopped by {stopped[0]}"
    except WaitTimeout as exc:
        failed, reason = True, str(exc)
    except KeyboardInterrupt:
        failed, reason = True, "interrupted"
    if failed:
        latest = ClusterRecord.read(state_dir) or record  # the daemon records the route it added
        cleanup.sweep(record.prefix, latest.route, daemon.pid)
        with contextlib.suppress(subprocess.TimeoutExpired):
            daemon.wait(timeout=5)
        remove_record(state_dir)
        tail = (state_dir / "daemon.log").read_text(errors="replace").splitlines()[-15:]
        print(
            f"netpolcheck: hollow up failed: {reason}; cleaned up. Last lines of {state_dir}/daemon.log:",
            file=sys.stderr,
        )
        for line in tail:
            print(f"  {line}", file=sys.stderr)
        return 1
    record = ClusterRecord.read(state_dir) or record
    print(
        f"hollow cluster {record.prefix} up in {time.monotonic() - started:.2f} s: {args.nodes} node(s), "
        f"API {record.server}"
    )
    print(f"export KUBECONFIG={kubeconfig}")
    return 0


def cmd_down_orphans() -> int:
    if missing := privilege.missing_capabilities():
        raise UsageError(
            "hollow down --orphans needs root (it removes network namespaces; "
            f"missing {', '.join(missing)}); run it as root"
        )
    found = orphans.find_orphans()
    if not found:
        print("no orphaned hollow clusters")
        return 0
    for orphan in found:
        removed = orphans.remove(orphan)
        print(f"removed orphaned hollow cluster {orphan.describe()}: {', '.join(removed) or 'nothing left'}")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    if args.orphans:
        return cmd_down_orphans()
    state_dir = Path(args.state_dir).resolve()
    record = ClusterRecord.read(state_dir)
    if record is None:
        print(f"no hollow cluster recorded in {state_dir}; nothing to do")
        return 0
    removed = cleanup.sweep(record.prefix, record.route, record.daemon_pid)
    remove_record(state_dir)
    print(f"hollow cluster {record.prefix} down" + (f" (removed {', '.join(removed)})" if removed else ""))
    return 0


def process_name(pid: int, width: int = 60) -> str:
    """The command line of a process, shortened: the program by its name, not its path (a virtualenv's
    interpreter path alone can fill the width), then as many arguments as fit."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
    except OSError:
        return "gone"
    words = [Path(argv[0].decode(errors="replace")).name, *(a.decode(errors="replace") for a in argv[1:])]
    text = " ".join(words).strip() or "?"
    return text if len(text) <= width else text[: width - 3] + "..."


def cmd_status(args: argparse.Namespace) -> int:
    state_dir = Path(args.state_dir).resolve()
    record = ClusterRecord.read(state_dir)
    if record is None:
        print(f"no hollow cluster recorded in {state_dir}")
        return 1
    alive = daemon_alive(record)
    answers = alive and api_answers(state_dir / KUBECONFIG_FILE)
    print(f"cluster   {record.prefix} ({'running' if alive else 'NOT running: run hollow down'})")
    if not alive:  # what a dead daemon left behind (still running, still holding addresses)
        pids = sorted(cleanup.cluster_processes(record.prefix))
        names = cleanup.cluster_netns(record.prefix)
        shown = ", ".join(f"{pid} ({process_name(pid)})" for pid in pids[:10])
        more = f" and {len(pids) - 10} more" if len(pids) > 10 else ""
        print(f"left      {len(pids)} process(es) still running{': ' + shown + more if pids else ''}")
        print(f"          {len(names)} network namespace(s){': ' + ', '.join(names) if names else ''}")
    print(
        f"daemon    pid {record.daemon_pid}, API {record.server} "
        f"{'answers' if answers else 'does not answer'}"
    )
    print(f"nodes     {', '.join(record.node_names) or '-'}; pod range {record.pod_cidr}")
    print(f"npc       {record.npc}; weave {record.weave_version}")
    print(f"kubeconfig {state_dir / KUBECONFIG_FILE}")
    return 0 if answers else 1
