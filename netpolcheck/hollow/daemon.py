"""The hollow cluster's one process: `python -m netpolcheck.hollow.daemon --state-dir DIR ...`.

Started detached by `netpolcheck hollow up`. Builds, in order: the unreachable route and the fabric,
the PKI and token, the store, the API server (127.0.0.1:<free port> here, 127.0.0.1:6443 in every
node and pod namespace), Node objects, the kubelet, the DaemonSet controller and, with `--npc` other
than none, the weave-net DaemonSet. Then writes DIR/kubeconfig and marks DIR/cluster.json running.
SIGTERM or SIGINT: orderly teardown (pods, server, namespaces, route).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import secrets
import signal
import socket
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from netpolcheck.hollow import cleanup, images, netns
from netpolcheck.hollow.api.kubeconfig import write_kubeconfig
from netpolcheck.hollow.api.resources import DAEMONSETS, SERVICEACCOUNTS
from netpolcheck.hollow.api.server import ApiServer
from netpolcheck.hollow.api.store import Store
from netpolcheck.hollow.api.tls import make_pki
from netpolcheck.hollow.fabric import Fabric, RouteConflict
from netpolcheck.hollow.images import NPC_NONE, NPC_REFERENCE, WEAVE_NONE
from netpolcheck.hollow.ipam import PodAddresses, parse_pod_cidr
from netpolcheck.hollow.kubelet import Kubelet
from netpolcheck.hollow.state import KUBECONFIG_FILE, ClusterRecord, forget_registered

log = logging.getLogger("hollow.daemon")

IN_CLUSTER_PORT = 6443


def weave_images(version: str) -> tuple[str, str]:
    """The weave-kube and weave-npc images of a version (the community fork's from 2.9)."""
    owner = "rajchaudhuri" if version.lstrip("v").split(".")[:2] >= ["2", "9"] else "weaveworks"
    return f"{owner}/weave-kube:{version}", f"{owner}/weave-npc:{version}"


def weave_daemonset(version: str) -> dict[str, Any]:
    """The weave-net DaemonSet as Weave's manifest has it (the parts the hollow kubelet uses)."""
    kube_image, npc_image = weave_images(version)
    hostname = {
        "name": "HOSTNAME",
        "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "spec.nodeName"}},
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "weave-net", "namespace": "kube-system", "labels": {"name": "weave-net"}},
        "spec": {
            "selector": {"matchLabels": {"name": "weave-net"}},
            "minReadySeconds": 5,
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
            "template": {
                "metadata": {"labels": {"name": "weave-net"}},
                "spec": {
                    "hostNetwork": True,
                    "restartPolicy": "Always",
                    "serviceAccountName": "weave-net",
                    "tolerations": [
                        {"effect": "NoSchedule", "operator": "Exists"},
                        {"effect": "NoExecute", "operator": "Exists"},
                    ],
                    "containers": [
                        {
                            "name": "weave",
                            "image": kube_image,
                            "command": ["/home/weave/launch.sh"],
                            "env": [hostname],
                            "securityContext": {"privileged": True},
                        },
                        {
                            "name": "weave-npc",
                            "image": npc_image,
                            "env": [hostname],
                            "securityContext": {"privileged": True},
                        },
                    ],
                },
            },
        },
    }


def start_daemonset_controller(store: Store) -> Callable[[], None] | None:
    """Start the DaemonSet controller from netpolcheck.hollow.controllers; returns its stop function."""
    try:
        module = importlib.import_module("netpolcheck.hollow.controllers.daemonset")
    except ImportError as exc:
        log.warning("no DaemonSet controller (%s): DaemonSets will not get pods", exc)
        return None
    controller = module.DaemonSetController(store)
    controller.start()
    stop: Callable[[], None] = controller.stop
    return stop


class Daemon:
    def __init__(self, args: argparse.Namespace) -> None:
        self.state_dir = Path(args.state_dir).resolve()
        self.record = ClusterRecord.read(self.state_dir) or ClusterRecord(
            prefix=args.prefix,
            pod_cidr=args.pod_cidr,
            nodes=args.nodes,
            npc=args.npc,
            weave_version=args.weave_version,
        )
        self.args = args
        self.addresses = PodAddresses(parse_pod_cidr(args.pod_cidr), args.nodes)
        self.fabric = Fabric(args.prefix, self.addresses)
        self.node_names = [f"node{k}" for k in range(1, args.nodes + 1)]
        self.stop_event = threading.Event()
        self.teardown: list[Callable[[], object]] = []

    def run(self) -> int:
        signal.signal(signal.SIGTERM, lambda *_: self.stop_event.set())
        signal.signal(signal.SIGINT, lambda *_: self.stop_event.set())
        try:
            self.build()
        except Exception:
            log.exception("hollow cluster failed to start")
            self.tear_down()
            return 1
        log.info("hollow cluster %s running: %s", self.fabric.prefix, self.record.server)
        self.stop_event.wait()
        log.info("stopping hollow cluster %s", self.fabric.prefix)
        self.tear_down()
        return 0

    def build(self) -> None:
        self.record.daemon_pid = os.getpid()
        self.record.write(self.state_dir)
        self.teardown.append(lambda: cleanup.sweep(self.fabric.prefix, None))
        self.teardown.append(
            lambda: (
                cleanup.remove_unreachable_route(self.record.pod_cidr) if self.fabric.route_added else None
            )
        )
        self.record.route = self.record.pod_cidr  # recorded first: a kill -9 right after adding it is covered
        self.record.write(self.state_dir)
        try:
            self.fabric.add_unreachable_route()
        except RouteConflict:
            self.record.route = None  # not ours: never delete it
            self.record.write(self.state_dir)
            raise
        self.fabric.build()
        self.record.node_names = self.node_names
        self.record.node_netns = [self.fabric.node_netns(k) for k in range(1, self.args.nodes + 1)]
        self.record.write(self.state_dir)

        pki = make_pki(self.fabric.prefix)
        token = secrets.token_urlsafe(32)
        store = Store()
        self.teardown.append(store.close)
        sa_files = {"token": token, "ca.crt": pki.ca_cert_pem.decode()}
        request_log = open(self.state_dir / "api.log", "a")  # noqa: SIM115 - lives as long as the server
        self.teardown.append(request_log.close)
        server = ApiServer(store, None, token, pki, request_log=request_log)
        listeners: list[socket.socket] = []

        def close_listeners() -> None:
            for sock in listeners:
                sock.close()

        self.teardown.append(close_listeners)
        self.teardown.append(lambda: server.stop())

        def pod_listener(netns_name: str) -> Callable[[], None]:
            sock = netns.listening_socket(netns_name, "127.0.0.1", IN_CLUSTER_PORT)
            server.add_listener(sock)

            def close() -> None:
                # the accept thread ends before the socket closes, so nothing polls a dead pod's socket
                server.remove_listener(sock)
                sock.close()

            return close

        kubelet = Kubelet(
            store,
            self.fabric,
            self.node_names,
            self.state_dir,
            self.args.npc,
            sa_files,
            listener_factory=pod_listener,
        )
        server.runtime = kubelet
        store.deletion_gate = kubelet.deletion_grace
        # teardown runs in reverse: pods stop before the server and store close
        host_sock, port = server.listen_loopback(0)
        listeners.append(host_sock)
        for k in range(1, self.args.nodes + 1):
            node_sock = netns.listening_socket(self.fabric.node_netns(k), "127.0.0.1", IN_CLUSTER_PORT)
            server.add_listener(node_sock)
            listeners.append(node_sock)
        kubelet.register_nodes()
        kubelet.start()
        self.teardown.append(kubelet.stop)
        stop_controller = start_daemonset_controller(store)
        if stop_controller is not None:
            self.teardown.append(stop_controller)
        if self.args.npc != NPC_NONE and self.args.weave_version != WEAVE_NONE:
            store.create(SERVICEACCOUNTS, {"metadata": {"name": "weave-net", "namespace": "kube-system"}})
            store.create(DAEMONSETS, weave_daemonset(self.args.weave_version))
        self.record.server = f"https://127.0.0.1:{port}"
        write_kubeconfig(
            self.state_dir / KUBECONFIG_FILE,
            self.record.server,
            pki.ca_cert_pem,
            token,
            name=f"hollow-{self.fabric.prefix}",
        )
        self.record.status = "running"
        self.record.write(self.state_dir)

    def tear_down(self) -> None:
        for step in reversed(self.teardown):
            try:
                step()
            except Exception:  # every step runs; a failure of one must not leave the rest behind
                log.exception("teardown step failed")
        self.teardown.clear()
        self.record.status = "stopped"
        if self.state_dir.is_dir():  # removed under us (down --orphans): do not make it again
            with contextlib.suppress(OSError):
                self.record.write(self.state_dir)
        else:
            forget_registered(self.record.prefix)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m netpolcheck.hollow.daemon")
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--npc", default=NPC_REFERENCE)
    parser.add_argument("--weave-version", default="2.8.1")
    parser.add_argument("--pod-cidr", default="10.32.0.0/12")
    parser.add_argument("--weave-npc-binary", action="append", default=[], metavar="VERSION=PATH")
    args = parser.parse_args(argv)
    images.NPC_BINARIES.update(images.parse_npc_binary(v) for v in args.weave_npc_binary)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    return Daemon(args).run()


if __name__ == "__main__":
    sys.exit(main())
