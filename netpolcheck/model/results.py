"""The `netpolcheck expect` JSON document: one result per probed ordered pair, spec differences named.

`expected_results` builds the document in memory (tests, truth tables); `expected_json_chunks` yields
the same document as text, one chunk per row of the matrix, encoding each distinct key, reason and
deviation list once, so the 1,000-pod matrix (10^6 results) is written without holding them all.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from netpolcheck.model.caveats import unpredictable
from netpolcheck.model.deviations import DeviationFinder
from netpolcheck.model.index import bits
from netpolcheck.model.profiles import Profile
from netpolcheck.model.reasons import RowReasons
from netpolcheck.model.state import State

# one result, in the order of the contract: from, to, port, protocol, allowed, ingress, egress, reason
Cell = tuple[int, int, int, int | None, bool, bool, bool, str, tuple[str, ...] | None]


def _cells(state: State, profile: Profile) -> Iterator[Cell]:
    """(s, d, p, port, allowed, ingress, egress, reason, deviations or None when spec agrees) per cell."""
    finder = DeviationFinder(state, profile)
    matrix = finder.matrix
    reasons = RowReasons(matrix)
    endpoints = state.endpoints
    for p, pm in enumerate(matrix.probes):
        ports = [pm.probe.resolve(ep) for ep in endpoints]
        for s in range(len(endpoints)):
            row, allowed, ingress, egress = reasons.row(s, p), pm.allowed[s], pm.ingress[s], pm.egress[s]
            explained = finder.explain_row(s, p)
            for d in bits(pm.probed & ~(1 << s)):
                yield (
                    s,
                    d,
                    p,
                    ports[d],
                    bool(allowed >> d & 1),
                    bool(ingress >> d & 1),
                    bool(egress >> d & 1),
                    row[d],
                    explained.get(d),
                )


def _cautions(state: State, profile: Profile) -> list[str]:
    return [f"{dev.id} ({why}): {dev.reason}" for dev, why in unpredictable(state, profile)]


def expected_results(state: State, profile: Profile) -> dict[str, Any]:
    """`{"profile": NAME, "results": [...]}` as docs/design.md#contract-expect fixes it.

    Compatible extensions: `portName` when the probe named its port; when the profile's verdict differs
    from the spec's, `spec` (the spec verdict) and `deviations` (the profile deviations that explain
    it); top-level `cautions` for documented deviations this state triggers that cannot be predicted.
    """
    keys = [ep.key for ep in state.endpoints]
    results = []
    for s, d, p, port, allowed, ingress, egress, reason, deviations in _cells(state, profile):
        probe = state.probes[p]
        row: dict[str, Any] = {
            "from": keys[s],
            "to": keys[d],
            "port": port,
            "protocol": probe.protocol,
            "allowed": allowed,
            "ingress": ingress,
            "egress": egress,
            "reason": reason,
        }
        if isinstance(probe.port, str):
            row["portName"] = probe.port
        if deviations is not None:
            row["spec"] = not allowed
            row["deviations"] = list(deviations)
        results.append(row)
    document: dict[str, Any] = {"profile": profile.name, "results": results}
    cautions = _cautions(state, profile)
    if cautions:
        document["cautions"] = cautions
    return document


def expected_json_chunks(state: State, profile: Profile) -> Iterator[str]:
    """The text of the document of `expected_results`, one result per line, one chunk per row of the
    matrix (the caller writes them; nothing here touches a stream).

    Every key, reason, deviation list and flag combination is encoded once. The text parses to exactly
    `expected_results(state, profile)` (a test holds the two together).
    """
    head: dict[str, Any] = {"profile": profile.name}
    cautions = _cautions(state, profile)
    if cautions:
        head["cautions"] = cautions
    yield json.dumps(head)[:-1] + ', "results": ['
    finder = DeviationFinder(state, profile)
    matrix = finder.matrix
    reasons = RowReasons(matrix)
    endpoints = state.endpoints
    sources = [f'\n{{"from": {json.dumps(ep.key)}, "to": ' for ep in endpoints]
    flags = [
        f'"allowed": {json.dumps(bool(a))}, "ingress": {json.dumps(bool(i))}, "egress": {json.dumps(bool(e))}'
        for a in (0, 1)
        for i in (0, 1)
        for e in (0, 1)
    ]
    spec_flags = {True: ', "spec": true, "deviations": ', False: ', "spec": false, "deviations": '}
    encoded: dict[str, str] = {}
    explained: dict[tuple[str, ...], str] = {}
    count = 0
    for p, pm in enumerate(matrix.probes):
        probe = pm.probe
        named = "" if isinstance(probe.port, int) else f', "portName": {json.dumps(probe.port)}'
        destinations = [
            f'{json.dumps(ep.key)}, "port": {port}, "protocol": {json.dumps(probe.protocol)}{named}, '
            if (port := probe.resolve(ep)) is not None
            else ""
            for ep in endpoints
        ]
        for s in range(len(endpoints)):
            row = reasons.row(s, p)
            allowed, ingress, egress = pm.allowed[s], pm.ingress[s], pm.egress[s]
            differing = finder.explain_row(s, p)
            lines = []
            for d in bits(pm.probed & ~(1 << s)):
                reason = row[d]
                text = encoded.get(reason)
                if text is None:
                    text = encoded[reason] = json.dumps(reason)
                a = allowed >> d & 1
                line = (
                    f"{sources[s]}{destinations[d]}"
                    f'{flags[a << 2 | (ingress >> d & 1) << 1 | (egress >> d & 1)]}, "reason": {text}'
                )
                deviations = differing.get(d)
                if deviations is not None:
                    ids = explained.get(deviations)
                    if ids is None:
                        ids = explained[deviations] = json.dumps(list(deviations))
                    line += spec_flags[not a] + ids
                lines.append(line + "}")
            if lines:
                yield ("," if count else "") + ",".join(lines)
                count += len(lines)
    yield "\n]}\n"
