"""The ipset name clash under the Weave profiles (docs/weave-facts.md#ipset-name-clash), cell by cell.

Inside one policy it fails closed (the targets are isolated, none of its allow rules installed); across
policies the one weave-npc sees second loses, before its targets are isolated (not enforced at all) or
after (fail closed), depending on which peer it has. The STATE's policy order is the order seen.
"""

from __future__ import annotations

from typing import Any

import pytest

from netpolcheck.model import profiles as dev
from netpolcheck.model.cell import Evaluator
from netpolcheck.model.objects import Probe
from netpolcheck.model.profiles import PROFILES, weave_profile
from netpolcheck.model.state import parse_state
from tests.model.builders import Cells, matrix, netpol, sel, world

PODS = [f"{n}/{p}" for n in "xyz" for p in "abc"]
EXTERNAL = [{"name": "ext", "ip": "192.0.2.10"}]
WEAVE = ("weave-2.8.1", "weave-2.9.0")


def _into(cells: Cells, destination: str) -> set[str]:
    return {s for (s, d, _, _), ok in cells.items() if d == destination and ok}


def _from(cells: Cells, source: str) -> set[str]:
    return {d for (s, d, _, _), ok in cells.items() if s == source and ok}


NS_ONLY: dict[str, Any] = {"namespaceSelector": {}}
BOTH: dict[str, Any] = {"namespaceSelector": {}, "podSelector": {}}


@pytest.mark.parametrize("peers", [[NS_ONLY, BOTH], [BOTH, NS_ONLY]], ids=["ns-first", "both-first"])
def test_inside_one_policy_it_fails_closed(peers: list[dict[str, Any]]) -> None:
    spec = {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{"to": peers}]}
    doc = world([netpol("x/p", spec)])
    assert {k for k, ok in matrix(doc, "spec").items() if not ok} == set()
    for name in WEAVE:
        cells = matrix(doc, name)
        denied = {k for k, ok in cells.items() if not ok}
        assert denied == {k for k in cells if k[0].startswith("x/")}  # every x pod reaches nothing
    assert {k for k, ok in matrix(doc, weave_profile("2.6.3")).items() if not ok} == denied
    state = parse_state(doc)
    by_key = {ep.key: ep for ep in state.endpoints}
    verdict = Evaluator(state, PROFILES["weave-2.8.1"]).cell(by_key["x/a"], by_key["y/b"], Probe(80))
    assert verdict is not None and not verdict.allowed
    assert verdict.reason == (
        f"egress denied: isolated by x/p ({dev.IPSET_NAME_CLASH}: none of its allow rules installed) "
        "and no rule allows it; ingress not isolated"
    )


def _two(first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any]:
    return world([first, second], externals=EXTERNAL)


# {namespaceSelector: ns=y} and {namespaceSelector: ns=y, podSelector: {}} want one set name too
NS_Y = netpol(
    "x/nsonly", {"podSelector": sel(pod="a"), "ingress": [{"from": [{"namespaceSelector": sel(ns="y")}]}]}
)
BOTH_Y = netpol(
    "z/both",
    {
        "podSelector": sel(pod="a"),
        "ingress": [{"from": [{"namespaceSelector": sel(ns="y"), "podSelector": {}}]}],
    },
)
Y_PODS = {"y/a", "y/b", "y/c"}


def test_across_policies_the_second_with_the_pod_namespace_peer_fails_closed() -> None:
    doc = _two(NS_Y, BOTH_Y)
    spec = matrix(doc, "spec")
    assert _into(spec, "x/a") == Y_PODS and _into(spec, "z/a") == Y_PODS
    for name in WEAVE:
        cells = matrix(doc, name)
        assert _into(cells, "x/a") == Y_PODS
        assert _into(cells, "z/a") == set()  # isolated, its allow rule never installed


def test_across_policies_the_second_with_the_namespace_peer_is_not_enforced() -> None:
    doc = _two(BOTH_Y, NS_Y)
    spec = matrix(doc, "spec")
    assert _into(spec, "x/a") == Y_PODS and _into(spec, "z/a") == Y_PODS
    everyone = set(PODS) - {"x/a"} | {"ext"}
    for name in WEAVE:
        cells = matrix(doc, name)
        assert _into(cells, "x/a") == everyone  # its set create failed before its target: fail open
        assert _into(cells, "z/a") == Y_PODS
        assert _from(cells, "ext") == set(PODS) - {"z/a"}


def test_no_clash_without_both_kinds_or_before_2_6() -> None:
    doc = _two(
        NS_Y,
        netpol(
            "z/other",
            {
                "podSelector": sel(pod="a"),
                "ingress": [{"from": [{"namespaceSelector": sel(ns="x"), "podSelector": {}}]}],
            },
        ),
    )
    assert matrix(doc, "weave-2.8.1") == matrix(doc, "spec")
    clash = _two(NS_Y, BOTH_Y)
    cells = matrix(clash, "weave-2.1.3")  # pod+namespace peers are pod selectors there: no such set
    assert _into(cells, "z/a") == {"z/b", "z/c"}
