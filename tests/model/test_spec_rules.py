"""networking.k8s.io/v1 semantics, one rule per test, under the `spec` profile."""

from __future__ import annotations

from tests.model.builders import allowed, denied_cells, matrix, netpol, pod, sel, world

X_PODS = ("x/a", "x/b", "x/c")


def test_no_policies_everything_allowed() -> None:
    cells = matrix(world())
    assert len(cells) == 9 * 8
    assert all(cells.values())


def test_deny_all_ingress_isolates_every_pod_of_its_namespace_only() -> None:
    cells = matrix(world([netpol("x/deny", {"podSelector": {}})]))
    assert denied_cells(cells) == {(s, d, 80, "TCP") for s in _all() for d in X_PODS if s != d}
    assert allowed(cells, "x/a", "y/a")  # egress is not isolated


def test_pod_selector_peer_is_scoped_to_the_policy_namespace() -> None:
    spec = {"podSelector": sel(pod="a"), "ingress": [{"from": [{"podSelector": sel(pod="b")}]}]}
    cells = matrix(world([netpol("x/p", spec)]))
    assert allowed(cells, "x/b", "x/a")
    assert not allowed(cells, "y/b", "x/a")  # same labels, other namespace
    assert not allowed(cells, "x/c", "x/a")
    assert allowed(cells, "x/c", "x/b")  # x/b is not selected


def test_namespace_selector_peer_allows_every_pod_of_matching_namespaces() -> None:
    spec = {"podSelector": sel(pod="a"), "ingress": [{"from": [{"namespaceSelector": sel(ns="y")}]}]}
    cells = matrix(world([netpol("x/p", spec)]))
    assert {s for s in _all() if s != "x/a" and allowed(cells, s, "x/a")} == {"y/a", "y/b", "y/c"}


def test_pod_and_namespace_selector_in_one_peer_are_anded() -> None:
    peer = {"namespaceSelector": sel(ns="y"), "podSelector": sel(pod="b")}
    cells = matrix(world([netpol("x/p", {"podSelector": sel(pod="a"), "ingress": [{"from": [peer]}]})]))
    assert {s for s in _all() if s != "x/a" and allowed(cells, s, "x/a")} == {"y/b"}


def test_separate_peers_are_ored() -> None:
    peers = [{"namespaceSelector": sel(ns="y")}, {"podSelector": sel(pod="b")}]
    cells = matrix(world([netpol("x/p", {"podSelector": sel(pod="a"), "ingress": [{"from": peers}]})]))
    assert {s for s in _all() if s != "x/a" and allowed(cells, s, "x/a")} == {"y/a", "y/b", "y/c", "x/b"}


def test_empty_selectors_in_peers() -> None:
    own_ns = {"podSelector": sel(pod="a"), "ingress": [{"from": [{"podSelector": {}}]}]}
    cells = matrix(world([netpol("x/p", own_ns)]))
    assert {s for s in _all() if s != "x/a" and allowed(cells, s, "x/a")} == {"x/b", "x/c"}
    every_ns = {"podSelector": sel(pod="a"), "ingress": [{"from": [{"namespaceSelector": {}}]}]}
    cells = matrix(world([netpol("x/p", every_ns)]))
    assert all(allowed(cells, s, "x/a") for s in _all() if s != "x/a")


def test_match_expressions_operators() -> None:
    def sources(expr: dict[str, object]) -> set[str]:
        spec = {
            "podSelector": sel(pod="a"),
            "ingress": [{"from": [{"namespaceSelector": {}, "podSelector": {"matchExpressions": [expr]}}]}],
        }
        cells = matrix(world([netpol("x/p", spec)]))
        return {s for s in _all() if s != "x/a" and allowed(cells, s, "x/a")}

    assert sources({"key": "pod", "operator": "In", "values": ["b"]}) == {"x/b", "y/b", "z/b"}
    assert sources({"key": "pod", "operator": "NotIn", "values": ["a", "b"]}) == {"x/c", "y/c", "z/c"}
    assert sources({"key": "pod", "operator": "Exists"}) == set(_all()) - {"x/a"}
    assert sources({"key": "pod", "operator": "DoesNotExist"}) == set()


def test_namespace_match_expressions() -> None:
    expr = {"key": "ns", "operator": "NotIn", "values": ["x"]}
    spec = {
        "podSelector": sel(pod="a"),
        "ingress": [{"from": [{"namespaceSelector": {"matchExpressions": [expr]}}]}],
    }
    cells = matrix(world([netpol("x/p", spec)]))
    assert {s for s in _all() if s != "x/a" and allowed(cells, s, "x/a")} == set(_all()) - set(X_PODS)


def test_ingress_ip_block_with_except_for_pods_and_externals() -> None:
    block = {"ipBlock": {"cidr": "10.0.2.0/24", "except": ["10.0.2.2/32"]}}
    spec = {
        "podSelector": sel(pod="a"),
        "ingress": [{"from": [block, {"ipBlock": {"cidr": "203.0.113.0/24"}}]}],
    }
    doc = world(
        [netpol("x/p", spec)],
        externals=[{"name": "world", "ip": "203.0.113.7"}, {"name": "other", "ip": "198.51.100.1"}],
    )
    cells = matrix(doc)
    assert {s for s in [*_all(), "world", "other"] if s != "x/a" and allowed(cells, s, "x/a")} == {
        "y/a",
        "y/c",
        "world",
    }


def test_egress_ip_block_with_except() -> None:
    spec = {
        "podSelector": sel(pod="a"),
        "policyTypes": ["Egress"],
        "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/16", "except": ["10.0.3.0/24"]}}]}],
    }
    doc = world([netpol("x/p", spec)], externals=[{"name": "world", "ip": "203.0.113.7"}])
    cells = matrix(doc)
    reach = {d for d in [*_all(), "world"] if d != "x/a" and allowed(cells, "x/a", d)}
    assert reach == {"x/b", "x/c", "y/a", "y/b", "y/c"}
    assert allowed(cells, "world", "x/a")  # ingress of x/a is not isolated


def test_ports_number_protocol_and_no_ports() -> None:
    probes = [
        {"port": 80, "protocol": "TCP"},
        {"port": 81, "protocol": "TCP"},
        {"port": 80, "protocol": "UDP"},
        {"port": 80, "protocol": "SCTP"},
    ]
    only_tcp80 = {"podSelector": sel(pod="a"), "ingress": [{"ports": [{"port": 80}]}]}
    cells = matrix(world([netpol("x/p", only_tcp80)], probes=probes))
    assert allowed(cells, "y/a", "x/a", 80, "TCP")
    assert not allowed(cells, "y/a", "x/a", 81, "TCP")
    assert not allowed(cells, "y/a", "x/a", 80, "UDP")
    assert not allowed(cells, "y/a", "x/a", 80, "SCTP")
    all_udp = {"podSelector": sel(pod="a"), "ingress": [{"ports": [{"protocol": "UDP"}]}]}
    cells = matrix(world([netpol("x/p", all_udp)], probes=probes))
    assert allowed(cells, "y/a", "x/a", 80, "UDP") and not allowed(cells, "y/a", "x/a", 80, "TCP")
    sctp = {"podSelector": sel(pod="a"), "ingress": [{"ports": [{"protocol": "SCTP", "port": 80}]}]}
    cells = matrix(world([netpol("x/p", sctp)], probes=probes))
    assert allowed(cells, "y/a", "x/a", 80, "SCTP") and not allowed(cells, "y/a", "x/a", 80, "TCP")
    no_ports = {"podSelector": sel(pod="a"), "ingress": [{"from": [{"namespaceSelector": sel(ns="y")}]}]}
    cells = matrix(world([netpol("x/p", no_ports)], probes=probes))
    assert all(allowed(cells, "y/b", "x/a", p["port"], p["protocol"]) for p in probes)  # type: ignore[arg-type]


def test_end_port_range() -> None:
    probes = [{"port": n, "protocol": "TCP"} for n in (79, 80, 81, 82)]
    spec = {"podSelector": sel(pod="a"), "ingress": [{"ports": [{"port": 80, "endPort": 81}]}]}
    cells = matrix(world([netpol("x/p", spec)], probes=probes))
    assert [allowed(cells, "y/a", "x/a", n) for n in (79, 80, 81, 82)] == [False, True, True, False]


def test_named_port_resolves_against_the_destination_pod() -> None:
    doc = world(
        [netpol("x/p", {"podSelector": {}, "ingress": [{"ports": [{"port": "http"}]}]})],
        probes=[{"port": 80, "protocol": "TCP"}, {"port": 8080, "protocol": "TCP"}],
    )
    doc["pods"][1]["ports"] = [{"name": "http", "containerPort": 8080}]  # x/b serves http on 8080
    cells = matrix(doc)
    assert allowed(cells, "y/a", "x/a", 80) and not allowed(cells, "y/a", "x/a", 8080)
    assert allowed(cells, "y/a", "x/b", 8080) and not allowed(cells, "y/a", "x/b", 80)
    assert not allowed(cells, "y/a", "x/c", 8080)


def test_named_port_in_egress_resolves_against_the_destination() -> None:
    spec = {"podSelector": sel(pod="a"), "policyTypes": ["Egress"], "egress": [{"ports": [{"port": "alt"}]}]}
    doc = world([netpol("x/p", spec)], probes=[{"port": 80}, {"port": 81}])
    doc["pods"][4]["ports"] = [{"name": "alt", "containerPort": 80}]  # y/b: alt is 80
    cells = matrix(doc)
    assert allowed(cells, "x/a", "y/a", 81) and not allowed(cells, "x/a", "y/a", 80)
    assert allowed(cells, "x/a", "y/b", 80) and not allowed(cells, "x/a", "y/b", 81)


def test_named_probe_skips_pods_without_that_port() -> None:
    doc = world(probes=[{"port": "dns", "protocol": "UDP"}])
    doc["pods"][0]["ports"] = []  # x/a has no dns port
    cells = matrix(doc)
    assert not any(d == "x/a" for (_, d, _, _) in cells)
    assert ("x/a", "x/b", 53, "UDP") in cells


def test_empty_ingress_list_denies_and_one_empty_rule_allows_everything() -> None:
    cells = matrix(world([netpol("x/p", {"podSelector": sel(pod="a"), "ingress": []})]))
    assert not any(allowed(cells, s, "x/a") for s in _all() if s != "x/a")
    cells = matrix(world([netpol("x/p", {"podSelector": sel(pod="a"), "ingress": [{}]})]))
    assert all(allowed(cells, s, "x/a") for s in _all() if s != "x/a")


def test_policy_types_default_from_egress_rules() -> None:
    with_egress = {"podSelector": sel(pod="a"), "egress": [{"to": [{"podSelector": sel(pod="b")}]}]}
    cells = matrix(world([netpol("x/p", with_egress)]))
    assert not allowed(cells, "y/a", "x/a")  # Ingress always defaulted: no ingress rules -> denied
    assert allowed(cells, "x/a", "x/b") and not allowed(cells, "x/a", "x/c")
    empty_egress = {"podSelector": sel(pod="a"), "ingress": [{}], "egress": []}
    cells = matrix(world([netpol("x/p", empty_egress)]))
    assert allowed(cells, "x/a", "x/c")  # egress: [] does not default Egress in


def test_egress_only_policy_leaves_ingress_open() -> None:
    spec = {"podSelector": sel(pod="a"), "policyTypes": ["Egress"]}
    cells = matrix(world([netpol("x/p", spec)]))
    assert allowed(cells, "y/a", "x/a")
    assert not any(allowed(cells, "x/a", d) for d in _all() if d != "x/a")


def test_policies_are_a_union() -> None:
    from_b = {"podSelector": sel(pod="a"), "ingress": [{"from": [{"podSelector": sel(pod="b")}]}]}
    from_y = {"podSelector": sel(pod="a"), "ingress": [{"from": [{"namespaceSelector": sel(ns="y")}]}]}
    cells = matrix(world([netpol("x/p1", from_b), netpol("x/p2", from_y)]))
    assert {s for s in _all() if s != "x/a" and allowed(cells, s, "x/a")} == {"x/b", "y/a", "y/b", "y/c"}


def test_connection_needs_egress_and_ingress() -> None:
    egress = {
        "podSelector": sel(pod="a"),
        "policyTypes": ["Egress"],
        "egress": [{"to": [{"namespaceSelector": sel(ns="y")}]}],
    }
    ingress = {"podSelector": sel(pod="b"), "ingress": [{"from": [{"podSelector": sel(pod="c")}]}]}
    cells = matrix(world([netpol("x/e", egress), netpol("y/i", ingress)]))
    assert allowed(cells, "x/a", "y/a")
    assert not allowed(cells, "x/a", "y/b")  # egress allows, ingress of y/b does not
    assert allowed(cells, "y/c", "y/b")
    assert not allowed(cells, "x/a", "x/b")  # ingress open, egress denies


def test_host_network_pods_are_never_selected() -> None:
    doc = world(
        [
            netpol("x/deny", {"podSelector": {}}),
            netpol("y/p", {"podSelector": {}, "ingress": [{"from": [{"namespaceSelector": sel(ns="x")}]}]}),
        ]
    )
    doc["pods"].append(pod("x/host", "192.168.0.1", host=True))
    cells = matrix(doc)
    assert allowed(cells, "y/a", "x/host")  # the deny-all in x does not select it
    assert not allowed(cells, "x/host", "y/a")  # nor does the namespace selector of y/p as a source
    assert allowed(cells, "x/a", "y/a")


def test_externals_are_not_isolated_and_reached_only_through_ip_blocks() -> None:
    doc = world(
        [
            netpol(
                "x/p",
                {
                    "podSelector": {},
                    "policyTypes": ["Ingress", "Egress"],
                    "ingress": [{}],
                    "egress": [{"to": [{"namespaceSelector": {}}]}],
                },
            )
        ],
        externals=[{"name": "world", "ip": "203.0.113.7"}],
    )
    cells = matrix(doc)
    assert not allowed(cells, "x/a", "world")  # a namespace selector never matches an external
    assert allowed(cells, "y/a", "world") and allowed(cells, "world", "x/a")


def _all() -> list[str]:
    return [f"{n}/{p}" for n in "xyz" for p in "abc"]


def test_bits_lists_every_set_bit_lowest_first_for_dense_and_sparse_masks() -> None:
    from random import Random

    from netpolcheck.model.index import bits

    rnd = Random(3)
    masks = [0, 1, 1 << 999, (1 << 1000) - 1, 0b1011000] + [
        rnd.getrandbits(rnd.randrange(1, 1500)) for _ in range(300)
    ]
    masks += [(1 << rnd.randrange(1500)) | (1 << rnd.randrange(1500)) for _ in range(100)]
    for mask in masks:
        assert list(bits(mask)) == [i for i in range(mask.bit_length()) if mask >> i & 1]
