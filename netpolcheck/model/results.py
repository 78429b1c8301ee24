"""The `netpolcheck expect` JSON document: one result per probed ordered pair, spec differences named."""

from __future__ import annotations

from typing import Any

from netpolcheck.model.caveats import unpredictable
from netpolcheck.model.explain import DeviationFinder
from netpolcheck.model.profiles import Profile
from netpolcheck.model.reasons import ReasonWriter
from netpolcheck.model.state import State


def expected_results(state: State, profile: Profile) -> dict[str, Any]:
    """`{"profile": NAME, "results": [...]}` as DESIGN.md fixes it.

    Compatible extensions: `portName` when the probe named its port; when the profile's verdict differs
    from the spec's, `spec` (the spec verdict) and `deviations` (the profile deviations that explain
    it); top-level `cautions` for documented deviations this state triggers that cannot be predicted.
    """
    finder = DeviationFinder(state, profile)
    matrix = finder.matrix
    reasons = ReasonWriter(matrix)
    endpoints = state.endpoints
    results = []
    for s, d, p in matrix.cells():
        pm = matrix.probes[p]
        port = pm.probe.resolve(endpoints[d])
        row: dict[str, Any] = {
            "from": matrix.keys[s],
            "to": matrix.keys[d],
            "port": port,
            "protocol": pm.probe.protocol,
            "allowed": bool(pm.allowed[s] >> d & 1),
            "ingress": bool(pm.ingress[s] >> d & 1),
            "egress": bool(pm.egress[s] >> d & 1),
            "reason": reasons.reason(s, d, p),
        }
        if isinstance(pm.probe.port, str):
            row["portName"] = pm.probe.port
        if finder.differs(s, d, p):
            row["spec"] = finder.spec_allowed(s, d, p)
            row["deviations"] = list(finder.explain(s, d, p))
        results.append(row)
    document: dict[str, Any] = {"profile": profile.name, "results": results}
    cautions = [f"{dev.id} ({why}): {dev.reason}" for dev, why in unpredictable(state, profile)]
    if cautions:
        document["cautions"] = cautions
    return document
