"""DaemonSet rollouts as `kubectl rollout status` reads them, observed node by node."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from netpolcheck.kube import fetching, watching
from netpolcheck.kube.connection import KubeApi
from netpolcheck.kube.objects import Obj, ObjectRef


@dataclass(frozen=True)
class RolloutStatus:
    """kubectl's reading of a DaemonSet's status: done, and the message it would print."""

    done: bool
    message: str


def daemonset_status(ds: Obj) -> RolloutStatus:
    """kubectl's daemonSetStatus (rollout_status.go): generation observed, all updated, all available."""
    name = ds["metadata"]["name"]
    strategy = ((ds.get("spec") or {}).get("updateStrategy") or {}).get("type", "RollingUpdate")
    if strategy != "RollingUpdate":
        return RolloutStatus(True, f"rollout status is only available for RollingUpdate (daemon set {name})")
    status = ds.get("status") or {}
    desired = int(status.get("desiredNumberScheduled") or 0)
    if int(ds["metadata"].get("generation") or 0) > int(status.get("observedGeneration") or 0):
        return RolloutStatus(False, f"Waiting for daemon set spec update to be observed (daemon set {name})")
    updated = int(status.get("updatedNumberScheduled") or 0)
    if updated < desired:
        return RolloutStatus(
            False,
            f'Waiting for daemon set "{name}" rollout to finish: {updated} out of {desired} new pods updated',
        )
    available = int(status.get("numberAvailable") or 0)
    if available < desired:
        return RolloutStatus(
            False,
            f'Waiting for daemon set "{name}" rollout to finish: '
            f"{available} of {desired} updated pods available",
        )
    return RolloutStatus(True, f'daemon set "{name}" successfully rolled out')


@dataclass(frozen=True)
class NodePod:
    """What runs on one node: the DaemonSet pod, its container images and whether it is ready."""

    node: str
    pod: str
    images: tuple[tuple[str, str], ...]  # (container, image)
    ready: bool

    def image(self, container: str) -> str | None:
        return dict(self.images).get(container)


@dataclass
class RolloutRecord:
    """What a rollout went through: status messages and, per node, each change of pod/images/readiness."""

    started: float = field(default_factory=time.monotonic)
    messages: list[str] = field(default_factory=list)
    changes: list[tuple[float, NodePod]] = field(default_factory=list)  # (seconds since start, new state)

    def per_node(self) -> dict[str, list[NodePod]]:
        out: dict[str, list[NodePod]] = {}
        for _, state in self.changes:
            out.setdefault(state.node, []).append(state)
        return out


def node_pods(api: KubeApi, ds: Obj) -> dict[str, NodePod]:
    """The DaemonSet's live (not terminating) pods by node."""
    labels = ((ds.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    namespace = ds["metadata"]["namespace"]
    out: dict[str, NodePod] = {}
    for pod in fetching.list_objects(api, "v1", "Pod", namespace, fetching.selector(labels)):
        if pod["metadata"].get("deletionTimestamp"):
            continue
        spec, status = pod.get("spec") or {}, pod.get("status") or {}
        node = spec.get("nodeName") or ""
        ready = any(
            c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or []
        )
        images = tuple((c["name"], c.get("image", "")) for c in spec.get("containers") or [])
        out[node] = NodePod(node, pod["metadata"]["name"], images, ready and status.get("phase") == "Running")
    return out


Progress = Callable[[RolloutStatus, dict[str, NodePod]], None]


def wait_rollout(
    api: KubeApi,
    namespace: str,
    name: str,
    timeout: float = 300.0,
    on_progress: Progress | None = None,
    record: RolloutRecord | None = None,
    since: str | None = None,
) -> RolloutRecord:
    """Watch the DaemonSet until kubectl would call the rollout done; record every status message and,
    per node, every change of pod, images or readiness seen at each DaemonSet write.

    With `since` (the resourceVersion the apply returned) every status the controller wrote after the
    apply is seen, as `kubectl rollout status` sees it; polling would miss short-lived ones.
    `on_progress(status, node_pods)` is called whenever the status message or a node's pod changes."""
    ref = ObjectRef("apps/v1", "DaemonSet", name, namespace)
    rec = record or RolloutRecord()
    last_nodes: dict[str, NodePod] = {}
    last: list[str] = ["(not read yet)"]

    def done(ds: Obj | None) -> bool:
        if ds is None:
            last[0] = f"DaemonSet {namespace}/{name} does not exist"
            return False
        status = daemonset_status(ds)
        nodes = node_pods(api, ds)
        changed = [p for n, p in nodes.items() if last_nodes.get(n) != p]
        now = time.monotonic() - rec.started
        rec.changes.extend((now, p) for p in changed)
        if not rec.messages or rec.messages[-1] != status.message or changed:
            if not rec.messages or rec.messages[-1] != status.message:
                rec.messages.append(status.message)
            if on_progress is not None:
                on_progress(status, nodes)
        last_nodes.clear()
        last_nodes.update(nodes)
        last[0] = (
            status.message
            + "; "
            + ", ".join(
                f"{n}: {p.pod} {'ready' if p.ready else 'not ready'}" for n, p in sorted(nodes.items())
            )
        )
        return status.done

    watching.follow(
        api,
        ref,
        done,
        f"DaemonSet {namespace}/{name} to roll out",
        timeout=timeout,
        since=since,
        describe_last=lambda: last[0],
    )
    return rec
