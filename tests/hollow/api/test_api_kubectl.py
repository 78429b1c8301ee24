"""kubectl against the hollow API server: apply (client- and server-side), get -w, older exec protocols."""

from __future__ import annotations

import json
import ssl
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import websocket
from kubernetes import client

from tests.hollow.api.apikit import KUBECTL, Cluster, pod_body
from tests.hollow.kubetyped import as_body, meta_of, present, spec_of

POLICY = """apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: allow-web
  namespace: default
spec:
  podSelector:
    matchLabels: {app: web}
  ingress:
  - ports:
    - port: {port}
      protocol: TCP
"""


# The protocol is spelled out: kubectl replaces a list without a merge key whole, so a server-defaulted
# protocol would make every re-apply send (and report) a patch, against any API server.
def test_kubectl_apply_creates_then_leaves_unchanged_then_configures(
    cluster: Cluster, tmp_path: Path
) -> None:
    manifest = tmp_path / "policy.yaml"
    manifest.write_text(POLICY.replace("{port}", "80"))
    outputs = []
    for port in ("80", "80", "8080"):
        manifest.write_text(POLICY.replace("{port}", port))
        result = cluster.kubectl("apply", "-f", str(manifest))
        assert result.returncode == 0, result.stderr
        outputs.append(result.stdout.strip())
    assert outputs == [
        f"networkpolicy.networking.k8s.io/allow-web {word}" for word in ("created", "unchanged", "configured")
    ]
    policy = client.NetworkingV1Api(cluster.api_client).read_namespaced_network_policy("allow-web", "default")
    assert (
        present(present(spec_of(policy).ingress, "ingress")[0].ports, "ports")[0].port == 8080
        and meta_of(policy).generation == 2
    )
    assert "kubectl.kubernetes.io/last-applied-configuration" in present(
        meta_of(policy).annotations, "annotations"
    )
    result = cluster.kubectl("apply", "--server-side", "-f", str(manifest))
    assert result.returncode == 0 and "serverside-applied" in result.stdout, result.stderr
    manifest.write_text(POLICY.replace("{port}", "70000"))
    result = cluster.kubectl("apply", "-f", str(manifest))
    assert result.returncode == 1 and "spec.ingress[0].ports[0].port" in result.stderr


def test_kubectl_get_watch_prints_changes(cluster: Cluster, core: client.CoreV1Api) -> None:
    core.create_namespaced_pod("default", as_body(client.V1Pod, pod_body("first")))
    proc = subprocess.Popen(
        [str(KUBECTL), "--kubeconfig", str(cluster.kubeconfig), "get", "pods", "-w"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().split()[:3] == ["NAME", "READY", "STATUS"]
        assert proc.stdout.readline().split()[:3] == ["first", "0/1", "Pending"]
        core.create_namespaced_pod("default", as_body(client.V1Pod, pod_body("second")))
        assert proc.stdout.readline().split()[:3] == ["second", "0/1", "Pending"]
        core.patch_namespaced_pod_status("first", "default", {"status": {"phase": "Running"}})
        assert proc.stdout.readline().split()[:3] == ["first", "0/1", "Running"]
    finally:
        proc.terminate()
        proc.wait(5)


@pytest.mark.parametrize("protocol", ["v4.channel.k8s.io", "v3.channel.k8s.io", "channel.k8s.io"])
def test_older_exec_channel_protocols(cluster: Cluster, core: client.CoreV1Api, protocol: str) -> None:
    core.create_namespaced_pod("default", as_body(client.V1Pod, pod_body("box")))
    url = cluster.url.replace("https://", "wss://") + (
        "/api/v1/namespaces/default/pods/box/exec?command=sh&command=-c&command=echo+hi%3B+exit+4"
        "&stdout=true&stderr=true"
    )
    ctx: dict[str, Any] = {"cert_reqs": ssl.CERT_REQUIRED, "ca_cert_path": None}
    ca_file = Path(cluster.kubeconfig).parent / "ca.crt"
    ca_file.write_bytes(cluster.ca_pem)
    ctx["ca_certs"] = str(ca_file)
    ws = websocket.create_connection(
        url,
        header=[f"Authorization: Bearer {cluster.token}"],
        subprotocols=[protocol],
        sslopt=ctx,
        timeout=10,
    )
    assert ws.subprotocol == protocol
    frames: dict[int, bytes] = {}
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            data = ws.recv()
        except websocket.WebSocketConnectionClosedException:
            break
        if not data:
            break
        data = data if isinstance(data, bytes) else data.encode()
        frames[data[0]] = frames.get(data[0], b"") + data[1:]
    ws.close()
    ws.shutdown()  # websocket-client leaves the socket open when the server closed first
    assert frames[1] == b"hi\n"
    if protocol == "v4.channel.k8s.io":
        status = json.loads(frames[3])
        assert status["reason"] == "NonZeroExitCode" and status["details"]["causes"][0]["message"] == "4"
    else:  # before v4 the error channel carries a plain message
        assert b"exit code 4" in frames[3]
