"""Per semantic area on the embedded cluster, and the fault table there.

A 2-node hollow cluster runs weave-net with `--npc reference`; the world of tests/npc/semantics.py is
created as real objects (probe pods with fixed IPs on fixed nodes); each check applies its policies and
steps through the API, waits (bounded) for the witness cells, and reverts. Verdicts come from the probe
agent inside the pods (and from a hostNetwork weave-net pod for host -> local pod).
`established-survives-deny` runs with the probe agent's `hold` (its own test, and in the fault loop).

Faults: the DaemonSet's weave-npc container gets `--fault NAME` (a rolling update), and every check runs.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from netpolcheck.kube import execing
from netpolcheck.kube.waiting import wait_for
from netpolcheck.npc.faults import FAULTS
from tests.npc.hollowworld import HOLLOW_CHECKS, SETTLE, HollowWorld, run_hollow_check
from tests.npc.semantics import DENY_X, Check

FULL_TABLE = os.environ.get("NPCREF_FAULT_TABLE") == "full"


@pytest.fixture
def world(hollow_world: HollowWorld) -> HollowWorld:
    return hollow_world


@pytest.fixture(scope="module")
def faulty(hollow_world: HollowWorld) -> Iterator[HollowWorld]:
    """The world for the fault tests, which switch faults one after another; no fault afterwards."""
    try:
        yield hollow_world
    finally:
        hollow_world.hollow.set_npc_args([])


@pytest.mark.netns
@pytest.mark.hollow
@pytest.mark.slow
@pytest.mark.parametrize("check", HOLLOW_CHECKS, ids=[c.name for c in HOLLOW_CHECKS])
def test_semantic_area_on_hollow(world: HollowWorld, check: Check) -> None:
    assert run_hollow_check(world, check) == {}


def _hold(world: HollowWorld, command: str, *args: str) -> dict[str, Any]:
    cmd = ["python", "-m", "netpolcheck.probe", command, *args]
    done = execing.exec_in(world.hollow.api, ("y", "a"), cmd, timeout=60).check(f"probe {command} in y/a")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def held_connection_problems(world: HollowWorld) -> list[str]:
    """y/a holds TCP and UDP flows to x/a (probe agent `hold`); deny-all in x. Returns what went wrong:
    new connections not dropped, fewer than ten TCP echoes after the deny, or any lost packet/gap."""
    problems: list[str] = []
    status = f"/tmp/npcref-hold-{os.getpid()}.json"
    _hold(world, "hold", "--background", "--ip", "10.32.1.20", "--port", "80", "--udp-port", "80",
          "--status", status)  # fmt: skip
    echoed_at_deny = 0
    try:
        world.put("NetworkPolicy", DENY_X)
        deny = Check("deny", [], {("y/a", "x/a", 80, "TCP"): "dropped"})
        try:
            wait_for(
                lambda: world.verdicts(deny, {}) == deny.expect,
                "new y/a -> x/a connections to be dropped",
                timeout=SETTLE,
                interval=0.1,
            )
        except TimeoutError:
            problems.append("new connections were not dropped after the deny")
        echoed_at_deny = _hold(world, "hold-status", "--status", status)["flows"]["tcp"]["echoed"]
        try:
            wait_for(
                lambda: (
                    _hold(world, "hold-status", "--status", status)["flows"]["tcp"]["echoed"]
                    >= echoed_at_deny + 10
                ),
                "ten more TCP echoes on the held connection after the deny",
                timeout=10,
                interval=0.2,
            )
        except TimeoutError:
            problems.append("the held TCP connection stopped echoing after the deny")
    finally:
        report = _hold(world, "hold-stop", "--status", status)
        Path(status).unlink(missing_ok=True)  # the pod's /tmp is this machine's /tmp
        world.revert()
    for flow in ("tcp", "udp"):
        stats = report["flows"][flow]
        if stats["lost"] != 0 or stats["gaps"] != []:
            problems.append(f"held {flow} flow: lost {stats['lost']}, gaps {stats['gaps']}")
    return problems


@pytest.mark.netns
@pytest.mark.hollow
@pytest.mark.slow
def test_established_connection_survives_a_deny_on_hollow(world: HollowWorld) -> None:
    assert held_connection_problems(world) == []


@pytest.mark.netns
@pytest.mark.hollow
@pytest.mark.slow
@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_fault_is_caught_on_hollow(faulty: HollowWorld, fault: str) -> None:
    """Checks run under the fault until one fails (all of them, and the held-connection check too, with
    NPCREF_FAULT_TABLE=full, which prints this fault's full row of the table)."""
    world = faulty
    world.hollow.set_npc_args(["--fault", fault])  # one rollout per fault; `faulty` restores at the end
    failing: dict[str, int] = {}
    for check in HOLLOW_CHECKS:
        wrong = run_hollow_check(world, check)
        if wrong:
            failing[check.name] = len(wrong)
            if not FULL_TABLE:
                break
    if FULL_TABLE or not failing:
        held = held_connection_problems(world)
        if held:
            failing["established-survives-deny"] = len(held)
    row = ", ".join(f"{n} ({c})" for n, c in failing.items()) or "NOT CAUGHT"
    print(f"\nHOLLOW FAULT {fault}: {row}")
    assert failing, f"fault {fault} was not caught by any check on the hollow cluster"
