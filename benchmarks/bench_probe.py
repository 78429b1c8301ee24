"""Probe agent vs a naive upstream-style prober: 9 x 9 matrix, TCP and UDP, ports 80 and 81 (324 probes).

Run as root: `.venv/bin/python benchmarks/bench_probe.py [--agent-runs 5]`. It builds the lab from
tests/probe (9 pod namespaces on a bridge, `npcprobe-` prefix, removed at the end), then for two matrices,
"mixed" (every verdict class; see tests/probe/matrix.py) and "all-dropped" (the worst case), measures:
- baseline: one process per probe (`ip netns exec` + a Python socket connect, or a UDP send + receive,
  with a 1 s timeout), 3 in parallel, as the upstream Kubernetes e2e tests run agnhost;
- agent: one `python -m netpolcheck.probe probe` per source pod, all 9 at once, default options;
- process start: the same 9 agents each probing one open port (start + scapy + one answer).
Then, at scale ("scale" in the results): one agent probing 1, 1,000, 2,000 and 5,000 targets that are all
dropped (half TCP, half UDP, every packet dropped by the destination), under `ulimit -n 256`, reporting
wall and CPU time, the agent's peak open file descriptors, and the verdicts.
`--scale-only` runs just that part and keeps the matrix rows of the previous results file.
Prints a table and writes benchmarks/results/bench_probe.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.probe.matrix import Matrix, build_matrix  # noqa: E402
from tests.probe.netlab import AGENT, PYTHON, Lab  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "bench_probe.json"
TIMEOUT = 1.0
BASELINE_WORKERS = 3
# what a naive prober does per probe: connect (TCP) or send and wait for a reply (UDP), 1 s timeout
BASELINE_SCRIPT = """
import socket, sys
ip, port, proto, timeout = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
try:
    if proto == "TCP":
        socket.create_connection((ip, port), timeout=timeout).close()
    else:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(timeout); s.connect((ip, port))
        s.send(b"x"); s.recv(2048)
    print("allowed")
except socket.timeout:
    print("dropped")
except ConnectionRefusedError:
    print("refused")
except OSError:
    print("rejected")
"""


def baseline(matrix: Matrix) -> tuple[float, int]:
    """Wall seconds for the whole matrix, and how many cells the naive prober got right."""
    jobs = [(source, target) for source in range(len(matrix.pods)) for target in matrix.targets_for(source)]

    def one(job: tuple[int, dict[str, Any]]) -> bool:
        source, target = job
        argv = [
            "ip",
            "netns",
            "exec",
            matrix.pods[source].netns,
            PYTHON,
            "-I",
            "-S",
            "-c",
            BASELINE_SCRIPT,
            str(target["ip"]),
            str(target["port"]),
            str(target["protocol"]),
            str(TIMEOUT),
        ]
        out = subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout.strip()
        return out == matrix.expected[(source, str(target["id"]))]

    started = time.monotonic()
    with ThreadPoolExecutor(BASELINE_WORKERS) as pool:
        right = sum(pool.map(one, jobs))
    return time.monotonic() - started, right


def process_start(matrix: Matrix) -> float:
    """Wall seconds for 9 agents started at once, each with one probe that is answered at once.

    The probe goes to a closed port on the pod's own loopback (an RST, untouched by the matrix's rules),
    so this is process start + scapy import + raw sockets + one round trip: what every agent run pays.
    """
    started = time.monotonic()
    processes = [
        subprocess.Popen(
            ["ip", "netns", "exec", pod.netns, *AGENT, "probe"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for pod in matrix.pods
    ]
    with ThreadPoolExecutor(len(processes)) as pool:
        list(
            pool.map(
                lambda pp: pp[1].communicate(
                    json.dumps([{"id": "start", "ip": "127.0.0.1", "port": 9, "protocol": "TCP"}]), timeout=60
                ),
                enumerate(processes),
            )
        )
    return time.monotonic() - started


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(name: str, all_dropped: bool, agent_runs: int) -> dict[str, Any]:
    lab = Lab().start()
    journals = tempfile.TemporaryDirectory(prefix="npcprobe-bench-")
    try:
        matrix = build_matrix(lab, Path(journals.name), all_dropped=all_dropped)
        starts, walls, cpus, wrong, attempts = [], [], [], 0, 0
        for _ in range(agent_runs):  # start and matrix alternate, so both see the same machine load
            starts.append(process_start(matrix))
            cpu_before = children_cpu_seconds()
            results, wall = matrix.run()
            cpus.append(children_cpu_seconds() - cpu_before)
            walls.append(wall)
            wrong += len(matrix.wrong(results))
            attempts += sum(int(str(r["attempts"])) for r in results.values())
        cpu_before = children_cpu_seconds()
        baseline_wall, baseline_right = baseline(matrix)
        baseline_cpu = children_cpu_seconds() - cpu_before
    finally:
        lab.close()
        journals.cleanup()
    agent = statistics.median(walls)
    start = statistics.median(starts)
    return {
        "matrix": name,
        "probes": len(matrix.expected),
        "agent_wall_s": round(agent, 3),
        "agent_walls_s": [round(w, 3) for w in walls],
        "agent_cpu_s": round(statistics.median(cpus), 3),
        "agent_wrong_verdicts": wrong,
        "agent_packets_per_run": attempts // agent_runs,
        "process_start_s": round(start, 3),
        "process_starts_s": [round(s, 3) for s in starts],
        "baseline_wall_s": round(baseline_wall, 3),
        "baseline_cpu_s": round(baseline_cpu, 3),
        "baseline_right": baseline_right,
        "speedup": round(baseline_wall / agent, 1),
        "goal_speedup_20x": baseline_wall / agent >= 20,
        "goal_within_2x_timeout_plus_start": agent <= 2 * TIMEOUT + start if all_dropped else None,
    }


SCALE_COUNTS = (1, 1000, 2000, 5000)
SCALE_FD_LIMIT = 256


def limit_open_files() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (SCALE_FD_LIMIT, SCALE_FD_LIMIT))


def open_descriptors(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def scale_run(lab: Lab, source: Any, destination: Any, count: int) -> dict[str, Any]:
    """One agent, `count` dropped targets: wall and CPU seconds, peak descriptors, verdicts."""
    targets = [
        {"id": f"t{i}", "ip": destination.ip, "port": 1000 + i // 2, "protocol": "UDP" if i % 2 else "TCP"}
        for i in range(count)
    ]
    cpu_before = children_cpu_seconds()
    started = time.monotonic()
    process = subprocess.Popen(
        ["ip", "netns", "exec", source.netns, *AGENT, "probe"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=limit_open_files,
    )
    peak = [0]
    done = threading.Event()

    def sample() -> None:  # `ip netns exec` execs the agent, so this pid is the agent's
        while not done.is_set():
            peak[0] = max(peak[0], open_descriptors(process.pid))
            done.wait(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        stdout, stderr = process.communicate(json.dumps(targets), timeout=600)
    finally:
        done.set()
        sampler.join()
    wall = time.monotonic() - started
    verdicts: dict[str, int] = {}
    for result in json.loads(stdout) if process.returncode == 0 else []:
        verdicts[result["verdict"]] = verdicts.get(result["verdict"], 0) + 1
    return {
        "targets": count,
        "exit": process.returncode,
        "stderr": stderr.strip()[-300:],
        "wall_s": round(wall, 3),
        "cpu_s": round(children_cpu_seconds() - cpu_before, 3),
        "peak_open_fds": peak[0],
        "verdicts": verdicts,
    }


def measure_scale(runs: int) -> list[dict[str, Any]]:
    lab = Lab().start()
    try:
        source, destination = lab.add_pod("source"), lab.add_pod("dropper")
        for proto in ("tcp", "udp"):
            lab.iptables(destination, "-A", "INPUT", "-p", proto, "-j", "DROP")
        rows = []
        for count in SCALE_COUNTS:
            samples = [scale_run(lab, source, destination, count) for _ in range(runs)]
            walls = [r["wall_s"] for r in samples]
            middle = sorted(samples, key=lambda r: r["wall_s"])[len(samples) // 2]
            rows.append({**middle, "walls_s": walls, "runs": runs})
    finally:
        lab.close()
    single = rows[0]["wall_s"]
    for row in rows:
        row["beyond_one_target_s"] = round(row["wall_s"] - single, 3)
        row["goal_one_timeout_window"] = row["wall_s"] <= single + TIMEOUT
    return rows


def print_scale(rows: list[dict[str, Any]]) -> None:
    print(f"{'targets':>7} {'wall s':>7} {'walls':<24} {'cpu s':>6} {'peak fds':>8} {'+1 tgt s':>8} verdicts")
    for r in rows:
        walls = ",".join(f"{w:.2f}" for w in r["walls_s"])
        print(
            f"{r['targets']:>7} {r['wall_s']:>7.2f} {walls:<24} {r['cpu_s']:>6.2f} {r['peak_open_fds']:>8} "
            f"{r['beyond_one_target_s']:>8.2f} {r['verdicts']}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agent-runs", type=int, default=5, help="agent runs per matrix (median reported)")
    parser.add_argument("--scale-runs", type=int, default=3, help="runs per target count (median reported)")
    parser.add_argument("--scale-only", action="store_true", help="only the scale rows; keep the matrix rows")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench_probe: needs root (it builds network namespaces)", file=sys.stderr)
        return 2
    load_at_start = os.getloadavg()
    if args.scale_only:
        scale = measure_scale(args.scale_runs)
        print_scale(scale)
        document = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"benchmark": "bench_probe"}
        document["scale"] = scale_document(scale, load_at_start)
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(document, indent=2) + "\n")
        print(f"load average (1/5/15 min) at start {load_at_start}, at end {os.getloadavg()}")
        print(f"wrote {RESULTS.relative_to(ROOT)}")
        return 0
    rows = [measure("mixed", False, args.agent_runs), measure("all-dropped", True, args.agent_runs)]
    header = (
        f"{'matrix':<12} {'probes':>6} {'agent s':>8} {'start s':>8} {'agent cpu':>9} {'baseline s':>10} "
        f"{'base cpu':>8} {'speedup':>8} {'wrong':>5} {'baseline right':>14} {'<=2T+start':>10}"
    )
    print(header)
    for r in rows:
        within = (
            "-"
            if r["goal_within_2x_timeout_plus_start"] is None
            else str(r["goal_within_2x_timeout_plus_start"])
        )
        print(
            f"{r['matrix']:<12} {r['probes']:>6} {r['agent_wall_s']:>8.2f} {r['process_start_s']:>8.2f} "
            f"{r['agent_cpu_s']:>9.2f} {r['baseline_wall_s']:>10.2f} {r['baseline_cpu_s']:>8.2f} "
            f"{r['speedup']:>7.1f}x {r['agent_wrong_verdicts']:>5} "
            f"{r['baseline_right']:>9}/{r['probes']:<4} {within:>10}"
        )
    document = {
        "benchmark": "bench_probe",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "cpus": os.cpu_count(),
            "kernel": platform.release(),
            "load_average_at_start": load_at_start,
            "load_average_at_end": os.getloadavg(),
        },
        "timeout_s": TIMEOUT,
        "baseline": f"one process per probe, {BASELINE_WORKERS} in parallel, socket connect/recv, "
        f"{TIMEOUT} s timeout",
        "agent": "one `python -m netpolcheck.probe probe` per source pod (9 at once), "
        "default --timeout 1 --retries 7",
        "rows": rows,
    }
    scale = measure_scale(args.scale_runs)
    print_scale(scale)
    document["scale"] = scale_document(scale, load_at_start)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(document, indent=2) + "\n")
    print(f"load average (1/5/15 min) at start {load_at_start}, at end {os.getloadavg()}")
    print(f"wrote {RESULTS.relative_to(ROOT)}")
    return 0


def scale_document(rows: list[dict[str, Any]], load_at_start: tuple[float, float, float]) -> dict[str, Any]:
    return {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "load_average_at_start": load_at_start,
        "load_average_at_end": os.getloadavg(),
        "agent": f"one agent, every target dropped, default --timeout {TIMEOUT} --retries 7, "
        f"ulimit -n {SCALE_FD_LIMIT}",
        "rows": rows,
    }


if __name__ == "__main__":
    sys.exit(main())
