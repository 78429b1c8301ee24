"""On the embedded (hollow) cluster: every observed 2.8.1 state, served through the API, gives the same
chains, sets and matrix as the real weave-npc 2.8.1; a restart of the controller rebuilds everything.

The cluster runs `weave-net` with `--npc reference` (its weave-npc containers are `python -m
netpolcheck.npc`, profile from the image tag 2.8.1). Its own namespaces (default, kube-system, ...) add
their per-namespace sets and default rules; those are checked to be exactly the extra ones and removed
before comparing with the observed files.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from netpolcheck.kube.waiting import wait_for
from netpolcheck.npc.shortname import set_name
from tests.npc import dumps
from tests.npc.expected import Dumps
from tests.npc.hollowkit import Hollow
from tests.npc.test_observed_dataplane import OBSERVED

SCENARIOS = sorted(p.name for p in OBSERVED.iterdir() if (p / "matrix.json").exists())
PROBES = [(80, "TCP"), (81, "TCP"), (80, "UDP"), (81, "UDP")]


@pytest.fixture(scope="module")
def hollow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hollow]:
    cluster = Hollow(Path(tmp_path_factory.mktemp("npcref-hollow")))
    try:
        yield cluster.up()
    finally:
        cluster.down()


def without_foreign_namespaces(got: Dumps, own: set[str]) -> Dumps:
    """Drop the per-namespace rules and sets of the cluster's own namespaces (kube-system, ...)."""
    rules, sets = got
    comment_ns = re.compile(r'isolation for namespace: ([^"]+)"')
    kept_rules = {
        chain: [r for r in lines if not (m := comment_ns.search(r)) or m.group(1) in own]
        for chain, lines in rules.items()
    }
    foreign = {m.group(1) for lines in rules.values() for r in lines if (m := comment_ns.search(r))} - own
    foreign_sets = {
        set_name(k)
        for ns in foreign
        for k in (f"{ns}:", f"ingress-default-allow:{ns}", f"egress-default-allow:{ns}")
    }
    if not foreign_sets <= sets.keys():
        return rules, sets  # not settled yet (a namespace of the cluster has no sets): compare unfiltered
    return kept_rules, {n: v for n, v in sets.items() if n not in foreign_sets}


def observed_nodes(scenario: str) -> list[str]:
    """The nodes whose iptables-save and ipset dumps were recorded for `scenario`."""
    return [d.name.split(".")[1] for d in sorted((OBSERVED / scenario).glob("iptables-save.*.txt"))]


def wait_for_observed_dumps(hollow: Hollow, scenario: str, node: str, own: set[str]) -> Dumps:
    """Wait until `node`'s WEAVE-NPC chains and sets, less the cluster's own namespaces, equal what the
    real weave-npc 2.8.1 programmed for `scenario`; returns the node's whole dumps at that moment.

    Equality with the observed dumps, not "two reads in a row agree", is what proves the controller has
    processed the state: a replacement weave-npc pod is Ready before its controller has flushed and
    reprogrammed (Weave's manifest has no readiness probe for it), so until then the dumps are the
    previous controller's and stable."""
    want = (
        dumps.npc_rules((OBSERVED / scenario / f"iptables-save.{node}.txt").read_text()),
        dumps.ipsets((OBSERVED / scenario / f"ipset.{node}.txt").read_text()),
    )
    last: list[Dumps] = []

    def matches() -> bool:
        last[:] = [hollow.dumps(node)]
        return without_foreign_namespaces(last[0], own) == want

    try:
        wait_for(matches, f"{node}'s WEAVE-NPC chains and sets to equal the observed ones", timeout=20)
    except TimeoutError:
        assert without_foreign_namespaces(last[0], own) == want  # shows the difference
    return last[0]


@pytest.mark.netns
@pytest.mark.hollow
@pytest.mark.slow
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_observed_state_on_hollow_cluster(hollow: Hollow, scenario: str) -> None:
    state: dict[str, Any] = json.loads((OBSERVED / scenario / "state.json").read_text())
    own = {ns["metadata"]["name"] for ns in state["namespaces"]}
    hollow.restart_weave()  # a fresh controller per state, as in the observed runs
    hollow.apply_state(state)
    try:
        for node in observed_nodes(scenario):
            wait_for_observed_dumps(hollow, scenario, node, own)
        observed = {
            (c["from"], c["to"], c["port"], c["protocol"]): c["allowed"]
            for c in json.loads((OBSERVED / scenario / "matrix.json").read_text())
        }
        got = probe_matrix(hollow, state)
        wrong = sorted(
            f"{k}: observed {observed[k]}, got {got.get(k)}" for k in observed if got.get(k) != observed[k]
        )
        assert wrong == []
    finally:
        hollow.delete_state(state)


def probe_matrix(hollow: Hollow, state: dict[str, Any]) -> dict[tuple[str, str, int, str], bool]:
    pods = [(p["metadata"]["namespace"], p["metadata"]["name"], p["status"]["podIP"]) for p in state["pods"]]
    result = {}
    for ns, name, _ in pods:
        targets = [
            {"id": f"{dns}/{dname}|{port}|{proto}", "ip": ip, "port": port, "protocol": proto}
            for dns, dname, ip in pods
            if (dns, dname) != (ns, name)
            for port, proto in PROBES
        ]
        for target, verdict in zip(targets, hollow.probe(ns, name, targets), strict=True):
            dst, port, proto = target["id"].split("|")
            result[(f"{ns}/{name}", dst, int(port), proto)] = verdict == "allowed"
    return result


@pytest.mark.netns
@pytest.mark.hollow
@pytest.mark.slow
def test_restart_rebuilds_everything_and_blocked_lines_are_logged(hollow: Hollow) -> None:
    state = json.loads((OBSERVED / "seed-1-deny" / "state.json").read_text())
    own = {ns["metadata"]["name"] for ns in state["namespaces"]}
    hollow.restart_weave()
    hollow.apply_state(state)
    try:
        settled = wait_for_observed_dumps(hollow, "seed-1-deny", "node1", own)
        verdicts = hollow.probe(
            "ns-1", "busybox", [{"id": "x", "ip": "10.32.0.10", "port": 80, "protocol": "TCP"}]
        )
        assert verdicts == ["dropped"]
        wait_for(
            lambda: "TCP connection from 10.32.0.11:" in hollow.npc_log("node1"),
            "a 'blocked by Weave NPC' line in weave-npc's log on node1",
            timeout=10,
        )
        hollow.restart_weave()
        # Until the new controller has flushed and reprogrammed, the dumps are still the old one's:
        # first wait for the new controller's own log to show it programmed the state's namespace.
        wait_for(
            lambda: "DefaultAllow ingress isolation for namespace: ns-1" in hollow.npc_log("node1"),
            "the restarted weave-npc on node1 to program namespace ns-1 (its log)",
            timeout=20,
        )
        try:
            wait_for(
                lambda: hollow.dumps("node1") == settled,
                "node1's dataplane rebuilt after the restart",
                timeout=20,
            )
        except TimeoutError:
            rules, sets = hollow.dumps("node1")
            chains = {c: (settled[0].get(c), r) for c, r in rules.items() if settled[0].get(c) != r}
            setdiff = {n: (settled[1].get(n), m) for n, m in sets.items() if settled[1].get(n) != m}
            missing = sorted(set(settled[1]) - set(sets))
            pytest.fail(
                f"node1 after restart: chains (before, now) {chains}; sets {setdiff}; missing {missing}"
            )
        assert hollow.probe(
            "ns-1", "busybox", [{"id": "x", "ip": "10.32.0.10", "port": 80, "protocol": "TCP"}]
        ) == ["dropped"]
    finally:
        hollow.delete_state(state)
