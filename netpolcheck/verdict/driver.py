"""What the verdict engine needs from a cluster: a small typed Protocol.

The engine talks to a cluster only through `Driver`; `kubedriver.KubeDriver` implements it over
`netpolcheck.kube`, and the unit tests implement it with a simulated dataplane. Every call is
synchronous and bounded: when a method returns, the API server has accepted the change (the engine
then measures how long the dataplane takes to follow; the driver never waits for enforcement).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

# A probe target and a probe result are the probe agent's JSON objects (docs/probe.md):
#   target: {"id", "ip", "port", "protocol"}
#   result: {"id", "verdict", "attempts", "rtt_ms", "evidence", ...}
ProbeTarget = dict[str, Any]
ProbeResult = dict[str, Any]


@dataclass(frozen=True)
class PodSpec:
    """A probe pod the engine asks for: it serves `ports` (number, protocol) and can probe."""

    namespace: str
    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    node: str | None = None  # None: let the scheduler decide
    ports: tuple[tuple[int, str], ...] = ((80, "TCP"), (81, "TCP"), (80, "UDP"), (81, "UDP"))
    host_network: bool = False  # in the node's network namespace, with the node's address


@dataclass(frozen=True)
class ClusterInfo:
    kind: str  # hollow | kind | kops | existing | a test double's name
    kubernetes_version: str
    weave_version: str | None  # the weave-npc image tag the DaemonSet runs, None when there is no Weave
    nodes: tuple[str, ...]


@runtime_checkable
class Driver(Protocol):
    """Cluster operations of the verdict engine. Labels map a key to a value, or to None to remove it."""

    def info(self) -> ClusterInfo: ...

    def create_namespace(self, name: str, labels: Mapping[str, str]) -> None: ...

    def delete_namespace(self, name: str) -> None:
        """Delete and wait until it is gone (its pods with it)."""
        ...

    def label_namespace(self, name: str, labels: Mapping[str, str | None]) -> None: ...

    def create_pods(self, pods: Sequence[PodSpec]) -> None:
        """Create the probe pods and wait until every one is ready (serving) with an IP."""
        ...

    def delete_pod(self, namespace: str, name: str) -> None:
        """Delete and wait until it is gone."""
        ...

    def label_pod(self, namespace: str, name: str, labels: Mapping[str, str | None]) -> None: ...

    def apply_policy(self, namespace: str, manifest: Mapping[str, Any]) -> None:
        """Create or replace the NetworkPolicy `manifest` in `namespace`."""
        ...

    def delete_policy(self, namespace: str, name: str) -> None: ...

    def restart_policy_controller(self) -> None:
        """Restart weave-npc everywhere and wait until its pods run again."""
        ...

    def upgrade_weave(self, version: str) -> None:
        """Roll the weave-net DaemonSet to `version` and wait for the rollout to finish."""
        ...

    def snapshot(self, namespaces: Sequence[str]) -> dict[str, Any]:
        """The STATE document (docs/model.md) of these namespaces: namespaces, pods, policies."""
        ...

    def probe(
        self, namespace: str, pod: str, targets: Sequence[ProbeTarget], timeout: float
    ) -> list[ProbeResult]:
        """Run the probe agent in that pod on `targets`; one result per target, in order."""
        ...

    def hold_start(
        self, namespace: str, pod: str, ip: str, port: int, udp_port: int | None, name: str
    ) -> None:
        """Start the probe agent's `hold` in that pod (docs/probe.md), in the background, named `name`."""
        ...

    def hold_stop(self, namespace: str, pod: str, name: str) -> dict[str, Any]:
        """Stop that hold; its final status (flows with gaps, how it ended)."""
        ...

    def journal(self, namespace: str, pod: str, since: float) -> list[dict[str, Any]]:
        """The serve journal records of that pod since the Unix time `since` (docs/probe.md)."""
        ...

    def blocked_lines(self, since: float) -> list[str]:
        """The policy controller's "blocked by Weave NPC" log lines since the Unix time `since`."""
        ...


@dataclass(frozen=True)
class AgentAnswer:
    """A resident agent's answer to a watch or settle request (docs/probe.md, "The resident agent").

    `document` is the agent's JSON object (`results`, `received_at`, `answered_at`, `watch`, `failure`);
    `sent` and `returned` bracket the exec on this machine's clock (Unix seconds)."""

    document: dict[str, Any]
    sent: float
    returned: float


@dataclass(frozen=True)
class Stagger:
    """How a resident agent watches: each attempt's window, the time between two attempts toward one
    target, and how long silence must last before it counts as `dropped` (docs/probe.md)."""

    timeout: float
    interval: float
    silence: float

    def fields(self) -> dict[str, float]:
        """As fields of a watch or settle request to the agent."""
        return {"timeout": self.timeout, "interval": self.interval, "silence": self.silence}


class NoResidentAgent(RuntimeError):
    """The source pod has no resident agent; the engine probes in rounds instead and says so."""


@runtime_checkable
class ResidentDriver(Driver, Protocol):
    """A driver whose probe pods run the resident agent: staggered watches, settled per cell.

    `shared_clock`: the agent's clock is this machine's (the same kernel: the embedded cluster, kind),
    so its timestamps compare directly; otherwise the engine brackets them with the exec's own times."""

    @property
    def shared_clock(self) -> bool: ...

    def watch(
        self, namespace: str, pod: str, targets: Sequence[ProbeTarget], stagger: Stagger, limit: float
    ) -> AgentAnswer:
        """Start a staggered watch over `targets` in that pod, for at most `limit` seconds; the answer
        holds its id (`watch`). A target with an `interval` of its own is attempted that often instead
        of every `stagger.interval`."""
        ...

    def settle(
        self,
        namespace: str,
        pod: str,
        targets: Sequence[ProbeTarget],
        stagger: Stagger,
        deadline: float,
        watch: str | None,
        confirm: float | None = None,
    ) -> AgentAnswer:
        """Wait (at most `deadline` s) until each target (with `want`: the verdicts that count) shows a
        wanted verdict; targets of `watch` (ids, comma-separated) continue its timeline. With `confirm`,
        the agent then probes every target once more as `probe` does with that window, in the same exec
        (`confirm` in the answer; absent from an agent older than that). Raises NoResidentAgent when the
        pod has none."""
        ...

    def stop_watch(self, namespace: str, pod: str, watch: str) -> None: ...


@runtime_checkable
class TimelineDriver(ResidentDriver, Protocol):
    """A resident driver whose agents also answer `timeline`: every attempt of a watch, target by
    target, as runs of one verdict (how a long step changed each cell, to the watch's interval)."""

    def timeline(self, namespace: str, pod: str, watch: str) -> AgentAnswer:
        """Stop `watch` in that pod and answer its `targets` (each with `id` and `runs`: [verdict,
        first sent, last sent, attempts, evidence]), `started_at`, `ended_at` and `failure`."""
        ...
