"""Bad STATE input: one StateError naming the object and the field."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from netpolcheck.errors import UsageError
from netpolcheck.model.state import parse_state

from .builders import netpol, sel, world


def _base() -> dict[str, Any]:
    return world(
        [
            netpol(
                "x/p",
                {
                    "podSelector": sel(pod="a"),
                    "ingress": [{"from": [{"podSelector": sel(pod="b")}], "ports": [{"port": 80}]}],
                },
            )
        ]
    )


def _set(path: tuple[Any, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    def apply(doc: dict[str, Any]) -> None:
        target = doc
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = value

    return apply


RULE = ("policies", 0, "spec", "ingress", 0)
CASES = [
    ("unknown top-level field", _set(("podz",), []), "STATE: podz: unknown field"),
    ("unknown pod field", _set(("pods", 0, "image"), "x"), "pod x/a: image: unknown field"),
    (
        "unknown spec field",
        _set(("policies", 0, "spec", "ingres"), []),
        "policy x/p: spec.ingres: unknown field",
    ),
    (
        "invalid CIDR",
        _set((*RULE, "from"), [{"ipBlock": {"cidr": "10.0.0.300/24"}}]),
        "policy x/p: spec.ingress[0].from[0].ipBlock.cidr: invalid CIDR",
    ),
    (
        "except outside cidr",
        _set((*RULE, "from"), [{"ipBlock": {"cidr": "10.0.0.0/24", "except": ["10.1.0.0/24"]}}]),
        "policy x/p: spec.ingress[0].from[0].ipBlock.except[0]: 10.1.0.0/24 must be strictly within",
    ),
    (
        "policy port out of range",
        _set((*RULE, "ports"), [{"port": 70000}]),
        "policy x/p: spec.ingress[0].ports[0].port: port 70000 out of range",
    ),
    ("probe port out of range", _set(("probes",), [{"port": 0}]), "probes[0]: port: port 0 out of range"),
    (
        "container port out of range",
        _set(("pods", 0, "ports"), [{"containerPort": 65536}]),
        "pod x/a: ports[0].containerPort: port 65536 out of range",
    ),
    (
        "endPort below port",
        _set((*RULE, "ports"), [{"port": 81, "endPort": 80}]),
        "policy x/p: spec.ingress[0].ports[0].endPort: 80 is below port 81",
    ),
    (
        "unknown protocol",
        _set((*RULE, "ports"), [{"port": 80, "protocol": "ICMP"}]),
        "policy x/p: spec.ingress[0].ports[0].protocol: unknown protocol 'ICMP'",
    ),
    (
        "pod in a missing namespace",
        _set(("pods", 0, "namespace"), "nowhere"),
        "pod nowhere/a: namespace: namespace 'nowhere' is not in namespaces",
    ),
    (
        "policy in a missing namespace",
        _set(("policies", 0, "metadata", "namespace"), "nowhere"),
        "policy nowhere/p: metadata.namespace: namespace 'nowhere' is not in namespaces",
    ),
    (
        "invalid selector operator",
        _set(
            (*RULE, "from"),
            [{"podSelector": {"matchExpressions": [{"key": "pod", "operator": "Equals", "values": ["a"]}]}}],
        ),
        "policy x/p: spec.ingress[0].from[0].podSelector.matchExpressions[0].operator: "
        "invalid operator 'Equals'",
    ),
    (
        "In without values",
        _set((*RULE, "from"), [{"podSelector": {"matchExpressions": [{"key": "pod", "operator": "In"}]}}]),
        "operator In needs at least one value",
    ),
    ("invalid pod IP", _set(("pods", 0, "ip"), "10.0.0"), "pod x/a: ip: invalid IP address '10.0.0'"),
    (
        "ipBlock with a selector",
        _set((*RULE, "from"), [{"ipBlock": {"cidr": "10.0.0.0/8"}, "podSelector": {}}]),
        "ipBlock cannot be combined",
    ),
    ("empty peer", _set((*RULE, "from"), [{}]), "a peer needs podSelector, namespaceSelector or ipBlock"),
    ("bad policyTypes", _set(("policies", 0, "spec", "policyTypes"), ["Both"]), "spec.policyTypes"),
    (
        "bad apiVersion",
        _set(("policies", 0, "apiVersion"), "v1"),
        "policy x/p: apiVersion: 'v1' is not one of",
    ),
    (
        "duplicate pod",
        lambda d: d["pods"].append(copy.deepcopy(d["pods"][0])),
        "pod x/a: name: appears twice",
    ),
    (
        "missing podSelector",
        lambda d: d["policies"][0]["spec"].pop("podSelector"),
        "spec.podSelector: required",
    ),
    ("bad port name", _set((*RULE, "ports"), [{"port": "HTTP_PORT"}]), "invalid port name 'HTTP_PORT'"),
    (
        "label value not a string",
        _set(("pods", 0, "labels"), {"pod": 1}),
        "pod x/a: labels: must be an object",
    ),
]


@pytest.mark.parametrize(("name", "mutate", "message"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_names_object_and_field(
    name: str, mutate: Callable[[dict[str, Any]], None], message: str
) -> None:
    doc = _base()
    parse_state(doc)  # the base is valid
    mutate(doc)
    with pytest.raises(UsageError) as info:
        parse_state(doc)
    text = str(info.value)
    assert message in text
    assert "\n" not in text


def test_defaults_from_the_api_server() -> None:
    state = parse_state(_base())
    policy = state.policies[0]
    assert policy.policy_types == frozenset({"Ingress"})
    assert policy.ingress[0].ports[0].protocol == "TCP"
    assert state.pods[0].ports[0].protocol == "TCP"
    no_probes = _base()
    del no_probes["probes"]
    assert [(p.port, p.protocol) for p in parse_state(no_probes).probes] == [(80, "TCP")]
