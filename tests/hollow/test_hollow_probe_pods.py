"""The project's probe pod template runs unchanged on the hollow cluster and probes across nodes."""

from __future__ import annotations

import json
import string
from typing import Any

import pytest
import yaml
from kubernetes import client

from tests.hollow.clusterkit import REPO, Cluster
from tests.hollow.kubetyped import as_body, ip_of
from tests.hollow.podtools import pod_exec, wait_running

pytestmark = [pytest.mark.netns, pytest.mark.hollow]

TEMPLATE = REPO / "manifests" / "probe" / "pod.yaml"


def probe_pod(name: str, node: str) -> dict[str, Any]:
    text = string.Template(TEMPLATE.read_text()).substitute(
        POD_NAME=name, NAMESPACE="probes", PROBE_IMAGE="netpolcheck-probe:0.1.0"
    )
    pod: dict[str, Any] = yaml.safe_load(text)
    pod["spec"]["nodeName"] = node
    return pod


def test_probe_pods_get_ready_through_their_exec_readiness_probe_and_probe_each_other(
    shared_cluster: Cluster,
) -> None:
    core = shared_cluster.core
    core.create_namespace(as_body(client.V1Namespace, {"metadata": {"name": "probes"}}))
    try:
        core.create_namespaced_pod("probes", as_body(client.V1Pod, probe_pod("a", "node1")))
        core.create_namespaced_pod("probes", as_body(client.V1Pod, probe_pod("b", "node3")))
        wait_running(core, "probes", "a")
        b = wait_running(core, "probes", "b")
        # the emptyDir at /tmp holds the journal and the `.ready` file the readiness probe checks
        code, out, err = pod_exec(core, "probes", "b", ["ls", "/tmp/netpolcheck-probe"])
        assert code == 0 and "journal-b.jsonl.ready" in out.split(), out + err
        targets = [
            {"id": "tcp80", "ip": ip_of(b), "port": 80, "protocol": "TCP"},
            {"id": "tcp82", "ip": ip_of(b), "port": 82, "protocol": "TCP"},
            {"id": "udp81", "ip": ip_of(b), "port": 81, "protocol": "UDP"},
        ]
        result = shared_cluster.kubectl(
            "exec",
            "-i",
            "-n",
            "probes",
            "a",
            "--",
            "python",
            "-m",
            "netpolcheck.probe",
            "probe",
            input_text=json.dumps(targets),
        )
        assert result.returncode == 0, result.stderr
        verdicts = {r["id"]: r["verdict"] for r in json.loads(result.stdout)}
        assert verdicts == {"tcp80": "allowed", "tcp82": "refused", "udp81": "allowed"}
    finally:
        core.delete_namespace("probes")
