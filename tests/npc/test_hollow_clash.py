"""The ipset name clash on the embedded cluster (docs/weave-facts.md#ipset-name-clash): what the
reference controller lets through, probed from inside the pods, is what the model predicts under
weave-2.8.1, and that differs from the spec.

Its own 2-node hollow cluster in 10.176.0.0/12, so it never needs the semantic world's fixed IPs.
Policies are created one after another, so the controller sees them in the order listed.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from netpolcheck.kube import creating, deleting, fetching
from netpolcheck.kube.objects import ObjectRef
from netpolcheck.kube.snapshot import POLICY_API, policy_entry, state_of
from netpolcheck.kube.waiting import wait_for
from tests.npc.hollowkit import Hollow
from tests.npc.model_cli import Cell, expected_allowed
from tests.npc.semantics import _ns, _pod, _pol

POD_CIDR = "10.176.0.0/12"
NAMESPACES = [_ns("x", "red"), _ns("y", "blue")]
PODS = [
    _pod("x", "a", "node1", "10.176.1.20"),
    _pod("x", "b", "node2", "10.176.1.21"),
    _pod("y", "a", "node1", "10.176.1.22"),
    _pod("y", "b", "node2", "10.176.1.23"),
]
KEYS = [f"{p['metadata']['namespace']}/{p['metadata']['name']}" for p in PODS]
IPS = dict(zip(KEYS, (p["status"]["podIP"] for p in PODS), strict=True))
CELLS: list[Cell] = [(s, d, 80, "TCP") for s in KEYS for d in KEYS if s != d]
SETTLE = 20.0  # seconds the probes may take to show the controller's verdicts (generous: loaded machine)

POD_A = {"matchLabels": {"pod": "a"}}
BLUE = {"matchLabels": {"team": "blue"}}
# one policy with both peers: the list:set is created first, the hash:ip fails: x isolated for egress
ONE_POLICY = [
    _pol(
        "both",
        "x",
        {
            "podSelector": {},
            "policyTypes": ["Egress"],
            "egress": [{"to": [{"namespaceSelector": {}}, {"namespaceSelector": {}, "podSelector": {}}]}],
        },
    )
]
NS_ONLY = _pol("nsonly", "x", {"podSelector": POD_A, "ingress": [{"from": [{"namespaceSelector": BLUE}]}]})
POD_AND_NS = _pol(
    "podns",
    "y",
    {"podSelector": POD_A, "ingress": [{"from": [{"namespaceSelector": BLUE, "podSelector": {}}]}]},
)
SCENARIOS = {
    "one-policy-fails-closed": ONE_POLICY,
    "pod-namespace-peer-second-fails-closed": [NS_ONLY, POD_AND_NS],
    "namespace-peer-second-not-enforced": [POD_AND_NS, NS_ONLY],
}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hollow]:
    hollow = Hollow(Path(tmp_path_factory.mktemp("npcref-clash")), nodes=2, pod_cidr=POD_CIDR)
    try:
        hollow.up()
        pods = [{**p, "spec": {**p["spec"], "containers": [{"name": "c"}]}} for p in PODS]
        hollow.apply_state(copy.deepcopy({"namespaces": NAMESPACES, "policies": [], "pods": pods}))
        yield hollow
    finally:
        hollow.down()


def _probe(hollow: Hollow) -> dict[Cell, bool]:
    got: dict[Cell, bool] = {}
    for src in KEYS:
        cells = [c for c in CELLS if c[0] == src]
        targets = [
            {"id": str(i), "ip": IPS[c[1]], "port": c[2], "protocol": c[3]} for i, c in enumerate(cells)
        ]
        namespace, pod = src.split("/")
        for cell, verdict in zip(cells, hollow.probe(namespace, pod, targets), strict=True):
            got[cell] = verdict == "allowed"
    return got


def _delete_policies(hollow: Hollow) -> None:
    for ns in ("x", "y"):
        for existing in fetching.list_objects(hollow.api, POLICY_API, "NetworkPolicy", ns):
            name = existing["metadata"]["name"]
            deleting.delete(hollow.api, ObjectRef(POLICY_API, "NetworkPolicy", name, ns))


@pytest.mark.netns
@pytest.mark.hollow
@pytest.mark.slow
@pytest.mark.parametrize("name", SCENARIOS)
def test_clash_probes_match_the_model(cluster: Hollow, name: str) -> None:
    policies: list[dict[str, Any]] = SCENARIOS[name]
    probes = [{"port": 80, "protocol": "TCP"}]
    state = state_of(NAMESPACES, PODS, policies, probes)
    state["policies"] = [policy_entry(p) for p in policies]  # the order the controller sees (state_of sorts)
    model = {c: v for c, v in expected_allowed(state, "weave-2.8.1").items() if c in CELLS}
    assert len(model) == len(CELLS)
    assert model != {c: v for c, v in expected_allowed(state, "spec").items() if c in CELLS}
    logged_before = {node: len(cluster.npc_log(node)) for node in ("node1", "node2")}
    try:
        for pol in policies:  # one at a time: the controller sees them in this order
            meta = {"name": pol["metadata"]["name"], "namespace": pol["metadata"]["namespace"]}
            creating.create(
                cluster.api,
                {"apiVersion": POLICY_API, "kind": "NetworkPolicy", "metadata": meta, "spec": pol["spec"]},
            )
        last: dict[Cell, bool] = {}

        def matches() -> bool:
            last.clear()
            last.update(_probe(cluster))
            return last == model

        with contextlib.suppress(TimeoutError):  # the difference is reported below, cell by cell
            wait_for(matches, f"the probes of {name} to match the model", timeout=SETTLE, interval=0.2)
        assert {c: (model[c], last.get(c)) for c in CELLS if last.get(c) != model[c]} == {}
        for node, start in logged_before.items():  # each node's controller logged the failed create
            assert "set with the same name already exists" in cluster.npc_log(node)[start:], node
    finally:
        _delete_policies(cluster)
        wait_for(
            lambda: all(
                not fetching.list_objects(cluster.api, POLICY_API, "NetworkPolicy", ns) for ns in ("x", "y")
            ),
            "the scenario's policies to be deleted",
            timeout=30,
        )
