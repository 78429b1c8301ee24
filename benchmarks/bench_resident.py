"""A probe round through the resident agent vs a one-shot agent per exec, and convergence, on the
embedded cluster.

Run as root from the repository root: `python benchmarks/bench_resident.py` (set
NETPOLCHECK_HOLLOW_POD_CIDR to a free range). In one run, on one embedded cluster (3 nodes, Weave 2.8.1
with the reference controller):

1. Round cost: the 3 x 3 topology (9 probe pods), each pod probing the 8 others on TCP and UDP 80 and
   81 (32 targets a request, every cell allowed); a round = one request per source pod, all 9 at once,
   with the embedded cluster's short window (0.3 s). Rounds alternate between three ways, so all see
   the same load: the resident agent (started with the pod, scapy already imported) asked through the
   relay (what the engine does: `python -I -S -c` with relay.py's code) and through `python -m
   netpolcheck.probe ask`, and the one-shot `probe` (a new interpreter importing scapy per exec).
   Reports the median round wall and per-request wall each way and their ratios; and, as floors, the
   median round of a bare exec (`true`) and of an interpreter's start with and without site-packages
   (`python -c pass`, `python -I -S -c pass`) in the same 9 pods.
2. Convergence: the four cases of suites/test_changes.py through the engine (staggered watches in the
   resident agents: a fresh attempt toward every cell every 10 ms), each check's bracket
   [lower_ms, ms] and its resolution (ms - lower_ms); the check after case set-up (no step) is
   reported apart.

Prints a summary and writes benchmarks/results/bench_resident.json. Timing is never asserted.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from netpolcheck.kube import execing, namespaces  # noqa: E402
from netpolcheck.kube.probepods import DEFAULT_PROBE_IMAGE  # noqa: E402
from netpolcheck.kube.provisioners import ClusterOptions, provision  # noqa: E402
from netpolcheck.verdict.driver import PodSpec  # noqa: E402
from netpolcheck.verdict.kubedriver import KubeDriver  # noqa: E402
from netpolcheck.verdict.runner import CaseRunner, RunOptions  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "bench_resident.json"
WINDOW = 0.3
PODS = [(ns, pod) for ns in ("x", "y", "z") for pod in ("a", "b", "c")]


WAYS = ("relay", "ask", "oneShot")


def round_trip(
    driver: KubeDriver, prefix: str, targets: dict[str, list[dict[str, Any]]], way: str
) -> dict[str, Any]:
    """One round: a request per source pod, all at once; wall of the round and of each request."""
    options = ["--timeout", str(WINDOW), "--retries", "7"]

    def one(source: str) -> tuple[float, list[dict[str, Any]]]:
        namespace, _, pod = source.partition("/")
        start = time.monotonic()
        if way == "relay":  # what the engine does (netpolcheck/probe/relay.py)
            results = driver.probe(namespace, pod, targets[source], WINDOW)
        elif way == "ask":  # the resident agent through `python -m netpolcheck.probe ask`
            command = [*execing.AGENT, "ask", "--op", "probe", *options]
            with driver.exec_client() as api:
                done = execing.exec_in(api, (namespace, pod), command, json.dumps(targets[source]))
            results = json.loads(done.check("ask").stdout)["results"]
        else:
            with driver.exec_client() as api:
                results = execing.one_shot(api, (namespace, pod), targets[source], options, WINDOW, None)
        return time.monotonic() - start, results

    start = time.monotonic()
    with ThreadPoolExecutor(len(targets)) as pool:
        answers = list(pool.map(one, targets))
    wall = time.monotonic() - start
    verdicts = [r["verdict"] for _, results in answers for r in results]
    agents = {str(r.get("agent", "one-shot")) for _, results in answers for r in results}
    return {
        "wallS": wall,
        "requestS": [s for s, _ in answers],
        "allowed": verdicts.count("allowed"),
        "probes": len(verdicts),
        "agents": sorted(agents),
    }


# what an exec round costs before any request: the exec itself, and an interpreter's start with and
# without its site-packages (what the relay saves over `ask`)
FLOORS = {
    "true": ["true"],
    "pythonPass": ["python", "-c", "pass"],
    "pythonIsolatedNoSitePass": ["python", "-I", "-S", "-c", "pass"],
}


def floor_round(driver: KubeDriver, sources: list[str], command: list[str]) -> float:
    def one(source: str) -> None:
        namespace, _, pod = source.partition("/")
        with driver.exec_client() as api:
            execing.exec_in(api, (namespace, pod), command).check(" ".join(command))

    start = time.monotonic()
    with ThreadPoolExecutor(len(sources)) as pool:
        list(pool.map(one, sources))
    return time.monotonic() - start


def round_costs(driver: KubeDriver, rounds: int) -> dict[str, Any]:
    prefix = f"bench-{os.getpid()}"
    for ns in ("x", "y", "z"):
        driver.create_namespace(f"{prefix}-{ns}", {"ns": ns})
    nodes = driver.info().nodes
    driver.create_pods(
        [
            PodSpec(f"{prefix}-{ns}", pod, {"pod": pod}, nodes[i % len(nodes)])
            for i, (ns, pod) in enumerate(PODS)
        ]
    )
    ips = {
        f"{p['namespace']}/{p['name']}": str(p["ip"])
        for p in driver.snapshot([f"{prefix}-{ns}" for ns in ("x", "y", "z")])["pods"]
    }
    targets = {
        source: [
            {"id": f"{dest}/{proto}/{port}", "ip": ip, "port": port, "protocol": proto}
            for dest, ip in ips.items()
            if dest != source
            for proto in ("TCP", "UDP")
            for port in (80, 81)
        ]
        for source in ips
    }
    samples: dict[str, list[dict[str, Any]]] = {way: [] for way in WAYS}
    round_trip(driver, prefix, targets, "relay")  # warm: the exec clients, the agents' first request
    for _ in range(rounds):  # interleaved: every way sees the same load
        for way in WAYS:
            samples[way].append(round_trip(driver, prefix, targets, way))

    def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "roundMedianS": round(statistics.median(r["wallS"] for r in rows), 3),
            "roundsS": [round(r["wallS"], 3) for r in rows],
            "requestMedianS": round(statistics.median(s for r in rows for s in r["requestS"]), 3),
            "allowed": sum(r["allowed"] for r in rows),
            "probes": sum(r["probes"] for r in rows),
            "agents": sorted({a for r in rows for a in r["agents"]}),
        }

    relay, asked, one_shot = (summary(samples[way]) for way in WAYS)
    floors: dict[str, list[float]] = {name: [] for name in FLOORS}
    for _ in range(rounds):
        for name, command in FLOORS.items():
            floors[name].append(floor_round(driver, list(targets), command))
    return {
        "floorRoundMedianS": {name: round(statistics.median(v), 3) for name, v in floors.items()},
        "window": WINDOW,
        "sources": len(targets),
        "targetsPerRequest": len(next(iter(targets.values()))),
        "relay": relay,
        "ask": asked,
        "oneShot": one_shot,
        "roundRatio": round(one_shot["roundMedianS"] / relay["roundMedianS"], 2),
        "requestRatio": round(one_shot["requestMedianS"] / relay["requestMedianS"], 2),
        "askOverRelayRound": round(asked["roundMedianS"] / relay["roundMedianS"], 2),
    }


def convergence(driver: KubeDriver) -> dict[str, Any]:
    from suites.test_changes import CASES

    options = RunOptions(profile="weave", probe_timeout=WINDOW, quick_timeout=0.05, deadline=15.0)
    checks: list[dict[str, Any]] = []
    for case in CASES:
        result = CaseRunner(driver, options).run(case)
        for check in result.checks:
            cv = check.convergence
            checks.append(
                {
                    "case": case.id,
                    "step": check.step_index,
                    "what": check.step,
                    "status": check.status.value,
                    "method": cv.method,
                    "ms": None if cv.ms is None else round(cv.ms, 1),
                    "lowerMs": round(cv.lower_ms, 1),
                    "resolutionMs": None if cv.resolution_ms is None else round(cv.resolution_ms, 1),
                    "probes": cv.probes,
                    "waitedMs": round(cv.waited_ms),
                }
            )
    steps = [c for c in checks if c["step"] > 0 and c["ms"] is not None]

    def median(field: str, rows: list[dict[str, Any]]) -> float | None:
        values = [r[field] for r in rows if r[field] is not None]
        return round(statistics.median(values), 1) if values else None

    return {
        "checks": checks,
        "afterStep": {
            "count": len(steps),
            "medianMs": median("ms", steps),
            "medianLowerMs": median("lowerMs", steps),
            "medianResolutionMs": median("resolutionMs", steps),
            "maxResolutionMs": max((r["resolutionMs"] for r in steps), default=None),
        },
    }


def with_cluster(work: Path, body: Callable[[KubeDriver], dict[str, Any]]) -> dict[str, Any]:
    options = ClusterOptions(kind="hollow", pod_cidr=os.environ.get("NETPOLCHECK_HOLLOW_POD_CIDR") or None)
    cluster = provision(dataclasses.replace(options, work_dir=work / "cluster"))
    try:
        api = cluster.api()
        run = namespaces.Run()
        driver = KubeDriver(api, "hollow", run, probe_image=DEFAULT_PROBE_IMAGE)
        try:
            return body(driver)
        finally:
            driver.close()
            namespaces.cleanup(api, run)
            api.close()
    finally:
        cluster.cleanup()


def main() -> None:
    # SIGTERM as Ctrl-C: the `finally` blocks still take the embedded cluster down
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds each way (default 5)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("bench_resident: run as root (the embedded cluster needs it)")
    load_before = os.getloadavg()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    with tempfile.TemporaryDirectory(prefix="bench-resident-") as tmp:
        document = with_cluster(
            Path(tmp),
            lambda driver: {"rounds": round_costs(driver, args.rounds), "convergence": convergence(driver)},
        )
    document["machine"] = {
        "started": started,
        "cpus": os.cpu_count(),
        "load1Before": round(load_before[0], 1),
        "load1After": round(os.getloadavg()[0], 1),
    }
    RESULTS.write_text(json.dumps(document, indent=1) + "\n")
    rounds, conv = document["rounds"], document["convergence"]["afterStep"]
    print(
        f"round of {rounds['sources']} x {rounds['targetsPerRequest']} probes: resident through the relay "
        f"{rounds['relay']['roundMedianS']} s, through ask {rounds['ask']['roundMedianS']} s "
        f"(x{rounds['askOverRelayRound']}), one-shot {rounds['oneShot']['roundMedianS']} s "
        f"(x{rounds['roundRatio']}); per request {rounds['relay']['requestMedianS']} s vs "
        f"{rounds['oneShot']['requestMedianS']} s (x{rounds['requestRatio']})"
    )
    print(f"exec rounds before any request (medians, s): {rounds['floorRoundMedianS']}")
    print(
        f"convergence after a step ({conv['count']} checks): median {conv['medianMs']} ms "
        f"(lower {conv['medianLowerMs']} ms), resolution median {conv['medianResolutionMs']} ms, "
        f"max {conv['maxResolutionMs']} ms"
    )
    print(f"load average {document['machine']['load1Before']} -> {document['machine']['load1After']}")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
