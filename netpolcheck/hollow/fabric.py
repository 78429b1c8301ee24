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

import ipaddress
import json
import secrets
import threading

from netpolcheck.hollow import netns
from netpolcheck.hollow.ipam import PodAddresses

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


def overlapping_routes(cidr: ipaddress.IPv4Network) -> list[str]:
    """Routes in any table of the machine's namespace whose destination overlaps `cidr` (default excluded)."""
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
            found.append(f"{route.get('type', 'unicast')} {dst} table {route.get('table', 'main')}")
    return found


class Fabric:
    """Creates and removes the namespaces and links of one cluster; thread-safe for pod add/remove."""

    def __init__(self, prefix: str, addresses: PodAddresses) -> None:
        self.prefix = prefix
        self.addresses = addresses
        self._serial = 0
        self._lock = threading.Lock()
        self.route_added = False

    @property
    def node_count(self) -> int:
        return self.addresses.node_count

    def node_netns(self, node_index: int) -> str:
        return node_netns(self.prefix, node_index)

    def add_unreachable_route(self) -> None:
        """Make the pod range unreachable from the machine; refuse if any route already overlaps it."""
        cidr = self.addresses.pod_cidr
        conflicts = overlapping_routes(cidr)
        if conflicts:
            raise RouteConflict(f"pod range {cidr} overlaps existing route(s): {'; '.join(conflicts)}")
        netns.ip("route", "add", "unreachable", str(cidr))
        self.route_added = True

    def build(self) -> None:
        """Fabric netns plus every node; call add_unreachable_route first."""
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
