"""Hollow cluster timings: `hollow up` (3 nodes), 30 pods Running, `hollow down`.

Run as root: `.venv/bin/python benchmarks/bench_hollow.py [--rounds 3] [--pods 30] [--npc reference]`.
Prints a table and writes benchmarks/results/bench_hollow.json.

Baseline in the same run: the same 30 pods started sequentially (create one, wait until it is
Running and Ready, then the next), against all 30 created at once (the kubelet starts them on its
worker pool). Goals from issue #4: up within 5 s, 30 pods Running within 10 s. Also measured: deleting
the namespace of the sequential pods until every pod object is gone (graceful deletion: an object goes
only once its processes and netns are gone).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

from kubernetes import client, config

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as a script: the checkout's tests/ helpers

from netpolcheck.hollow.waits import wait_until  # noqa: E402
from tests.hollow.kubetyped import as_body, pod_ready  # noqa: E402

RESULTS = REPO / "benchmarks" / "results" / "bench_hollow.json"
POD_CIDR = "10.244.0.0/16"
SERVER = (
    "import socket\ns = socket.socket(); s.bind(('0.0.0.0', 8080)); s.listen(8); print('READY', flush=True)\n"
    "while True: s.accept()[0].close()\n"
)


def hollow(*args: str) -> float:
    start = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "netpolcheck.cli", "hollow", *args], capture_output=True, text=True, cwd=REPO
    )
    elapsed = time.monotonic() - start
    if result.returncode != 0:
        raise SystemExit(f"hollow {' '.join(args)} failed: {result.stderr}")
    return elapsed


def pod(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "image": "python:3.11", "command": ["python3", "-c", SERVER]}]},
    }


def running(core: client.CoreV1Api, namespace: str, count: int) -> bool:
    pods = core.list_namespaced_pod(namespace).items
    return len([p for p in pods if pod_ready(p)]) == count


def start_pods(
    core: client.CoreV1Api, namespace: str, count: int, sequential: bool, keep: bool = False
) -> float:
    core.create_namespace(as_body(client.V1Namespace, {"metadata": {"name": namespace}}))
    start = time.monotonic()
    for i in range(count):
        core.create_namespaced_pod(namespace, as_body(client.V1Pod, pod(f"p{i}")))
        if sequential:
            wait_until(partial(running, core, namespace, i + 1), 30, f"pod {namespace}/p{i} Running")
    wait_until(lambda: running(core, namespace, count), 60, f"{count} pods in {namespace} Running and Ready")
    elapsed = time.monotonic() - start
    if keep:
        return elapsed
    return elapsed


def delete_pods(core: client.CoreV1Api, namespace: str) -> float:
    """Delete the namespace; seconds until no pod object of it is left."""
    start = time.monotonic()
    core.delete_namespace(namespace)
    wait_until(lambda: not core.list_namespaced_pod(namespace).items, 30, f"pods of {namespace} deleted")
    return time.monotonic() - start


def one_round(pods: int, index: int, npc: str) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bench-hollow-") as tmp:
        state = Path(tmp) / "state"
        up = hollow("up", "--nodes", "3", "--state-dir", str(state), "--pod-cidr", POD_CIDR, "--npc", npc)
        try:
            api = config.new_client_from_config(str(state / "kubeconfig"))
            core = client.CoreV1Api(api)
            sequential = start_pods(core, f"bench-sequential-{index}", pods, sequential=True)
            delete = delete_pods(core, f"bench-sequential-{index}")
            # the concurrent pods stay: `down` is measured with them running
            concurrent = start_pods(core, f"bench-concurrent-{index}", pods, sequential=False, keep=True)
            api.close()
        finally:
            down = hollow("down", "--state-dir", str(state))
    return {
        "up_s": up,
        "pods_concurrent_s": concurrent,
        "pods_sequential_s": sequential,
        "delete_pods_s": delete,
        "down_s": down,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pods", type=int, default=30)
    parser.add_argument("--npc", default="reference", help="hollow up --npc (default: reference, as up's)")
    args = parser.parse_args()
    rounds = [one_round(args.pods, i, args.npc) for i in range(args.rounds)]
    keys = ["up_s", "pods_concurrent_s", "pods_sequential_s", "delete_pods_s", "down_s"]
    summary = {
        k: {"median": statistics.median(r[k] for r in rounds), "max": max(r[k] for r in rounds)} for k in keys
    }
    goals = {"up_s": 5.0, "pods_concurrent_s": 10.0}
    print(
        f"hollow cluster, 3 nodes, --npc {args.npc}, {args.pods} pods, {args.rounds} rounds "
        f"(kernel {platform.release()})"
    )
    print(f"{'measure':<22}{'median s':>10}{'max s':>10}{'goal s':>8}")
    for k in keys:
        goal = goals.get(k)
        goal_text = f"{goal:.0f}" if goal else "-"
        print(f"{k:<22}{summary[k]['median']:>10.2f}{summary[k]['max']:>10.2f}{goal_text:>8}")
    speedup = summary["pods_sequential_s"]["median"] / summary["pods_concurrent_s"]["median"]
    print(f"concurrent pod start vs sequential baseline: {speedup:.1f}x faster")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "benchmark": "bench_hollow",
                "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "machine": {"kernel": platform.release(), "cpus": __import__("os").cpu_count()},
                "nodes": 3,
                "npc": args.npc,
                "pods": args.pods,
                "rounds": rounds,
                "summary": summary,
                "goals": goals,
                "baseline": "pods_sequential_s: same pods created one at a time, each awaited Running+Ready",
                "speedup_concurrent_vs_sequential": speedup,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {RESULTS.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
