"""Bad STATE input: one StateError naming the object and the field."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from netpolcheck.errors import UsageError
from netpolcheck.model.state import parse_state
from tests.model.builders import one_policy_world, set_at

_base = one_policy_world
_set = set_at


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
        "policy x/p: spec.ingress[0].from[0].ipBlock.cidr: "
        'Invalid value: "10.0.0.300/24": must be a valid CIDR',
    ),
    (
        "except outside cidr",
        _set((*RULE, "from"), [{"ipBlock": {"cidr": "10.0.0.0/24", "except": ["10.1.0.0/24"]}}]),
        "policy x/p: spec.ingress[0].from[0].ipBlock.except[0]: "
        'Invalid value: "10.1.0.0/24": must be a strict subset of `cidr`',
    ),
    (
        "policy port out of range",
        _set((*RULE, "ports"), [{"port": 70000}]),
        "policy x/p: spec.ingress[0].ports[0].port: Invalid value: 70000: must be between 1 and 65535",
    ),
    (
        "probe port out of range",
        _set(("probes",), [{"port": 0}]),
        "probes[0]: port: Invalid value: 0: must be between 1 and 65535",
    ),
    (
        "container port out of range",
        _set(("pods", 0, "ports"), [{"containerPort": 65536}]),
        "pod x/a: ports[0].containerPort: Invalid value: 65536: must be between 1 and 65535",
    ),
    (
        "endPort below port",
        _set((*RULE, "ports"), [{"port": 81, "endPort": 80}]),
        "policy x/p: spec.ingress[0].ports[0].endPort: "
        "Invalid value: 80: must be greater than or equal to `port`",
    ),
    (
        "unknown protocol",
        _set((*RULE, "ports"), [{"port": 80, "protocol": "ICMP"}]),
        "policy x/p: spec.ingress[0].ports[0].protocol: "
        'Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP"',
    ),
    (
        "pod in a missing namespace",
        _set(("pods", 0, "namespace"), "nowhere"),
        'pod nowhere/a: namespace: namespace "nowhere" is not in namespaces',
    ),
    (
        "policy in a missing namespace",
        _set(("policies", 0, "metadata", "namespace"), "nowhere"),
        'policy nowhere/p: metadata.namespace: namespace "nowhere" is not in namespaces',
    ),
    (
        "invalid selector operator",
        _set(
            (*RULE, "from"),
            [{"podSelector": {"matchExpressions": [{"key": "pod", "operator": "Equals", "values": ["a"]}]}}],
        ),
        "policy x/p: spec.ingress[0].from[0].podSelector.matchExpressions[0].operator: "
        'Invalid value: "Equals": not a valid selector operator',
    ),
    (
        "In without values",
        _set((*RULE, "from"), [{"podSelector": {"matchExpressions": [{"key": "pod", "operator": "In"}]}}]),
        "values: Required value: must be specified when `operator` is 'In' or 'NotIn'",
    ),
    (
        "invalid pod IP",
        _set(("pods", 0, "ip"), "10.0.0"),
        'pod x/a: ip: Invalid value: "10.0.0": must be a valid IP address',
    ),
    (
        "ipBlock with a selector",
        _set((*RULE, "from"), [{"ipBlock": {"cidr": "10.0.0.0/8"}, "podSelector": {}}]),
        "spec.ingress[0].from[0]: Forbidden: may not specify more than 1 peer type",
    ),
    (
        "empty peer",
        _set((*RULE, "from"), [{}]),
        "spec.ingress[0].from[0]: Required value: must specify a peer",
    ),
    ("bad policyTypes", _set(("policies", 0, "spec", "policyTypes"), ["Both"]), "spec.policyTypes"),
    (
        "bad apiVersion",
        _set(("policies", 0, "apiVersion"), "v1"),
        'policy x/p: apiVersion: "v1" is not one of',
    ),
    (
        "duplicate pod",
        lambda d: d["pods"].append(copy.deepcopy(d["pods"][0])),
        "pod x/a: name: appears twice",
    ),
    (
        "missing podSelector",
        lambda d: d["policies"][0]["spec"].pop("podSelector"),
        "spec.podSelector: Required value",
    ),
    (
        "bad port name",
        _set((*RULE, "ports"), [{"port": "HTTP_PORT"}]),
        'ports[0].port: Invalid value: "HTTP_PORT": must contain only alpha-numeric',
    ),
    (
        "label value not a string",
        _set(("pods", 0, "labels"), {"pod": 1}),
        "pod x/a: labels: Invalid value: 1: must be a string",
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
