"""Per semantic area, packets through the controller's real dataplane match Kubernetes semantics."""

from __future__ import annotations

import copy
from collections.abc import Iterator

import pytest

from netpolcheck.npc.kubewatch import Event
from tests.npc.netns import run
from tests.npc.semantics import (
    CHECKS,
    DENY_X,
    NAMESPACES,
    Check,
    Nodes,
    _pol,
    initial_events,
    run_check,
    world,
)
from tests.npc.topology import Topology


@pytest.fixture(scope="module")
def topo() -> Iterator[Topology]:
    with Topology(world()) as topology:
        yield topology


@pytest.mark.netns
@pytest.mark.slow
@pytest.mark.parametrize("check", CHECKS, ids=[c.name for c in CHECKS])
def test_semantic_area(topo: Topology, check: Check) -> None:
    assert run_check(topo, check, frozenset()) == {}


def _without_egress_hooks(topo: Topology) -> None:
    """Older routers have no egress hook; an empty WEAVE-NPC-EGRESS behaves the same (2.8.1 hooks stay)."""
    for ns in topo.nodes.values():
        run("iptables", "-F", "WEAVE-NPC-EGRESS", netns=ns)


def _verdict(topo: Topology, src: str, dst: str) -> str:
    return topo.verdicts(topo.pods[src], [(dst, 80, "TCP")], timeout=0.4)[(dst, 80, "TCP")]


@pytest.mark.netns
@pytest.mark.slow
def test_2_1_3_profile_egress_only_policy_isolates_ingress(topo: Topology) -> None:
    egress_only = _pol(
        "e", "x", {"podSelector": {"matchLabels": {"pod": "a"}}, "policyTypes": ["Egress"], "egress": [{}]}
    )
    for version, into_x_a in (("2.1.3", "dropped"), ("2.8.1", "allowed")):
        _without_egress_hooks(topo)
        nodes = Nodes(topo, frozenset(), version=version)
        nodes.send(initial_events([egress_only]))
        assert _verdict(topo, "y/a", "x/a") == into_x_a, version
        assert _verdict(topo, "x/a", "y/a") == "allowed", version  # egress open either way (egress: [{}])


@pytest.mark.netns
@pytest.mark.slow
def test_2_0_5_profile_isolates_only_by_annotation(topo: Topology) -> None:
    _without_egress_hooks(topo)
    nodes = Nodes(topo, frozenset(), version="2.0.5")
    nodes.send(initial_events([DENY_X]))
    assert _verdict(topo, "y/a", "x/a") == "allowed"  # a deny-all policy alone blocks nothing in 2.0.5
    annotated = copy.deepcopy(NAMESPACES[0])
    annotated["metadata"]["annotations"] = {
        "net.beta.kubernetes.io/network-policy": '{"ingress":{"isolation":"DefaultDeny"}}'
    }
    nodes.send([Event("Namespace", "MODIFIED", (annotated,))])
    assert _verdict(topo, "y/a", "x/a") == "dropped"
    assert _verdict(topo, "x/b", "x/a") == "dropped"
