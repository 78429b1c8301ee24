"""Packets through the reference controller's dataplane give the matrices real weave-npc 2.8.1 gave.

Each observed state is rebuilt as namespaces (one per node and pod), the controller's dataplane is
programmed on every node under the 2.8.1 profile, and every ordered pod pair is probed on TCP/UDP 80/81.
"""

from __future__ import annotations

import json

import pytest

from netpolcheck.npc.analyser import Analyser
from netpolcheck.npc.profiles import profile_for
from netpolcheck.npc.programmer import Programmer
from netpolcheck.npc.runner import Runner
from netpolcheck.npc.world import World
from tests.npc.test_observed_dataplane import OBSERVED
from tests.npc.topology import Topology

SCENARIOS = sorted(p.name for p in OBSERVED.iterdir() if (p / "matrix.json").exists())


def program(topo: Topology, world: World, version: str = "2.8.1") -> None:
    for node, ns in topo.nodes.items():
        programmer = Programmer(Runner(ns), on_log=lambda _m: None)
        programmer.reset()
        assert programmer.apply(Analyser(profile_for(version), node).analyse(world)).errors == []


@pytest.mark.netns
@pytest.mark.slow
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_matrix_matches_weave_npc_2_8_1(scenario: str) -> None:
    world = World.load(OBSERVED / scenario / "state.json")
    observed = {
        (c["from"], c["to"], c["port"], c["protocol"]): c["allowed"]
        for c in json.loads((OBSERVED / scenario / "matrix.json").read_text())
    }
    with Topology(world) as topo:
        program(topo, world)
        got = topo.matrix()
    assert observed and set(got) == set(observed)
    wrong = sorted(
        f"{k[0]} -> {k[1]} {k[3]}/{k[2]}: observed {observed[k]}, got {got[k]}"
        for k in observed
        if got[k] != observed[k]
    )
    assert wrong == []
