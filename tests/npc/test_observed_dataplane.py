"""The reference controller under the 2.8.1 profile programs what the real weave-npc 2.8.1 programmed.

For every observed scenario and node: feed its state.json to the analyser + programmer in a fresh
namespace and compare the WEAVE-NPC* chains of `iptables-save -t filter` (same rules, same order,
same set names and comments) and `ipset list` (same sets, types, members and member comments).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from netpolcheck.npc.analyser import Analyser
from netpolcheck.npc.profiles import profile_for
from netpolcheck.npc.programmer import Programmer
from netpolcheck.npc.runner import Runner
from netpolcheck.npc.world import World
from tests.npc import dumps
from tests.npc.netns import install_router_hooks, netns, run

OBSERVED = Path(__file__).resolve().parents[1] / "data" / "observed-2.8.1"
CASES = sorted(
    (scenario.name, dump.name.split(".")[1])
    for scenario in OBSERVED.iterdir()
    if (scenario / "state.json").exists()
    for dump in scenario.glob("iptables-save.*.txt")
)


def test_every_observed_scenario_is_covered() -> None:
    assert len({s for s, _ in CASES}) == 13
    assert len(CASES) == 18  # six 1-node, two 3-node, one 2-node, four seed states


@pytest.mark.netns
@pytest.mark.parametrize(("scenario", "node"), CASES, ids=[f"{s}-{n}" for s, n in CASES])
def test_programs_what_weave_npc_2_8_1_programmed(scenario: str, node: str) -> None:
    world = World.load(OBSERVED / scenario / "state.json")
    desired = Analyser(profile_for("2.8.1"), node).analyse(world)
    with netns("obs") as name:
        install_router_hooks(name)
        programmer = Programmer(Runner(name), on_log=lambda _msg: None)
        programmer.reset()
        changes = programmer.apply(desired)
        assert changes.errors == []
        got_rules = dumps.npc_rules(run("iptables-save", "-t", "filter", netns=name))
        got_sets = dumps.ipsets(run("ipset", "list", netns=name))
    want_rules = dumps.npc_rules((OBSERVED / scenario / f"iptables-save.{node}.txt").read_text())
    want_sets = dumps.ipsets((OBSERVED / scenario / f"ipset.{node}.txt").read_text())
    assert got_rules == want_rules
    assert got_sets == want_sets


@pytest.mark.parametrize("scenario", ["m-named-port"])
def test_named_port_policy_is_skipped_with_weaves_error(scenario: str) -> None:
    world = World.load(OBSERVED / scenario / "state.json")
    desired = Analyser(profile_for("2.8.1"), "node1").analyse(world)
    log = (OBSERVED / scenario / "npc.node1.log").read_text()
    assert len(desired.errors) == 1
    assert desired.errors[0] in log


def test_observed_states_are_the_ones_served() -> None:
    # guard against a silently edited copy: the copies match the names the README lists
    names = {p.name for p in OBSERVED.iterdir()}
    assert {"seed-0-none", "m-endport", "mn-egress-ipblock-except", "changes-3node"} <= names
    assert json.loads((OBSERVED / "seed-1-deny" / "state.json").read_text())["policies"]
