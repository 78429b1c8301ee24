"""Explanations of single cells, and the cautions for deviations the model cannot predict."""

from __future__ import annotations

import pytest

from netpolcheck.model import profiles as dev
from netpolcheck.model.caveats import unpredictable
from netpolcheck.model.errors import StateError
from netpolcheck.model.explain import explain
from netpolcheck.model.objects import Probe
from netpolcheck.model.profiles import PROFILES, weave_profile
from netpolcheck.model.results import expected_results
from netpolcheck.model.state import parse_state
from tests.model.builders import netpol, sel, world

FROM_B = {
    "podSelector": sel(pod="a"),
    "ingress": [{"from": [{"podSelector": sel(pod="b")}], "ports": [{"port": 81}]}],
}


def test_denied_cell_lists_each_rule_and_what_did_not_match() -> None:
    state = parse_state(world([netpol("x/p", FROM_B)]))
    story = explain(state, PROFILES["spec"], "x/b", "x/a", Probe(80))
    assert not story.verdict.allowed
    assert story.lines[0].startswith("x/b -> x/a TCP/80 under spec: denied")
    assert "egress: allowed" in story.lines
    assert "ingress: DENIED" in story.lines
    assert "  isolated by: x/p" in story.lines
    assert "  - x/p ingress[0] does not match: port TCP/80 is not TCP/81" in story.lines
    other = explain(state, PROFILES["spec"], "y/b", "x/a", Probe(81))
    assert (
        "  - x/p ingress[0] does not match: peer y/b: namespace y is not the policy's namespace x"
        in other.lines
    )


@pytest.mark.parametrize(
    ("peer", "source", "why"),
    [
        ({"podSelector": sel(pod="b")}, "x/c", "labels: pod=c not in (b)"),
        (
            {"podSelector": {"matchExpressions": [{"key": "tier", "operator": "Exists"}]}},
            "x/b",
            "labels: no label tier",
        ),
        (
            {"podSelector": {"matchExpressions": [{"key": "pod", "operator": "DoesNotExist"}]}},
            "x/b",
            "labels: has label pod",
        ),
        (
            {"podSelector": {"matchExpressions": [{"key": "pod", "operator": "NotIn", "values": ["b"]}]}},
            "x/b",
            "labels: pod=b in (b)",
        ),
        ({"namespaceSelector": sel(ns="z")}, "y/b", "namespace y: ns=y not in (z)"),
        ({"namespaceSelector": {}, "podSelector": sel(pod="c")}, "y/b", "labels: pod=b not in (c)"),
        ({"ipBlock": {"cidr": "10.0.3.0/24"}}, "y/b", "10.0.2.2 is not in ipBlock 10.0.3.0/24"),
        (
            {"ipBlock": {"cidr": "10.0.0.0/16", "except": ["10.0.2.0/24"]}},
            "y/b",
            "10.0.2.2 is in the except 10.0.2.0/24 of ipBlock 10.0.0.0/16",
        ),
    ],
)
def test_a_peer_that_does_not_match_names_the_label_namespace_or_cidr(
    peer: dict[str, object], source: str, why: str
) -> None:
    state = parse_state(world([netpol("x/p", {"podSelector": sel(pod="a"), "ingress": [{"from": [peer]}]})]))
    story = explain(state, PROFILES["spec"], source, "x/a", Probe(80))
    assert f"  - x/p ingress[0] does not match: peer {source}: {why}" in story.lines


def test_a_policy_a_profile_ignores_is_called_ignored() -> None:
    deny_all = netpol("x/deny", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]})
    state = parse_state(world([deny_all]))
    legacy = explain(state, PROFILES["weave-2.0.5"], "x/b", "x/a", Probe(80))
    assert "  - x/deny is ignored for ingress under weave-2.0.5 (legacy-isolation)" in legacy.lines
    assert (
        "  - x/deny is ignored for egress under weave-2.0.5 (egress-ignored, legacy-isolation)"
        in legacy.lines
    )
    weave_213 = explain(state, PROFILES["weave-2.1.3"], "x/b", "x/a", Probe(80))
    assert "  - x/deny is ignored for egress under weave-2.1.3 (egress-ignored)" in weave_213.lines
    assert not any("ignored for ingress" in line for line in weave_213.lines)


def test_allowed_cell_names_the_matching_rule() -> None:
    state = parse_state(world([netpol("x/p", FROM_B)], probes=[{"port": 81}]))
    story = explain(state, PROFILES["spec"], "x/b", "x/a", Probe(81))
    assert story.verdict.allowed
    assert story.verdict.reason == "egress not isolated; ingress allowed by x/p ingress[0]"
    assert "  - x/p ingress[0] matches" in story.lines


def test_skipped_named_port_policy_is_shown_with_its_deviation() -> None:
    spec = {"podSelector": sel(pod="a"), "ingress": [{"ports": [{"port": "alt"}]}]}
    state = parse_state(world([netpol("x/p", spec)]))
    story = explain(state, PROFILES["weave-2.8.1"], "y/a", "x/a", Probe(80))
    assert story.verdict.allowed and not story.spec_allowed
    assert story.deviations == (dev.NAMED_PORT_POLICY_SKIPPED,)
    assert (
        f"  - x/p selects this pod but is ignored under weave-2.8.1 ({dev.NAMED_PORT_POLICY_SKIPPED})"
        in story.lines
    )
    assert any(
        line.startswith(f"deviation {dev.NAMED_PORT_POLICY_SKIPPED} (>=2.6.3;") for line in story.lines
    )


def test_unknown_cell_is_a_state_error() -> None:
    state = parse_state(world())
    with pytest.raises(StateError, match="no such pod"):
        explain(state, PROFILES["spec"], "x/a", "q/q", Probe(80))


def test_cautions_for_unpredictable_deviations() -> None:
    named = parse_state(
        world([netpol("x/p", {"podSelector": {}, "ingress": [{"ports": [{"port": "http"}]}]})])
    )
    assert [d.id for d, _ in unpredictable(named, PROFILES["weave-2.1.3"])] == [dev.NAMED_PORT_UNMODELLED]
    assert unpredictable(named, PROFILES["weave-2.8.1"]) == []  # modelled there: the policy is skipped
    assert unpredictable(named, PROFILES["spec"]) == []
    clash = parse_state(
        world(
            [
                netpol("x/p1", {"podSelector": {}, "ingress": [{"from": [{"namespaceSelector": {}}]}]}),
                netpol(
                    "y/p2",
                    {
                        "podSelector": {},
                        "ingress": [{"from": [{"namespaceSelector": {}, "podSelector": {}}]}],
                    },
                ),
            ]
        )
    )
    # fatal before 2.6.3 (weave-npc exits): a caution naming the policy that loses
    found = unpredictable(clash, weave_profile("2.6.2"))
    assert [(d.id, why) for d, why in found] == [(dev.IPSET_NAME_CLASH_FATAL, "policies y/p2")]
    document = expected_results(clash, weave_profile("2.6.2"))
    assert document["cautions"][0].startswith(f"{dev.IPSET_NAME_CLASH_FATAL} (policies y/p2)")
    # predicted from 2.6.3 on (tests/model/test_ipset_clash.py), so no caution
    assert "cautions" not in expected_results(clash, PROFILES["weave-2.8.1"])
    assert "cautions" not in expected_results(clash, PROFILES["spec"])
