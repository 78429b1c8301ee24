"""The semantic world of tests/npc/semantics.py on a hollow cluster running the reference controller.

Namespaces x and y, probe pods with fixed IPs on fixed nodes; policies and steps go through the API,
verdicts come from the probe agent inside the pods (one exec per source pod probes all its cells), and
`revert()` brings the world back to no policies and the original labels between tests, so one cluster
serves every hollow semantic, fault and differential test (the session fixture in conftest.py).
"""

from __future__ import annotations

import contextlib
import copy
from typing import Any

from netpolcheck.kube import creating, deleting, fetching, namespaces, patching, probepods
from netpolcheck.kube.objects import ObjectRef
from netpolcheck.kube.snapshot import POLICY_API
from netpolcheck.kube.waiting import wait_for
from tests.npc.hollowkit import Hollow
from tests.npc.semantics import CHECKS, NAMESPACES, PODS, Check

HOLLOW_CHECKS = [c for c in CHECKS if c.hold is None]
SETTLE = 4.0  # seconds a cell may take to show its verdict after a change (weave's own test waits 2 s)


class HollowWorld:
    def __init__(self, hollow: Hollow) -> None:
        self.hollow = hollow
        self.ips = {
            f"{p['metadata']['namespace']}/{p['metadata']['name']}": p["status"]["podIP"] for p in PODS
        }

    def create(self) -> None:
        state = {
            "namespaces": NAMESPACES,
            "policies": [],
            "pods": [{**p, "spec": {**p["spec"], "containers": [{"name": "c"}]}} for p in PODS],
        }
        self.hollow.apply_state(copy.deepcopy(state))

    def source(self, name: str) -> tuple[str, str, str | None]:
        """(namespace, pod, container) to probe from; node names mean that node's weave-net pod."""
        if name.startswith("node"):
            pod = next(p for p in self.hollow.weave_pods() if p.spec.node_name == name)
            return "kube-system", pod.metadata.name, "weave-npc"
        namespace, pod_name = name.split("/")
        return namespace, pod_name, None

    def verdicts(self, check: Check, rename: dict[str, str]) -> dict[tuple[str, str, int, str], str]:
        got = {}
        for src in dict.fromkeys(c[0] for c in check.expect):
            namespace, pod, container = self.source(rename.get(src, src))
            cells = [c for c in check.expect if c[0] == src]
            targets = [
                {"id": str(i), "ip": self.ips[c[1]], "port": c[2], "protocol": c[3]}
                for i, c in enumerate(cells)
            ]
            for cell, verdict in zip(
                cells, self.hollow.probe(namespace, pod, targets, container=container), strict=True
            ):
                got[cell] = verdict
        return got

    def apply(self, check: Check) -> dict[str, str]:
        """Create the check's policies and run its steps; returns probe-source renames (pod replaced)."""
        for pol in check.policies:
            self.put("NetworkPolicy", pol)
        rename: dict[str, str] = {}
        for kind, verb, obj in check.steps:
            if verb == "DELETED":
                self.delete(kind, obj)
            else:
                self.put(kind, obj)
                if kind == "Pod" and verb == "ADDED":
                    ip = obj["status"]["podIP"]
                    old = next(k for k, v in self.ips.items() if v == ip)
                    rename[old] = f"{obj['metadata']['namespace']}/{obj['metadata']['name']}"
        return rename

    def put(self, kind: str, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        api = self.hollow.api
        if kind == "NetworkPolicy":
            ref = {"name": meta["name"], "namespace": meta["namespace"]}
            body = {"apiVersion": POLICY_API, "kind": "NetworkPolicy", "metadata": ref, "spec": obj["spec"]}
            creating.create_or_replace(api, body)
        elif kind == "Namespace":
            patching.label(api, namespaces.ref(meta["name"]), meta["labels"])
        elif kind == "Pod":
            current = fetching.get(api, probepods.pod_ref(meta["namespace"], meta["name"]))
            if current is None:
                state = {
                    "namespaces": [],
                    "policies": [],
                    "pods": [{**obj, "spec": {**obj["spec"], "containers": [{"name": "c"}]}}],
                }
                self.hollow.apply_state(copy.deepcopy(state))
                return
            labels = dict(meta["labels"])
            removed = {k: None for k in current["metadata"].get("labels") or {} if k not in labels}
            patching.label(api, probepods.pod_ref(meta["namespace"], meta["name"]), {**removed, **labels})

    def delete(self, kind: str, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        api = self.hollow.api
        if kind == "NetworkPolicy":
            deleting.delete(api, ObjectRef(POLICY_API, "NetworkPolicy", meta["name"], meta["namespace"]))
        elif kind == "Pod":
            deleting.delete_and_wait(api, [probepods.pod_ref(meta["namespace"], meta["name"])], timeout=30)
            # the kubelet releases the IP once the pod's namespace is gone: wait for that before reusing it
            wait_for(
                self.hollow.pod_netns_match_pods,
                "the deleted pod's network namespace to be removed",
                timeout=30,
            )

    def revert(self) -> None:
        """Back to the base world: no policies, original labels, original pods."""
        api = self.hollow.api
        for ns in ("x", "y"):
            for existing in fetching.list_objects(api, POLICY_API, "NetworkPolicy", ns):
                self.delete("NetworkPolicy", existing)
        for namespace in NAMESPACES:
            self.put("Namespace", namespace)
        wanted = {(p["metadata"]["namespace"], p["metadata"]["name"]) for p in PODS}
        for ns in ("x", "y"):
            for running in fetching.list_objects(api, "v1", "Pod", ns):
                if (ns, running["metadata"]["name"]) not in wanted:
                    self.delete("Pod", running)
        for original in PODS:
            self.put("Pod", original)


def run_hollow_check(world: HollowWorld, check: Check) -> dict[tuple[str, str, int, str], tuple[str, str]]:
    """Cells whose verdict did not become the expected one within SETTLE seconds: cell -> (want, got)."""
    try:
        rename = world.apply(check)
        last: dict[tuple[str, str, int, str], str] = {}

        def settled() -> bool:
            last.clear()
            last.update(world.verdicts(check, rename))
            return last == check.expect

        with contextlib.suppress(TimeoutError):  # what did not settle is reported below, cell by cell
            wait_for(settled, f"check {check.name}'s cells", timeout=SETTLE, interval=0.1)
        return {
            c: (check.expect[c], last.get(c, "?")) for c in check.expect if last.get(c) != check.expect[c]
        }
    finally:
        world.revert()
