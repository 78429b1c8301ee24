"""The Node objects of the hollow nodes: Ready, the weave bridge address as InternalIP."""

from __future__ import annotations

import os
from typing import Any

from netpolcheck.hollow.api.resources import NODES
from netpolcheck.hollow.api.store import Store
from netpolcheck.hollow.api.version import KUBERNETES_VERSION
from netpolcheck.hollow.clock import now_iso
from netpolcheck.hollow.fabric import Fabric

# Nodes report the version the API server's /version reports: one Kubernetes version per cluster.


def node_info(name: str) -> dict[str, str]:
    """Node.status.nodeInfo with every field clients require."""
    uname = os.uname()
    return {
        "architecture": "amd64" if uname.machine == "x86_64" else uname.machine,
        "bootID": name,
        "machineID": name,
        "systemUUID": name,
        "containerRuntimeVersion": "hollow://1",
        "kernelVersion": uname.release,
        "kubeProxyVersion": "",
        "kubeletVersion": KUBERNETES_VERSION,
        "operatingSystem": "linux",
        "osImage": "netpolcheck hollow node",
    }


def node_status(name: str, ip: str) -> dict[str, Any]:
    stamp = now_iso()
    return {
        "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}],
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "KubeletReady",
                "message": "hollow kubelet is posting ready status",
                "lastHeartbeatTime": stamp,
                "lastTransitionTime": stamp,
            }
        ],
        "nodeInfo": node_info(name),
        "capacity": {"pods": "110"},
        "allocatable": {"pods": "110"},
    }


def register_nodes(store: Store, fabric: Fabric, node_names: list[str]) -> None:
    """Create the Node objects, Ready, with the bridge address as InternalIP."""
    for k, name in enumerate(node_names, start=1):
        node = {
            "metadata": {
                "name": name,
                "labels": {
                    "kubernetes.io/hostname": name,
                    "kubernetes.io/os": "linux",
                    "hollow.netpolcheck.io/netns": fabric.node_netns(k),
                },
            },
            "spec": {"podCIDR": str(fabric.addresses.block(k))},
        }
        store.create(NODES, node)
        status = node_status(name, str(fabric.addresses.bridge_ip(k)))
        store.merge_patch(NODES, None, name, {"status": status}, status=True)
