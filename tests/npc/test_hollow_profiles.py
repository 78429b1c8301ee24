"""Version profiles through packets on the hollow cluster: `hollow up --weave-version V` makes the
weave-npc container's image tag V, and the reference controller picks its profile from that tag.

2.1.3: every policy isolates its pods for ingress, so an egress-only policy isolates ingress (2.8.1 does
not). 2.0.5: a v1 deny-all policy isolates nothing; only the namespace annotation `DefaultDeny` does.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from netpolcheck.kube.waiting import wait_for
from tests.npc.hollowkit import Hollow
from tests.npc.hollowworld import SETTLE, HollowWorld
from tests.npc.semantics import DENY_X, Check, _pol

ISOLATION = {"net.beta.kubernetes.io/network-policy": '{"ingress":{"isolation":"DefaultDeny"}}'}
EGRESS_ONLY = _pol(
    "e", "x", {"podSelector": {"matchLabels": {"pod": "a"}}, "policyTypes": ["Egress"], "egress": [{}]}
)


@contextlib.contextmanager
def world_at(version: str, tmp: Path) -> Iterator[HollowWorld]:
    cluster = Hollow(tmp, nodes=2, version=version)
    try:
        cluster.up()
        world = HollowWorld(cluster)
        world.create()
        yield world
    finally:
        cluster.down()


def settles(world: HollowWorld, expect: dict[tuple[str, str, int, str], str], what: str) -> None:
    check = Check(what, [], expect)
    last: dict[tuple[str, str, int, str], str] = {}

    def matches() -> bool:
        last.clear()
        last.update(world.verdicts(check, {}))
        return last == expect

    try:
        wait_for(matches, what, timeout=SETTLE, interval=0.1)
    except TimeoutError:
        pytest.fail(f"{what}: expected {expect}, probed {last}")


@pytest.mark.netns
@pytest.mark.hollow
@pytest.mark.parametrize(("version", "into_x_a"), [("2.1.3", "dropped"), ("2.8.1", "allowed")])
def test_egress_only_policy_isolates_ingress_only_under_2_1_3(
    tmp_path: Path, version: str, into_x_a: str
) -> None:
    with world_at(version, tmp_path) as world:
        world.put("NetworkPolicy", EGRESS_ONLY)
        settles(
            world,
            {("y/a", "x/a", 80, "TCP"): into_x_a, ("x/a", "y/a", 80, "TCP"): "allowed"},
            f"{version}: an egress-only policy on x/a (egress open)",
        )


@pytest.mark.netns
@pytest.mark.hollow
def test_2_0_5_isolates_only_by_namespace_annotation(tmp_path: Path) -> None:
    with world_at("2.0.5", tmp_path) as world:
        world.put("NetworkPolicy", DENY_X)
        settles(
            world, {("y/a", "x/a", 80, "TCP"): "allowed"}, "2.0.5: a deny-all policy alone blocks nothing"
        )
        world.hollow.core.patch_namespace("x", {"metadata": {"annotations": ISOLATION}})
        settles(
            world,
            {("y/a", "x/a", 80, "TCP"): "dropped", ("x/b", "x/a", 80, "TCP"): "dropped"},
            "2.0.5: namespace x annotated DefaultDeny",
        )
