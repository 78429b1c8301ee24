"""Find and remove orphaned hollow clusters: ones whose state dir (or its cluster.json) is lost.

A cluster is found by the project's unique prefix pattern only (`hw` + 6 hex digits, fabric.py):
- network namespaces named `<prefix>-fab`, `<prefix>-nodeK`, `<prefix>-podN`;
- links in the machine's namespace named `<prefix>fK` / `<prefix>vN` (the fabric never leaves one
  there, but a crash between creating and moving a veth could);
- processes whose environment carries `HOLLOW_CLUSTER=<prefix>` (every process a cluster starts);
- /run/netpolcheck-hollow/<prefix>.json, the mirror of cluster.json (state.py), which names the
  `unreachable` route the cluster added, and /run/netpolcheck-hollow/ranges/, the claims of the ranges
  (fabric.py), which name the cluster holding each route. Routes have no names: only a mirrored or
  claimed route is removed.

It is an orphan when nothing owns it any more: no live daemon, or a live daemon whose state dir no
longer records this prefix (the state dir was removed under it); a cluster still being started by a
live `hollow up` is not. Nothing whose name does not match the pattern is ever touched.
"""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from netpolcheck.hollow import cleanup, fabric, netns
from netpolcheck.hollow.state import ClusterRecord, forget_registered, read_registered, registered_prefixes

PREFIX = re.compile(r"hw[0-9a-f]{6}")
NETNS_NAME = re.compile(r"(hw[0-9a-f]{6})-(?:fab|node\d+|pod\d+)")
LINK_NAME = re.compile(r"(hw[0-9a-f]{6})[fv]\d+")
DAEMON_MODULE = b"netpolcheck.hollow.daemon"


@dataclass
class Orphan:
    prefix: str
    why: str
    netns: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    pids: set[int] = field(default_factory=set)
    route: str | None = None
    daemon_pid: int | None = None
    state_dir: Path | None = None

    def describe(self) -> str:
        parts = [f"{len(self.netns)} netns", f"{len(self.pids)} process(es)"]
        if self.links:
            parts.append(f"{len(self.links)} link(s)")
        if self.route:
            parts.append(f"route unreachable {self.route}")
        return f"{self.prefix} ({self.why}: {', '.join(parts)})"


def _proc_entries() -> list[Path]:
    return [p for p in Path("/proc").iterdir() if p.name.isdigit()]


def tagged_prefixes() -> dict[str, set[int]]:
    """prefix -> PIDs of processes whose environment carries HOLLOW_CLUSTER=<prefix>."""
    found: dict[str, set[int]] = {}
    key = f"{cleanup.CLUSTER_ENV}=".encode()
    for entry in _proc_entries():
        with contextlib.suppress(OSError):
            for item in (entry / "environ").read_bytes().split(b"\0"):
                if item.startswith(key):
                    value = item[len(key) :].decode(errors="replace")
                    if PREFIX.fullmatch(value):
                        found.setdefault(value, set()).add(int(entry.name))
    return found


def daemons() -> dict[str, tuple[int, Path]]:
    """prefix -> (pid, state dir) of every live hollow daemon, from its command line."""
    found: dict[str, tuple[int, Path]] = {}
    for entry in _proc_entries():
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if DAEMON_MODULE not in argv or b"--prefix" not in argv or b"--state-dir" not in argv:
            continue
        try:
            prefix = argv[argv.index(b"--prefix") + 1].decode()
            state_dir = Path(argv[argv.index(b"--state-dir") + 1].decode())
        except (IndexError, UnicodeDecodeError):
            continue
        if PREFIX.fullmatch(prefix) and cleanup.alive(int(entry.name)):
            found[prefix] = (int(entry.name), state_dir)
    return found


def machine_links() -> dict[str, list[str]]:
    """prefix -> names of links in the machine's namespace that carry it."""
    out = netns.run(["ip", "-j", "link", "show"], check=False)
    found: dict[str, list[str]] = {}
    for link in json.loads(out or "[]"):
        match = LINK_NAME.fullmatch(str(link.get("ifname", "")))
        if match:
            found.setdefault(match.group(1), []).append(match.group(0))
    return found


def _owned(prefix: str, daemon: tuple[int, Path] | None) -> bool:
    if daemon is not None:
        record = ClusterRecord.read(daemon[1].resolve())
        return record is not None and record.prefix == prefix
    registered = read_registered(prefix)
    up_pid = registered[1].up_pid if registered else None
    return up_pid is not None and cleanup.alive(up_pid) and _is_hollow_up(up_pid)


def _is_hollow_up(pid: int) -> bool:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"hollow" in argv and b"up" in argv


def find_orphans() -> list[Orphan]:
    """Every cluster matching the prefix pattern that nothing owns any more."""
    by_netns: dict[str, list[str]] = {}
    for name in netns.list_netns():
        match = NETNS_NAME.fullmatch(name)
        if match:
            by_netns.setdefault(match.group(1), []).append(name)
    tagged = tagged_prefixes()
    links = machine_links()
    live = daemons()
    # a claim outlives the mirror only if something removed the mirror alone; its route still blocks
    # every later `up` on the range, so it counts as what is left of a cluster
    claimed = {claim.prefix: claim.cidr for claim in fabric.claims()}
    prefixes = set(by_netns) | set(tagged) | set(links) | set(registered_prefixes()) | set(claimed)
    orphans = []
    for prefix in sorted(p for p in prefixes if PREFIX.fullmatch(p)):
        daemon = live.get(prefix)
        if _owned(prefix, daemon):
            continue
        registered = read_registered(prefix)
        orphan = Orphan(
            prefix=prefix,
            why="state dir lost" if daemon else "daemon dead",
            netns=sorted(by_netns.get(prefix, [])),
            links=links.get(prefix, []),
            pids=tagged.get(prefix, set()),
            route=registered[1].route if registered else claimed.get(prefix),
            daemon_pid=daemon[0] if daemon else None,
            state_dir=registered[0] if registered else (daemon[1] if daemon else None),
        )
        for name in orphan.netns:
            orphan.pids.update(netns.netns_pids(name))
        orphans.append(orphan)
    return orphans


def remove(orphan: Orphan) -> list[str]:
    """Remove one orphan: its daemon and processes (by PID), netns, stray links, route, mirror."""
    removed = cleanup.sweep(orphan.prefix, orphan.route, orphan.daemon_pid)
    for link in orphan.links:
        if LINK_NAME.fullmatch(link):
            netns.ip("link", "del", link, check=False)
    if orphan.links:
        removed.append(f"{len(orphan.links)} link(s)")
    forget_registered(orphan.prefix)
    return removed
