"""The certification report: one versioned JSON document of a suite run (docs/report.md).

Plain dicts in, a plain dict out; no I/O and no model import. The verdict engine's plugin builds one
`check_entry` per check (from its `Comparison` and convergence numbers), one `case_entry` per case, and
at session end `build_report(environment, cases, profile_deviations)`; `validate_report` holds any
document to the schema shipped beside this module (certification.schema.json).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from netpolcheck.report.cells import CellKey, ExpectedCell, ObservedCell, Outcome
from netpolcheck.report.compare import CellComparison, Comparison

FORMAT = "netpolcheck-certification"
VERSION = 1
STATUSES = ("pass", "fail", "expected failure", "unexpected pass", "skipped")
FAILING = frozenset({"fail", "unexpected pass"})


def cell_entry(cell: CellComparison) -> dict[str, Any]:
    """One cell of a check: what was expected and why, what the probe saw, and how they compare."""
    k, expected, observed = cell.key, cell.expected, cell.observed
    out: dict[str, Any] = {
        "from": k.source,
        "to": k.destination,
        "port": k.port,
        "protocol": k.protocol,
        "expected": expected.allowed,
        "reason": expected.reason,
        "observed": None if observed is None else observed.verdict,
        "attempts": 0 if observed is None else observed.attempts,
        "evidence": "" if observed is None else observed.evidence,
        "outcome": cell.outcome.value,
        "note": cell.note,
    }
    if expected.spec_allowed is not None:
        out["spec"] = expected.spec_allowed
        out["deviations"] = list(expected.deviations)
    return out


def check_entry(
    step_index: int,
    step: str,
    status: str,
    comparison: Comparison,
    convergence: Mapping[str, Any],
    note: str = "",
    weave_version: str | None = None,
    deviations_shown: Iterable[str] = (),
    deviations_predicted: Iterable[str] = (),
) -> dict[str, Any]:
    """`convergence`: converged (bool), ms (upper bound or None), lowerMs, rounds, probes, waitedMs,
    method ("staggered": resident agents; "rounds ...": probe rounds, and why);
    `deviations_predicted`: the ids of the verdict engine's prediction (documented deviations the
    run's profile expected to see as failures), shown or not."""
    return {
        "step": step_index,
        "name": step,
        "status": status,
        "note": note,
        "weaveVersion": weave_version,
        "convergence": {
            "converged": bool(convergence["converged"]),
            "ms": convergence.get("ms"),
            "lowerMs": float(convergence.get("lowerMs", 0.0)),
            "rounds": int(convergence.get("rounds", 0)),
            "probes": int(convergence.get("probes", 0)),
            "waitedMs": float(convergence.get("waitedMs", 0.0)),
            "method": str(convergence.get("method", "rounds")),
        },
        "deviationsShown": list(dict.fromkeys(deviations_shown)),
        "deviationsPredicted": list(dict.fromkeys(deviations_predicted)),
        "cells": [cell_entry(c) for c in comparison.cells],
    }


def case_entry(
    case_id: str,
    status: str,
    checks: Sequence[Mapping[str, Any]],
    features: Iterable[str] = (),
    error: str = "",
    negative_control: bool = False,
    holds: Sequence[Mapping[str, Any]] = (),
    rollouts: Sequence[Mapping[str, Any]] = (),
    skip_reason: str = "",
    observations: Sequence[str] = (),
) -> dict[str, Any]:
    """`features`: the case's feature markers (ingress, egress, ipblock, ...); `holds`: held
    connections as {name, survived, summary}; `rollouts`: what was watched while a step changed the
    cluster (a Weave rollout, a controller restart) as {step, summary}; `skip_reason`: why a skipped
    case did not run (kept with the case, so a skip never reads as a pass); `observations`: what a case
    that is not a matrix of cells saw (multicast: who was heard), one sentence each."""
    entry: dict[str, Any] = {
        "id": case_id,
        "status": status,
        "features": sorted(set(features)),
        "error": error,
        "negativeControl": negative_control,
        "checks": [dict(c) for c in checks],
        "holds": [dict(h) for h in holds],
        "rollouts": [dict(r) for r in rollouts],
    }
    if skip_reason:
        entry["skipReason"] = skip_reason
    if observations:
        entry["observations"] = list(observations)
    return entry


def environment_entry(
    cluster_kind: str,
    kubernetes_version: str,
    nodes: Sequence[Mapping[str, str]],
    cni: tuple[str, str | None],
    suite_version: str,
    profile: str,
    options: Mapping[str, Any],
) -> dict[str, Any]:
    """`nodes`: {name, kernel, osImage, kubeletVersion} as the Node objects' status.nodeInfo gives
    them; the top-level `kernel` is the nodes' kernel when they agree, else `mixed: a, b`."""
    kernels = sorted({n["kernel"] for n in nodes if n.get("kernel")})
    kernel = kernels[0] if len(kernels) == 1 else ("mixed: " + ", ".join(kernels) if kernels else "unknown")
    return {
        "clusterKind": cluster_kind,
        "kubernetesVersion": kubernetes_version,
        "nodes": [dict(n) for n in nodes],
        "kernel": kernel,
        "cni": {"name": cni[0], "version": cni[1]},
        "suiteVersion": suite_version,
        "profile": profile,
        "options": dict(options),
    }


def _feature_summary(cases: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    features: dict[str, dict[str, Any]] = {}
    for case in cases:
        for feature in case["features"] or ["(unmarked)"]:
            entry = features.setdefault(
                feature, {"feature": feature, "cases": 0} | {s: 0 for s in STATUSES} | {"failedCases": []}
            )
            entry["cases"] += 1
            entry[case["status"]] += 1
            if case["status"] in FAILING:
                entry["failedCases"].append(case["id"])
    out = []
    for name in sorted(features):
        entry = features[name]
        entry["holds"] = not entry["failedCases"] and entry["cases"] > entry["skipped"]
        out.append(entry)
    return out


def _deviation_summary(
    cases: Sequence[Mapping[str, Any]], profile_deviations: Mapping[str, str]
) -> dict[str, Any]:
    shown: dict[str, list[str]] = {}
    absent: dict[str, None] = {}
    for case in cases:
        for check in case["checks"]:
            for dev_id in check["deviationsShown"]:
                cases_of = shown.setdefault(dev_id, [])
                if case["id"] not in cases_of:
                    cases_of.append(case["id"])
            if check["status"] == "unexpected pass":
                absent |= dict.fromkeys(check["deviationsPredicted"])
                for cell in check["cells"]:
                    absent |= dict.fromkeys(cell.get("deviations", []))
    return {
        "observed": [
            {"id": i, "reason": profile_deviations.get(i, ""), "cases": c} for i, c in sorted(shown.items())
        ],
        "expectedAbsent": [
            {"id": i, "reason": r, "predictedButNotShown": i in absent}
            for i, r in sorted(profile_deviations.items())
            if i not in shown
        ],
    }


def overall_result(statuses: Sequence[str]) -> str:
    """`fail` if any case failed; `pass` only if at least one case ran and held; else `inconclusive`
    (nothing ran: every case skipped, or no case at all), so a run that checked nothing never passes."""
    if any(s in FAILING for s in statuses):
        return "fail"
    return "pass" if any(s in ("pass", "expected failure") for s in statuses) else "inconclusive"


def build_report(
    environment: Mapping[str, Any],
    cases: Sequence[Mapping[str, Any]],
    profile_deviations: Mapping[str, str],
    generated: str,
) -> dict[str, Any]:
    """The whole document. `environment`: clusterKind, kubernetesVersion, nodes ([{name, kernel, ...}]),
    kernel, cni {name, version}, suiteVersion, profile, options {}; `profile_deviations`: id -> reason
    of every documented deviation of the implementation's profile (those expected to show);
    `generated`: an RFC 3339 time."""
    statuses = [c["status"] for c in cases]
    return {
        "format": FORMAT,
        "version": VERSION,
        "generated": generated,
        "environment": dict(environment),
        "result": overall_result(statuses),
        "summary": {
            "cases": len(cases),
            "counts": {s: statuses.count(s) for s in STATUSES},
            "features": _feature_summary(cases),
            "deviations": _deviation_summary(cases, profile_deviations),
        },
        "cases": [dict(c) for c in cases],
    }


# -- reading a document back (renderers) -----------------------------------------------------------


def failures(report: Mapping[str, Any]) -> list[tuple[Mapping[str, Any], Mapping[str, Any] | None]]:
    """(case, failing check or None for a case error) for every failure, in document order."""
    out: list[tuple[Mapping[str, Any], Mapping[str, Any] | None]] = []
    for case in report["cases"]:
        if case["error"]:
            out.append((case, None))
        out += [(case, check) for check in case["checks"] if check["status"] in FAILING]
    return out


def skipped(report: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(case id, why) for every case that did not run."""
    return [
        (c["id"], c.get("skipReason") or "(no reason recorded)")
        for c in report["cases"]
        if c["status"] == "skipped"
    ]


def around(case: Mapping[str, Any]) -> list[str]:
    """What else the case saw: held connections and what was watched while the cluster changed."""
    lines = [
        f"held connection {h['name']}: {'survived' if h['survived'] else 'broken'} ({h['summary']})"
        for h in case["holds"]
    ]
    lines += [f"step {r['step']} while the cluster changed: {r['summary']}" for r in case["rollouts"]]
    return lines + list(case.get("observations", ()))


def observations_of(report: Mapping[str, Any]) -> list[tuple[str, str, list[str]]]:
    """(case id, status, observations) for every case that recorded observations."""
    return [(c["id"], c["status"], list(c["observations"])) for c in report["cases"] if c.get("observations")]


def comparison_of(
    check: Mapping[str, Any],
) -> tuple[dict[CellKey, ExpectedCell], dict[CellKey, ObservedCell], Comparison]:
    """The report layer's cells of one check, for truth tables."""
    expected: dict[CellKey, ExpectedCell] = {}
    observed: dict[CellKey, ObservedCell] = {}
    cells = []
    for cell in check["cells"]:
        key = CellKey(cell["protocol"], int(cell["port"]), cell["from"], cell["to"])
        exp = ExpectedCell(
            cell["expected"], cell["reason"], cell.get("spec"), tuple(cell.get("deviations", ()))
        )
        obs = (
            None
            if cell["observed"] is None
            else ObservedCell(cell["observed"], cell["attempts"], cell["evidence"])
        )
        expected[key] = exp
        if obs is not None:
            observed[key] = obs
        cells.append(CellComparison(key, exp, obs, Outcome(cell["outcome"]), cell["note"]))
    return expected, observed, Comparison(tuple(cells))


def options_text(options: Mapping[str, Any]) -> str:
    """The run's options on one line, values as JSON (null, false, "") unless a plain word."""
    return (
        ", ".join(
            f"{k}={v if isinstance(v, str) and v else json.dumps(v)}" for k, v in sorted(options.items())
        )
        or "-"
    )


def convergence_points(report: Mapping[str, Any]) -> list[tuple[str, float | None]]:
    """(case:step label, upper-bound ms or None when it never converged) per check, in order."""
    return [
        (f"{case['id']}:{check['step']} {check['name']}", check["convergence"]["ms"])
        for case in report["cases"]
        for check in case["checks"]
    ]
