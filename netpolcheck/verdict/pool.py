"""Reusing a case's namespaces and probe pods for the next case with the same topology.

Creating 3 namespaces and 9 probe pods, and waiting until their agents serve, costs more than all the
checks of a typical catalog case. A case that leaves its topology as it found it, apart from policies
and labels, hands it back: the runner deletes its policies, puts every label back, checks that the
API shows the topology exactly as it was made (same pods, same addresses, same labels, no policies)
and that the dataplane shows the matrix of a cluster without those policies, and only then keeps it
for the next case whose topology is the same (`Layout`). Anything else is deleted as before.

Which cases may hand back (`reusable`): no step creates or deletes a pod or namespace (a pod's address
and its conntrack history would differ from a fresh one's), holds no connection (an ended flow can
linger in conntrack), changes no cluster-wide state (Weave version, controller restart) and does not
start on another Weave version. A lease is used by one case at a time, so cases still own their
namespaces while they run, side by side or not.

Pure bookkeeping and planning: no cluster access here (the runner does the calls).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from netpolcheck.verdict import case as c

FOREIGN_STEPS = (c.CreatePod, c.DeletePod, c.CreateNamespace, c.DeleteNamespace, c.Hold, c.Release)
IDLE_LIMIT = 2  # topologies kept at once (each is 9 resident agents on a catalog case)

Labels = tuple[tuple[str, str], ...]


def _labels(labels: Mapping[str, str]) -> Labels:
    return tuple(sorted(labels.items()))


@dataclass(frozen=True)
class Layout:
    """A case's topology as the pool compares it: its namespaces and pods as the case defines them."""

    namespaces: tuple[tuple[str, Labels], ...]
    pods: tuple[tuple[str, str, Labels, int | None, tuple[tuple[int, str], ...], bool], ...]

    @classmethod
    def of(cls, case: c.Case) -> Layout:
        return cls(
            tuple((ns.name, _labels(ns.labels)) for ns in case.namespaces),
            tuple(
                (p.namespace, p.name, _labels(p.labels), p.node, p.ports, p.host_network) for p in case.pods
            ),
        )


def reusable(case: c.Case) -> str | None:
    """None when the case may hand its topology back; else why not."""
    if case.cluster_wide:
        return "it changes the whole cluster"
    foreign = sorted({type(s).__name__ for s in case.steps if isinstance(s, FOREIGN_STEPS)})
    if foreign:
        return f"its steps {', '.join(foreign)} change more than policies and labels"
    if any(p.host_network for p in case.pods):
        return "it has hostNetwork pods"
    return None


@dataclass
class Lease:
    """One topology on the cluster: its name prefix and how it looked when it was made (`pristine`:
    the snapshot of its namespaces then, cluster names)."""

    prefix: str
    layout: Layout
    pristine: dict[str, Any]
    uses: int = 1
    history: list[str] = field(default_factory=list)  # the cases that ran on it, in order

    @property
    def namespace_names(self) -> list[str]:
        """The cluster names of its namespaces (deleting them deletes the topology)."""
        return [str(n["name"]) for n in self.pristine["namespaces"]]


@dataclass
class TopologyPool:
    """Idle topologies by layout; at most `limit` are kept (the oldest goes when one more comes)."""

    limit: int = IDLE_LIMIT
    idle: list[Lease] = field(default_factory=list)

    def take(self, layout: Layout) -> Lease | None:
        for lease in self.idle:
            if lease.layout == layout:
                self.idle.remove(lease)
                lease.uses += 1
                return lease
        return None

    def give(self, lease: Lease) -> list[Lease]:
        """Keep `lease`; returns the leases pushed out, oldest first (to be deleted by the caller)."""
        self.idle.append(lease)
        pushed = []
        while len(self.idle) > self.limit:
            pushed.append(self.idle.pop(0))
        return pushed

    def drain(self) -> list[Lease]:
        """Every idle lease (to be deleted by the caller); the pool is empty afterwards."""
        leases, self.idle = self.idle, []
        return leases


@dataclass(frozen=True)
class Restore:
    """What to do to bring a topology back to `pristine`: label patches (None removes a key)."""

    policies: tuple[tuple[str, str], ...]  # (namespace, name) to delete
    namespace_labels: tuple[tuple[str, dict[str, str | None]], ...]
    pod_labels: tuple[tuple[str, str, dict[str, str | None]], ...]


def _patch(now: Mapping[str, str], then: Mapping[str, str], ignore: frozenset[str]) -> dict[str, str | None]:
    patch: dict[str, str | None] = {k: v for k, v in then.items() if now.get(k) != v and k not in ignore}
    patch.update({k: None for k in now if k not in then and k not in ignore})
    return patch


def restore_plan(pristine: Mapping[str, Any], now: Mapping[str, Any], ignore: frozenset[str]) -> Restore:
    """The calls that turn snapshot `now` back into `pristine` (labels in `ignore` are left alone)."""
    then_ns = {n["name"]: n.get("labels") or {} for n in pristine["namespaces"]}
    then_pods = {(p["namespace"], p["name"]): p.get("labels") or {} for p in pristine["pods"]}
    ns_patches = tuple(
        (n["name"], patch)
        for n in now["namespaces"]
        if n["name"] in then_ns and (patch := _patch(n.get("labels") or {}, then_ns[n["name"]], ignore))
    )
    pod_patches = tuple(
        (p["namespace"], p["name"], patch)
        for p in now["pods"]
        if (p["namespace"], p["name"]) in then_pods
        and (patch := _patch(p.get("labels") or {}, then_pods[(p["namespace"], p["name"])], ignore))
    )
    policies = tuple((p["metadata"]["namespace"], p["metadata"]["name"]) for p in now.get("policies", []))
    return Restore(policies, ns_patches, pod_patches)


def differences(pristine: Mapping[str, Any], now: Mapping[str, Any], ignore: frozenset[str]) -> list[str]:
    """How snapshot `now` differs from `pristine` (namespaces, pods with their addresses, nodes and
    labels, policies); empty when the topology is as it was made."""

    def namespaces(doc: Mapping[str, Any]) -> dict[str, Labels]:
        return {n["name"]: _without(n.get("labels") or {}, ignore) for n in doc["namespaces"]}

    def pods(doc: Mapping[str, Any]) -> dict[str, tuple[Any, ...]]:
        return {
            f"{p['namespace']}/{p['name']}": (
                p.get("ip"),
                p.get("node"),
                _without(p.get("labels") or {}, ignore),
            )
            for p in doc["pods"]
        }

    found = _compare("namespace", namespaces(pristine), namespaces(now))
    found += _compare("pod", pods(pristine), pods(now))
    found += [
        f"policy {p['metadata']['namespace']}/{p['metadata']['name']} exists" for p in now.get("policies", [])
    ]
    return found


def _without(labels: Mapping[str, str], ignore: frozenset[str]) -> Labels:
    return tuple(sorted((k, v) for k, v in labels.items() if k not in ignore))


def _compare(kind: str, then: Mapping[str, Any], now: Mapping[str, Any]) -> list[str]:
    found = [f"{kind} {k} is gone" for k in then if k not in now]
    found += [f"{kind} {k} is new" for k in now if k not in then]
    found += [f"{kind} {k} was {then[k]}, is {now[k]}" for k in then if k in now and then[k] != now[k]]
    return found
