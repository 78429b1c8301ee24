"""The weave-2.8.1 profile predicts every cell the real weave-npc 2.8.1 let through or dropped."""

from __future__ import annotations

import pytest

from netpolcheck.model.state import parse_state
from tests.model.builders import matrix
from tests.model.observed_states import OBSERVED, load, scenarios, to_state


def _mismatches(observed_state: dict, cells: list[dict], profile: str) -> list[str]:
    expected = matrix(parse_state(to_state(observed_state, cells)), profile)
    wrong = []
    for cell in cells:
        key = (cell["from"], cell["to"], cell["port"], cell["protocol"])
        if key not in expected:
            wrong.append(f"{key}: not in the expected matrix")
        elif expected[key] != cell["allowed"]:
            wrong.append(f"{key}: observed {cell['allowed']}, expected {expected[key]}")
    return wrong


def test_every_scenario_was_copied() -> None:
    assert len(scenarios()) == 13


@pytest.mark.parametrize("scenario", scenarios())
@pytest.mark.parametrize("profile", ["weave-2.8.1", "weave-2.9.0"])
def test_profile_predicts_the_observed_matrix(scenario: str, profile: str) -> None:
    cells = load(OBSERVED / scenario / "matrix.json")
    assert len(cells) >= 8
    assert _mismatches(load(OBSERVED / scenario / "state.json"), cells, profile) == []


@pytest.mark.parametrize("scenario", ["m-endport", "m-named-port"])
def test_spec_disagrees_where_weave_deviates(scenario: str) -> None:
    """The deviation scenarios really differ from spec, so the test above is not vacuous."""
    cells = load(OBSERVED / scenario / "matrix.json")
    assert _mismatches(load(OBSERVED / scenario / "state.json"), cells, "spec") != []


def test_changes_3node_every_step_predicted() -> None:
    steps = load(OBSERVED / "changes-3node" / "steps.json")
    results = load(OBSERVED / "changes-3node" / "results.json")
    assert len(steps) == len(results) == 9
    for step, result in zip(steps, results, strict=True):
        assert step["name"] == result["name"]
        assert _mismatches(step["state"], result["observed"], "weave-2.8.1") == [], step["name"]
        if step["witness"] is not None:
            witness = step["witness"]
            cells = matrix(parse_state(to_state(step["state"], result["observed"])), "weave-2.8.1")
            key = (witness["from"], witness["to"], witness["port"], witness["protocol"])
            assert cells[key] == witness["allowed"], step["name"]
