"""The STATE JSON Schema shipped in the package: valid, met by every example, and the parser's own
list of allowed fields."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from netpolcheck.errors import UsageError
from netpolcheck.model.schema import fields, state_schema
from netpolcheck.model.state import parse_state
from tests.model.builders import netpol, one_policy_world, sel, world
from tests.model.observed_states import OBSERVED, load, scenarios, to_state

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "tests" / "data" / "seed"
VALIDATOR = jsonschema.Draft202012Validator(state_schema())


def _docs_example() -> dict[str, Any]:
    """The complete STATE example of docs/model.md (the block after "A complete STATE")."""
    text = (ROOT / "docs" / "model.md").read_text()
    block = re.search(r"A complete STATE.*?```json\n(.*?)```", text, re.S)
    assert block, "docs/model.md lost its complete STATE example"
    doc: dict[str, Any] = json.loads(block.group(1))
    return doc


def test_the_schema_is_a_valid_draft_2020_12_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(state_schema())


EXAMPLES = {
    **{f"seed/{p.name}": json.loads(p.read_text()) for p in sorted(SEED.glob("*.json"))},
    "world": world(externals=[{"name": "w", "ip": "203.0.113.7"}]),
    "one policy": one_policy_world(),
    "every peer and port shape": world(
        [
            netpol(
                "x/p",
                {
                    "podSelector": {
                        "matchExpressions": [{"key": "pod", "operator": "NotIn", "values": ["c"]}]
                    },
                    "policyTypes": ["Ingress", "Egress"],
                    "ingress": [
                        {
                            "from": [
                                {"podSelector": sel(pod="b"), "namespaceSelector": sel(ns="y")},
                                {"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.0.3.0/24"]}},
                            ],
                            "ports": [{"port": "http"}, {"port": 81, "endPort": 90, "protocol": "SCTP"}],
                        }
                    ],
                    "egress": [{"to": [{"namespaceSelector": {}}]}, {}],
                },
                api="extensions/v1beta1",
            )
        ],
        probes=[{"port": "http"}, {"port": 53, "protocol": "UDP"}],
    ),
}


@pytest.mark.parametrize("doc", list(EXAMPLES.values()), ids=list(EXAMPLES))
def test_examples_meet_the_schema_and_parse(doc: dict[str, Any]) -> None:
    errors = [e.message for e in VALIDATOR.iter_errors(doc)]
    assert errors == []
    parse_state(doc)


@pytest.mark.parametrize("scenario", scenarios())
def test_states_of_the_observed_scenarios_meet_the_schema(scenario: str) -> None:
    doc = to_state(load(OBSERVED / scenario / "state.json"), load(OBSERVED / scenario / "matrix.json"))
    assert [e.message for e in VALIDATOR.iter_errors(doc)] == []


def test_the_complete_example_in_the_docs_meets_the_schema_and_parses() -> None:
    doc = _docs_example()
    assert [e.message for e in VALIDATOR.iter_errors(doc)] == []
    state = parse_state(doc)
    assert state.pods and state.policies and state.probes and state.externals


def test_a_document_the_schema_rejects_the_parser_rejects() -> None:
    bad_documents: list[dict[str, Any]] = [
        {"pods": [{"namespace": "x", "name": "a", "ip": 167772161}], "namespaces": [{"name": "x"}]},
        {"namespaces": [{"name": "X"}]},
        {"namespaces": [{"name": "x", "labels": {"a/b/c": "v"}}]},
        {"probes": [{"port": 0}]},
        {"podz": []},
    ]
    for bad in bad_documents:
        assert list(VALIDATOR.iter_errors(bad)), bad
        with pytest.raises(UsageError):
            parse_state(bad)


@pytest.mark.parametrize(
    ("definition", "path", "where"),
    [
        (None, ("bogus",), "STATE: bogus"),
        ("namespace", ("namespaces", 0, "bogus"), "namespace x: bogus"),
        ("pod", ("pods", 0, "bogus"), "pod x/a: bogus"),
        ("containerPort", ("pods", 0, "ports", 0, "bogus"), "pod x/a: ports[0].bogus"),
        ("probe", ("probes", 0, "bogus"), "probes[0]: bogus"),
        ("networkPolicy", ("policies", 0, "bogus"), "policy x/p: bogus"),
        ("objectMeta", ("policies", 0, "metadata", "bogus"), "policy x/p: metadata.bogus"),
        ("networkPolicySpec", ("policies", 0, "spec", "bogus"), "policy x/p: spec.bogus"),
        ("ingressRule", ("policies", 0, "spec", "ingress", 0, "bogus"), "spec.ingress[0].bogus"),
        ("peer", ("policies", 0, "spec", "ingress", 0, "from", 0, "bogus"), "from[0].bogus"),
        ("labelSelector", ("policies", 0, "spec", "podSelector", "bogus"), "spec.podSelector.bogus"),
        ("policyPort", ("policies", 0, "spec", "ingress", 0, "ports", 0, "bogus"), "ports[0].bogus"),
    ],
)
def test_an_unknown_field_error_lists_the_allowed_fields(
    definition: str | None, path: tuple[Any, ...], where: str
) -> None:
    doc = one_policy_world()
    target: Any = doc
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = 1
    with pytest.raises(UsageError) as info:
        parse_state(doc)
    message = str(info.value)
    assert message.endswith(f"{where}: unknown field; allowed here: {', '.join(sorted(fields(definition)))}")
    assert message.startswith(where.split(":")[0]) or "policy x/p: " in message
