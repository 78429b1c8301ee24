"""Documented deviations as strict expected failures: prediction and classification."""

from __future__ import annotations

from typing import Any

from netpolcheck.model import SPEC
from netpolcheck.model.profiles import weave_profile
from netpolcheck.report.cells import CellKey, ObservedCell
from netpolcheck.report.compare import compare
from netpolcheck.verdict.deviations import Status, classify, predict
from netpolcheck.verdict.expected import expect


def _state(policies: list[dict[str, Any]]) -> dict[str, Any]:
    port = [{"name": "serve-80-tcp", "containerPort": 80, "protocol": "TCP"}]
    return {
        "namespaces": [{"name": "x", "labels": {"ns": "x"}}],
        "pods": [
            {"namespace": "x", "name": "a", "labels": {"pod": "a"}, "ip": "10.32.0.2", "ports": port},
            {"namespace": "x", "name": "b", "labels": {"pod": "b"}, "ip": "10.32.0.3", "ports": port},
        ],
        "policies": policies,
        "probes": [{"port": 80, "protocol": "TCP"}],
    }


# the seed's deny-all: enforced by the spec, not by Weave 2.0.5 (legacy isolation needs the annotation)
DENY_ALL = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "NetworkPolicy",
    "metadata": {"name": "deny-all-by-default", "namespace": "x"},
    "spec": {"podSelector": {}},
}


def _observed(verdict: str) -> dict[CellKey, ObservedCell]:
    return {CellKey("TCP", 80, s, d): ObservedCell(verdict) for s, d in (("x/a", "x/b"), ("x/b", "x/a"))}


def test_spec_against_weave_2_0_5_predicts_the_legacy_isolation_deviation_with_provenance() -> None:
    doc = _state([DENY_ALL])
    run, impl = expect(doc, SPEC), expect(doc, weave_profile("2.0.5"))
    prediction = predict(run, impl, weave_profile("2.0.5"))
    assert prediction is not None
    assert len(prediction.cells) == 2
    assert [d.id for d in prediction.deviations] == ["legacy-isolation"]
    provenance = prediction.deviations[0].provenance
    assert provenance in prediction.reason() and "<2.1.0" in prediction.reason()


def test_no_prediction_when_the_profiles_agree() -> None:
    doc = _state([DENY_ALL])
    assert predict(expect(doc, SPEC), expect(doc, weave_profile("2.8.1")), weave_profile("2.8.1")) is None


def test_status_pass_fail_xfail_xpass() -> None:
    doc = _state([DENY_ALL])
    run, impl = expect(doc, SPEC), expect(doc, weave_profile("2.0.5"))
    prediction = predict(run, impl, weave_profile("2.0.5"))
    dropped, allowed = _observed("dropped"), _observed("allowed")
    # Weave 2.0.5 lets it through, as documented: an expected failure
    assert classify(compare(run.cells, allowed), prediction)[0] is Status.XFAIL
    # the deviation did not show: strict, reported as an unexpected pass
    status, note = classify(compare(run.cells, dropped), prediction)
    assert status is Status.XPASS and "expected to show a documented deviation" in note
    # without a prediction, the plain cases
    assert classify(compare(run.cells, dropped), None) == (Status.PASS, "")
    assert classify(compare(run.cells, allowed), None)[0] is Status.FAIL


def test_a_wrong_cell_outside_the_prediction_is_a_plain_failure() -> None:
    doc = _state([DENY_ALL])
    run, impl = expect(doc, SPEC), expect(doc, weave_profile("2.0.5"))
    prediction = predict(run, impl, weave_profile("2.0.5"))
    mixed = _observed("allowed")
    mixed[CellKey("TCP", 80, "x/b", "x/a")] = ObservedCell("dropped")
    status, note = classify(compare(run.cells, mixed), prediction)
    assert status is Status.FAIL and "did not show the predicted deviation" in note
