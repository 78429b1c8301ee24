"""The workshop: deny-all, then allow-by-label, per Weave version (docs/weave-facts.md#seed-chapter)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from netpolcheck.model.state import parse_state
from tests.model.builders import allowed, matrix

SEED = Path(__file__).resolve().parents[1] / "data" / "seed"
STEPS = ("0-none", "1-deny-all", "2-allow-unlabelled", "3-allow-labelled")


def _wget_allowed(step: str, profile: str) -> bool:
    """busybox -> http-echo on TCP 80, the chapter's wget."""
    state = parse_state(json.loads((SEED / f"{step}.json").read_text()))
    return allowed(matrix(state, profile), "ns-1/busybox", "ns-1/http-echo", 80, "TCP")


@pytest.mark.parametrize("profile", ["spec", "weave-2.1.3", "weave-2.8.1", "weave-2.9.0"])
def test_deny_blocks_and_allow_needs_the_busybox_label(profile: str) -> None:
    assert [_wget_allowed(step, profile) for step in STEPS] == [True, False, False, True]


def test_weave_2_0_5_blocks_nothing() -> None:
    assert [_wget_allowed(step, "weave-2.0.5") for step in STEPS] == [True, True, True, True]


def test_reverse_direction_closed_only_by_the_deny_all() -> None:
    """http-echo -> busybox: the deny-all selects busybox too; the allow policy selects only http-echo."""
    reverse = []
    for step in STEPS:
        cells = matrix(parse_state(json.loads((SEED / f"{step}.json").read_text())), "spec")
        reverse.append(allowed(cells, "ns-1/http-echo", "ns-1/busybox"))
    assert reverse == [True, False, True, True]
