"""The expected cells of every semantic check (tests/npc/semantics.py) are what the model says.

So the semantic checks that pass on the netns fabric and on the hollow cluster also match the model
(`netpolcheck expect --profile weave-2.8.1`, run through its command line) under the 2.8.1 profile.
Cells probed from a node (host -> local pod) are outside the model's endpoints and are skipped.
"""

from __future__ import annotations

from typing import Any

import pytest

from netpolcheck.kube.snapshot import policy_entry, state_of
from netpolcheck.npc.kubewatch import Event
from netpolcheck.npc.store import WorldStore
from tests.npc.model_cli import expected_allowed
from tests.npc.semantics import CHECKS, PODS, Check, initial_events

ORIGINAL_IPS = {f"{p['metadata']['namespace']}/{p['metadata']['name']}": p["status"]["podIP"] for p in PODS}


def final_world(check: Check) -> dict[str, Any]:
    store = WorldStore(frozenset(), lambda _line: None)
    for event in initial_events(check.policies):
        store.apply(event)
    for kind, verb, obj in check.steps:
        store.apply(Event(kind, verb, (obj,)))
    world = store.world
    probes = [{"port": p, "protocol": proto} for p in (80, 81) for proto in ("TCP", "UDP")]
    state = state_of(world.namespaces.values(), world.pods.values(), world.policies.values(), probes)
    state["policies"] = [policy_entry(p) for p in world.policies.values()]  # the order the controller saw
    return state


@pytest.mark.parametrize("check", CHECKS, ids=[c.name for c in CHECKS])
def test_expected_cells_match_the_model(check: Check) -> None:
    state = final_world(check)
    model = expected_allowed(state)
    ip_owner = {p["ip"]: f"{p['namespace']}/{p['name']}" for p in state["pods"]}
    compared = 0
    for (src, dst, port, proto), verdict in check.expect.items():
        if src.startswith("node"):
            continue
        # a probe source named after a pod that was replaced (IP reuse) is the pod now holding its IP
        src_now = ip_owner[ORIGINAL_IPS[src]]
        assert model[(src_now, dst, port, proto)] == (verdict == "allowed"), (src_now, dst, port, proto)
        compared += 1
    assert compared
