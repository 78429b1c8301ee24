"""The snapshot as a step will leave it, for the steps whose effect on the STATE is known in advance.

The engine watches, before such a step, only the cells the model says it changes (a staggered attempt
every 10 ms toward every cell of a 9-pod matrix would be thousands of packets a second, each echoed and
journalled by the destination's agent); every other cell is settled after the step.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from netpolcheck.verdict import case as c
from netpolcheck.verdict.naming import Naming


def _relabel(labels: dict[str, str], change: Mapping[str, str | None]) -> dict[str, str]:
    for key, value in change.items():
        if value is None:
            labels.pop(key, None)
        else:
            labels[key] = value
    return labels


def after_step(
    snapshot: dict[str, Any], step: c.Step, naming: Naming, manifest: dict[str, Any] | None = None
) -> dict[str, Any] | None:
    """`snapshot` (a STATE of the case's namespaces) as `step` will leave it, or None for steps it cannot
    foresee (pods and namespaces created or deleted, Weave, holds). `manifest`: what an ApplyPolicy sends."""
    state = copy.deepcopy(snapshot)
    policies: list[dict[str, Any]] = state.setdefault("policies", [])
    match step:
        case c.ApplyPolicy(namespace=ns) if manifest is not None:
            where = (naming.namespace(ns), manifest["metadata"]["name"])
            state["policies"] = [p for p in policies if _where(p) != where] + [copy.deepcopy(manifest)]
        case c.DeletePolicy(namespace=ns, name=name):
            state["policies"] = [p for p in policies if _where(p) != (naming.namespace(ns), name)]
        case c.LabelPod(namespace=ns, name=name, labels=labels):
            for pod in state.get("pods", []):
                if (pod.get("namespace"), pod.get("name")) == (naming.namespace(ns), name):
                    pod["labels"] = _relabel(dict(pod.get("labels") or {}), labels)
        case c.LabelNamespace(name=name, labels=labels):
            for namespace in state.get("namespaces", []):
                if namespace.get("name") == naming.namespace(name):
                    namespace["labels"] = _relabel(dict(namespace.get("labels") or {}), labels)
        case _:
            return None
    return state


def _where(policy: dict[str, Any]) -> tuple[str, str]:
    meta = policy.get("metadata") or {}
    return str(meta.get("namespace", "")), str(meta.get("name", ""))
