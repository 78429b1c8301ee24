"""Benchmark: the full expected matrix for up to 1,000 pods and 500 policies on one port.

Measures three things per size, each against a baseline in the same run: the verdicts (the indexed
engine vs a naive per-pair evaluation, which must agree), the verdicts with every cell's `reason` in
memory (`RowReasons` vs the per-cell `ReasonWriter`; a sample of cells is checked against both it and
the per-cell evaluator), and the whole `netpolcheck expect` command writing its JSON (spec and
weave-2.8.1). The naive baseline is timed over every pair up to 250 pods and over a random sample
above that (its per-cell cost is flat, so the full time is extrapolated and labelled so). One process
(the command runs in a child process, one at a time).
Run: `.venv/bin/python benchmarks/bench_model.py [--quick]`.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from netpolcheck.model.cell import Evaluator
from netpolcheck.model.engine import ExpectedMatrix
from netpolcheck.model.profiles import PROFILES
from netpolcheck.model.reasons import ReasonWriter, RowReasons
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


def time_reasons_per_cell(matrix: ExpectedMatrix, rnd: random.Random, count: int = 20000) -> float:
    """Baseline: microseconds per cell for the per-cell `ReasonWriter` (a few bit tests per cell)."""
    n = len(matrix.keys)
    cells = [(s, d) for s, d in ((rnd.randrange(n), rnd.randrange(n)) for _ in range(count)) if s != d]
    start = time.perf_counter()
    writer = ReasonWriter(matrix)
    for s, d in cells:
        writer.reason(s, d, 0)
    return (time.perf_counter() - start) / len(cells) * 1e6


def time_all_reasons(state: State, repeats: int) -> tuple[float, float, list[list[str]], ExpectedMatrix]:
    """Best seconds for (engine + every reason in memory) and for the reasons alone (`RowReasons`)."""
    best_total = best_reasons = float("inf")
    rows: list[list[str]] = []
    matrix = None
    for _ in range(repeats):
        start = time.perf_counter()
        matrix = ExpectedMatrix(state, PROFILES["spec"])
        middle = time.perf_counter()
        writer = RowReasons(matrix)
        rows = [writer.row(s, 0) for s in range(len(matrix.keys))]
        end = time.perf_counter()
        best_total, best_reasons = min(best_total, end - start), min(best_reasons, end - middle)
    assert matrix is not None
    return best_total, best_reasons, rows, matrix


def check_reasons(
    matrix: ExpectedMatrix, rows: list[list[str]], rnd: random.Random, count: int = 3000
) -> int:
    """The row reasons, the per-cell writer and the evaluator must agree (sampled); returns cells checked."""
    n, writer = len(matrix.keys), ReasonWriter(matrix)
    evaluator, endpoints, probe = (
        Evaluator(matrix.state, matrix.profile),
        matrix.state.endpoints,
        matrix.probes[0].probe,
    )
    checked = 0
    for s, d in ((rnd.randrange(n), rnd.randrange(n)) for _ in range(count)):
        if s == d:
            continue
        verdict = evaluator.cell(endpoints[s], endpoints[d], probe)
        assert verdict is not None
        expected = verdict.reason
        if not rows[s][d] == writer.reason(s, d, 0) == expected:
            raise SystemExit(f"reasons disagree on {matrix.keys[s]} -> {matrix.keys[d]}: {rows[s][d]!r}")
        checked += 1
    return checked


# runs the command and then prints its peak resident memory (VmHWM, kB; unlike ru_maxrss it is not
# inherited from the forking parent)
COMMAND = (
    "import sys\n"
    "from netpolcheck.cli import main\n"
    "code = main(sys.argv[1:])\n"
    "sys.stdout.flush()\n"
    "status = open('/proc/self/status').read().split('VmHWM:')[1].split()[0]\n"
    "print(status, file=sys.stderr)\n"
    "sys.exit(code)\n"
)


def time_command(doc: dict[str, Any], profile: str, workdir: Path) -> dict[str, Any]:
    """Wall seconds, output size and peak memory of `netpolcheck expect STATE --profile P > out.json`."""
    state_path, out_path = workdir / "state.json", workdir / "out.json"
    state_path.write_text(json.dumps(doc))
    start = time.perf_counter()
    with out_path.open("w") as out:
        proc = subprocess.run(
            [sys.executable, "-c", COMMAND, "expect", str(state_path), "--profile", profile],
            stdout=out,
            stderr=subprocess.PIPE,
            text=True,
            timeout=600,
            check=False,
        )
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"expect failed: {proc.stderr}")
    with out_path.open() as produced:
        results = sum(1 for _ in produced) - 2
    size = out_path.stat().st_size
    out_path.unlink()
    return {
        "seconds": round(elapsed, 2),
        "results": results,
        "mb": round(size / 1e6, 1),
        "peak_rss_mb": round(int(proc.stderr.split()[-1]) / 1024, 1),
    }


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
        f"{'pods':>5} {'cells':>7} {'allowed':>7} {'parse':>6} {'verdicts':>8} {'naive':>7} "
        f"{'reasons':>7} {'v+r':>6} {'per-cell r':>10} {'expect spec':>11} {'expect 2.8.1':>12} "
        f"{'MB':>6} {'RSS MB':>6}"
    )
    with tempfile.TemporaryDirectory(prefix="bench-model-") as tmp:
        for pods in sizes:
            doc = synthetic_state(pods, policies)
            start = time.perf_counter()
            state = parse_state(doc)
            parse_s = time.perf_counter() - start
            engine_s, matrix = time_engine(state, repeats)
            baseline_s, sampled, full = time_baseline(state, matrix, rnd)
            total_s, reasons_s, reason_rows, matrix = time_all_reasons(state, repeats)
            checked = check_reasons(matrix, reason_rows, rnd)
            del reason_rows
            per_cell_us = time_reasons_per_cell(matrix, rnd)
            cells = pods * (pods - 1)
            spec_cmd = time_command(doc, "spec", Path(tmp))
            weave_cmd = time_command(doc, "weave-2.8.1", Path(tmp))
            assert spec_cmd["results"] == weave_cmd["results"] == cells
            row = {
                "pods": pods,
                "policies": policies,
                "cells": cells,
                "allowed": matrix.count_allowed(),
                "parse_s": round(parse_s, 4),
                "engine_s": round(engine_s, 4),
                "baseline_s": round(baseline_s, 3),
                "baseline_measured": "full" if full else f"extrapolated from {sampled} cells",
                "speedup": round(baseline_s / engine_s, 1),
                "reasons_s": round(reasons_s, 3),
                "verdicts_and_reasons_s": round(parse_s + total_s, 3),
                "reasons_checked_cells": checked,
                "per_cell_reason_us": round(per_cell_us, 1),
                "per_cell_reasons_extrapolated_s": round(per_cell_us * cells / 1e6, 2),
                "expect_spec": spec_cmd,
                "expect_weave_2_8_1": weave_cmd,
            }
            rows.append(row)
            print(
                f"{pods:>5} {cells:>7} {row['allowed']:>7} {parse_s:>6.3f} {engine_s:>8.3f} "
                f"{baseline_s:>7.1f} {reasons_s:>7.3f} {parse_s + total_s:>6.3f} "
                f"{row['per_cell_reasons_extrapolated_s']:>10.2f} {spec_cmd['seconds']:>11.2f} "
                f"{weave_cmd['seconds']:>12.2f} {weave_cmd['mb']:>6.1f} {weave_cmd['peak_rss_mb']:>6.1f}"
            )
    print(
        "seconds; verdicts = engine (best of repeats), naive = per-pair evaluator "
        "(extrapolated above 250 pods), "
        "reasons = RowReasons for every cell, v+r = parse + verdicts + every reason in memory, "
        "per-cell r = ReasonWriter per cell (extrapolated), expect = the whole command writing JSON"
    )
    goal = next((r for r in rows if r["pods"] == 1000), None)
    if goal is not None:
        for name, seconds in (
            ("verdicts only (parse + engine)", goal["parse_s"] + goal["engine_s"]),
            ("verdicts + every reason in memory", goal["verdicts_and_reasons_s"]),
            ("whole `expect` command, spec, JSON", goal["expect_spec"]["seconds"]),
            ("whole `expect` command, weave-2.8.1, JSON", goal["expect_weave_2_8_1"]["seconds"]),
        ):
            print(
                f"goal <= 5 s for 1,000 pods, {name}: {seconds:.2f} s, {'met' if seconds <= 5 else 'MISSED'}"
            )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "benchmark": "bench_model",
                "python": platform.python_version(),
                "machine": platform.machine(),
                "processor_count_used": 1,
                "profile": "spec (expect also weave-2.8.1)",
                "probe": "TCP/80",
                "method": (
                    f"engine and engine+reasons: best of {repeats}; naive baseline: per-cell evaluator over "
                    "every ordered pair (sampled above 250 pods); per-cell reason baseline: ReasonWriter on "
                    "20,000 random cells, extrapolated; expect: one run of the command in a subprocess, "
                    "stdout to a file, wall time, peak RSS of that process"
                ),
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
