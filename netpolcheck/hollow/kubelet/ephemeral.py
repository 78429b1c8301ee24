"""Ephemeral containers (`kubectl debug`): started in the running pod's namespaces, never restarted.

The pod's spec lists them (added through the API's `pods/ephemeralcontainers`, never removed); the
kubelet keeps the latest list in `PodRun.ephemeral_specs` and the monitor starts each new one once the
pod's app containers have started. They do not count toward the pod's phase or readiness; their status
is `status.ephemeralContainerStatuses`.
"""

from __future__ import annotations

from typing import Any

from netpolcheck.hollow.kubelet.podsetup import PodSetup
from netpolcheck.hollow.kubelet.readiness import set_up
from netpolcheck.hollow.kubelet.records import PodRun
from netpolcheck.hollow.kubelet.restarts import terminated


def specs_of(pod: dict[str, Any]) -> list[dict[str, Any]]:
    """The pod's ephemeral containers as its spec lists them."""
    specs = (pod.get("spec") or {}).get("ephemeralContainers") or []
    return [c for c in specs if isinstance(c, dict) and c.get("name")]


def pending(run: PodRun) -> list[dict[str, Any]]:
    """Ephemeral containers the spec lists and the kubelet has not started yet."""
    started = {cr.name for cr in run.ephemeral_containers}
    return [c for c in run.ephemeral_specs if c["name"] not in started]


def start_pending(pods: PodSetup, run: PodRun) -> bool:
    """Start the new ephemeral containers of a started pod (caller holds `run.lock`); True if any."""
    if not run.started or run.failed or not run.netns:
        return False
    new = pending(run)
    for spec in new:
        cr = pods.container(run, spec, init=False)
        cr.ephemeral = True
        run.ephemeral_containers.append(cr)
        pods.launch(run, cr)
    return bool(new)


def tick(run: PodRun) -> bool:
    """Note set-up and exits of the ephemeral containers (caller holds `run.lock`); True on a change."""
    changed = False
    for cr in run.ephemeral_containers:
        if cr.proc is None or cr.terminated is not None:
            continue
        code = cr.proc.poll()
        if code is not None:
            cr.terminated = terminated(cr, code)
            changed = True
        elif not cr.setup_done:
            changed = set_up(cr) or changed
    return changed
