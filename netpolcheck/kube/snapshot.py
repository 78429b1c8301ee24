"""The cluster as a STATE document for `netpolcheck expect` (format: README.md, docs/model.md).

namespaces (name, labels, annotations), pods with an IP (namespace, name, labels, ip, node, hostNetwork,
container ports), NetworkPolicies as the API stores them (apiVersion, kind, metadata name/namespace,
spec) in the order the policy controller saw them created (`creation_order`). Pods being deleted,
finished pods (Succeeded, Failed: their IP may already be another pod's) and pods without an IP yet
are left out: the dataplane no longer (or not yet) knows them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from netpolcheck.kube import fetching
from netpolcheck.kube.connection import KubeApi
from netpolcheck.kube.objects import Obj

POLICY_API = "networking.k8s.io/v1"
FINISHED = ("Succeeded", "Failed")


def namespace_entry(ns: Obj) -> dict[str, Any]:
    meta = ns["metadata"]
    return {
        "name": meta["name"],
        "labels": meta.get("labels") or {},
        "annotations": meta.get("annotations") or {},
    }


def pod_entry(pod: Obj) -> dict[str, Any] | None:
    meta, spec, status = pod["metadata"], pod.get("spec") or {}, pod.get("status") or {}
    if meta.get("deletionTimestamp") or not status.get("podIP") or status.get("phase") in FINISHED:
        return None
    ports = []
    for container in spec.get("containers") or []:
        for port in container.get("ports") or []:
            entry = {"containerPort": port["containerPort"], "protocol": port.get("protocol") or "TCP"}
            if port.get("name"):
                entry["name"] = port["name"]
            ports.append(entry)
    return {
        "namespace": meta["namespace"],
        "name": meta["name"],
        "labels": meta.get("labels") or {},
        "ip": status["podIP"],
        "node": spec.get("nodeName"),
        "hostNetwork": bool(spec.get("hostNetwork")),
        "ports": ports,
    }


def policy_entry(policy: Obj) -> dict[str, Any]:
    meta = policy["metadata"]
    return {
        "apiVersion": POLICY_API,
        "kind": "NetworkPolicy",
        "metadata": {"name": meta["name"], "namespace": meta["namespace"]},
        "spec": policy.get("spec") or {},
    }


def creation_order(policy: Obj) -> tuple[str, int, str, str]:
    """Sort key: creationTimestamp, then resourceVersion, then uid.

    The model's cross-policy ipset clash (docs/weave-facts.md#ipset-name-clash) depends on the order
    weave-npc saw the policies, which for a controller running all along is their creation order. The
    timestamp has one-second resolution, so policies made in the same second are ordered by
    resourceVersion (a number on every API server we know; compared as a number when it is one, it only
    grows), which is the creation order for a policy not updated since; an update gives it a newer one.
    Objects without these fields (written by a test) keep their given order (the sort is stable).
    A controller that starts (or restarts) after the policies exist sees its list's order instead
    (namespace, then name, as the API server lists them): the snapshot cannot know that.
    """
    meta = policy.get("metadata") or {}
    created, version = str(meta.get("creationTimestamp") or ""), str(meta.get("resourceVersion") or "")
    if not created and not version:
        return ("", -1, "", "")  # nothing says when: the given order stands
    return (created, int(version) if version.isdigit() else -1, version, str(meta.get("uid") or ""))


def state_of(
    namespaces: Iterable[Obj],
    pods: Iterable[Obj],
    policies: Iterable[Obj],
    probes: Sequence[dict[str, Any]] = (),
    externals: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    """A STATE from Kubernetes objects as dicts (read from a cluster, or written by a test); policies
    in creation order (`creation_order`), namespaces and pods by name."""
    entries = [e for e in (pod_entry(p) for p in pods) if e is not None]
    return {
        "namespaces": sorted((namespace_entry(n) for n in namespaces), key=lambda n: n["name"]),
        "pods": sorted(entries, key=lambda p: (p["namespace"], p["name"])),
        "policies": [policy_entry(p) for p in sorted(policies, key=creation_order)],
        "probes": list(probes),
        "externals": list(externals),
    }


def snapshot(
    api: KubeApi,
    namespaces: Iterable[str] | None = None,
    probes: Sequence[dict[str, Any]] = (),
    externals: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    """The STATE of the cluster, or of the given namespaces only (pods and policies in them)."""
    wanted = set(namespaces) if namespaces is not None else None
    nss = [
        n
        for n in fetching.list_objects(api, "v1", "Namespace")
        if wanted is None or n["metadata"]["name"] in wanted
    ]
    names = {n["metadata"]["name"] for n in nss}
    pods: list[Obj] = []
    policies: list[Obj] = []
    for name in sorted(names) if wanted is not None else [None]:
        pods.extend(
            p for p in fetching.list_objects(api, "v1", "Pod", name) if p["metadata"]["namespace"] in names
        )
        policies.extend(fetching.list_objects(api, POLICY_API, "NetworkPolicy", name))
    return state_of(nss, pods, policies, probes, externals)
