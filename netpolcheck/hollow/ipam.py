"""Addresses in the pod range, laid out like the observed Weave runs.

Node k's bridge `weave` gets the k-th address of the range (10.32.0.k with the default 10.32.0.0/12)
and hands its pods addresses from the k-th /24 of the range (10.32.k.0/24). Block 0 holds only the
bridges. A pod may ask for an exact address (annotation `hollow.netpolcheck.io/ip`) anywhere in the range.
"""

from __future__ import annotations

import ipaddress
import threading

IP_ANNOTATION = "hollow.netpolcheck.io/ip"
MAX_NODES = 16
BLOCK_PREFIX = 24
DEFAULT_POD_CIDR = "10.32.0.0/12"


class AddressError(ValueError):
    """An address request that cannot be met (bad pod range, taken or foreign IP, block full)."""


def parse_pod_cidr(text: str) -> ipaddress.IPv4Network:
    """The pod range; big enough for a /24 block per node plus the bridges' block."""
    try:
        net = ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        raise AddressError(f"--pod-cidr {text!r} is not a network address in CIDR form ({exc})") from None
    if not isinstance(net, ipaddress.IPv4Network):
        raise AddressError(f"--pod-cidr {text!r}: only IPv4 is supported")
    if net.prefixlen > 19:
        raise AddressError(f"--pod-cidr {text!r} is too small: need at least a /19 (a /24 per node)")
    return net


class PodAddresses:
    """Thread-safe allocator of pod IPs for every node of one cluster."""

    def __init__(self, pod_cidr: ipaddress.IPv4Network, node_count: int) -> None:
        if not 1 <= node_count <= MAX_NODES:
            raise AddressError(f"node count {node_count} is not in 1..{MAX_NODES}")
        self.pod_cidr = pod_cidr
        self.node_count = node_count
        self._blocks = list(pod_cidr.subnets(new_prefix=BLOCK_PREFIX))[: node_count + 1]
        self._used: set[ipaddress.IPv4Address] = {self.bridge_ip(k) for k in range(1, node_count + 1)}
        self._lock = threading.Lock()

    @property
    def prefixlen(self) -> int:
        return self.pod_cidr.prefixlen

    def bridge_ip(self, node_index: int) -> ipaddress.IPv4Address:
        """Address of node k's `weave` bridge (1-based k), as Weave's 10.32.0.k."""
        return self.pod_cidr.network_address + node_index

    def block(self, node_index: int) -> ipaddress.IPv4Network:
        return self._blocks[node_index]

    def allocate(self, node_index: int, wanted: str | None = None) -> ipaddress.IPv4Address:
        """An unused IP: `wanted` when given (must be in the pod range), else the next free in the block."""
        with self._lock:
            if wanted:
                try:
                    addr = ipaddress.IPv4Address(wanted)
                except ValueError:
                    raise AddressError(
                        f"annotation {IP_ANNOTATION}={wanted!r} is not an IPv4 address"
                    ) from None
                if addr not in self.pod_cidr or addr in (
                    self.pod_cidr.network_address,
                    self.pod_cidr.broadcast_address,
                ):
                    raise AddressError(f"{IP_ANNOTATION}={wanted} is not a usable address of {self.pod_cidr}")
                if addr in self._used:
                    raise AddressError(f"{IP_ANNOTATION}={wanted} is already in use")
                self._used.add(addr)
                return addr
            for addr in self._blocks[node_index].hosts():
                if addr not in self._used:
                    self._used.add(addr)
                    return addr
            raise AddressError(f"no free address left in {self._blocks[node_index]} for node {node_index}")

    def release(self, addr: ipaddress.IPv4Address) -> None:
        with self._lock:
            self._used.discard(addr)
