"""Stand-in for weave-npc: does what weave-npc does when it starts, and reports each step on stdout.

In-cluster config over HTTPS (service-account token and CA, KUBERNETES_SERVICE_HOST/PORT), list then
watch of namespaces, pods and networking.k8s.io/v1 networkpolicies (from the list's resourceVersion,
as client-go's reflector does), iptables and ipset calls in its own (the node's) network namespace,
and `/usr/sbin/ulogd -v` as a child writing NFLOG group 86 as pcap into the FIFO /var/log/ulogd.pcap,
which it reads (weave-npc turns those packets into "blocked by Weave NPC" lines).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import ssl
import struct
import subprocess
import sys
import threading
import urllib.request
from typing import Any

SA = "/var/run/secrets/kubernetes.io/serviceaccount"
COLLECTIONS = {
    "namespaces": "/api/v1/namespaces",
    "pods": "/api/v1/pods",
    "networkpolicies": "/apis/networking.k8s.io/v1/networkpolicies",
}


def say(*parts: object) -> None:
    print(*parts, flush=True)


class InCluster:
    def __init__(self) -> None:
        host, port = os.environ["KUBERNETES_SERVICE_HOST"], os.environ["KUBERNETES_SERVICE_PORT"]
        self.base = f"https://{host}:{port}"
        with open(f"{SA}/token") as fh:
            self.token = fh.read().strip()
        self.ctx = ssl.create_default_context(cafile=f"{SA}/ca.crt")

    def open(self, path: str, timeout: float = 30) -> Any:
        req = urllib.request.Request(self.base + path, headers={"Authorization": f"Bearer {self.token}"})
        return urllib.request.urlopen(req, context=self.ctx, timeout=timeout)

    def get(self, path: str) -> dict[str, Any]:
        with self.open(path) as resp:
            return json.loads(resp.read())


def watch(api: InCluster, kind: str, rv: str) -> None:
    path = f"{COLLECTIONS[kind]}?allowWatchBookmarks=true&resourceVersion={rv}&timeoutSeconds=300&watch=true"
    with api.open(path, timeout=310) as resp:
        for line in resp:
            event = json.loads(line)
            if event["type"] == "BOOKMARK":  # only a resourceVersion, no object (every 5 s when idle)
                continue
            meta = event["object"]["metadata"]
            say("WATCH", kind, event["type"], f"{meta.get('namespace', '')}/{meta['name']}")


def run(*argv: str) -> None:
    subprocess.run(argv, check=True)
    say("RAN", " ".join(argv))


def read_pcap(path: str) -> None:
    with open(path, "rb") as fifo:  # blocks until ulogd opens it for writing
        header = fifo.read(24)
        say("PCAP header", "ok" if struct.unpack("<I", header[:4])[0] == 0xA1B2C3D4 else header[:4].hex())
        while True:
            record = fifo.read(16)
            if len(record) < 16:
                return
            length = struct.unpack("<IIII", record)[2]
            fifo.read(length)
            say("PCAP packet", length, "bytes")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--node-name", default=os.environ.get("HOSTNAME", ""))
    args, extra = parser.parse_known_args()
    say("START node", args.node_name, "args", extra, "image", os.environ.get("HOLLOW_IMAGE"))
    api = InCluster()
    say("VERSION", api.get("/version").get("gitVersion"))
    for kind, path in COLLECTIONS.items():
        listed = api.get(f"{path}?limit=500&resourceVersion=0")
        rv = listed["metadata"]["resourceVersion"]
        say("LIST", kind, len(listed["items"]), "rv", rv)
        threading.Thread(target=watch, args=(api, kind, rv), daemon=True).start()
    # weave-npc's first static WEAVE-NPC rules: established flows, and traffic leaving for the router
    # port is not policed at the source node (ingress is enforced on the destination node)
    run("iptables", "-A", "WEAVE-NPC", "-m", "state", "--state", "RELATED,ESTABLISHED", "-j", "ACCEPT")
    run(
        "iptables",
        "-A",
        "WEAVE-NPC",
        "-m",
        "physdev",
        "--physdev-out",
        "vethwe-bridge",
        "--physdev-is-bridged",
        "-j",
        "ACCEPT",
    )
    run("iptables", "-N", "WEAVE-NPC-INGRESS")
    run("iptables", "-A", "WEAVE-NPC-INGRESS", "-m", "comment", "--comment", "standin", "-j", "RETURN")
    run("ipset", "create", "weave-standin-local-pods", "hash:ip")
    for pod in api.get(f"/api/v1/pods?fieldSelector=spec.nodeName%3D{args.node_name}")["items"]:
        ip = pod.get("status", {}).get("podIP")
        if ip and not pod["spec"].get("hostNetwork"):
            run("ipset", "add", "-exist", "weave-standin-local-pods", ip)
    ulogd = subprocess.Popen(["/usr/sbin/ulogd", "-v"])
    say("ULOGD pid", ulogd.pid)
    threading.Thread(target=read_pcap, args=("/var/log/ulogd.pcap",), daemon=True).start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    say("READY")
    while not stop.wait(1):
        if ulogd.poll() is not None:
            say("ULOGD exited", ulogd.returncode)
            return 1
    ulogd.terminate()
    ulogd.wait(5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
