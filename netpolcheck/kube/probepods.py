"""Probe pods from manifests/probe/pod.yaml, placed on chosen nodes, ready when the agent is."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kubernetes.client.exceptions import ApiException

from netpolcheck.kube import creating, fetching
from netpolcheck.kube.connection import KubeApi
from netpolcheck.kube.objects import Obj, ObjectRef, load_file
from netpolcheck.kube.paths import PROBE_POD
from netpolcheck.kube.waiting import wait_for

DEFAULT_PROBE_IMAGE = "netpolcheck-probe:0.1.0"
CONTROL_PLANE_TAINTS = ("node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/master")


@dataclass(frozen=True)
class PodSpec:
    """A probe pod to create: namespace, name, node (None: the scheduler decides), extra labels, and
    whether it runs in its node's network namespace (it then serves on the node's ports 80 and 81)."""

    namespace: str
    name: str
    node: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    host_network: bool = False


@dataclass(frozen=True)
class ProbePod:
    """A running probe pod: where it is and its IP."""

    namespace: str
    name: str
    node: str
    ip: str
    labels: Mapping[str, str]

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"


def probe_pod_manifest(spec: PodSpec, image: str = DEFAULT_PROBE_IMAGE) -> Obj:
    """The template with its placeholders filled, the spec's labels added and the node set."""
    (pod,) = load_file(PROBE_POD, {"POD_NAME": spec.name, "NAMESPACE": spec.namespace, "PROBE_IMAGE": image})
    pod["metadata"]["labels"] = {**pod["metadata"].get("labels", {}), **spec.labels}
    if spec.node:
        pod["spec"]["nodeName"] = spec.node
    if spec.host_network:
        pod["spec"]["hostNetwork"] = True
    return pod


def schedulable_nodes(api: KubeApi) -> list[str]:
    """Names of nodes that take ordinary pods (no control-plane NoSchedule taint), sorted."""
    names = []
    for node in fetching.list_objects(api, "v1", "Node"):
        taints = (node.get("spec") or {}).get("taints") or []
        if not any(t.get("key") in CONTROL_PLANE_TAINTS and t.get("effect") == "NoSchedule" for t in taints):
            names.append(node["metadata"]["name"])
    return sorted(names)


def pod_state(pod: Obj | None) -> str:
    """One-line state of a pod for progress and timeout messages."""
    if pod is None:
        return "absent"
    status = pod.get("status") or {}
    ready = next((c.get("status") for c in status.get("conditions") or [] if c.get("type") == "Ready"), "?")
    return f"{status.get('phase', '?')} ready={ready} ip={status.get('podIP')}"


def is_ready(pod: Obj | None) -> bool:
    """Running, with an IP, and Ready (the template's readiness probe passes once serve printed READY)."""
    if pod is None or (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    status = pod.get("status") or {}
    ready = any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or []
    )
    return status.get("phase") == "Running" and bool(status.get("podIP")) and ready


def pod_ref(namespace: str, name: str) -> ObjectRef:
    return ObjectRef("v1", "Pod", name, namespace)


def wait_ready(api: KubeApi, pods: Iterable[tuple[str, str]], timeout: float = 120.0) -> list[Obj]:
    """Wait until every (namespace, name) pod is ready; returns them as the API has them."""
    wanted = list(pods)
    seen: dict[tuple[str, str], Obj | None] = {}

    def all_ready() -> list[Obj] | None:
        for key in wanted:
            if not is_ready(seen.get(key)):
                seen[key] = fetching.get(api, pod_ref(*key))
        ready = [pod for k in wanted if is_ready(pod := seen.get(k)) and pod is not None]
        return ready if len(ready) == len(wanted) else None

    def describe() -> str:
        bad = [
            f"{ns}/{n}: {pod_state(seen.get((ns, n)))}" for ns, n in wanted if not is_ready(seen.get((ns, n)))
        ]
        return f"{len(bad)} not ready: " + "; ".join(bad[:8])

    return wait_for(all_ready, f"{len(wanted)} probe pod(s) ready", timeout=timeout, describe_last=describe)


def create_probe_pods(
    api: KubeApi, specs: Sequence[PodSpec], image: str = DEFAULT_PROBE_IMAGE, timeout: float = 120.0
) -> list[ProbePod]:
    """Create every pod first, then wait for all of them to be ready (they start in parallel)."""
    for spec in specs:
        creating.create(api, probe_pod_manifest(spec, image))
    ready = wait_ready(api, [(s.namespace, s.name) for s in specs], timeout)
    return [as_probe_pod(p) for p in ready]


def as_probe_pod(pod: Obj) -> ProbePod:
    meta, spec, status = pod["metadata"], pod.get("spec") or {}, pod.get("status") or {}
    return ProbePod(
        meta["namespace"], meta["name"], spec.get("nodeName", ""), status["podIP"], meta.get("labels") or {}
    )


def agent_log(api: KubeApi, namespace: str, name: str, container: str = "probe") -> str:
    """The agent's log (serve prints READY once every listener is up)."""
    try:
        text: Any = api.core.read_namespaced_pod_log(name, namespace, container=container)
    except ApiException as exc:
        if exc.status in (400, 404):
            return ""
        raise
    return str(text)
