"""The objects of a STATE: namespaces, pods (endpoints inside the pod network), externals, probes."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
PROTOCOLS = ("TCP", "UDP", "SCTP")


@dataclass(frozen=True)
class Namespace:
    name: str
    labels: dict[str, str] = field(default_factory=dict, hash=False)
    annotations: dict[str, str] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class ContainerPort:
    number: int
    protocol: str = "TCP"
    name: str | None = None


@dataclass(frozen=True)
class Pod:
    namespace: str
    name: str
    ip: IPAddress
    labels: dict[str, str] = field(default_factory=dict, hash=False)
    node: str | None = None
    host_network: bool = False
    ports: tuple[ContainerPort, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def named_port(self, name: str, protocol: str) -> int | None:
        """The number of the container port called `name` with this protocol, if the pod has one."""
        for port in self.ports:
            if port.name == name and port.protocol == protocol:
                return port.number
        return None


@dataclass(frozen=True)
class External:
    """A source or destination outside the pod network (reachable only through ipBlock rules)."""

    name: str
    ip: IPAddress

    @property
    def key(self) -> str:
        return self.name


Endpoint = Pod | External


@dataclass(frozen=True)
class Probe:
    """What to probe on every destination: a port number, or a port name resolved per destination pod."""

    port: int | str
    protocol: str = "TCP"

    def label(self) -> str:
        return f"{self.protocol}/{self.port}"

    def resolve(self, destination: Endpoint) -> int | None:
        """The port number probed on `destination`, or None when it has no port of that name."""
        if isinstance(self.port, int):
            return self.port
        if isinstance(destination, Pod):
            return destination.named_port(self.port, self.protocol)
        return None
