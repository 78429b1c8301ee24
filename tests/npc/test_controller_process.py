"""The controller as a process: in-cluster client, list + watch, reconnect/resync, restart, NFLOG log lines.

The project's API server (`netpolcheck.hollow.api`, in-process, tests/npc/nodeapi.py) listens inside the
node namespace; the controller runs there as `python -m netpolcheck.npc`; pods are bare namespaces with echo
servers (no kubelet needed: the API's pod objects carry the observed IPs); verdicts come from real packets.
Held connections across a deny are checked on the hollow cluster (test_hollow_semantics.py).
"""

from __future__ import annotations

import copy
import subprocess
import sys
from collections.abc import Iterator

import pytest

from netpolcheck.kube.waiting import wait_for
from netpolcheck.npc.world import World
from tests.npc.controller_proc import ControllerProcess
from tests.npc.expected import current_dumps, expected_dumps, same_content
from tests.npc.nodeapi import NodeApi
from tests.npc.test_observed_dataplane import OBSERVED
from tests.npc.topology import Topology

DENY_ALL = {
    "metadata": {"name": "deny-all-by-default", "namespace": "ns-1"},
    "spec": {"podSelector": {}, "policyTypes": ["Ingress"]},
}
ALLOW = {
    "metadata": {"name": "allow", "namespace": "ns-1"},
    "spec": {
        "podSelector": {"matchLabels": {"app": "http-echo"}},
        "policyTypes": ["Ingress"],
        "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "busybox"}}}]}],
    },
}


def test_bad_options_exit_2_with_one_line() -> None:
    for args in (["--version", "9.9.9"], ["--fault", "no-such-fault"]):
        proc = subprocess.run(
            [sys.executable, "-m", "netpolcheck.npc", "--node-name", "n", *args],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert proc.returncode == 2
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    proc = subprocess.run(
        [sys.executable, "-m", "netpolcheck.npc"],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 2 and "node name" in proc.stderr


@pytest.fixture
def seed() -> Iterator[tuple[Topology, NodeApi]]:
    world = World.load(OBSERVED / "seed-0-none" / "state.json")
    api = NodeApi()
    try:
        with Topology(world) as topo:
            api.load_state({"namespaces": list(world.namespaces.values()), "pods": list(world.pods.values())})
            api.listen_in(topo.nodes["node1"])
            yield topo, api
    finally:
        api.close()


def allowed(topo: Topology) -> bool:
    return topo.probe("ns-1/busybox", [("ns-1/http-echo", 80, "TCP")], timeout=0.3)[
        ("ns-1/http-echo", 80, "TCP")
    ]


def wait_verdict(topo: Topology, want: bool, what: str) -> None:
    wait_for(
        lambda: allowed(topo) == want,
        f"busybox -> http-echo:80 to be {'allowed' if want else 'dropped'} ({what})",
        timeout=15,
    )


def wait_programmed(topo: Topology, api: NodeApi, what: str) -> None:
    want = expected_dumps(api.world(), "node1")
    wait_for(
        lambda: same_content(current_dumps(topo.nodes["node1"]), want),
        f"the node's chains and sets to match the analyser's ({what})",
        timeout=15,
    )


@pytest.mark.netns
@pytest.mark.slow
def test_watch_reconnect_resync_and_restart(seed: tuple[Topology, NodeApi]) -> None:
    topo, api = seed
    node = topo.nodes["node1"]
    with ControllerProcess(node, "node1", api) as ctl:
        wait_programmed(topo, api, "initial list")
        assert allowed(topo)

        api.put("NetworkPolicy", copy.deepcopy(DENY_ALL))
        wait_verdict(topo, False, "deny-all added through the watch")
        wait_for(
            lambda: "blocked by Weave NPC." in ctl.log(), "a 'blocked by Weave NPC' log line", timeout=5
        )
        line = next(ln for ln in ctl.log().splitlines() if "blocked by Weave NPC." in ln)
        assert (
            line.startswith("WARN: ")
            and "TCP connection from 10.32.0.11:" in line
            and "to 10.32.0.10:80 blocked" in line
        )

        api.restart()  # every watch stream ends; the controller must re-watch from its resourceVersion
        api.delete("NetworkPolicy", "ns-1", "deny-all-by-default")
        api.put("NetworkPolicy", copy.deepcopy(ALLOW))
        wait_programmed(topo, api, "after a dropped watch")
        assert not allowed(topo)  # busybox lacks app=busybox

        api.expire_history()  # the next watch gets 410 Gone: the controller must list again
        busybox = api.get("Pod", "ns-1", "busybox")
        busybox["metadata"].setdefault("labels", {})["app"] = "busybox"
        api.put("Pod", busybox)
        wait_verdict(topo, True, "pod relabelled after a 410 resync")
        wait_programmed(topo, api, "after a 410 resync")
        before = current_dumps(node)
        requests = [r for r in api.requests() if "watch=true" not in r]
        assert sum("/api/v1/pods" in r for r in requests) >= 2, "no re-list after 410"

    # restart: weave-npc flushes its chains and destroys its sets, then rebuilds from list + watch
    with ControllerProcess(node, "node1", api) as ctl:
        wait_for(
            lambda: "Starting Weaveworks NPC" in ctl.log(), "the restarted controller to start", timeout=10
        )
        wait_programmed(topo, api, "after a restart")
        assert same_content(current_dumps(node), before)
        assert allowed(topo)
