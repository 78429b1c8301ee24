"""Namespaces a run owns: unique names, the run label, the pod-security label, leftovers of killed runs.

Every namespace a run creates carries `netpolcheck.io/run=<run id>` and an annotation naming its owner
process (host, PID and the process's start time, so a recycled PID is not mistaken for the owner).
A later run removes namespaces whose owner is on this host and no longer alive, and nothing else:
namespaces without the run label, live runs' namespaces and other hosts' runs are left alone.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netpolcheck.kube import creating, deleting, fetching
from netpolcheck.kube.connection import KubeApi
from netpolcheck.kube.objects import ObjectRef
from netpolcheck.kube.waiting import wait_for

RUN_LABEL = "netpolcheck.io/run"
OWNER_ANNOTATION = "netpolcheck.io/owner"
# NET_RAW (the probe agent's raw sockets) is outside the "baseline" Pod Security level
POD_SECURITY = {"pod-security.kubernetes.io/enforce": "privileged"}


def process_start(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat), or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rpartition(")")[2].split()[19]


@dataclass(frozen=True)
class Owner:
    host: str
    pid: int
    start: str | None

    @classmethod
    def me(cls) -> Owner:
        return cls(socket.gethostname(), os.getpid(), process_start(os.getpid()))

    def alive(self) -> bool | None:
        """True/False for an owner on this host; None (unknown) for another host's."""
        if self.host != socket.gethostname():
            return None
        return self.start is not None and process_start(self.pid) == self.start

    def to_json(self) -> str:
        return json.dumps({"host": self.host, "pid": self.pid, "start": self.start}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | None) -> Owner | None:
        try:
            doc = json.loads(text or "")
            return cls(str(doc["host"]), int(doc["pid"]), doc.get("start"))
        except (ValueError, KeyError, TypeError):
            return None


@dataclass
class Run:
    """One run of the suite: its id and owner, and the namespaces it created."""

    id: str = field(default_factory=lambda: secrets.token_hex(4))
    owner: Owner = field(default_factory=Owner.me)
    created: list[str] = field(default_factory=list)

    def namespace_name(self, base: str) -> str:
        """`base-<run id>`: unique per run, at most 63 characters."""
        return f"{base[: 62 - len(self.id)]}-{self.id}"


def namespace_manifest(run: Run, name: str, labels: Mapping[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": name,
            "labels": {**(labels or {}), **POD_SECURITY, RUN_LABEL: run.id},
            "annotations": {OWNER_ANNOTATION: run.owner.to_json()},
        },
    }


def create_namespace(
    api: KubeApi, run: Run, base: str, labels: Mapping[str, str] | None = None, exact_name: bool = False
) -> str:
    """Create the run's namespace `base-<run id>` (or exactly `base`) with `labels`; returns its name."""
    name = base if exact_name else run.namespace_name(base)
    creating.create(api, namespace_manifest(run, name, labels))
    run.created.append(name)
    return name


def ref(name: str) -> ObjectRef:
    return ObjectRef("v1", "Namespace", name)


def delete_namespaces(api: KubeApi, names: list[str], timeout: float = 180.0) -> None:
    """Delete the namespaces and wait until they and every pod in them are gone.

    The pods are awaited too: a server may drop the namespace object while its pods still terminate
    (the embedded cluster does), and a pod that still runs still holds its IP and its rules."""
    deleting.delete_and_wait(api, [ref(n) for n in names], timeout=timeout)
    wanted = set(names)
    left: list[str] = []

    def pods_gone() -> bool:
        pods = fetching.list_objects(api, "v1", "Pod")
        left[:] = [
            f"{p['metadata']['namespace']}/{p['metadata']['name']}"
            for p in pods
            if p["metadata"]["namespace"] in wanted
        ]
        return not left

    wait_for(
        pods_gone,
        f"the pods of {len(names)} deleted namespace(s) to be gone",
        timeout=timeout,
        describe_last=lambda: "still there: " + ", ".join(left[:10]),
    )


def run_namespaces(api: KubeApi, run_id: str | None = None) -> list[dict[str, Any]]:
    """Namespaces carrying the run label (of one run, or of any)."""
    selector = f"{RUN_LABEL}={run_id}" if run_id else RUN_LABEL
    return fetching.list_objects(api, "v1", "Namespace", label_selector=selector)


def cleanup(api: KubeApi, run: Run, timeout: float = 180.0) -> list[str]:
    """Delete every namespace labelled with this run's id; wait until they and their pods are gone."""
    names = [ns["metadata"]["name"] for ns in run_namespaces(api, run.id)]
    delete_namespaces(api, names, timeout)
    run.created.clear()
    return names


def leftovers(api: KubeApi) -> list[str]:
    """Run namespaces whose owner was on this host and is gone (a killed or crashed run)."""
    found = []
    for ns in run_namespaces(api):
        meta = ns["metadata"]
        owner = Owner.from_json((meta.get("annotations") or {}).get(OWNER_ANNOTATION))
        if owner is not None and owner.alive() is False:
            found.append(meta["name"])
    return found


def remove_leftovers(api: KubeApi, timeout: float = 180.0) -> list[str]:
    """Delete the namespaces `leftovers` finds and wait until they are gone; returns their names."""
    names = leftovers(api)
    delete_namespaces(api, names, timeout)
    return names
