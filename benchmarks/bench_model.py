"""Benchmark: the full expected matrix for up to 1,000 pods and 500 policies on one port.

Compares the indexed engine (netpolcheck.model.engine) with a naive per-pair evaluation (the
per-cell evaluator without memoisation, over every ordered pair) in the same run, and checks that
both give the same verdicts on the cells the baseline evaluated. The baseline is timed over every
pair up to 250 pods and over a random sample of pairs above that (its per-cell cost is flat, so
the full time is extrapolated and labelled so). Single process.
Run: `.venv/bin/python benchmarks/bench_model.py [--quick]`.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import time
from pathlib import Path
from typing import Any

from netpolcheck.model.cell import Evaluator
from netpolcheck.model.engine import ExpectedMatrix
from netpolcheck.model.profiles import PROFILES
from netpolcheck.model.reasons import ReasonWriter
from netpolcheck.model.results import expected_results
from netpolcheck.model.state import State, parse_state

RESULTS = Path(__file__).resolve().parent / "results" / "bench_model.json"
NAMESPACES = 20
APPS = 40
BASELINE_FULL_UP_TO = 250
BASELINE_SAMPLE = 20_000


def synthetic_state(pods: int, policies: int, seed: int = 1) -> dict[str, Any]:
    """A deterministic cluster: `pods` pods over 20 namespaces, `policies` policies of mixed shapes."""
    rnd = random.Random(seed)
    namespaces = [
        {"name": f"ns{i}", "labels": {"team": f"t{i % 5}", "env": rnd.choice(["prod", "dev"])}}
        for i in range(NAMESPACES)
    ]
    pod_docs = [
        {
            "namespace": f"ns{i % NAMESPACES}",
            "name": f"p{i}",
            "labels": {
                "app": f"a{rnd.randrange(APPS)}",
                "tier": rnd.choice(["web", "api", "db"]),
                "role": rnd.choice(["client", "server"]),
            },
            "ip": f"10.{32 + i // 65536}.{i // 256 % 256}.{i % 256}",
            "node": f"n{i % 8}",
            "ports": [{"name": "http", "containerPort": 80}],
        }
        for i in range(pods)
    ]

    def selector() -> dict[str, Any]:
        shape = rnd.randrange(4)
        if shape == 0:
            return {"matchLabels": {"app": f"a{rnd.randrange(APPS)}"}}
        if shape == 1:
            return {"matchLabels": {"tier": rnd.choice(["web", "api", "db"])}}
        if shape == 2:
            return {
                "matchExpressions": [
                    {
                        "key": "app",
                        "operator": "In",
                        "values": [f"a{rnd.randrange(APPS)}", f"a{rnd.randrange(APPS)}"],
                    }
                ]
            }
        return {"matchExpressions": [{"key": "role", "operator": "NotIn", "values": ["client"]}]}

    def peer() -> dict[str, Any]:
        shape = rnd.randrange(4)
        if shape == 0:
            return {"podSelector": selector()}
        if shape == 1:
            return {"namespaceSelector": {"matchLabels": {"team": f"t{rnd.randrange(5)}"}}}
        if shape == 2:
            return {"namespaceSelector": {"matchLabels": {"env": "prod"}}, "podSelector": selector()}
        return {"ipBlock": {"cidr": "10.32.0.0/16", "except": [f"10.32.{rnd.randrange(4)}.0/24"]}}

    def port() -> dict[str, Any]:
        return rnd.choice([{"port": 80}, {"port": "http"}, {"port": 79, "endPort": 81}, {"protocol": "TCP"}])

    policy_docs = []
    for i in range(policies):
        spec: dict[str, Any] = {
            "podSelector": selector() if i % 10 else {},
            "ingress": [
                {"from": [peer() for _ in range(rnd.randint(1, 2))], "ports": [port()]}
                for _ in range(rnd.randint(0, 2))
            ],
        }
        if i % 4 == 0:
            spec["egress"] = [{"to": [peer()], "ports": [port()]}]
            spec["policyTypes"] = ["Ingress", "Egress"]
        policy_docs.append(
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": {"name": f"np{i}", "namespace": f"ns{i % NAMESPACES}"},
                "spec": spec,
            }
        )
    return {
        "namespaces": namespaces,
        "pods": pod_docs,
        "policies": policy_docs,
        "probes": [{"port": 80, "protocol": "TCP"}],
    }


def time_engine(state: State, repeats: int) -> tuple[float, ExpectedMatrix]:
    best, matrix = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        matrix = ExpectedMatrix(state, PROFILES["spec"])
        best = min(best, time.perf_counter() - start)
    assert matrix is not None
    return best, matrix


def time_baseline(state: State, matrix: ExpectedMatrix, rnd: random.Random) -> tuple[float, int, bool]:
    """Seconds for the naive per-pair evaluation of every cell (measured, or extrapolated from a sample)."""
    endpoints, probe = state.endpoints, state.probes[0]
    n = len(endpoints)
    pairs = [(s, d) for s in range(n) for d in range(n) if s != d]
    full = n <= BASELINE_FULL_UP_TO
    sample = pairs if full else rnd.sample(pairs, BASELINE_SAMPLE)
    start = time.perf_counter()
    evaluator = Evaluator(state, PROFILES["spec"], memoise=False)
    verdicts = [evaluator.cell(endpoints[s], endpoints[d], probe) for s, d in sample]
    elapsed = time.perf_counter() - start
    for (s, d), verdict in zip(sample, verdicts, strict=True):
        assert verdict is not None
        if verdict.allowed != bool(matrix.probes[0].allowed[s] >> d & 1):
            raise SystemExit(f"engine and baseline disagree on {verdict.source} -> {verdict.destination}")
    return (elapsed if full else elapsed * len(pairs) / len(sample)), len(sample), full


def time_reasons(matrix: ExpectedMatrix, rnd: random.Random, count: int = 20000) -> float:
    """Microseconds per cell to write the `reason` of a cell from the bitsets (as `expect` does)."""
    n = len(matrix.keys)
    cells = [(s, d) for s, d in ((rnd.randrange(n), rnd.randrange(n)) for _ in range(count)) if s != d]
    start = time.perf_counter()
    writer = ReasonWriter(matrix)
    for s, d in cells:
        writer.reason(s, d, 0)
    return (time.perf_counter() - start) / len(cells) * 1e6


def time_document(state: State, limit: int) -> float | None:
    """Seconds for the whole `expect` JSON document (every reason, weave-2.8.1), for small states."""
    if len(state.endpoints) > limit:
        return None
    start = time.perf_counter()
    document = expected_results(state, PROFILES["weave-2.8.1"])
    elapsed = time.perf_counter() - start
    assert len(document["results"]) == len(state.endpoints) * (len(state.endpoints) - 1)
    return elapsed


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="only 100 and 250 pods, one repeat")
    args = parser.parse_args(argv)
    sizes = (100, 250) if args.quick else (100, 250, 500, 1000)
    repeats = 1 if args.quick else 3
    policies = 500
    rnd = random.Random(7)
    rows: list[dict[str, Any]] = []
    print(
        f"{'pods':>5} {'policies':>8} {'cells':>9} {'allowed':>8} {'parse s':>8} {'engine s':>9} "
        f"{'baseline s':>11} {'baseline':>13} {'speed-up':>9} {'reason us/cell':>15} {'JSON s':>7}"
    )
    for pods in sizes:
        doc = synthetic_state(pods, policies)
        start = time.perf_counter()
        state = parse_state(doc)
        parse_s = time.perf_counter() - start
        engine_s, matrix = time_engine(state, repeats)
        baseline_s, sampled, full = time_baseline(state, matrix, rnd)
        reason_us = time_reasons(matrix, rnd)
        document_s = time_document(state, limit=500)
        row = {
            "pods": pods,
            "policies": policies,
            "cells": pods * (pods - 1),
            "allowed": matrix.count_allowed(),
            "parse_s": round(parse_s, 4),
            "engine_s": round(engine_s, 4),
            "baseline_s": round(baseline_s, 3),
            "baseline_measured": "full" if full else f"extrapolated from {sampled} cells",
            "speedup": round(baseline_s / engine_s, 1),
            "reason_us_per_cell": round(reason_us, 1),
            "expect_json_weave_2_8_1_s": None if document_s is None else round(document_s, 3),
        }
        rows.append(row)
        print(
            f"{pods:>5} {policies:>8} {row['cells']:>9} {row['allowed']:>8} {parse_s:>8.3f} {engine_s:>9.3f} "
            f"{baseline_s:>11.2f} {'full' if full else 'extrapolated':>13} {row['speedup']:>8}x "
            f"{reason_us:>15.1f} {'-' if document_s is None else f'{document_s:.2f}':>7}"
        )
    goal = next((r for r in rows if r["pods"] == 1000), None)
    if goal is not None:
        verdict = "met" if goal["engine_s"] + goal["parse_s"] <= 5.0 else "MISSED"
        print(f"goal (<= 5 s for 1,000 pods incl. parsing, one core): {verdict}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "benchmark": "bench_model",
                "python": platform.python_version(),
                "machine": platform.machine(),
                "processor_count_used": 1,
                "profile": "spec",
                "probe": "TCP/80",
                "method": f"engine: best of {repeats}; baseline: per-cell evaluator over every ordered pair",
                "rows": rows,
            },
            indent=1,
        )
        + "\n"
    )
    print(f"wrote {RESULTS.relative_to(Path.cwd()) if RESULTS.is_relative_to(Path.cwd()) else RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
