"""A change touches only what it must: the commands issued per change, and unrelated rules keep counters."""

from __future__ import annotations

import copy
import logging
import re
from collections.abc import Iterator

import pytest

from netpolcheck.npc.controller import Controller
from netpolcheck.npc.kubewatch import Event
from netpolcheck.npc.profiles import profile_for
from netpolcheck.npc.runner import Runner
from tests.npc.netns import run
from tests.npc.semantics import NAMESPACES, PODS, _ns, _pod, _pol, initial_events, world
from tests.npc.topology import Topology

CLIENTS = _pol(
    "clients",
    "x",
    {
        "podSelector": {"matchLabels": {"pod": "a"}},
        "policyTypes": ["Ingress"],
        "ingress": [
            {
                "from": [
                    {
                        "namespaceSelector": {"matchLabels": {"team": "blue"}},
                        "podSelector": {"matchLabels": {"role": "client"}},
                    }
                ]
            }
        ],
    },
)
BLUE = _pol(
    "blue",
    "x",
    {
        "podSelector": {"matchLabels": {"pod": "a"}},
        "policyTypes": ["Ingress"],
        "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": "blue"}}}]}],
    },
)


@pytest.fixture
def node1() -> Iterator[tuple[Topology, Controller, Runner]]:
    with Topology(world()) as topo:
        runner = Runner(topo.nodes["node1"])
        quiet = logging.getLogger("npcref.quiet")
        quiet.disabled = True
        controller = Controller(profile_for("2.8.1"), "node1", frozenset(), runner, quiet)
        controller.start()
        controller.handle(initial_events([CLIENTS]))
        yield topo, controller, runner


def counters(netns: str) -> dict[str, str]:
    """Rule text -> "[packets:bytes]" for every WEAVE-NPC* rule."""
    out = {}
    for line in run("iptables-save", "-c", "-t", "filter", netns=netns).splitlines():
        match = re.match(r"^(\[\d+:\d+\]) (-A WEAVE-NPC.*)$", line)
        if match:
            out[match.group(2)] = match.group(1)
    return out


def issued_since(runner: Runner, mark: int) -> list[tuple[str, list[str]]]:
    """(command, script lines) issued after `mark`."""
    return [
        (i.argv[0], [ln for ln in i.stdin.splitlines() if ln not in ("*filter", "COMMIT")])
        for i in runner.issued[mark:]
    ]


def change(controller: Controller, runner: Runner, event: Event) -> list[tuple[str, list[str]]]:
    mark = len(runner.issued)
    controller.handle([event])
    return issued_since(runner, mark)


@pytest.mark.netns
def test_each_change_issues_only_its_own_commands(node1: tuple[Topology, Controller, Runner]) -> None:
    topo, controller, runner = node1
    ns = topo.nodes["node1"]
    # traffic that makes unrelated rules count: y/a -> x/a (policy rule) and x/a -> y/a (ns y default-allow)
    assert topo.probe("y/a", [("x/a", 80, "TCP")])[("x/a", 80, "TCP")] is False
    assert topo.probe("x/a", [("y/a", 80, "TCP")])[("y/a", 80, "TCP")] is True
    before = counters(ns)
    assert any(c != "[0:0]" for c in before.values())

    # pod label change: one set member added, nothing else
    cmds = change(
        controller, runner, Event("Pod", "MODIFIED", (_pod("y", "a", "node1", "10.32.1.22", role="client"),))
    )
    assert [c for c, _ in cmds] == ["ipset"]
    assert len(cmds[0][1]) == 1 and cmds[0][1][0].startswith("add weave-") and " 10.32.1.22 " in cmds[0][1][0]
    assert topo.probe("y/a", [("x/a", 80, "TCP")])[("x/a", 80, "TCP")] is True

    # new policy: its sets and its rule, appended; no other rule touched
    cmds = change(controller, runner, Event("NetworkPolicy", "ADDED", (copy.deepcopy(BLUE),)))
    ipt = [lines for c, lines in cmds if c == "iptables-restore"]
    assert ipt == [[ln for ln in ipt[0] if ln.startswith("-A WEAVE-NPC-INGRESS ")]] and len(ipt[0]) == 1
    ipsets = [ln for c, lines in cmds if c == "ipset" for ln in lines]
    assert [ln.split()[0] for ln in ipsets] == ["create", "add"]  # list:set of team=blue, with namespace y

    # namespace label change: only set members leave (y from the team=blue list:set, y's clients from the
    # team=blue AND role=client set); no rule is touched
    cmds = change(controller, runner, Event("Namespace", "MODIFIED", (_ns("y", "red"),)))
    assert [c for c, _ in cmds] == ["ipset"]
    assert sorted(ln.split()[2] for ln in cmds[0][1]) == [
        "10.32.1.22",
        "10.32.1.23",
        "weave-_z*Z^u|tFh;#U^v4ut#:$Mu45",
    ]
    assert {ln.split()[0] for ln in cmds[0][1]} == {"del"}

    # policy deleted: its rule deleted, its set destroyed after the rule is gone
    cmds = change(controller, runner, Event("NetworkPolicy", "DELETED", (copy.deepcopy(BLUE),)))
    assert [c for c, _ in cmds] == ["iptables-restore", "ipset"]
    assert [ln.split()[0] for ln in cmds[0][1]] == ["-D"]
    assert all(ln.split()[0] in ("flush", "destroy") for ln in cmds[1][1])

    # a change that changes nothing issues nothing
    assert change(controller, runner, Event("Namespace", "MODIFIED", (_ns("y", "red"),))) == []

    after = counters(ns)
    for rule, count in before.items():
        if rule in after and count != "[0:0]":
            assert int(after[rule][1:].split(":")[0]) >= int(count[1:].split(":")[0]), rule
    kept = [r for r in before if r in after and before[r] != "[0:0]" and "WEAVE-NPC-DEFAULT" in r]
    assert kept, "no counted DEFAULT rule survived"
    assert NAMESPACES and PODS  # the world the fixture used
