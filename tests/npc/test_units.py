"""Pure parts of the controller: set names, selectors, profiles, version semantics, NFLOG decoding, store."""

from __future__ import annotations

import socket
import struct

import pytest

from netpolcheck.errors import UsageError
from netpolcheck.npc import dataplane as dp
from netpolcheck.npc.analyser import Analyser
from netpolcheck.npc.faults import parse_faults
from netpolcheck.npc.kubewatch import Event
from netpolcheck.npc.nflog import decode_packet
from netpolcheck.npc.profiles import profile_for
from netpolcheck.npc.selectors import LabelSelector, SelectorError
from netpolcheck.npc.shortname import set_name
from netpolcheck.npc.store import WorldStore
from netpolcheck.npc.world import World
from tests.npc.semantics import NAMESPACES, PODS, _pol

# docs/weave-facts.md#ipset-names (re-derived from npc/controller_test.go@v2.8.1, seen in the observed runs)
KNOWN_NAMES = {
    "ingress-default-allow:ns-1": "weave-=OgHbdXrB2nOi*@3xgYF2nqFl",
    "egress-default-allow:ns-1": "weave-[5bL)tSNZP?H^5_NL/[_].NHz",
    "default-allow:ns-1": "weave-z4cN+%s?50k!Z)QvX;[=C%d$M",
    "ns-1:": "weave-H]AmKZI8BX85N/tS?%rB:R%;v",
    "ns-1:app=http-echo": "weave-Zqz!HIwDdYb#9M@ng?+SG[Ccf",
    "ns-1:app=busybox": "weave-d|.8O2:u]8Oa{wzJFpId*g)Z$",
}


@pytest.mark.parametrize(("key", "name"), KNOWN_NAMES.items())
def test_set_names(key: str, name: str) -> None:
    assert set_name(key) == name
    assert len(name) <= 31


def test_selector_strings_and_matching() -> None:
    sel = LabelSelector.parse(
        {
            "matchLabels": {"pod": "a"},
            "matchExpressions": [
                {"key": "env", "operator": "NotIn", "values": ["prod", "dev"]},
                {"key": "tier", "operator": "Exists"},
                {"key": "bad", "operator": "DoesNotExist"},
            ],
        }
    )
    assert str(sel) == "!bad,env notin (dev,prod),pod=a,tier"
    assert sel.matches({"pod": "a", "tier": "x"})
    assert not sel.matches({"pod": "a", "tier": "x", "env": "dev"})
    assert not sel.matches({"pod": "a", "tier": "x", "bad": ""})
    assert str(LabelSelector.parse({})) == "" and LabelSelector.parse({}).matches({})
    with pytest.raises(SelectorError):
        LabelSelector.parse({"matchExpressions": [{"key": "k", "operator": "Like", "values": ["v"]}]})


def test_profiles_and_faults_validate_input() -> None:
    assert profile_for("weaveworks/weave-npc:2.1.3").version == "2.1.3"
    assert profile_for("rajchaudhuri/weave-npc:2.9.0").version == "2.9.0"
    assert profile_for("v2.8.1").version == "2.8.1"
    with pytest.raises(UsageError):
        profile_for("weaveworks/weave-npc:latest")
    with pytest.raises(UsageError):
        parse_faults(["ports-ignored", "nope"])


def _world(*policies: dict) -> World:
    return World.from_state({"namespaces": NAMESPACES, "pods": PODS, "policies": list(policies)})


EGRESS_ONLY = _pol("e", "x", {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{}]})
DENY = _pol("d", "x", {"podSelector": {}})


def test_2_1_3_egress_only_policy_isolates_ingress_and_has_no_egress_chains() -> None:
    out = Analyser(profile_for("2.1.3"), "node1").analyse(_world(EGRESS_ONLY))
    assert dp.EGRESS not in out.chains
    default_allow = out.sets[set_name("default-allow:x")]
    assert default_allow.members == {}  # both pods of x isolated
    assert out.sets[set_name("default-allow:y")].members.keys() == {"10.32.1.22", "10.32.1.23"}
    assert out.chains[dp.MAIN][-1] == (
        "-m",
        "set",
        "!",
        "--match-set",
        "weave-local-pods",
        "dst",
        "-j",
        "ACCEPT",
    )
    assert out.sets["weave-local-pods"].members.keys() == {"10.32.1.20", "10.32.1.22"}
    out_281 = Analyser(profile_for("2.8.1"), "node1").analyse(_world(EGRESS_ONLY))
    assert out_281.sets[set_name("ingress-default-allow:x")].members.keys() == {"10.32.1.20", "10.32.1.21"}


def test_2_0_5_isolation_only_by_annotation() -> None:
    legacy = profile_for("2.0.5")
    out = Analyser(legacy, "node1").analyse(_world(DENY))
    all_pods_x = set_name("x:")
    assert any(all_pods_x in rule for rule in out.chains[dp.DEFAULT])  # still default-allow: not isolated
    world = _world(DENY)
    world.namespaces["x"] = {
        "metadata": {
            "name": "x",
            "annotations": {
                "net.beta.kubernetes.io/network-policy": '{"ingress":{"isolation":"DefaultDeny"}}'
            },
        }
    }
    out = Analyser(legacy, "node1").analyse(world)
    assert not any(all_pods_x in rule for rule in out.chains[dp.DEFAULT])
    assert legacy.policy_api == "extensions/v1beta1"


def test_2_8_1_named_port_policy_skipped_and_endport_ignored() -> None:
    named = _pol(
        "n", "x", {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{"ports": [{"port": "http"}]}]}
    )
    out = Analyser(profile_for("2.8.1"), "node1").analyse(_world(named))
    assert out.errors and "named port http" in out.errors[0]
    assert out.sets[set_name("ingress-default-allow:x")].members  # fails open: x stays default-allow
    ranged = _pol(
        "r",
        "x",
        {
            "podSelector": {},
            "policyTypes": ["Ingress"],
            "ingress": [{"ports": [{"port": 80, "endPort": 81}]}],
        },
    )
    rules = Analyser(profile_for("2.8.1"), "node1").analyse(_world(ranged)).chains[dp.INGRESS]
    assert len(rules) == 1 and rules[0][rules[0].index("--dport") + 1] == "80"


NS_ONLY_PEER: dict[str, dict[str, str]] = {"namespaceSelector": {}}
BOTH_PEER: dict[str, dict[str, str]] = {"namespaceSelector": {}, "podSelector": {}}
CLASH_ERROR = "set with the same name already exists"


def _members(out: dp.Dataplane, key: str) -> set[str]:
    return set(out.sets[set_name(key)].members)


@pytest.mark.parametrize("peers", [[NS_ONLY_PEER, BOTH_PEER], [BOTH_PEER, NS_ONLY_PEER]])
def test_ipset_name_clash_inside_one_policy_isolates_without_allow_rules(peers: list[dict]) -> None:
    """weave-npc creates the list:set first, the hash:ip create fails: fail closed, in both peer orders."""
    pol = _pol("p", "x", {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{"to": peers}]})
    out = Analyser(profile_for("2.8.1"), "node1").analyse(_world(pol))
    assert len(out.errors) == 1
    assert f"[create {set_name(':')} hash:ip comment]" in out.errors[0] and CLASH_ERROR in out.errors[0]
    assert out.sets[set_name(":")].type == "list:set"
    assert out.chains[dp.EGRESS_CUSTOM] == [] and out.chains[dp.INGRESS] == []
    assert _members(out, "egress-default-allow:x") == set()  # x/a and x/b isolated for egress
    assert _members(out, "egress-default-allow:y") == {"10.32.1.22", "10.32.1.23"}
    assert any("DROP" in rule for rule in out.chains[dp.EGRESS])


def _pair(first: dict, second: dict) -> dp.Dataplane:
    return Analyser(profile_for("2.8.1"), "node1").analyse(_world(first, second))


def test_ipset_name_clash_across_policies_the_second_seen_loses() -> None:
    a_from_ns = _pol(
        "ns", "x", {"podSelector": {"matchLabels": {"pod": "a"}}, "ingress": [{"from": [NS_ONLY_PEER]}]}
    )
    b_from_both = _pol(
        "both", "x", {"podSelector": {"matchLabels": {"pod": "b"}}, "ingress": [{"from": [BOTH_PEER]}]}
    )
    # the pod+namespace policy second: its create fails after its target is isolated: fail closed
    out = _pair(a_from_ns, b_from_both)
    assert len(out.errors) == 1 and f"[create {set_name(':')} hash:ip comment]" in out.errors[0]
    assert _members(out, "ingress-default-allow:x") == set()
    rules = out.chains[dp.INGRESS]
    assert len(rules) == 1 and rules[0][rules[0].index("--match-set") + 1] == set_name(":")
    comment = rules[0][rules[0].index("--comment") + 1]
    assert rules[0][-1] == "ACCEPT" and comment.startswith("namespaces: selector:  -> pods: namespace: x")
    # the namespace-selector policy second: its list:set create fails before its target: not enforced
    out = _pair(b_from_both, a_from_ns)
    assert len(out.errors) == 1 and f"[create {set_name(':')} list:set size 1024 comment]" in out.errors[0]
    assert out.sets[set_name(":")].type == "hash:ip"
    assert out.sets[set_name(":")].members.keys() == {"10.32.1.20", "10.32.1.21", "10.32.1.22", "10.32.1.23"}
    assert _members(out, "ingress-default-allow:x") == {"10.32.1.20"}  # x/a stays open
    assert len(out.chains[dp.INGRESS]) == 1  # only the first policy's rule


def test_egress_drop_only_after_an_egress_policy() -> None:
    analyser = Analyser(profile_for("2.8.1"), "node1")
    assert not any("DROP" in r for r in analyser.analyse(_world(DENY)).chains[dp.EGRESS])
    assert any("DROP" in r for r in analyser.analyse(_world(EGRESS_ONLY)).chains[dp.EGRESS])
    assert any("DROP" in r for r in analyser.analyse(_world(DENY), egress_drop=True).chains[dp.EGRESS])


def _ip_packet(proto: int, l4: bytes) -> bytes:
    header = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(l4),
        0,
        0,
        64,
        proto,
        0,
        socket.inet_aton("10.32.1.20"),
        socket.inet_aton("10.32.1.21"),
    )
    return header + l4


def test_nflog_decoding_reports_plain_syn_and_udp_only() -> None:
    syn = struct.pack("!HHIIBBHHH", 40000, 80, 0, 0, 0x50, 0x02, 0, 0, 0)
    ack = struct.pack("!HHIIBBHHH", 40000, 80, 0, 0, 0x50, 0x10, 0, 0, 0)
    udp = struct.pack("!HHHH", 5353, 81, 8, 0)
    blocked = decode_packet(_ip_packet(socket.IPPROTO_TCP, syn))
    assert blocked is not None
    assert blocked.message() == "TCP connection from 10.32.1.20:40000 to 10.32.1.21:80 blocked by Weave NPC."
    assert decode_packet(_ip_packet(socket.IPPROTO_TCP, ack)) is None
    udp_blocked = decode_packet(_ip_packet(socket.IPPROTO_UDP, udp))
    assert udp_blocked is not None and udp_blocked.protocol == "UDP" and udp_blocked.dport == 81
    assert decode_packet(_ip_packet(socket.IPPROTO_ICMP, b"\x08\x00" + b"\0" * 6)) is None


def test_store_faults_keep_what_they_should_not() -> None:
    logs: list[str] = []
    store = WorldStore(frozenset({"stale-pod-ip", "label-update-ignored"}), logs.append)
    store.apply(Event("Pod", "SYNC", tuple(PODS)))
    relabelled = {**PODS[0], "metadata": {**PODS[0]["metadata"], "labels": {"pod": "z"}}}
    store.apply(Event("Pod", "MODIFIED", (relabelled,)))
    assert store.world.pods[("x", "a")]["metadata"]["labels"] == {"pod": "a"}
    store.apply(Event("Pod", "DELETED", (PODS[1],)))
    assert ("x", "b") in store.world.pods
    healthy = WorldStore(frozenset(), logs.append)
    healthy.apply(Event("Pod", "SYNC", tuple(PODS)))
    healthy.apply(Event("Pod", "SYNC", tuple(PODS[:2])))  # a resync without y/a and y/b deletes them
    assert set(healthy.world.pods) == {("x", "a"), ("x", "b")}
    assert any(line.startswith("EVENT DeletePod") for line in logs)
