"""hostNetwork pods: policies select only pods of the pod network, so a hostNetwork pod is never a
target and never matches a pod or namespace selector; its traffic is the node's. Weave lets a node
reach its own pods whatever the policies say (docs/weave-facts.md#host-to-local-pod-allowed) and, from
2.5.1, never egress-filters a pod's traffic to its own node (#egress-to-own-node-allowed); the spec
profile denies both, so under `--profile spec` these cells are the documented deviations.

A hostNetwork probe pod serves on its node's ports 80 and 81: one per node, and these cases never run
beside another case that puts one on the same node (`node_ports`: a serial group under xdist).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from netpolcheck.verdict import case as c
from netpolcheck.verdict.builders import policy, xyz_namespaces, xyz_pods
from netpolcheck.verdict.results import CaseResult
from suites.catalog import apply, params

pytestmark = [pytest.mark.catalog, pytest.mark.host_network, pytest.mark.node_ports]

# the xyz topology (pod i of each namespace on node i) plus a hostNetwork pod on node 0, the node
# of x/a, y/a and z/a: its cells to those are host-to-local-pod, to the others host-to-remote-pod
HOST = c.PodDef("h", "host", {"pod": "host"}, node=0, host_network=True)


def host_case(case_id: str, *steps: c.Step) -> c.Case:
    return c.Case(
        case_id, xyz_namespaces(("x", "y", "h")), (*xyz_pods(("x", "y")), HOST), steps, check_first=False
    )


CASES = [
    host_case(
        "deny-all-ingress-blocks-a-hostnetwork-pod-except-to-its-own-nodes-pods",
        apply("x", policy("deny-all", ingress=[])),
    ),
    host_case(
        "a-namespace-selector-never-matches-a-hostnetwork-pods-namespace",
        apply(
            "x", policy("from-h", ingress=[{"from": [{"namespaceSelector": {"matchLabels": {"ns": "h"}}}]}])
        ),
    ),
    host_case(
        "ingress-from-the-nodes-ip-as-an-ipblock",
        apply("x", policy("from-node-0", ingress=[{"from": [{"ipBlock": {"cidr": "{ip:h/host}/32"}}]}])),
    ),
    host_case(
        "egress-deny-all-never-stops-a-pod-reaching-its-own-nodes-host-network",
        apply("x", policy("deny-egress", policyTypes=["Egress"])),
    ),
]


@pytest.mark.parametrize("case", params(*CASES))
def test_host_network_pods(case: c.Case, verdict: Callable[[c.Case], CaseResult]) -> None:
    result = verdict(case)
    cells = result.checks[-1].expectation.cells
    assert any(k.source == "h/host" or k.destination == "h/host" for k in cells)  # the host pod was probed
