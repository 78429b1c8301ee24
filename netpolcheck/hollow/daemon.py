"""The hollow cluster's one process: `python -m netpolcheck.hollow.daemon --state-dir DIR ...`.

Started detached by `netpolcheck hollow up`. Builds, in order: the unreachable route and the fabric,
the PKI and tokens, the store, the API server (127.0.0.1:<free port> here, 127.0.0.1:6443 in every
node namespace, none in pod namespaces), Node objects, the kubelet, the DaemonSet controller and,
with `--npc` other than none, the weave-net DaemonSet with Weave's RBAC objects. Then writes
DIR/kubeconfig and marks DIR/cluster.json running.
SIGTERM or SIGINT: orderly teardown (pods, server, namespaces, route).
"""

from __future__ import annotations

import argparse
import contextlib
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
from netpolcheck.hollow.api.auth import Auth, RbacAuthorizer, Tokens
from netpolcheck.hollow.api.kubeconfig import write_kubeconfig
from netpolcheck.hollow.api.resources import (
    CLUSTERROLEBINDINGS,
    CLUSTERROLES,
    DAEMONSETS,
    ROLEBINDINGS,
    ROLES,
    SERVICEACCOUNTS,
    Resource,
)
from netpolcheck.hollow.api.server import ApiServer
from netpolcheck.hollow.api.store import Store
from netpolcheck.hollow.api.tls import make_pki
from netpolcheck.hollow.controllers.daemonset import DaemonSetController
from netpolcheck.hollow.fabric import Fabric, claim_pod_range, release_pod_range
from netpolcheck.hollow.images import NPC_NONE, NPC_REFERENCE, WEAVE_NONE
from netpolcheck.hollow.ipam import PodAddresses, parse_pod_cidr
from netpolcheck.hollow.kubelet import Kubelet
from netpolcheck.hollow.state import KUBECONFIG_FILE, PRIVATE_UMASK, ClusterRecord, forget_registered
from netpolcheck.hollow.weave_router import parse_version

log = logging.getLogger("hollow.daemon")

IN_CLUSTER_PORT = 6443
RBAC_GROUP = "rbac.authorization.k8s.io"


def weave_images(version: str) -> tuple[str, str]:
    """The weave-kube and weave-npc images of a version (the community fork's from 2.9)."""
    owner = "rajchaudhuri" if parse_version(version) >= (2, 9, 0) else "weaveworks"
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


def weave_rbac() -> list[tuple[Resource, dict[str, Any]]]:
    """The RBAC objects Weave's manifest (manifests/weave/weave-2.8.1.yaml) gives the weave-net account."""
    labels = {"name": "weave-net"}
    subjects = [{"kind": "ServiceAccount", "name": "weave-net", "namespace": "kube-system"}]
    read = ["get", "list", "watch"]
    return [
        (
            CLUSTERROLES,
            {
                "metadata": {"name": "weave-net", "labels": labels},
                "rules": [
                    {"apiGroups": [""], "resources": ["pods", "namespaces", "nodes"], "verbs": read},
                    {"apiGroups": ["extensions"], "resources": ["networkpolicies"], "verbs": read},
                    {"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"], "verbs": read},
                    {"apiGroups": [""], "resources": ["nodes/status"], "verbs": ["patch", "update"]},
                ],
            },
        ),
        (
            CLUSTERROLEBINDINGS,
            {
                "metadata": {"name": "weave-net", "labels": labels},
                "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": "weave-net"},
                "subjects": subjects,
            },
        ),
        (
            ROLES,
            {
                "metadata": {"name": "weave-net", "namespace": "kube-system", "labels": labels},
                "rules": [
                    {
                        "apiGroups": [""],
                        "resources": ["configmaps"],
                        "resourceNames": ["weave-net"],
                        "verbs": ["get", "update"],
                    },
                    {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create"]},
                ],
            },
        ),
        (
            ROLEBINDINGS,
            {
                "metadata": {"name": "weave-net", "namespace": "kube-system", "labels": labels},
                "roleRef": {"apiGroup": RBAC_GROUP, "kind": "Role", "name": "weave-net"},
                "subjects": subjects,
            },
        ),
    ]


def start_daemonset_controller(store: Store) -> Callable[[], None]:
    """Start the DaemonSet controller; returns its stop function."""
    controller = DaemonSetController(store)
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
        # removes the route only while our claim names it: a lost race never takes another's route
        self.teardown.append(lambda: release_pod_range(self.record.pod_cidr, self.fabric.prefix))
        self.record.route = self.record.pod_cidr  # recorded first: a kill -9 right after adding it is covered
        self.record.write(self.state_dir)
        if not self.args.range_claimed:  # `hollow up` claims it before starting the daemon
            claim_pod_range(self.addresses.pod_cidr, self.fabric.prefix, self.state_dir)
        self.fabric.build()
        self.record.node_names = self.node_names
        self.record.node_netns = [self.fabric.node_netns(k) for k in range(1, self.args.nodes + 1)]
        self.record.write(self.state_dir)

        pki = make_pki(self.fabric.prefix)
        # the admin token goes only into the kubeconfig; pods get their service account's own token
        admin_token = secrets.token_urlsafe(32)
        tokens = Tokens(admin_token)
        store = Store()
        self.teardown.append(store.close)
        request_log = open(self.state_dir / "api.log", "a")  # noqa: SIM115 - lives as long as the server
        self.teardown.append(request_log.close)
        server = ApiServer(store, None, Auth(tokens, RbacAuthorizer(store)), pki, request_log=request_log)
        listeners: list[socket.socket] = []

        def close_listeners() -> None:
            for sock in listeners:
                sock.close()

        self.teardown.append(close_listeners)
        self.teardown.append(lambda: server.stop())
        # No API listener in pod namespaces: a pod reaches no more than on a real cluster, where the
        # API is a service behind the pod network and its policies. Only hostNetwork pods (the policy
        # controller) reach it, on 127.0.0.1:6443 of their node.
        kubelet = Kubelet(
            store,
            self.fabric,
            self.node_names,
            self.state_dir,
            self.args.npc,
            {"ca.crt": pki.ca_cert_pem.decode()},
        )
        kubelet.pods.service_account_token = tokens.service_account_token
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
        self.teardown.append(start_daemonset_controller(store))
        if self.args.npc != NPC_NONE and self.args.weave_version != WEAVE_NONE:
            store.create(SERVICEACCOUNTS, {"metadata": {"name": "weave-net", "namespace": "kube-system"}})
            for res, obj in weave_rbac():
                store.create(res, obj)
            store.create(DAEMONSETS, weave_daemonset(self.args.weave_version))
        self.record.server = f"https://127.0.0.1:{port}"
        write_kubeconfig(
            self.state_dir / KUBECONFIG_FILE,
            self.record.server,
            pki.ca_cert_pem,
            admin_token,
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
    parser.add_argument("--range-claimed", action="store_true", help="the caller holds the range's claim")
    parser.add_argument("--weave-npc-binary", action="append", default=[], metavar="VERSION=PATH")
    args = parser.parse_args(argv)
    images.NPC_BINARIES.update(images.parse_npc_binary(v) for v in args.weave_npc_binary)
    os.umask(PRIVATE_UMASK)  # logs, spec.json (tokens), volumes: private to root at creation
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    return Daemon(args).run()


if __name__ == "__main__":
    sys.exit(main())
