"""Properties of NetworkPolicy semantics over random small states (hypothesis, bounded)."""

from __future__ import annotations

import copy
import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from netpolcheck.model import profiles as dev
from netpolcheck.model.cell import Evaluator
from netpolcheck.model.deviations import DeviationFinder, explaining_deviations
from netpolcheck.model.engine import ExpectedMatrix
from netpolcheck.model.index import bits
from netpolcheck.model.ipset_clash import clash_losers
from netpolcheck.model.objects import Pod
from netpolcheck.model.profiles import PROFILES, SPEC
from netpolcheck.model.state import parse_state
from tests.model.builders import matrix
from tests.model.strategies import states

BOUNDED = settings(max_examples=150, deadline=None)
PROFILE_NAMES = st.sampled_from(sorted(PROFILES))


@BOUNDED
@given(states(), PROFILE_NAMES)
def test_indexed_engine_agrees_with_per_cell_evaluation(doc: dict[str, Any], profile: str) -> None:
    matrix(doc, profile)  # asserts engine == evaluator on every cell


@BOUNDED
@given(states(max_policies=0), PROFILE_NAMES)
def test_no_policies_everything_allowed(doc: dict[str, Any], profile: str) -> None:
    for namespace in doc["namespaces"]:
        namespace["annotations"] = {}  # legacy isolation is tested on its own
    cells = matrix(doc, profile)
    assert all(cells.values())


@BOUNDED
@given(states(max_policies=0))
def test_legacy_annotation_alone_isolates_the_namespace_in_2_0_5(doc: dict[str, Any]) -> None:
    annotated = {n["name"] for n in doc["namespaces"] if n["annotations"]}
    isolated = {
        f"{p['namespace']}/{p['name']}"
        for p in doc["pods"]
        if p["namespace"] in annotated and not p["hostNetwork"]
    }
    host_nodes = {p["node"]: p for p in doc["pods"] if p["hostNetwork"]}
    node_of = {f"{p['namespace']}/{p['name']}": p["node"] for p in doc["pods"]}
    for (src, dst, _, _), ok in matrix(doc, "weave-2.0.5").items():
        host_local = src in {f"{p['namespace']}/{p['name']}" for p in host_nodes.values()} and node_of.get(
            src
        ) == node_of.get(dst)
        assert ok == (dst not in isolated or host_local)
    assert all(matrix(doc, "spec").values())


@BOUNDED
@given(states(), PROFILE_NAMES, st.randoms(use_true_random=False))
def test_policy_order_matters_only_through_the_ipset_name_clash(
    doc: dict[str, Any], profile: str, rnd: random.Random
) -> None:
    """The order the implementation sees policies changes nothing, unless it changes who loses the
    ipset name clash; without that deviation it never matters."""
    shuffled = copy.deepcopy(doc)
    rnd.shuffle(shuffled["policies"])
    prof = PROFILES[profile]
    losers = [clash_losers(parse_state(d).policies, lambda p: p.named_ports) for d in (doc, shuffled)]
    if prof.has(dev.IPSET_NAME_CLASH) and losers[0] != losers[1]:
        prof = prof.without(dev.IPSET_NAME_CLASH)
    assert matrix(shuffled, prof) == matrix(doc, prof)


@BOUNDED
@given(states())
def test_pod_selected_by_no_policy_is_reachable_from_everything_allowed_to_egress_to_it(
    doc: dict[str, Any],
) -> None:
    state = parse_state(doc)
    evaluator = Evaluator(state, SPEC)
    for dst in state.endpoints:
        if isinstance(dst, Pod) and any(
            evaluator.selects(p, dst) and p.isolates_ingress for p in evaluator.policies
        ):
            continue
        for src in state.endpoints:
            for probe in state.probes:
                number = probe.resolve(dst)
                if src is dst or number is None:
                    continue
                cell = evaluator.cell(src, dst, probe)
                assert cell is not None
                assert cell.allowed == evaluator.egress(src, dst, number, probe.protocol).allowed


@BOUNDED
@given(states(), st.data())
def test_adding_a_policy_for_already_isolated_targets_never_removes_an_allowed_cell(
    doc: dict[str, Any], data: st.DataObject
) -> None:
    isolating = [p for p in doc["policies"] if "Ingress" in p["spec"].get("policyTypes", ["Ingress"])]
    if not isolating:
        return
    base = data.draw(st.sampled_from(isolating))
    extra = copy.deepcopy(data.draw(st.sampled_from(doc["policies"])))
    extra["metadata"] = {"name": "extra", "namespace": base["metadata"]["namespace"]}
    extra["spec"]["podSelector"] = base["spec"]["podSelector"]
    extra["spec"]["policyTypes"] = ["Ingress"]
    before = matrix(doc)
    after = matrix({**doc, "policies": [*doc["policies"], extra]})
    assert {k for k, ok in before.items() if ok} <= {k for k, ok in after.items() if ok}


@BOUNDED
@given(states())
def test_a_connection_needs_both_directions_under_spec(doc: dict[str, Any]) -> None:
    m = ExpectedMatrix(parse_state(doc), SPEC)
    for pm in m.probes:
        for s, row in enumerate(pm.allowed):
            expected = pm.ingress[s] & pm.egress[s] & pm.probed & ~(1 << s)
            assert row == expected


@settings(max_examples=60, deadline=None)
@given(states(), st.sampled_from([n for n in PROFILES if n != "spec"]))
def test_every_difference_from_spec_is_explained_by_a_deviation(doc: dict[str, Any], profile: str) -> None:
    state = parse_state(doc)
    prof, spec = PROFILES[profile], ExpectedMatrix(state, SPEC)
    here = ExpectedMatrix(state, prof)
    finder = DeviationFinder(state, prof, here)
    for s, d, p in here.cells():
        if (here.probes[p].allowed[s] >> d & 1) != (spec.probes[p].allowed[s] >> d & 1):
            ids = explaining_deviations(
                state, prof, state.endpoints[s], state.endpoints[d], here.probes[p].probe
            )
            assert ids and set(ids) <= prof.ids
            assert finder.explain(s, d, p) == ids  # the matrix-based finder gives the same answer
            assert finder.explain_row(s, p)[d] == ids  # and so does its row-at-a-time form
    for p, pm in enumerate(here.probes):
        for s in range(len(here.keys)):
            assert set(finder.explain_row(s, p)) == set(bits(pm.allowed[s] ^ spec.probes[p].allowed[s]))
