"""Time from a change being stored in the API to being enforced, seen from inside the source pod.

Method (as docs/weave-facts.md#change-latency describes it): the source pod starts a new
TCP connect (0.3 s timeout) to the witness pod every 5 ms; the latency of a change is the start time of
the first attempt that saw the new verdict minus the time the change was stored. The changes cycle
through namespace label, pod label and policy add/delete, each flipping the witness cell.

Two modes (`--cluster`):

inprocess (default, the baseline): the reference controller runs as `python -m netpolcheck.npc` in
two node namespaces, watching the project's API server (netpolcheck.hollow.api, in-process via
tests/npc/nodeapi.py) over the in-cluster client; source and witness pods are real namespaces on
different nodes (ingress decided on the witness's node). "large" = 100 pods in 10 namespaces and 50
policies (the other 98 pods exist in the API only: they load the controller's sets and rules but get
no namespace); the "small" 9-pod world is the baseline measured in the same run.

hollow: on the embedded cluster, `netpolcheck hollow up --nodes 3 --pod-cidr 10.96.0.0/12` (the
reference controller is the weave-npc container of the weave-net DaemonSet, profile 2.8.1), driven with
tests/npc/hollowkit.py (Hollow) and hollowworld.py (HollowWorld.put/delete). Every pod is a real probe
pod (`serve --tcp 80,81`) at a fixed annotation IP, spread over the 3 nodes; objects go through the
kubernetes client with the kubeconfig; the connect loop is a python script `kubectl exec`'d in the
source pod, streaming (start, verdict) per attempt. Latency is counted from the API write returning.
The 9-pod world is the baseline on the same cluster, then deleted; then the 100-pod / 50-policy world.
`hollow down` always runs at the end. The range 10.96.0.0/12 keeps clear of the default 10.32.0.0/12.

Usage (root): .venv/bin/python benchmarks/bench_npc.py [--changes 50] [--cluster inprocess|hollow]
Writes its mode's keys of benchmarks/results/bench_npc.json (the other mode's are kept) and prints a table.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from netpolcheck.hollow.api.resources import NETWORKPOLICIES  # noqa: E402
from netpolcheck.kube import fetching  # noqa: E402
from netpolcheck.npc.world import World  # noqa: E402
from tests.npc.controller_proc import ControllerProcess  # noqa: E402
from tests.npc.hollowkit import Hollow  # noqa: E402
from tests.npc.hollowworld import HollowWorld  # noqa: E402
from tests.npc.nodeapi import NodeApi  # noqa: E402
from tests.npc.topology import Topology  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "bench_npc.json"
# the prober streams over one long `kubectl exec -i` (a process reading stdin), beside this interpreter
KUBECTL = str(Path(sys.executable).parent / "kubectl")
WEAVE_2_8_1_MEDIAN_MS = 14.0  # docs/weave-facts.md#change-latency (9-pod world)
WEAVE_2_8_1_DELETE_ALL_MS = 113.0
HOLLOW_POD_CIDR = "10.96.0.0/12"  # not the default 10.32.0.0/12, which other runs may hold
HOLLOW_NET = "10.96"

PROBER = r"""
import os, socket, sys, threading, time
ip, port = sys.argv[1], int(sys.argv[2])
lock = threading.Lock()
def watch_stdin():
    sys.stdin.read()
    os._exit(0)
if len(sys.argv) > 3:
    threading.Thread(target=watch_stdin, daemon=True).start()
def attempt(start):
    try:
        with socket.create_connection((ip, port), timeout=0.3):
            verdict = "allowed"
    except OSError:
        verdict = "dropped"
    with lock:
        sys.stdout.write(f"{start:.6f} {verdict}\n"); sys.stdout.flush()
while True:
    start = time.time()
    threading.Thread(target=attempt, args=(start,), daemon=True).start()
    time.sleep(max(0.0, 0.005 - (time.time() - start)))
"""


def ns(name: str, team: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name, "team": team}}}


def pod(namespace: str, name: str, node: str, ip: str, **labels: str) -> dict[str, Any]:
    return {
        "metadata": {"namespace": namespace, "name": name, "labels": {"pod": name, **labels}},
        "spec": {"nodeName": node},
        "status": {"phase": "Running", "podIP": ip},
    }


def pol(name: str, namespace: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"namespace": namespace, "name": name}, "spec": spec}


DENY_X = pol("deny-x", "x", {"podSelector": {}, "policyTypes": ["Ingress"]})
ALLOW_BLUE = pol(
    "allow-blue",
    "x",
    {
        "podSelector": {"matchLabels": {"pod": "a"}},
        "policyTypes": ["Ingress"],
        "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": "blue"}}}]}],
    },
)
ALLOW_CLIENT = pol(
    "allow-client",
    "x",
    {
        "podSelector": {"matchLabels": {"pod": "a"}},
        "policyTypes": ["Ingress"],
        "ingress": [
            {"from": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"role": "client"}}}]}
        ],
    },
)


def build_state(large: bool, net: str = "10.32", nodes: int = 2) -> dict[str, Any]:
    """Witness x/a on node1 (NET.1.20), source y/a on node2 (NET.1.21); namespace y starts team=blue.
    The other pods go round-robin over `nodes` nodes (1 and 2 in the in-process mode)."""
    namespaces = [ns("x", "red"), ns("y", "blue"), ns("z", "red")]
    pods = [pod("x", "a", "node1", f"{net}.1.20"), pod("y", "a", "node2", f"{net}.1.21")]
    policies = [DENY_X, ALLOW_BLUE, ALLOW_CLIENT]
    if not large:
        ip = 30
        for namespace in ("x", "y", "z"):
            for name in ("b", "c"):
                if (namespace, name) != ("y", "a"):
                    node = f"node{ip % nodes + 1}" if nodes > 2 else ("node1" if name == "b" else "node2")
                    pods.append(pod(namespace, name, node, f"{net}.1.{ip}"))
                    ip += 1
        pods.append(pod("z", "a", "node1" if nodes == 2 else "node3", f"{net}.1.{ip}"))
        return {"namespaces": namespaces, "pods": pods, "policies": policies}
    namespaces += [ns(f"team-{i}", "red" if i % 2 else "green") for i in range(7)]
    ip = 0
    while len(pods) < 100:
        namespace = namespaces[len(pods) % len(namespaces)]["metadata"]["name"]
        pods.append(
            pod(
                namespace,
                f"p{ip}",
                f"node{ip % nodes + 1}" if nodes > 2 else ("node1" if ip % 2 else "node2"),
                f"{net}.2.{ip + 10}",
                app=f"app{ip % 5}",
                tier="web" if ip % 3 else "db",
            )
        )
        ip += 1
    for i in range(len(policies), 50):
        namespace = namespaces[3 + i % 7]["metadata"]["name"]
        choices: list[dict[str, Any]] = [
            {"podSelector": {"matchLabels": {"tier": "web"}}},
            {"namespaceSelector": {"matchLabels": {"team": "red"}}},
            {
                "namespaceSelector": {},
                "podSelector": {
                    "matchExpressions": [{"key": "app", "operator": "In", "values": [f"app{i % 5}"]}]
                },
            },
        ]
        peer = choices[i % 3]
        policies.append(
            pol(
                f"filler-{i}",
                namespace,
                {
                    "podSelector": {"matchLabels": {"app": f"app{i % 5}"}},
                    "policyTypes": ["Ingress"],
                    "ingress": [{"from": [peer], "ports": [{"port": 80 + i % 3}]}],
                },
            )
        )
    return {"namespaces": namespaces, "pods": pods, "policies": policies}


class Prober:
    """The source pod's connect loop; remembers (start, verdict) of every attempt."""

    def __init__(self, argv: list[str], env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        self.seen: list[tuple[float, str]] = []
        self.cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            start, verdict = line.split()
            with self.cond:
                self.seen.append((float(start), verdict))
                self.cond.notify_all()

    def first_after(self, t0: float, verdict: str, timeout: float = 10.0) -> float:
        """Start time of the first attempt started after t0 that saw `verdict` (bounded wait).

        Dropped attempts report 0.3 s after they start, so a "dropped" answer is only final once every
        attempt started before it has had time to report.
        """
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                hits = [s for s, v in self.seen if s >= t0 and v == verdict]
                if hits and (verdict == "allowed" or time.time() > min(hits) + 0.4):
                    return min(hits)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no attempt saw {verdict} within {timeout}s of the change")
                self.cond.wait(min(remaining, 0.05))

    def stop(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()  # the in-pod script exits on stdin EOF
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            self.proc.wait(timeout=5)


class InProcessOps:
    """The changes, written to the in-process API server (tests/npc/nodeapi.py)."""

    def __init__(self, api: NodeApi) -> None:
        self.api = api

    def namespace(self, obj: dict[str, Any]) -> None:
        self.api.put("Namespace", obj)

    def pod_labels(self, namespace: str, name: str, labels: dict[str, str]) -> None:
        source = self.api.get("Pod", namespace, name)
        source["metadata"]["labels"] = labels
        self.api.put("Pod", copy.deepcopy(source))

    def put_policy(self, obj: dict[str, Any]) -> None:
        self.api.put("NetworkPolicy", copy.deepcopy(obj))

    def delete_policy(self, namespace: str, name: str) -> None:
        self.api.delete("NetworkPolicy", namespace, name)

    def policies(self) -> list[tuple[str, str]]:
        return [
            (p["metadata"]["namespace"], p["metadata"]["name"])
            for p in self.api.store.list(NETWORKPOLICIES)[0]
        ]


class HollowOps:
    """The changes, written through the kubernetes client (tests/npc/hollowworld.py HollowWorld.put)."""

    def __init__(self, world: HollowWorld, namespaces: list[str]) -> None:
        self.world, self.namespaces = world, namespaces

    def namespace(self, obj: dict[str, Any]) -> None:
        self.world.put("Namespace", obj)

    def pod_labels(self, namespace: str, name: str, labels: dict[str, str]) -> None:
        self.world.put("Pod", {"metadata": {"namespace": namespace, "name": name, "labels": labels}})

    def put_policy(self, obj: dict[str, Any]) -> None:
        self.world.put("NetworkPolicy", copy.deepcopy(obj))

    def delete_policy(self, namespace: str, name: str) -> None:
        self.world.delete("NetworkPolicy", {"metadata": {"namespace": namespace, "name": name}})

    def policies(self) -> list[tuple[str, str]]:
        api = self.world.hollow.api
        return [
            (n, p["metadata"]["name"])
            for n in self.namespaces
            for p in fetching.list_objects(api, "networking.k8s.io/v1", "NetworkPolicy", n)
        ]


def run_world(large: bool, changes: int) -> dict[str, Any]:
    state = build_state(large)
    real_pods = [
        p
        for p in state["pods"]
        if (p["metadata"]["namespace"], p["metadata"]["name"]) in (("x", "a"), ("y", "a"))
    ]
    api = NodeApi()
    world = World.from_state({"namespaces": state["namespaces"], "pods": real_pods, "policies": []})
    try:
        with Topology(world) as topo:
            api.load_state(state)
            for node_ns in topo.nodes.values():
                api.listen_in(node_ns)
            controllers = [ControllerProcess(topo.nodes[n], n, api).start() for n in ("node1", "node2")]
            try:
                prober = Prober(
                    [
                        "ip",
                        "netns",
                        "exec",
                        topo.pods["y/a"],
                        sys.executable,
                        "-c",
                        PROBER,
                        "10.32.1.20",
                        "80",
                    ]
                )
                try:
                    return measure(
                        InProcessOps(api), prober, changes, len(state["pods"]), len(state["policies"])
                    )
                finally:
                    prober.stop()
            finally:
                for controller in controllers:
                    controller.stop()
                    controller.log_path.unlink(missing_ok=True)
    finally:
        api.close()


def hollow_world(hollow: Hollow, large: bool, changes: int) -> dict[str, Any]:
    """One world on the running cluster: create it, measure, delete it (namespaces and their pods)."""
    state = build_state(large, net=HOLLOW_NET, nodes=hollow.nodes)
    for p in state["pods"]:
        p["spec"]["containers"] = [{"name": "c"}]
    world = HollowWorld(hollow)
    names = [n["metadata"]["name"] for n in state["namespaces"]]
    t_create = time.monotonic()
    try:
        hollow.apply_state({"namespaces": state["namespaces"], "pods": [], "policies": []})
        for i in range(0, len(state["pods"]), 20):  # apply_state waits 60 s for its pods: batches of 20
            hollow.apply_state({"namespaces": [], "pods": state["pods"][i : i + 20], "policies": []})
        for pol in state["policies"]:
            world.put("NetworkPolicy", pol)
        created_s = time.monotonic() - t_create
        witness = state["pods"][0]["status"]["podIP"]
        env = {**os.environ, "KUBECONFIG": str(hollow.state_dir / "kubeconfig")}
        argv = [
            KUBECTL,
            "exec",
            "-i",
            "-n",
            "y",
            "a",
            "--",
            "python",
            "-u",
            "-c",
            PROBER,
            witness,
            "80",
            "stdin",
        ]
        prober = Prober(argv, env)
        try:
            result = measure(
                HollowOps(world, names),
                prober,
                changes,
                len(state["pods"]),
                len(state["policies"]),
                from_write_return=True,
            )
        finally:
            prober.stop()
        result["create_world_s"] = created_s
        return result
    finally:
        try:
            hollow.delete_state(state)
        except TimeoutError as exc:  # reported, not raised over the result; `hollow down` still cleans up
            print(f"warning: {exc}", file=sys.stderr)


def run_hollow(changes: int) -> dict[str, Any]:
    state_dir = Path(tempfile.mkdtemp(prefix="npcbench-hollow-"))
    hollow = Hollow(state_dir, nodes=3, pod_cidr=HOLLOW_POD_CIDR)
    t_up = time.monotonic()
    try:
        hollow.up()
        up_s = time.monotonic() - t_up
        small = hollow_world(hollow, False, changes)
        large = hollow_world(hollow, True, changes)
    finally:
        hollow.down()
        shutil.rmtree(state_dir, ignore_errors=True)
    return {
        "method": "store -> enforced on the embedded cluster, 3 nodes, --pod-cidr 10.96.0.0/12, weave-net "
        "from manifests/weave/weave-2.8.1.yaml (reference controller = weave-npc container, 2.8.1 profile); "
        "real probe pods; "
        "changes through the kubernetes client; latency from the API write returning to the start of the "
        "first new TCP connect (every 5 ms, 0.3 s timeout, a script kubectl-exec'd in the source pod) "
        "that saw the new verdict; delete-all counted from the first of the deletes",
        "cluster_prefix": hollow.record.get("prefix"),
        "hollow_up_s": up_s,
        "baseline_small": small,
        "large": large,
    }


def print_table(results: dict[str, Any], title: str) -> None:
    print(title)
    print(
        f"{'world':<22}{'pods':>5}{'pols':>5}{'n':>4}{'median ms':>11}{'worst ms':>10}{'delete-all ms':>15}"
    )
    for name in ("baseline_small", "large"):
        r = results[name]
        print(
            f"{name:<22}{r['pods']:>5}{r['policies']:>5}{r['changes']:>4}{r['median_ms']:>11.1f}"
            f"{r['worst_ms']:>10.1f}{r['delete_all_policies_ms']:>15.1f}"
        )
        for kind, k in r["by_kind"].items():
            print(f"  {kind:<20}{'':>10}{k['n']:>4}{k['median_ms']:>11.1f}{k['worst_ms']:>10.1f}")
    print(
        f"{'weave-npc 2.8.1 (ref)':<22}{9:>5}{'':>5}{7:>4}{WEAVE_2_8_1_MEDIAN_MS:>11.1f}{21.0:>10.1f}"
        f"{WEAVE_2_8_1_DELETE_ALL_MS:>15.1f}"
    )
    large = results["large"]["median_ms"]
    print(f"large median / weave 2.8.1 median = {large / WEAVE_2_8_1_MEDIAN_MS:.2f}x (goal <= 2x)")


def measure(
    ops: InProcessOps | HollowOps,
    prober: Prober,
    changes: int,
    n_pods: int,
    n_policies: int,
    from_write_return: bool = False,
) -> dict[str, Any]:
    """Latency per change: from the write's start (in-process, as before) or from it returning (hollow)."""
    prober.first_after(time.time(), "allowed", timeout=60)  # the initial state is programmed
    y_team = "blue"
    client = False
    has_blue = True
    cycle = ["namespace label", "pod label", "pod label", "namespace label", "policy", "policy"]
    samples: dict[str, list[float]] = {kind: [] for kind in dict.fromkeys(cycle)}
    writes: list[float] = []
    for i in range(changes):
        kind = cycle[i % len(cycle)]
        t0 = time.time()
        if kind == "namespace label":
            y_team = "green" if y_team == "blue" else "blue"
            ops.namespace(ns("y", y_team))
        elif kind == "pod label":
            client = not client
            ops.pod_labels("y", "a", {"pod": "a", **({"role": "client"} if client else {})})
        elif has_blue:
            ops.delete_policy("x", "allow-blue")
            has_blue = False
        else:
            ops.put_policy(ALLOW_BLUE)
            has_blue = True
        t1 = time.time()
        writes.append((t1 - t0) * 1e3)
        start = t1 if from_write_return else t0
        want = "allowed" if (has_blue and y_team == "blue") or client else "dropped"
        samples[kind].append((prober.first_after(start, want) - start) * 1e3)
        time.sleep(0.35)  # let attempts started before this change drain (they time out after 0.3 s)
    # every policy deleted at once, from a state where the witness is dropped: x/a becomes open
    if client:
        ops.pod_labels("y", "a", {"pod": "a"})
    ops.namespace(ns("y", "green"))
    prober.first_after(time.time(), "dropped")
    time.sleep(0.35)
    t0 = time.time()
    for namespace, name in ops.policies():
        ops.delete_policy(namespace, name)
    delete_all = (prober.first_after(t0, "allowed") - t0) * 1e3
    every = [s for values in samples.values() for s in values]
    return {
        "pods": n_pods,
        "policies": n_policies,
        "changes": len(every),
        "median_ms": statistics.median(every),
        "worst_ms": max(every),
        "by_kind": {
            k: {"n": len(v), "median_ms": statistics.median(v), "worst_ms": max(v)}
            for k, v in samples.items()
        },
        "delete_all_policies_ms": delete_all,
        "write_ms_median": statistics.median(writes),
        "write_ms_worst": max(writes),
        "samples_ms": every,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=50)
    parser.add_argument(
        "--cluster",
        choices=["inprocess", "hollow"],
        default="inprocess",
        help="inprocess: controllers + in-process API server in bare node namespaces (baseline); "
        "hollow: a 3-node `netpolcheck hollow up` cluster with real probe pods",
    )
    args = parser.parse_args()
    results: dict[str, Any] = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results["reference_weave_2_8_1"] = {
        "median_ms": WEAVE_2_8_1_MEDIAN_MS,
        "delete_all_policies_ms": WEAVE_2_8_1_DELETE_ALL_MS,
    }
    if args.cluster == "inprocess":
        results.update(
            {
                "method": "store -> enforced, seen by a new TCP connect every 5 ms from inside the source "
                "pod; reference controller processes + test HTTPS API in network namespaces (not hollow)",
                "baseline_small": run_world(False, args.changes),
                "large": run_world(True, args.changes),
            }
        )
        shown = results
    else:
        results["hollow"] = shown = run_hollow(args.changes)
        shown["load_at_end"] = os.getloadavg()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=1))
    print_table(shown, f"--cluster {args.cluster}")
    print(f"written {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
