"""A source port serves the same target again only after REUSE_AFTER seconds (an answered flow's
conntrack entry would otherwise let a later attempt pass a deny as ESTABLISHED)."""

from __future__ import annotations

import random

import pytest

from netpolcheck.probe import engine
from netpolcheck.probe.engine import PortPicker, RecentFlows


def test_a_port_is_not_reused_toward_the_same_target_but_may_serve_another() -> None:
    recent = RecentFlows()
    assert recent.claim((17, "10.0.0.2", 80), 40000)
    assert not recent.claim((17, "10.0.0.2", 80), 40000)
    assert recent.claim((17, "10.0.0.2", 81), 40000)
    assert recent.claim((6, "10.0.0.2", 80), 40000)


def test_a_port_serves_again_once_its_time_is_up(monkeypatch: pytest.MonkeyPatch) -> None:
    recent = RecentFlows()
    monkeypatch.setattr(engine, "REUSE_AFTER", 0.0)
    assert recent.claim((17, "10.0.0.2", 80), 40000)
    assert recent.claim((17, "10.0.0.2", 80), 40000)


def test_pickers_of_separate_runs_never_repeat_a_port_toward_one_target(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(engine, "RECENT", RecentFlows())
    picked = []
    for run in range(20):  # twenty runs, as the resident agent makes them, 200 attempts each
        picker = PortPicker({80}, random.Random(run))
        picked += [picker.pick(set(), 17, "10.0.0.2", 80) for _ in range(200)]
    assert len(set(picked)) == len(picked) == 4000


def test_a_pod_reusing_an_address_draws_other_ports_than_the_pod_before_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two agents (fresh memory each, as two pods given the same address one after the other) that
    probe one target a few seconds apart draw disjoint ports: the old pod's conntrack entries cannot
    let the new pod's attempts through as ESTABLISHED. A whole cycle later the slice comes round."""

    def agent_at(wall: float, attempts: int, seed: int) -> set[int]:
        monkeypatch.setattr(engine, "RECENT", RecentFlows())
        monkeypatch.setattr(engine, "CURSORS", {})
        picker = PortPicker({80}, random.Random(seed))
        picker.clock = lambda: wall
        return {picker.pick(set(), 17, "10.0.0.2", 80) for _ in range(attempts)}

    start = 1_800_000_000.0
    old = agent_at(start, 300, 1)  # more than one second's slice: the old pod ran ahead
    assert len(old) == 300
    for later in (5.0, 10.0, 60.0, 120.0):
        assert not old & agent_at(start + later, 300, 2), later
    assert old & agent_at(start + engine.PORT_CYCLE, 300, 3)  # the clock came round
