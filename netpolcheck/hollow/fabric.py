"""The Weave-shaped fabric: a fabric netns with one bridge, node netns with bridge `weave`, pod netns.

Layout for a cluster with prefix P (`hw` + 6 hex digits):
- `P-fab`: bridge `fabric`; the fabric end `P` f k of each node's `vethwe-bridge` is its port.
- `P-nodeK`: bridge `weave` (10.32.0.K/12), port `vethwe-bridge`; ip_forward and
  bridge-nf-call-iptables on, so bridged pod traffic crosses FORWARD as on a Weave node.
- `P-podN`: `eth0` (peer `P` v N is a port of its node's `weave`), the pod IP with the prefix length
  of the pod range (so the only route is the pod range, on-link); no default route.
The machine's own namespace only gets an `unreachable` route for the pod range: nothing can leave.
Links are created directly inside their namespaces, so none ever exists in the machine's namespace.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import os
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from netpolcheck.hollow import netns
from netpolcheck.hollow.ipam import PodAddresses
from netpolcheck.hollow.state import (
    PRIVATE_FILE_MODE,
    REGISTRY_DIR,
    make_private_dir,
    read_registered,
    registered_prefixes,
    write_private,
)

FABRIC_BRIDGE = "fabric"
NODE_BRIDGE = "weave"
ROUTER_PORT = "vethwe-bridge"
PREFIX_LETTERS = "hw"


def new_prefix() -> str:
    return PREFIX_LETTERS + secrets.token_hex(3)


def fabric_netns(prefix: str) -> str:
    return f"{prefix}-fab"


def node_netns(prefix: str, node_index: int) -> str:
    return f"{prefix}-node{node_index}"


def pod_netns(prefix: str, serial: int) -> str:
    return f"{prefix}-pod{serial}"


class RouteConflict(RuntimeError):
    """An existing route of the machine overlaps the pod range."""


# ---- claiming a pod range ------------------------------------------------------------------------
# A cluster's claim on its pod range is its `unreachable` route plus a claim file naming the cluster;
# both are made, checked and removed under one lock, so two `hollow up` on one range cannot both
# pass the overlap check, and a cluster removes the route only while the claim names it.

CLAIMS_DIR = REGISTRY_DIR / "ranges"
CLAIMS_LOCK = REGISTRY_DIR / "ranges.lock"
# where a free range is looked for (the project's ranges are all inside it)
FREE_RANGE_SPACE = ipaddress.IPv4Network("10.0.0.0/8")


@dataclass(frozen=True)
class RangeClaim:
    cidr: str
    prefix: str
    state_dir: str

    def describe(self) -> str:
        return f"hollow cluster {self.prefix}, state dir {self.state_dir}"


@contextlib.contextmanager
def range_lock() -> Iterator[None]:
    """Exclusive flock on /run/netpolcheck-hollow/ranges.lock (root-only; released if we die)."""
    make_private_dir(REGISTRY_DIR)
    fd = os.open(CLAIMS_LOCK, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, PRIVATE_FILE_MODE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _claim_path(cidr: ipaddress.IPv4Network) -> Path:
    return CLAIMS_DIR / f"{cidr.network_address}_{cidr.prefixlen}.json"


def read_claim(cidr: ipaddress.IPv4Network) -> RangeClaim | None:
    try:
        data = json.loads(_claim_path(cidr).read_text())
        return RangeClaim(str(data["cidr"]), str(data["prefix"]), str(data["state_dir"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def claims() -> list[RangeClaim]:
    """Every range claim on this machine (what `claim_pod_range` recorded and nothing released yet)."""
    found = []
    for path in sorted(CLAIMS_DIR.glob("*.json")) if CLAIMS_DIR.is_dir() else []:
        try:
            found.append(read_claim(ipaddress.IPv4Network(path.stem.replace("_", "/"))))
        except ValueError:
            continue
    return [claim for claim in found if claim is not None]


def holder(dst: str) -> RangeClaim | None:
    """The hollow cluster holding the `unreachable` route `dst`: its claim, else (a cluster started
    before claims existed) the /run copy of a cluster.json that records that route."""
    net = ipaddress.IPv4Network(dst, strict=False)
    claim = read_claim(net)
    if claim is not None:
        return claim
    for prefix in registered_prefixes():
        found = read_registered(prefix)
        if found is not None and found[1].route and ipaddress.ip_network(found[1].route, strict=False) == net:
            return RangeClaim(str(net), prefix, str(found[0]))
    return None


def _describe_conflicts(cidr: ipaddress.IPv4Network, conflicts: list[tuple[str, str]]) -> str:
    """`--pod-cidr X overlaps ...: <route> (hollow cluster P, state dir D); a free range: --pod-cidr Y`."""
    parts = []
    for text, dst in conflicts:
        claim = holder(dst) if text.startswith("unreachable ") else None
        parts.append(f"{text} ({claim.describe()})" if claim else text)
    message = f"--pod-cidr {cidr} overlaps existing route(s) of this machine: {'; '.join(parts)}"
    free = free_range(cidr.prefixlen)
    return message + (f"; a free range: --pod-cidr {free}" if free else "; no free range of that size")


def free_range(prefixlen: int) -> ipaddress.IPv4Network | None:
    """The first range of this size in 10.0.0.0/8 that no route of the machine overlaps."""
    if prefixlen < FREE_RANGE_SPACE.prefixlen:
        return None
    taken = [ipaddress.ip_network(dst, strict=False) for _, dst in _overlaps(FREE_RANGE_SPACE)]
    for candidate in FREE_RANGE_SPACE.subnets(new_prefix=prefixlen):
        if not any(candidate.overlaps(t) for t in taken):
            return candidate
    return None


def check_range_free(cidr: ipaddress.IPv4Network) -> None:
    """RouteConflict (saying who holds the range and offering a free one) if any route overlaps it."""
    conflicts = _overlaps(cidr)
    if conflicts:
        raise RouteConflict(_describe_conflicts(cidr, conflicts))


def claim_pod_range(cidr: ipaddress.IPv4Network, prefix: str, state_dir: Path) -> None:
    """Atomically check that no route overlaps `cidr`, add `unreachable cidr` and record the claim."""
    with range_lock():
        check_range_free(cidr)
        netns.ip("route", "add", "unreachable", str(cidr))
        claim = {"cidr": str(cidr), "prefix": prefix, "state_dir": str(state_dir)}
        write_private(_claim_path(cidr), json.dumps(claim) + "\n")


def release_pod_range(cidr: str, prefix: str) -> bool:
    """Remove the `unreachable` route of `cidr` if, and only if, cluster `prefix` holds its claim (a
    cluster that lost the race, or a stale record, never removes another cluster's route)."""
    net = ipaddress.IPv4Network(cidr)
    with range_lock():
        claim = read_claim(net)
        if claim is None or claim.prefix != prefix:
            return False
        out = netns.run(["ip", "-4", "-j", "route", "show", "type", "unreachable"], check=False)
        if any(route.get("dst") in (str(net), str(net.network_address)) for route in json.loads(out or "[]")):
            netns.ip("route", "del", "unreachable", str(net), check=False)
        _claim_path(net).unlink(missing_ok=True)
        return True


def overlapping_routes(cidr: ipaddress.IPv4Network) -> list[str]:
    """Routes in any table of the machine's namespace whose destination overlaps `cidr` (default excluded)."""
    return [text for text, _ in _overlaps(cidr)]


def _overlaps(cidr: ipaddress.IPv4Network) -> list[tuple[str, str]]:
    """(description, destination) of every route overlapping `cidr`."""
    out = netns.run(["ip", "-4", "-j", "route", "show", "table", "all"])
    found = []
    for route in json.loads(out or "[]"):
        dst = route.get("dst", "")
        if dst in ("", "default"):
            continue
        try:
            net = ipaddress.ip_network(dst, strict=False)
        except ValueError:
            continue
        if isinstance(net, ipaddress.IPv4Network) and net.overlaps(cidr):
            found.append((f"{route.get('type', 'unicast')} {dst} table {route.get('table', 'main')}", dst))
    return found


class Fabric:
    """Creates and removes the namespaces and links of one cluster; thread-safe for pod add/remove."""

    def __init__(self, prefix: str, addresses: PodAddresses) -> None:
        self.prefix = prefix
        self.addresses = addresses
        self._serial = 0
        self._lock = threading.Lock()

    @property
    def node_count(self) -> int:
        return self.addresses.node_count

    def node_netns(self, node_index: int) -> str:
        return node_netns(self.prefix, node_index)

    def build(self) -> None:
        """Fabric netns plus every node; claim the pod range (claim_pod_range) first."""
        fab = fabric_netns(self.prefix)
        netns.ip("netns", "add", fab)
        netns.ip_batch(
            ["link set lo up", f"link add {FABRIC_BRIDGE} type bridge", f"link set {FABRIC_BRIDGE} up"], fab
        )
        for k in range(1, self.node_count + 1):
            self._add_node(k)

    def _add_node(self, k: int) -> None:
        fab = fabric_netns(self.prefix)
        node = self.node_netns(k)
        fab_end = f"{self.prefix}f{k}"
        bridge_ip = self.addresses.bridge_ip(k)
        netns.ip("netns", "add", node)
        netns.ip_batch(
            [
                "link set lo up",
                f"link add {NODE_BRIDGE} type bridge",
                f"addr add {bridge_ip}/{self.addresses.prefixlen} dev {NODE_BRIDGE}",
                f"link set {NODE_BRIDGE} up",
                f"link add {ROUTER_PORT} type veth peer name {fab_end} netns {fab}",
                f"link set {ROUTER_PORT} master {NODE_BRIDGE}",
                f"link set {ROUTER_PORT} up",
            ],
            node,
        )
        netns.ip_batch([f"link set {fab_end} master {FABRIC_BRIDGE}", f"link set {fab_end} up"], fab)
        netns.write_sysctl(node, {"net.ipv4.ip_forward": "1", "net.bridge.bridge-nf-call-iptables": "1"})

    def add_pod(self, node_index: int, ip: ipaddress.IPv4Address) -> str:
        """A pod netns with `eth0` on node `node_index`'s bridge holding `ip`; returns the netns name."""
        with self._lock:
            self._serial += 1
            serial = self._serial
        name = pod_netns(self.prefix, serial)
        node_end = f"{self.prefix}v{serial}"
        netns.ip("netns", "add", name)
        try:
            netns.ip_batch(
                [
                    f"link add {node_end} type veth peer name eth0 netns {name}",
                    f"link set {node_end} master {NODE_BRIDGE}",
                    f"link set {node_end} up",
                ],
                self.node_netns(node_index),
            )
            netns.ip_batch(
                ["link set lo up", f"addr add {ip}/{self.addresses.prefixlen} dev eth0", "link set eth0 up"],
                name,
            )
        except Exception:
            self.remove_pod(name)
            raise
        return name

    def remove_pod(self, name: str) -> None:
        """Delete a pod netns (its eth0 and the veth peer on the node go with it)."""
        netns.ip("netns", "del", name, check=False)
