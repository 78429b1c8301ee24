"""Each documented Weave deviation changes exactly the verdicts it describes, in the versions it names."""

from __future__ import annotations

import json
from typing import Any

import pytest

from netpolcheck.errors import UsageError
from netpolcheck.model import profiles as dev
from netpolcheck.model.explain import explain
from netpolcheck.model.objects import Probe
from netpolcheck.model.profiles import PROFILES, SPEC, WEAVE_DEVIATIONS, get_profile
from netpolcheck.model.state import parse_state
from tests.model.builders import allowed, matrix, netpol, pod, sel, world

ANNOTATION = {"net.beta.kubernetes.io/network-policy": json.dumps({"ingress": {"isolation": "DefaultDeny"}})}


def _sources_into(cells: dict[Any, bool], dest: str, port: int = 80, proto: str = "TCP") -> set[str]:
    return {s for (s, d, p, pr), ok in cells.items() if d == dest and p == port and pr == proto and ok}


def test_profiles_are_data_with_provenance() -> None:
    assert set(PROFILES) == {"spec", "weave-2.0.5", "weave-2.1.3", "weave-2.8.1", "weave-2.9.0"}
    assert SPEC.deviations == ()
    for d in WEAVE_DEVIATIONS:
        assert d.reason and d.provenance.startswith(f"docs/weave-facts.md#{d.id}")
    ids = {name: p.ids for name, p in PROFILES.items()}
    assert dev.LEGACY_ISOLATION in ids["weave-2.0.5"] and dev.LEGACY_ISOLATION not in ids["weave-2.1.3"]
    assert dev.EGRESS_ONLY_ISOLATES_INGRESS in ids["weave-2.1.3"]
    assert dev.POD_SELECTOR_WINS in ids["weave-2.1.3"] and dev.NAMESPACE_SELECTOR_WINS in ids["weave-2.0.5"]
    assert (
        dev.NAMED_PORT_POLICY_SKIPPED in ids["weave-2.8.1"]
        and dev.NAMED_PORT_POLICY_SKIPPED in ids["weave-2.9.0"]
    )
    assert (
        dev.SAME_SELECTOR_NO_ISOLATION in ids["weave-2.1.3"]
        and dev.SAME_SELECTOR_NO_ISOLATION not in ids["weave-2.8.1"]
    )
    assert ids["weave-2.8.1"] == ids["weave-2.9.0"]  # the fork's policy code is 2.8.1's
    for name in ("weave-2.0.5", "weave-2.1.3", "weave-2.8.1"):
        assert {
            dev.ENDPORT_IGNORED,
            dev.MULTICAST_ALLOWED,
            dev.HOST_TO_LOCAL_POD,
            dev.DENIALS_DROPPED,
        } <= ids[name]
        assert PROFILES[name].denied_verdicts == frozenset({"dropped"})
    assert SPEC.denied_verdicts == frozenset({"dropped", "rejected"})


def test_unknown_profile_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown profile"):
        get_profile("weave-1.0")


def test_legacy_isolation_only_through_the_namespace_annotation() -> None:
    deny = netpol("x/deny", {"podSelector": {}})
    cells = matrix(world([deny]), "weave-2.0.5")
    assert all(cells.values())  # a deny-all policy blocks nothing in 2.0.5
    doc = world(
        [netpol("x/p", {"podSelector": sel(pod="a"), "ingress": [{"from": [{"podSelector": sel(pod="b")}]}]})]
    )
    doc["namespaces"][0]["annotations"] = ANNOTATION
    cells = matrix(doc, "weave-2.0.5")
    assert _sources_into(cells, "x/a") == {"x/b"}  # the policy adds an allow to an isolated namespace
    assert _sources_into(cells, "x/c") == set()  # annotation isolates every pod of x
    assert len(_sources_into(cells, "y/a")) == 8
    spec_cells = matrix(doc, "spec")
    assert len(_sources_into(spec_cells, "x/c")) == 8  # spec ignores the annotation


def test_legacy_reads_extensions_v1beta1_and_empty_lists_match_nothing() -> None:
    doc = world(
        [
            netpol(
                "x/p",
                {"podSelector": sel(pod="a"), "ingress": [{"from": []}, {"ports": []}]},
                api="extensions/v1beta1",
            )
        ]
    )
    doc["namespaces"][0]["annotations"] = ANNOTATION
    assert _sources_into(matrix(doc, "weave-2.0.5"), "x/a") == set()
    assert len(_sources_into(matrix(doc, "spec"), "x/a")) == 8  # v1: empty lists mean "all"


def test_egress_ignored_and_egress_only_policy_isolates_ingress_in_2_1() -> None:
    spec = {
        "podSelector": sel(pod="a"),
        "policyTypes": ["Egress"],
        "egress": [{"to": [{"podSelector": sel(pod="b")}]}],
    }
    cells = matrix(world([netpol("x/p", spec)]), "weave-2.1.3")
    assert _sources_into(cells, "x/a") == set()  # ingress deny-all
    assert allowed(cells, "x/a", "x/c")  # egress not enforced
    spec_cells = matrix(world([netpol("x/p", spec)]), "spec")
    assert len(_sources_into(spec_cells, "x/a")) == 8 and not allowed(spec_cells, "x/a", "x/c")
    later = matrix(world([netpol("x/p", spec)]), "weave-2.8.1")
    assert later == spec_cells


def test_ingress_ip_block_allows_every_source_before_2_5() -> None:
    spec = {"podSelector": sel(pod="a"), "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.2.1/32"}}]}]}
    doc = world([netpol("x/p", spec)])
    assert _sources_into(matrix(doc, "weave-2.1.3"), "x/a") == {s for s in _everyone() if s != "x/a"}
    assert _sources_into(matrix(doc, "weave-2.8.1"), "x/a") == {"y/a"}


def test_pod_and_namespace_selector_peer_per_version() -> None:
    peer = {"namespaceSelector": sel(ns="y"), "podSelector": sel(pod="b")}
    doc = world([netpol("x/p", {"podSelector": sel(pod="a"), "ingress": [{"from": [peer]}]})])
    assert _sources_into(matrix(doc, "spec"), "x/a") == {"y/b"}
    assert _sources_into(matrix(doc, "weave-2.8.1"), "x/a") == {"y/b"}
    assert _sources_into(matrix(doc, "weave-2.1.3"), "x/a") == {"x/b"}  # pod selector, policy namespace
    doc["namespaces"][0]["annotations"] = ANNOTATION
    assert _sources_into(matrix(doc, "weave-2.0.5"), "x/a") == {"y/a", "y/b", "y/c"}  # namespace wins


def test_named_port_policy_skipped_from_2_6_3() -> None:
    spec = {"podSelector": sel(pod="a"), "ingress": [{"ports": [{"port": "alt"}]}]}
    doc = world([netpol("x/p", spec)], probes=[{"port": 80}, {"port": 81}])
    spec_cells = matrix(doc, "spec")
    assert not allowed(spec_cells, "y/a", "x/a", 80) and allowed(spec_cells, "y/a", "x/a", 81)
    weave = matrix(doc, "weave-2.8.1")
    assert allowed(weave, "y/a", "x/a", 80) and allowed(weave, "y/a", "x/a", 81)  # fail open
    assert matrix(doc, "weave-2.9.0") == weave


def test_end_port_ignored() -> None:
    spec = {"podSelector": sel(pod="a"), "ingress": [{"ports": [{"port": 80, "endPort": 81}]}]}
    doc = world([netpol("x/p", spec)], probes=[{"port": 80}, {"port": 81}])
    assert allowed(matrix(doc, "spec"), "y/a", "x/a", 81)
    for name in ("weave-2.1.3", "weave-2.8.1", "weave-2.9.0"):
        cells = matrix(doc, name)
        assert allowed(cells, "y/a", "x/a", 80) and not allowed(cells, "y/a", "x/a", 81)


def test_multicast_destination_always_allowed() -> None:
    doc = world(
        [netpol("x/p", {"podSelector": {}, "policyTypes": ["Egress"]})],
        externals=[{"name": "mcast", "ip": "224.0.0.251"}],
    )
    assert not allowed(matrix(doc, "spec"), "x/a", "mcast")
    assert allowed(matrix(doc, "weave-2.8.1"), "x/a", "mcast")


def test_host_to_local_pod_always_allowed() -> None:
    doc = world([netpol("x/deny", {"podSelector": {}})])
    doc["pods"].append(pod("y/host", "192.168.0.1", node="n1", host=True))
    doc["pods"].append(pod("y/far", "192.168.0.2", node="n2", host=True))
    spec_cells, weave = matrix(doc, "spec"), matrix(doc, "weave-2.8.1")
    assert not allowed(spec_cells, "y/host", "x/a")
    assert allowed(weave, "y/host", "x/a")  # same node: not policed
    assert not allowed(weave, "y/far", "x/a")  # another node: policed


def test_egress_to_own_node_allowed_from_2_5_1() -> None:
    doc = world([netpol("x/p", {"podSelector": sel(pod="a"), "policyTypes": ["Egress"]})])
    doc["pods"].append(pod("y/host", "192.168.0.1", node="n1", host=True))
    assert not allowed(matrix(doc, "spec"), "x/a", "y/host")
    assert allowed(matrix(doc, "weave-2.8.1"), "x/a", "y/host")
    assert allowed(matrix(doc, "weave-2.1.3"), "x/a", "x/b")  # egress ignored in 2.1


def test_same_source_and_target_selector_isolates_nothing_up_to_2_2_0() -> None:
    spec = {"podSelector": sel(pod="a"), "ingress": [{"from": [{"podSelector": sel(pod="a")}]}]}
    doc = world([netpol("x/p", spec)])
    assert _sources_into(matrix(doc, "spec"), "x/a") == set()
    assert len(_sources_into(matrix(doc, "weave-2.1.3"), "x/a")) == 8
    assert _sources_into(matrix(doc, "weave-2.8.1"), "x/a") == set()


def test_rules_outside_policy_types_still_allow_from_2_4() -> None:
    # p1 isolates x/a for ingress with no rule; p2 is Egress-only but carries an ingress rule
    p1 = netpol("x/p1", {"podSelector": sel(pod="a")})
    p2 = netpol(
        "x/p2",
        {
            "podSelector": sel(pod="a"),
            "policyTypes": ["Egress"],
            "egress": [{}],
            "ingress": [{"from": [{"podSelector": sel(pod="b")}]}],
        },
    )
    doc = world([p1, p2])
    assert _sources_into(matrix(doc, "spec"), "x/a") == set()
    assert _sources_into(matrix(doc, "weave-2.8.1"), "x/a") == {"x/b"}


def test_explanation_names_the_deviation_that_changes_the_verdict() -> None:
    state = parse_state(world([netpol("x/deny", {"podSelector": {}})]))
    story = explain(state, PROFILES["weave-2.0.5"], "y/a", "x/a", Probe(80))
    assert story.verdict.allowed and not story.spec_allowed
    assert story.deviations == (dev.LEGACY_ISOLATION,)
    assert "spec says: denied" in story.text() and "docs/weave-facts.md#legacy-isolation" in story.text()
    same = explain(state, PROFILES["weave-2.8.1"], "y/a", "x/a", Probe(80))
    assert same.deviations == () and not same.differs_from_spec
    assert "isolated by: x/deny" in same.text()


def _everyone() -> list[str]:
    return [f"{n}/{p}" for n in "xyz" for p in "abc"]


def test_version_ranges_are_half_open() -> None:
    from netpolcheck.model.profiles import weave_profile

    assert weave_profile("2.2.0").has(dev.SAME_SELECTOR_NO_ISOLATION)
    assert not weave_profile("2.2.1").has(dev.SAME_SELECTOR_NO_ISOLATION)
    assert weave_profile("2.6.2").has(dev.NAMED_PORT_UNMODELLED)
    assert weave_profile("2.6.3").has(dev.NAMED_PORT_POLICY_SKIPPED)
    assert not weave_profile("2.6.2").has(dev.NAMED_PORT_POLICY_SKIPPED)


def test_ingress_ip_block_with_ports_allows_every_source_in_2_5() -> None:
    from netpolcheck.model.profiles import weave_profile

    block = {"ipBlock": {"cidr": "10.0.2.1/32"}}
    with_ports = {"podSelector": sel(pod="a"), "ingress": [{"from": [block], "ports": [{"port": 80}]}]}
    without = {"podSelector": sel(pod="a"), "ingress": [{"from": [block]}]}
    v25 = weave_profile("2.5.0")
    assert len(_sources_into(matrix(world([netpol("x/p", with_ports)]), v25), "x/a")) == 8
    assert _sources_into(matrix(world([netpol("x/p", without)]), v25), "x/a") == {"y/a"}
