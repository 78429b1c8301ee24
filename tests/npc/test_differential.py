"""Differential test on the hollow cluster: random policies created through the API, probed by the probe
agent inside every source pod (one exec per source pod for its whole row), against the model
(`netpolcheck expect --profile weave-2.8.1`). Bounded (NPCREF_EXAMPLES, default 12, no shrinking); each
example waits up to SETTLE seconds for the matrix to match, then fails with truth tables of the expected
and observed cells (NPCREF_DIFF_FAULTS=a,b runs the controllers with faults). Denied cells must be
dropped, not rejected. The world is reverted between examples.

The controller never imports the model; this test only runs the model's command-line contract.
"""

from __future__ import annotations

import contextlib
import json
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from netpolcheck.kube.snapshot import policy_entry, state_of
from netpolcheck.kube.waiting import wait_for
from tests.npc.hollowworld import SETTLE, HollowWorld
from tests.npc.model_cli import expected_allowed
from tests.npc.semantics import NAMESPACES, PODS

PROBES = [(80, "TCP"), (81, "TCP"), (80, "UDP"), (81, "UDP")]
Cell = tuple[str, str, int, str]
# e.g. NPCREF_DIFF_FAULTS=ports-ignored: run the controllers broken, to see what a disagreement looks like
FAULTS = [f for f in os.environ.get("NPCREF_DIFF_FAULTS", "").split(",") if f]
EXAMPLES = int(os.environ.get("NPCREF_EXAMPLES", "12"))

pod_selectors = st.sampled_from(
    [
        {},
        {"matchLabels": {"pod": "a"}},
        {"matchLabels": {"pod": "b"}},
        {"matchLabels": {"role": "client"}},
        {"matchExpressions": [{"key": "pod", "operator": "In", "values": ["a"]}]},
        {"matchExpressions": [{"key": "role", "operator": "DoesNotExist"}]},
    ]
)
ns_selectors = st.sampled_from(
    [
        {},
        {"matchLabels": {"team": "blue"}},
        {"matchLabels": {"team": "red"}},
        {"matchExpressions": [{"key": "team", "operator": "NotIn", "values": ["red"]}]},
    ]
)
peers = st.one_of(
    st.builds(lambda p: {"podSelector": p}, pod_selectors),
    st.builds(lambda n: {"namespaceSelector": n}, ns_selectors),
    st.builds(lambda p, n: {"podSelector": p, "namespaceSelector": n}, pod_selectors, ns_selectors),
    st.sampled_from(
        [
            {"ipBlock": {"cidr": "10.32.1.0/24", "except": ["10.32.1.22/32"]}},
            {"ipBlock": {"cidr": "10.32.1.20/31"}},
        ]
    ),
)
ports = st.one_of(
    st.none(),
    st.lists(
        st.builds(
            lambda p, proto: {"port": p, "protocol": proto},
            st.sampled_from([80, 81]),
            st.sampled_from(["TCP", "UDP"]),
        ),
        min_size=1,
        max_size=2,
    ),
)


@st.composite
def rules(draw: st.DrawFn, peer_field: str) -> dict[str, Any]:
    rule: dict[str, Any] = {}
    chosen = draw(st.one_of(st.none(), st.lists(peers, min_size=1, max_size=2)))
    if chosen is not None:
        rule[peer_field] = chosen
    chosen_ports = draw(ports)
    if chosen_ports is not None:
        rule["ports"] = chosen_ports
    return rule


@st.composite
def policies(draw: st.DrawFn) -> list[dict[str, Any]]:
    result = []
    for i in range(draw(st.integers(1, 3))):
        types = draw(st.sampled_from([["Ingress"], ["Egress"], ["Ingress", "Egress"]]))
        spec: dict[str, Any] = {"podSelector": draw(pod_selectors), "policyTypes": types}
        if "Ingress" in types:
            spec["ingress"] = draw(st.lists(rules("from"), max_size=2))
        if "Egress" in types:
            spec["egress"] = draw(st.lists(rules("to"), max_size=2))
        namespace = draw(st.sampled_from(["x", "y"]))
        result.append(
            {
                "metadata": {"namespace": namespace, "name": f"p{i}", "uid": f"np-{namespace}-p{i}"},
                "spec": spec,
            }
        )
    return result


def expected(pols: list[dict[str, Any]]) -> dict[tuple[str, str, int, str], bool]:
    state = state_of(NAMESPACES, PODS, pols, [{"port": port, "protocol": proto} for port, proto in PROBES])
    state["policies"] = [policy_entry(p) for p in pols]  # creation order: it decides the ipset name clash
    return expected_allowed(state)


def truth_tables(
    want: dict[tuple[str, str, int, str], bool], got: dict[tuple[str, str, int, str], bool]
) -> str:
    names = sorted({k[0] for k in want})
    lines = []
    for port, proto in PROBES:
        lines.append(
            f"{proto} {port}: expected (model) | observed (dataplane); '.' allowed, 'X' denied, '!' differ"
        )
        for src in names:
            row_want = "".join(
                "-" if src == dst else ".X"[not want[(src, dst, port, proto)]] for dst in names
            )
            row_got = "".join("-" if src == dst else ".X"[not got[(src, dst, port, proto)]] for dst in names)
            marks = "".join("!" if a != b else " " for a, b in zip(row_want, row_got, strict=True))
            lines.append(f"  {src:<4} {row_want} | {row_got}  {marks}")
        lines.append(f"  cols: {' '.join(names)}")
    return "\n".join(lines)


def observed(world: HollowWorld) -> tuple[dict[Cell, bool], list[Cell]]:
    """The whole matrix, one probe-agent exec per source pod; also the cells answered `rejected`."""
    got: dict[Cell, bool] = {}
    rejected: list[Cell] = []
    names = [f"{p['metadata']['namespace']}/{p['metadata']['name']}" for p in PODS]
    for src in names:
        cells = [(src, dst, port, proto) for dst in names if dst != src for port, proto in PROBES]
        namespace, pod = src.split("/")
        targets = [
            {"id": str(i), "ip": world.ips[c[1]], "port": c[2], "protocol": c[3]} for i, c in enumerate(cells)
        ]
        for cell, verdict in zip(
            cells, world.hollow.probe(namespace, pod, targets, timeout=0.4), strict=True
        ):
            got[cell] = verdict == "allowed"
            if verdict == "rejected":
                rejected.append(cell)
    return got, rejected


@pytest.mark.netns
@pytest.mark.hollow
@pytest.mark.slow
def test_dataplane_agrees_with_the_model(hollow_world: HollowWorld) -> None:
    world = hollow_world

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(pols=policies())
    def check(pols: list[dict[str, Any]]) -> None:
        want = expected(pols)
        got: dict[Cell, bool] = {}
        rejected: list[Cell] = []

        def agrees() -> bool:
            got.clear()
            rejected.clear()
            matrix, refused = observed(world)
            got.update(matrix)
            rejected.extend(refused)
            return got == want and not rejected

        try:
            for pol in pols:
                world.put("NetworkPolicy", pol)
            with contextlib.suppress(TimeoutError):  # a disagreement is reported below as truth tables
                wait_for(agrees, "the probed matrix to match the model", timeout=SETTLE, interval=0.1)
        finally:
            world.revert()
        assert want.keys() == got.keys()
        assert not rejected, f"denied cells were rejected, not dropped: {rejected}"
        if want != got:
            pytest.fail(
                f"dataplane disagrees with the model for policies {json.dumps(pols)}\n"
                + truth_tables(want, got)
            )

    if FAULTS:
        world.hollow.set_npc_args([arg for fault in FAULTS for arg in ("--fault", fault)])
    try:
        check()
    finally:
        if FAULTS:
            world.hollow.set_npc_args([])
