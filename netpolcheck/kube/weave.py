"""The weave-net DaemonSet: installed version, install and upgrade from manifests/weave/, health, evidence.

Versions compare as versions (2.10 > 2.9). The manifests are the one source of truth for the DaemonSet
on every cluster, the embedded one included. Old manifests (2.0.5, 2.1.3) use API versions newer
servers no longer serve (extensions/v1beta1 DaemonSet, rbac v1beta1): when the server does not serve
them, they are sent as apps/v1 (selector = the template's labels, as the old API defaulted it) and
rbac v1. A DaemonSet's selector is immutable: when an upgrade changes it (2.1.3's defaulted selector
carries role.kubernetes.io/networking, 2.8.1's does not), the server refuses the replace, as kubectl
apply would be refused, and `upgrade` deletes the DaemonSet, waits until its pods are gone and creates
the new one; that is a recreate, not a node-by-node rollout, and the returned record says so.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypedDict, Unpack

from kubernetes.client.exceptions import ApiException

from netpolcheck.errors import UsageError
from netpolcheck.kube import creating, deleting, fetching
from netpolcheck.kube.connection import KubeApi
from netpolcheck.kube.objects import Obj, ObjectRef, load_file
from netpolcheck.kube.paths import WEAVE_MANIFESTS
from netpolcheck.kube.rollout import NodePod, Progress, RolloutRecord, node_pods, wait_rollout
from netpolcheck.kube.waiting import wait_for

NAMESPACE = "kube-system"
NAME = "weave-net"
DS_REF = ObjectRef("apps/v1", "DaemonSet", NAME, NAMESPACE)
NPC_CONTAINER = "weave-npc"
ROUTER_CONTAINER = "weave"
BLOCKED = "blocked by Weave NPC"
_VERSION = re.compile(r"^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?$")


def parse_version(text: str) -> tuple[int, int, int]:
    """(2, 10, 1) from '2.10.1' or 'v2.10.1'; ValueError otherwise."""
    match = _VERSION.match(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not a Weave version such as 2.8.1")
    major, minor, patch = (int(g or 0) for g in match.groups())
    return major, minor, patch


def image_tag(image: str) -> str:
    """The tag of an image reference ('latest' when none); a digest is ignored."""
    last = image.split("@", 1)[0].rsplit("/", 1)[-1]
    return last.partition(":")[2] or "latest"


def manifest_path(version: str) -> Path:
    return WEAVE_MANIFESTS / f"weave-{version.lstrip('v')}.yaml"


def available_versions() -> list[str]:
    """Versions with a manifest in manifests/weave/, oldest first."""
    names = [p.stem.removeprefix("weave-") for p in WEAVE_MANIFESTS.glob("weave-*.yaml")]
    return sorted((n for n in names if _VERSION.match(n)), key=parse_version)


def check_version(version: str) -> str:
    """The version, or UsageError naming the versions that have a manifest."""
    if version.lstrip("v") not in available_versions():
        raise UsageError(
            f"no Weave manifest for version {version!r}; "
            f"manifests/weave/ has {', '.join(available_versions())}"
        )
    return version.lstrip("v")


def weave_objects(
    version: str, ipalloc_range: str | None = None, pull_policy: str = "IfNotPresent"
) -> list[Obj]:
    """The manifest's objects with every container's pull policy set and, if given, IPALLOC_RANGE."""
    objs = load_file(manifest_path(check_version(version)))
    for obj in objs:
        if obj.get("kind") != "DaemonSet":
            continue
        pod = obj["spec"]["template"]["spec"]
        for container in [*pod.get("initContainers", []), *pod.get("containers", [])]:
            container["imagePullPolicy"] = pull_policy
            if ipalloc_range and container["name"] == ROUTER_CONTAINER:
                env = [e for e in container.get("env", []) if e.get("name") != "IPALLOC_RANGE"]
                container["env"] = [*env, {"name": "IPALLOC_RANGE", "value": ipalloc_range}]
    return objs


def served_form(api: KubeApi, obj: Obj) -> Obj:
    """`obj` in an API version the server serves (old DaemonSet and RBAC versions mapped forward)."""
    api_version, kind = str(obj["apiVersion"]), str(obj["kind"])
    try:
        api.resource(api_version, kind)
        return obj
    except UsageError:
        pass
    if api_version.startswith("rbac.authorization.k8s.io/"):
        return {**obj, "apiVersion": "rbac.authorization.k8s.io/v1"}
    if kind == "DaemonSet":
        spec = dict(obj["spec"])
        labels = spec["template"]["metadata"].get("labels") or {}
        spec.setdefault("selector", {"matchLabels": dict(labels)})
        return {**obj, "apiVersion": "apps/v1", "spec": spec}
    raise UsageError(f"the cluster serves neither {api_version} nor a known replacement for {kind}")


def daemonset(api: KubeApi) -> Obj | None:
    return fetching.get(api, DS_REF)


def versions_of(containers: list[Obj]) -> dict[str, str]:
    return {c["name"]: image_tag(c.get("image", "")) for c in containers}


def installed_version(api: KubeApi) -> str | None:
    """The weave-npc image tag of the weave-net DaemonSet (the router's if there is no weave-npc), or None."""
    ds = daemonset(api)
    if ds is None:
        return None
    tags = versions_of(ds["spec"]["template"]["spec"].get("containers") or [])
    return tags.get(NPC_CONTAINER) or tags.get(ROUTER_CONTAINER)


def running(api: KubeApi) -> dict[str, NodePod]:
    """Per node: the weave-net pod, its images and readiness."""
    ds = daemonset(api)
    return node_pods(api, ds) if ds is not None else {}


@dataclass
class Change:
    """What install/upgrade did: from which version to which, how, and the rollout it observed."""

    from_version: str | None
    to_version: str
    recreated: bool = False  # the DaemonSet was deleted and created (selector change), not rolled
    rollout: RolloutRecord = field(default_factory=RolloutRecord)


def _apply_daemonset(api: KubeApi, ds: Obj, timeout: float) -> tuple[bool, str]:
    """Create or replace the DaemonSet; if the selector change is refused, delete and create.

    Returns (recreated, the resourceVersion of that write: the rollout is watched from it)."""
    try:
        written = creating.create_or_replace(api, ds)
        return False, str(written["metadata"]["resourceVersion"])
    except ApiException as exc:
        if exc.status != 422 or "immutable" not in str(exc.body or ""):
            raise
    current = daemonset(api)
    labels = (current or {}).get("spec", {}).get("selector", {}).get("matchLabels") or {}
    deleting.delete_and_wait(api, [ObjectRef.of(ds, NAMESPACE)], timeout=timeout)
    wait_for(
        lambda: not fetching.list_objects(api, "v1", "Pod", NAMESPACE, fetching.selector(labels)),
        "the old weave-net pods to be gone",
        timeout=timeout,
    )
    created = creating.create(api, ds)
    return True, str(created["metadata"]["resourceVersion"])


def apply_version(
    api: KubeApi,
    version: str,
    *,
    ipalloc_range: str | None = None,
    pull_policy: str = "IfNotPresent",
    timeout: float = 300.0,
    on_progress: Progress | None = None,
) -> Change:
    """Apply the version's manifest (install or upgrade alike), wait for the rollout and for health."""
    change = Change(installed_version(api), check_version(version))
    since: str | None = None
    for obj in weave_objects(version, ipalloc_range, pull_policy):
        obj = served_form(api, obj)
        if obj["kind"] == "DaemonSet":
            change.recreated, since = _apply_daemonset(api, obj, timeout)
        else:
            creating.create_or_replace(api, obj)
    wait_rollout(api, NAMESPACE, NAME, timeout, on_progress, record=change.rollout, since=since)
    wait_healthy(api, change.to_version, timeout)
    return change


class ApplyOptions(TypedDict, total=False):
    """The keyword arguments install and upgrade pass on to apply_version."""

    ipalloc_range: str | None
    pull_policy: str
    timeout: float
    on_progress: Progress | None


def install(api: KubeApi, version: str, **options: Unpack[ApplyOptions]) -> Change:
    """Install Weave `version`; UsageError if a weave-net DaemonSet is already there (use upgrade)."""
    current = installed_version(api)
    if current is not None:
        raise UsageError(f"Weave {current} is already installed; upgrade it instead of installing {version}")
    return apply_version(api, version, **options)


EGRESS_HOOKS_SINCE = (2, 4, 0)  # the router's first version with the WEAVE-NPC-EGRESS hooks


def downgrade_problem(current: str, to: str) -> str | None:
    """Why moving Weave from `current` down to `to` in place would break the cluster, or None.

    From 2.4.0 the router adds FORWARD and INPUT jumps to WEAVE-NPC-EGRESS, and like every router it
    leaves its rules when it exits; an older weave-npc never flushes or fills that chain, so its final
    DROP drops every pod's new traffic (docs/weave-facts.md#router-hooks; seen on the embedded cluster:
    2.9.0 moved back to 2.0.5 got all 288 cells of a case wrong)."""
    if parse_version(current) >= EGRESS_HOOKS_SINCE > parse_version(to):
        return (
            f"Weave {current} cannot be moved down to {to} in place: {current}'s router leaves its egress "
            f"hooks (FORWARD and INPUT jump to WEAVE-NPC-EGRESS, which ends in a DROP) and {to}'s "
            f"weave-npc never flushes or fills that chain, so every pod's new traffic would be dropped; "
            f"run {to} on a cluster that never ran 2.4.0 or later"
        )
    return None


def upgrade(api: KubeApi, to: str, **options: Unpack[ApplyOptions]) -> Change:
    """Move the installed Weave to version `to` (also a downgrade, except across 2.4.0: see
    `downgrade_problem`); UsageError if none is installed or the move would break the cluster."""
    current = installed_version(api)
    if current is None:
        raise UsageError(f"no weave-net DaemonSet to upgrade to {to}; install Weave first")
    problem = downgrade_problem(current, check_version(to))
    if problem is not None:
        raise UsageError(problem)
    return apply_version(api, to, **options)


def health(api: KubeApi, version: str | None = None) -> list[str]:
    """Problems: a scheduled node without a pod, a pod not Running+Ready, a wrong version. [] = healthy."""
    ds = daemonset(api)
    if ds is None:
        return ["no weave-net DaemonSet in kube-system"]
    problems = []
    desired = int((ds.get("status") or {}).get("desiredNumberScheduled") or 0)
    pods = node_pods(api, ds)
    if len(pods) < desired or desired == 0:
        problems.append(f"{len(pods)} weave-net pod(s) for {desired} scheduled node(s)")
    for node, pod in sorted(pods.items()):
        if not pod.ready:
            problems.append(f"{node}: {pod.pod} not Running and Ready")
        if version is not None:
            wrong = {c: image_tag(i) for c, i in pod.images if image_tag(i) != version}
            if wrong:
                problems.append(f"{node}: {pod.pod} runs {wrong}, expected {version}")
    return problems


def wait_healthy(api: KubeApi, version: str | None = None, timeout: float = 300.0) -> None:
    last: list[str] = []

    def healthy() -> bool:
        last[:] = health(api, version)
        return not last

    wait_for(
        healthy,
        f"weave-net healthy{f' at {version}' if version else ''}",
        timeout=timeout,
        describe_last=lambda: "; ".join(last),
    )


def npc_logs(api: KubeApi) -> dict[str, str]:
    """The weave-npc container's log per node."""
    out = {}
    for node, pod in running(api).items():
        try:
            out[node] = str(api.core.read_namespaced_pod_log(pod.pod, NAMESPACE, container=NPC_CONTAINER))
        except ApiException as exc:
            out[node] = f"(log not readable: {exc.status} {exc.reason})"
    return out


def blocked_lines(api: KubeApi, match: Callable[[str], bool] | None = None) -> list[str]:
    """weave-npc's "blocked by Weave NPC" lines on every node (for evidence), optionally filtered."""
    return [
        f"{node}: {line}"
        for node, text in sorted(npc_logs(api).items())
        for line in text.splitlines()
        if BLOCKED in line and (match is None or match(line))
    ]


def images(version: str) -> list[str]:
    """The distinct images of the version's manifest (to pull and side-load), in manifest order."""
    out: dict[str, None] = {}
    for obj in weave_objects(version):
        if obj.get("kind") == "DaemonSet":
            pod = obj["spec"]["template"]["spec"]
            for container in [*pod.get("initContainers", []), *pod.get("containers", [])]:
                out[container["image"]] = None
    return list(out)


def uninstall(api: KubeApi, timeout: float = 300.0) -> None:
    """Delete the weave-net DaemonSet and wait until it and its pods are gone (RBAC objects stay)."""
    ds = daemonset(api)
    if ds is None:
        return
    labels = ds["spec"].get("selector", {}).get("matchLabels") or {}
    deleting.delete_and_wait(api, [DS_REF], timeout=timeout)
    wait_for(
        lambda: not fetching.list_objects(api, "v1", "Pod", NAMESPACE, fetching.selector(labels)),
        "the weave-net pods to be gone",
        timeout=timeout,
    )
