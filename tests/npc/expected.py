"""The dumps (`iptables-save` WEAVE-NPC* chains, `ipset list`) a world should produce, made in a scratch
namespace by the in-process analyser + programmer, to compare with what a controller process programmed."""

from __future__ import annotations

from netpolcheck.npc.analyser import Analyser
from netpolcheck.npc.profiles import profile_for
from netpolcheck.npc.programmer import Programmer
from netpolcheck.npc.runner import Runner
from netpolcheck.npc.world import World
from tests.npc import dumps
from tests.npc.netns import install_router_hooks, netns, run

Dumps = tuple[dict[str, list[str]], dumps.SetDump]


def expected_dumps(
    world: World,
    node: str,
    version: str = "2.8.1",
    faults: frozenset[str] = frozenset(),
    egress_drop: bool = False,
) -> Dumps:
    with netns("exp") as name:
        install_router_hooks(name)
        programmer = Programmer(Runner(name), on_log=lambda _m: None)
        programmer.reset()
        programmer.apply(Analyser(profile_for(version), node, faults).analyse(world, egress_drop=egress_drop))
        return current_dumps(name)


def current_dumps(name: str) -> Dumps:
    return (
        dumps.npc_rules(run("iptables-save", "-t", "filter", netns=name)),
        dumps.ipsets(run("ipset", "list", netns=name)),
    )


def same_content(a: Dumps, b: Dumps) -> bool:
    """Same sets and members; same rules per chain, order ignored only inside the append-only chains."""
    rules_a, sets_a = a
    rules_b, sets_b = b
    if sets_a != sets_b or rules_a.keys() != rules_b.keys():
        return False
    return all(
        sorted(rules_a[c]) == sorted(rules_b[c]) if c in APPEND_ONLY else rules_a[c] == rules_b[c]
        for c in rules_a
    )


APPEND_ONLY = {
    "WEAVE-NPC-DEFAULT",
    "WEAVE-NPC-INGRESS",
    "WEAVE-NPC-EGRESS-DEFAULT",
    "WEAVE-NPC-EGRESS-CUSTOM",
}
