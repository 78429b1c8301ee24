"""The whole conformance suite on the embedded cluster, and a few cases probed the upstream way.

Run as root from the repository root: `python benchmarks/bench_suite.py` (set
NETPOLCHECK_HOLLOW_POD_CIDR when Weave's default range is taken on the machine). In one run it:

1. runs `python -m pytest suites --cluster hollow` (tox.ini's hollow environment) and times it, wall
   clock; per case, the test's time from the JUnit XML and its status from the certification report;
2. brings up one more embedded cluster and runs a subset of catalog cases (TCP/80 only, to bound the
   upstream way's cost) twice each:
   - the engine's way: resident agents, a short window, watches and settling; once on a topology
     reused from the case before (as in the suite: `engineS`, the pool warmed by one unreported run of
     the first case) and once on a topology of its own (`engineFreshS`);
   - the upstream way (what the Kubernetes e2e netpol tests do with agnhost): one exec per cell with a
     1 s connect window and a single attempt, 3 execs at a time over the whole matrix, the matrix
     re-polled until it matches, 10 s bound after each step;
   and reports each case's wall time both ways and their ratio (set-up, steps and clean-up included:
   the same in both), plus the checks' own time (probing until the matrix matched).

Prints a table and writes benchmarks/results/bench_suite.json. Timing is never asserted.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from netpolcheck.kube import execing, namespaces  # noqa: E402
from netpolcheck.kube.probepods import DEFAULT_PROBE_IMAGE  # noqa: E402
from netpolcheck.kube.provisioners import ClusterOptions, provision  # noqa: E402
from netpolcheck.verdict import case as c  # noqa: E402
from netpolcheck.verdict.driver import ProbeResult, ProbeTarget  # noqa: E402
from netpolcheck.verdict.kubedriver import KubeDriver  # noqa: E402
from netpolcheck.verdict.pool import TopologyPool  # noqa: E402
from netpolcheck.verdict.results import CaseResult  # noqa: E402
from netpolcheck.verdict.runner import CaseRunner, RunOptions, delete_topologies  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "bench_suite.json"
RESIDENT_ONLY = frozenset({"shared_clock", "watch", "settle", "stop_watch", "timeline"})
UPSTREAM_TIMEOUT = 1.0
UPSTREAM_WORKERS = 3
UPSTREAM_DEADLINE = 10.0
SUBSET = (
    "suites.test_ingress:deny-all-ingress-isolates-every-pod-of-the-namespace",
    "suites.test_ingress:pod-selector-allows-only-labelled-pods-of-the-same-namespace",
    "suites.test_egress:egress-deny-all-isolates-every-pod-of-the-namespace",
)


class UpstreamDriver:
    """The engine's driver with the upstream way of probing: one exec per cell, 1 s, 3 at a time."""

    def __init__(self, inner: KubeDriver) -> None:
        self.inner = inner
        self.pool = ThreadPoolExecutor(UPSTREAM_WORKERS, thread_name_prefix="upstream")
        self.execs = 0
        self.lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        if name in RESIDENT_ONLY:  # the upstream way has no resident agent: the engine probes in rounds
            raise AttributeError(name)
        return getattr(self.inner, name)

    def _one(self, namespace: str, pod: str, target: ProbeTarget) -> ProbeResult:
        with self.lock:
            self.execs += 1
        # the agent as a one-shot connect: a single attempt within a 1 s window, like agnhost connect (a
        # fresh process per cell, as upstream execs one; the resident agent is not used)
        options = ["--timeout", str(UPSTREAM_TIMEOUT), "--retries", "0"]
        with self.inner.exec_client() as api:
            return execing.one_shot(api, (namespace, pod), [target], options, UPSTREAM_TIMEOUT, None)[0]

    def probe(
        self, namespace: str, pod: str, targets: Sequence[ProbeTarget], timeout: float
    ) -> list[ProbeResult]:
        futures = [self.pool.submit(self._one, namespace, pod, t) for t in targets]
        return [f.result() for f in futures]

    def close(self) -> None:
        self.pool.shutdown(wait=True)


def run_suite(work: Path, extra: list[str]) -> dict[str, Any]:
    junit, report = work / "junit.xml", work / "certification.json"
    command = [
        sys.executable,
        "-m",
        "pytest",
        "suites",
        "--cluster",
        "hollow",
        "-q",
        "-p",
        "no:cacheprovider",
    ]
    command += [f"--junitxml={junit}", "--report-json", str(report), *extra]
    print("suite:", " ".join(command), flush=True)
    start = time.monotonic()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    wall = time.monotonic() - start
    tail = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr[-300:]
    cases: list[dict[str, Any]] = []
    for case in ET.parse(junit).getroot().iter("testcase"):
        outcome = "passed"
        for child, name in (("failure", "failed"), ("error", "error"), ("skipped", "skipped")):
            found = case.find(child)
            if found is not None:
                outcome = "xfailed" if name == "skipped" and found.get("type") == "pytest.xfail" else name
        cases.append(
            {
                "test": f"{case.get('classname')}::{case.get('name')}",
                "s": float(case.get("time", 0)),
                "outcome": outcome,
            }
        )
    document = json.loads(report.read_text()) if report.exists() else None
    return {
        "command": " ".join(command[1:]),
        "exitCode": done.returncode,
        "wallS": round(wall, 1),
        "pytestSummary": tail,
        "tests": len(cases),
        "reportResult": document["result"] if document else None,
        "reportCounts": document["summary"]["counts"] if document else None,
        "sumOfTestTimesS": round(sum(x["s"] for x in cases), 1),
        "cases": sorted(cases, key=lambda x: -x["s"]),
    }


def load_case(ref: str) -> c.Case:
    module_name, case_id = ref.split(":")
    module = __import__(module_name, fromlist=["_"])
    for value in vars(module).values():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, c.Case) and item.id == case_id:
                return dataclasses.replace(item, probes=(c.ProbeDef(80, "TCP"),))
    raise SystemExit(f"bench_suite: no case {ref}")


def timed(runner: CaseRunner, case: c.Case) -> tuple[float, CaseResult]:
    start = time.monotonic()
    result = runner.run(case)
    return time.monotonic() - start, result


def check_seconds(result: CaseResult) -> float:
    return sum(x.convergence.waited_ms for x in result.checks) / 1000


def run_subset(work: Path, refs: Sequence[str]) -> list[dict[str, Any]]:
    options = ClusterOptions(kind="hollow", pod_cidr=os.environ.get("NETPOLCHECK_HOLLOW_POD_CIDR") or None)
    cluster = provision(dataclasses.replace(options, work_dir=work / "cluster"))
    rows = []
    try:
        api = cluster.api()
        run = namespaces.Run()
        driver = KubeDriver(api, "hollow", run, probe_image=DEFAULT_PROBE_IMAGE)
        upstream = UpstreamDriver(driver)
        engine_options = RunOptions(profile="weave", probe_timeout=0.3, quick_timeout=0.05, deadline=15.0)
        upstream_options = RunOptions(
            profile="weave",
            probe_timeout=UPSTREAM_TIMEOUT,
            quick_timeout=UPSTREAM_TIMEOUT,
            deadline=UPSTREAM_DEADLINE,
            probe_workers=UPSTREAM_WORKERS,
        )
        pool = TopologyPool()
        try:
            # as in the suite, where the case before hands its topology back: warm the pool with one
            # unreported run of the first case
            CaseRunner(driver, engine_options, pool=pool).run(load_case(refs[0]))
            for ref in refs:
                case = load_case(ref)
                fresh_s, fresh = timed(CaseRunner(driver, engine_options), case)
                engine_s, engine = timed(CaseRunner(driver, engine_options, pool=pool), case)
                before = upstream.execs
                upstream_s, slow = timed(CaseRunner(upstream, upstream_options), case)
                row = {
                    "case": case.id,
                    "cells": sum(len(x.comparison.cells) for x in engine.checks),
                    "engineS": round(engine_s, 2),
                    "engineStatus": engine.status.value,
                    "engineChecksS": round(check_seconds(engine), 2),
                    "engineFreshS": round(fresh_s, 2),
                    "engineFreshStatus": fresh.status.value,
                    "freshRatio": round(upstream_s / fresh_s, 1),
                    "upstreamS": round(upstream_s, 2),
                    "upstreamStatus": slow.status.value,
                    "upstreamChecksS": round(check_seconds(slow), 2),
                    "upstreamExecs": upstream.execs - before,
                    "ratio": round(upstream_s / engine_s, 1),
                    "checksRatio": round(check_seconds(slow) / max(check_seconds(engine), 1e-3), 1),
                }
                print(json.dumps(row), flush=True)
                rows.append(row)
        finally:
            delete_topologies(driver, pool.drain())
            upstream.close()
            driver.close()
            namespaces.cleanup(api, run)
            api.close()
    finally:
        cluster.cleanup()
    return rows


def main() -> None:
    # SIGTERM as Ctrl-C: the `finally` blocks still take the embedded cluster down
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-suite", action="store_true", help="only the upstream comparison")
    parser.add_argument("pytest_args", nargs="*", help="more pytest arguments for the suite run")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("bench_suite: run as root (the embedded cluster needs it)")
    with tempfile.TemporaryDirectory(prefix="bench-suite-") as tmp:
        work = Path(tmp)
        suite = None if args.skip_suite else run_suite(work, args.pytest_args)
        if suite:
            print(
                f"suite: {suite['wallS']} s wall, {suite['tests']} tests, {suite['pytestSummary']}",
                flush=True,
            )
        rows = run_subset(work, SUBSET)
    if suite is None and RESULTS.exists():
        suite = json.loads(RESULTS.read_text()).get("suite")
    ratios = [r["ratio"] for r in rows]
    document = {
        "machine": {
            "cpus": os.cpu_count(),
            "load1": round(os.getloadavg()[0], 1),
            "python": platform.python_version(),
        },
        "suite": suite,
        "upstream": {
            "how": "one exec of the probe agent per cell, one attempt in a 1 s window, 3 execs at a time, "
            "the matrix re-polled until it matches, 10 s bound after each step; TCP/80 only",
            "cases": rows,
            "minRatio": min(ratios) if ratios else None,
            "minFreshRatio": min((r["freshRatio"] for r in rows), default=None),
        },
    }
    RESULTS.write_text(json.dumps(document, indent=1) + "\n")
    print(f"{'case':64} {'engine s':>9} {'fresh s':>8} {'upstream s':>11} {'ratio':>6} {'fresh':>6}")
    for r in rows:
        print(
            f"{r['case']:64} {r['engineS']:9.2f} {r['engineFreshS']:8.2f} {r['upstreamS']:11.2f} "
            f"{r['ratio']:6.1f} {r['freshRatio']:6.1f}"
        )
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
