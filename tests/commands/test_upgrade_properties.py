"""`upgrade_impact` against the per-cell evaluator on random states and random pairs of releases:
exactly the cells whose verdict differs, with the evaluator's reasons and deciding policies, and
each explaining deviation really is one the upgrade removes or introduces."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from netpolcheck.model.cell import Evaluator
from netpolcheck.model.profiles import weave_profile
from netpolcheck.model.state import parse_state
from netpolcheck.model.upgrade import INTRODUCED, REMOVED, deciding_policies, upgrade_impact
from tests.model.strategies import states

RELEASES = st.sampled_from(["2.0.5", "2.1.3", "2.3.0", "2.4.1", "2.5.2", "2.6.5", "2.8.1", "2.9.0"])


@settings(max_examples=80, deadline=None)
@given(states(), RELEASES, RELEASES)
def test_changed_cells_are_the_evaluators(doc: dict[str, Any], a: str, b: str) -> None:
    state = parse_state(doc)
    before, after = weave_profile(a), weave_profile(b)
    impact = upgrade_impact(state, before, after)
    old, new = Evaluator(state, before), Evaluator(state, after)
    want = {}
    for probe in state.probes:
        for src in state.endpoints:
            for dst in state.endpoints:
                if src is dst:
                    continue
                v_old, v_new = old.cell(src, dst, probe), new.cell(src, dst, probe)
                if v_old is not None and v_new is not None and v_old.allowed != v_new.allowed:
                    key = (src.key, dst.key, v_old.port, probe.protocol)
                    want[key] = (v_new.allowed, v_old.reason, v_new.reason, deciding_policies(v_old, v_new))
    got = {
        (c.source, c.destination, c.port, c.protocol): (c.after, c.reason_before, c.reason_after, c.policies)
        for c in impact.changed
    }
    assert got == want
    for group in impact.groups:
        for deviation, how in group.deviations:
            assert how in (REMOVED, INTRODUCED)
            assert (before if how == REMOVED else after).has(deviation.id)
            assert not (after if how == REMOVED else before).has(deviation.id)
